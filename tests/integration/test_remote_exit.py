"""A remote method that raises ``SystemExit`` or ``KeyboardInterrupt`` ends its connection, not the daemon.

Pyro4 4.82 closes that one connection and serves on, on both server types. Before, the
multiplex loop died with the exception and each such call on the thread server leaked a
worker (the pool counted it busy for good), so ``THREADPOOL_SIZE`` of them left a server
that never answered again.
"""

from __future__ import annotations

import sys

import pytest

from pyro4compat import errors
from pyro4compat._client.proxy import Proxy
from pyro4compat._server.daemon import Daemon
from pyro4compat._server.exposure import expose
from pyro4compat.configuration import config

pytestmark = pytest.mark.timeout(60)

POOL_SIZE = 4


@expose
class Quitter:
    def ping(self) -> str:
        return "pong"

    def quit(self) -> None:
        sys.exit(3)

    def interrupt(self) -> None:
        raise KeyboardInterrupt


class ExitingHandshake(Daemon):
    def validateHandshake(self, conn, data):
        if data == "exit":
            sys.exit("refused by exiting")
        return super().validateHandshake(conn, data)


@pytest.mark.parametrize("method", ["quit", "interrupt"])
def test_remote_exits_close_only_their_connection(servertype, serve, method) -> None:
    config.THREADPOOL_SIZE = POOL_SIZE
    daemon = Daemon(host="127.0.0.1", port=0)
    uri = daemon.register(Quitter(), "quitter")
    with serve(daemon):
        for _ in range(2 * POOL_SIZE):
            with Proxy(uri) as proxy:
                proxy._pyroTimeout = 10
                with pytest.raises(errors.ConnectionClosedError):
                    getattr(proxy, method)()
        with Proxy(uri) as proxy:
            proxy._pyroTimeout = 10
            assert proxy.ping() == "pong"


def test_a_handshake_hook_that_exits_ends_that_client_only(servertype, serve) -> None:
    config.THREADPOOL_SIZE = POOL_SIZE
    daemon = ExitingHandshake(host="127.0.0.1", port=0)
    uri = daemon.register(Quitter(), "quitter")
    with serve(daemon):
        for _ in range(2 * POOL_SIZE):
            with Proxy(uri) as proxy:
                proxy._pyroTimeout = 10
                proxy._pyroHandshake = "exit"
                with pytest.raises(errors.CommunicationError):
                    proxy.ping()
        with Proxy(uri) as proxy:
            proxy._pyroTimeout = 10
            assert proxy.ping() == "pong"
