"""Thread server: a worker whose client left accepts the next connection itself (loopback only).

The first tests drive ``_take_over_accept`` on a server whose loop is not running, so no other
thread can accept first; the last one runs the whole server with clients that reconnect for
every call, as a proxy-per-call application does.
"""

from __future__ import annotations

import socket

import pytest

from pyro4compat import _protocol as proto
from pyro4compat.configuration import config
from pyro4compat.socketserver.threadpoolserver import ClientConnectionJob, SocketServer_Threadpool

from test_transports import Client, FakeDaemon, Running, baseline, wait_for, wire  # noqa: F401 (fixture)


@pytest.fixture
def spinning() -> None:
    """Busy-polling on, with a spin long enough for a slow CI machine to see a pending connect."""
    config.BUSYPOLL_US = 50_000     # the conftest fixture restores config afterwards


@pytest.fixture
def idle_server():
    """A thread server with nobody running its loop: only the test accepts."""
    daemon = FakeDaemon()
    server = SocketServer_Threadpool()
    daemon.server = server
    server.init(daemon, "localhost", 0)
    yield server, daemon
    server.close()


def _connect(server: SocketServer_Threadpool) -> socket.socket:
    sock = socket.create_connection(server.sock.getsockname(), timeout=10)
    return sock


@pytest.mark.timeout(20)
def test_worker_accepts_and_serves_a_waiting_connection(baseline, idle_server, spinning):
    server, daemon = idle_server
    client = Client(None, sock=_connect(server))
    client.conn.send(wire(proto.MSG_CONNECT, b"hi"))
    job = server._take_over_accept()
    assert isinstance(job, ClientConnectionJob)
    assert job.caddr == client.sock.getsockname()
    job()       # what the worker does next: the handshake, then it parks the silent connection
    assert client.receive().type == proto.MSG_CONNECTOK
    assert len(daemon.handshaken) == 1
    client.sock.close()


@pytest.mark.timeout(20)
def test_no_takeover_without_a_waiting_connection(baseline, idle_server):
    server, _ = idle_server
    config.BUSYPOLL_US = 1000
    assert server._take_over_accept() is None       # one short spin saw nothing


@pytest.mark.timeout(20)
def test_no_takeover_when_spinning_is_unwelcome_or_off(baseline, idle_server, spinning, monkeypatch):
    server, _ = idle_server
    waiting = _connect(server)
    monkeypatch.setattr(server, "_may_spin", lambda: False)     # another worker is busy
    assert server._take_over_accept() is None
    monkeypatch.undo()
    config.BUSYPOLL_US = 0                                       # switched off at run time
    assert server._take_over_accept() is None
    accepted, _ = server.sock.accept()      # the connection was left for the loop thread
    accepted.close()
    waiting.close()


@pytest.mark.timeout(20)
def test_no_takeover_after_close(baseline, idle_server, spinning):
    server, _ = idle_server
    waiting = _connect(server)
    server.close()
    assert server._take_over_accept() is None
    waiting.close()


@pytest.mark.timeout(60)
def test_a_connection_per_call_is_served_every_time(spinning, baseline):
    """Whoever accepts (a worker taking over or the loop thread), every client is served once."""
    running = Running("thread")
    try:
        for number in range(60):
            client = running.client()
            payload = b"call %d" % number
            assert client.call(payload) == payload
            client.close()
        assert wait_for(lambda: len(running.daemon.disconnects) == 60)
    finally:
        running.stop()
    assert len(running.daemon.handshaken) == 60


@pytest.mark.timeout(20)
def test_takeover_follows_busypoll_switched_back_on(baseline, idle_server):
    """A server made while busy-polling was off spins once it is switched on: no restart needed."""
    server, _ = idle_server
    config.BUSYPOLL_US = 0
    waiting = _connect(server)
    assert server._take_over_accept() is None
    config.BUSYPOLL_US = 50_000
    job = server._take_over_accept()
    assert isinstance(job, ClientConnectionJob)
    job.csock.close()
    waiting.close()
