"""SerializedBlob data can be any value, not only an argument tuple (as in Pyro4)."""

from __future__ import annotations

import pytest

from pyro4compat import core
from pyro4compat._serializers import _serializers
from pyro4compat.configuration import config

pytestmark = pytest.mark.timeout(30)

SERIALIZERS = [name for name in ("serpent", "json", "pickle", "msgpack") if name in _serializers]


@core.expose
class Handler:
    def handle(self, blob):
        return blob.deserialized()


@core.expose
class Dispatcher:
    """Forwards the blob without looking inside: the handler deserializes it."""

    def __init__(self, handler_uri):
        self.handler_uri = handler_uri

    def dispatch(self, blob):
        with core.Proxy(self.handler_uri) as handler:
            return handler.handle(blob)


@pytest.mark.parametrize("serializer", SERIALIZERS)
@pytest.mark.parametrize("data", [{"a": 1}, [1, 2], "text", 42], ids=["dict", "list", "str", "int"])
def test_blob_of_any_value_reaches_the_handler(servertype, serve, serializer, data):
    config.SERIALIZER = serializer
    config.SERIALIZERS_ACCEPTED = {serializer}
    # Two daemons: a multiplex daemon can't serve the handler while it runs the dispatcher.
    handler_daemon = core.Daemon(host="127.0.0.1")
    daemon = core.Daemon(host="127.0.0.1")
    dispatcher_uri = daemon.register(Dispatcher(handler_daemon.register(Handler())))
    with serve(handler_daemon), serve(daemon), core.Proxy(dispatcher_uri) as dispatcher:
        assert dispatcher.dispatch(core.SerializedBlob("info", data)) == data
