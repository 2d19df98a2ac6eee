"""Size limits that speak (issue 8, item 4): a call over the server's ``MAX_MESSAGE_SIZE`` gets
``MessageTooLargeError`` on the client, not a broken pipe.

The server (daemon or name server, both server types) runs in a child process with
``MAX_MESSAGE_SIZE = 20000``; this process, the client, has no limit. The server reads off and
drops a too-large message of up to ``_protocol.discard_limit(20000)`` = 20000 + 1 MiB bytes and
answers it; the connection stays in step and usable. A larger one closes the connection.
"""

from __future__ import annotations

import pytest

from pyro4compat import _protocol as proto
from pyro4compat import core, errors
from pyro4compat.configuration import config

from hostile_support import ChildServer, RawClient, invoke_bytes

pytestmark = pytest.mark.timeout(40)

LIMIT = 20000


@pytest.fixture(scope="module", params=[("daemon", "thread"), ("daemon", "multiplex"),
                                        ("ns", "thread"), ("ns", "multiplex")], ids=lambda p: "%s-%s" % p)
def child(request):
    kind, servertype = request.param
    with ChildServer(kind, servertype, MAX_MESSAGE_SIZE=LIMIT) as server:
        yield server


@pytest.fixture
def proxy(child):
    config.MAX_MESSAGE_SIZE = 0
    with core.Proxy(child.target_uri()) as p:
        p._pyroTimeout = 10
        p._pyroBind()
        yield p


def test_discard_limit_rule():
    assert proto.discard_limit(0) == 0
    assert proto.discard_limit(LIMIT) == LIMIT + (1 << 20)
    assert proto.discard_limit(4 << 20) == 8 << 20


def test_call_over_the_limit_gets_message_too_large(proxy):
    with pytest.raises(errors.MessageTooLargeError) as info:
        proxy.echo("a" * 30000)
    assert str(info.value).startswith("max message size exceeded (")
    assert str(info.value).endswith(" where max=%d)" % LIMIT)
    assert info.value._pyroTraceback            # a real remote error, with its (short) traceback
    # Pyro4's proxy drops its connection after any CommunicationError, remote ones included
    assert proxy.echo("small") == "small"


def test_server_keeps_the_connection_in_step(child):
    """On the raw socket: the oversized call is answered, the next call on it too."""
    object_id = "Pyro.NameServer" if child.kind == "ns" else "target"
    method, vargs = ("count", []) if child.kind == "ns" else ("echo", ["next"])
    with RawClient(child.port) as client:
        client.handshake()
        client.send(invoke_bytes(object_id, "echo", ["g" * 30000], seq=7))
        reply = client.reply()
        assert (reply.seq, reply.serializer_id, bool(reply.flags & proto.FLAGS_EXCEPTION)) == (7, 1, True)
        client.send(invoke_bytes(object_id, method, vargs, seq=8, serializer="json"))
        reply = client.reply()
        assert (reply.seq, reply.flags & proto.FLAGS_EXCEPTION) == (8, 0)


def test_unaccepted_serializer_oversized_reply_is_marshal(child):
    object_id = "Pyro.NameServer" if child.kind == "ns" else "target"
    with RawClient(child.port) as client:
        client.handshake()
        client.send(invoke_bytes(object_id, "echo", ["p" * 30000], serializer="pickle", seq=3))
        reply = client.reply()
        assert (reply.seq, reply.serializer_id) == (3, 3)
        assert isinstance(client_result_of(reply), errors.MessageTooLargeError)


def client_result_of(reply):
    from pyro4compat._serializers import get_serializer_by_id
    return get_serializer_by_id(reply.serializer_id).deserializeData(reply.data)


def test_several_oversized_calls_in_a_row(proxy):
    for size in (LIMIT + 1, 50000, 500000, LIMIT + (1 << 20) - 200):
        with pytest.raises(errors.MessageTooLargeError):
            proxy.echo("b" * size)
    assert proxy.echo("fine") == "fine"


def test_oneway_over_the_limit_is_dropped_silently(proxy):
    connection = proxy._pyroConnection
    proxy._pyroOneway.add("echo")
    proxy.echo("c" * 30000)             # no reply for a oneway call, and none is sent
    proxy._pyroOneway.discard("echo")
    assert proxy.echo("after") == "after"   # its reply is the next message: the stream is in step
    assert proxy._pyroConnection is connection


def test_compressed_call_inflating_over_the_limit(proxy):
    config.COMPRESSION = True
    with pytest.raises(errors.MessageTooLargeError) as info:
        proxy.echo("d" * 200000)        # about 600 bytes on the wire, 200 kB inflated
    assert "decompressed data larger than" in str(info.value)
    config.COMPRESSION = False
    assert proxy.echo("e") == "e"


def test_beyond_the_discard_bound_the_connection_is_closed(proxy):
    with pytest.raises(errors.CommunicationError):
        proxy.echo("f" * (LIMIT + (1 << 20) + 1000))
    assert proxy.echo("reconnected") == "reconnected"     # a new connection serves the next call


def test_handshake_over_the_limit_is_refused_with_the_reason(child):
    with core.Proxy(child.target_uri()) as proxy:
        proxy._pyroHandshake = "h" * 30000
        with pytest.raises(errors.CommunicationError) as info:
            proxy._pyroBind()
        assert "max message size exceeded" in str(info.value)


def test_name_server_call_over_the_limit(child):
    if child.kind != "ns":
        pytest.skip("name server only")
    with core.Proxy(child.uri) as ns:
        with pytest.raises(errors.MessageTooLargeError):
            ns.register("big", "PYRO:x@localhost:1", metadata={"m" * 30000})
        assert ns.lookup("Pyro.NameServer").object == "Pyro.NameServer"
        with pytest.raises(errors.NamingError):
            ns.lookup("big")            # nothing of the refused call was run
