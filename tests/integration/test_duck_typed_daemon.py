"""The socket servers accept any object with ``_handshake``, ``handleRequest`` and ``_housekeeping`` as
their daemon, as Pyro4's do (its own tests drive them that way): no HMAC key attribute needed, and a
handshake that crashes ends that connection only.
"""

from __future__ import annotations

import threading

import pytest

from pyro4compat import errors, socketutil
from pyro4compat.configuration import config
from pyro4compat.message import MSG_CONNECTOK, Message
from pyro4compat.socketserver.multiplexserver import SocketServer_Multiplex
from pyro4compat.socketserver.threadpoolserver import SocketServer_Threadpool

pytestmark = pytest.mark.timeout(30)


class CrashingHandshake:
    def __init__(self) -> None:
        self.handshakes = 0

    def _handshake(self, conn, denied_reason=None):
        self.handshakes += 1
        raise ZeroDivisionError("handshake crashed (on purpose)")

    def handleRequest(self, conn):
        raise AssertionError("no request can get past the handshake")

    def _housekeeping(self):
        pass


@pytest.mark.parametrize("server_class", [SocketServer_Threadpool, SocketServer_Multiplex])
@pytest.mark.parametrize("sends_connect", [False, True])
def test_a_duck_typed_daemon_whose_handshake_crashes(server_class, sends_connect) -> None:
    config.COMMTIMEOUT = 0.5    # a silent client is closed after this long
    daemon = CrashingHandshake()
    server = server_class()
    server.init(daemon, "127.0.0.1", 0)
    host, port = server.sock.getsockname()[:2]
    stop = threading.Event()
    loop = threading.Thread(target=server.loop, args=(lambda: not stop.is_set(),), daemon=True)
    loop.start()
    try:
        for _ in range(3):      # the server serves on after each crash
            conn = socketutil.SocketConnection(socketutil.createSocket(connect=(host, port), timeout=10))
            try:
                if sends_connect:
                    conn.send(Message(0x01, b"{}", 1, 0, 1).to_bytes())  # MSG_CONNECT, serpent payload
                with pytest.raises(errors.ConnectionClosedError):
                    Message.recv(conn, [MSG_CONNECTOK])
            finally:
                conn.close()
        if sends_connect:
            assert daemon.handshakes == 3
    finally:
        stop.set()
        server.close()
        server.wakeup()
        loop.join(10)
    assert not loop.is_alive()
