"""No worker waits on a client, refusals on the header, one entry point (issue 19, items 2-4).

Both server types (``servertype``): 200 connections trickling a CONNECT header don't keep a
proxy or a fresh client waiting and don't cost threads; a header over ``MAX_MESSAGE_SIZE`` is
answered before its body arrives, and our proxy reports that answer when its send fails; an
override of ``Daemon.handleRequest`` or ``Daemon._sendExceptionResponse`` is called on every
server type, the existing-connection server included.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from typing import Any, List

import pytest

from pyro4compat import _protocol as proto
from pyro4compat import core, errors
from pyro4compat.configuration import config
from pyro4compat.socketserver import _parking, threadpoolserver

from hostile_support import (ChildServer, RawClient, assert_idle, connect_bytes, header, invoke_bytes,
                             served_target, settled)
from remote_helpers import HOST, WAIT, Thing, wait_until

pytestmark = pytest.mark.timeout(60)

ANSWER = 0.5            # seconds a well-behaved call may take while 200 connections trickle
TRICKLERS = 200
LIMIT = 1 << 20


class Trickler(threading.Thread):
    """Sends each client the next byte of ``message`` every ``interval`` seconds, ``count`` times."""

    def __init__(self, clients: List[RawClient], message: bytes, count: int, interval: float = 0.2) -> None:
        super().__init__(name="trickler", daemon=True)
        self.clients, self.message, self.count, self.interval = clients, message, count, interval
        self.sent = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while self.sent < self.count and not self.stop.wait(self.interval):
            for client in self.clients:
                client.send(self.message[self.sent:self.sent + 1])
            self.sent += 1


def _timed(call: Any) -> float:
    start = time.monotonic()
    call()
    return time.monotonic() - start


def _fresh_call(uri: Any) -> None:
    with core.Proxy(uri) as proxy:
        proxy._pyroTimeout = WAIT
        assert proxy.echo("fresh") == "fresh"


def test_trickling_headers_cost_no_worker_and_no_waiting(servertype):
    config.THREADPOOL_SIZE = 8
    config.THREADPOOL_SIZE_MIN = 2
    with served_target("daemon") as target:
        early = core.Proxy(target.uri)
        early._pyroTimeout = WAIT
        assert early.echo("before") == "before"
        idle = settled()
        clients = [RawClient(target.port) for _ in range(TRICKLERS)]
        trickler = Trickler(clients, connect_bytes(), count=15)     # 3 s: never a whole header
        trickler.start()
        try:
            slowest, peak = 0.0, 0
            while trickler.is_alive():
                slowest = max(slowest, _timed(lambda: early.echo("during")), _timed(lambda: _fresh_call(target.uri)))
                peak = max(peak, threading.active_count())
            assert trickler.sent == 15
            assert slowest < ANSWER, "a well-behaved call took %.2f s" % slowest
            # the pool's workers (at most THREADPOOL_SIZE) and the trickler: no thread per slow client
            assert peak <= idle[0] + config.THREADPOOL_SIZE + 2, peak
        finally:
            trickler.stop.set()
            trickler.join(WAIT)
            for client in clients:
                client.close()
            early._pyroRelease()
        assert_idle(idle)


def test_handshake_backlog_closes_the_oldest(monkeypatch):
    """Past PENDING_HANDSHAKES connections without a handshake, the oldest ones are closed."""
    config.SERVERTYPE = "thread"
    monkeypatch.setattr(threadpoolserver, "PENDING_HANDSHAKES", 5)
    with served_target("daemon") as target:
        clients = [RawClient(target.port, timeout=WAIT) for _ in range(8)]
        try:
            for client in clients:
                client.send(connect_bytes()[:3])
            assert clients[0].closed() and clients[1].closed()
            target.well_behaved_call()
        finally:
            for client in clients:
                client.close()


@pytest.mark.parametrize("parking", [_parking.EpollParking, _parking.SelectorParking])
def test_eviction_of_a_connection_with_an_event_in_the_same_batch_keeps_the_loop_alive(monkeypatch, parking):
    """An accept that evicts a parked connection whose readable event is later in the same select batch.

    The loop is driven by hand so both events are ready at once: the evicted connection's event
    must be skipped, not served (its socket is closed by then), and the loop goes on. Both
    parking sets (see ``socketserver._parking``): epoll where the platform has it, selectors elsewhere.
    """
    if parking is _parking.EpollParking and not hasattr(select, "epoll"):
        pytest.skip("no epoll on this platform")
    config.SERVERTYPE = "thread"
    monkeypatch.setattr(threadpoolserver, "PENDING_HANDSHAKES", 1)
    monkeypatch.setattr(threadpoolserver, "make_parking", parking)
    daemon = core.Daemon(host=HOST, port=0)
    server = daemon.transportServer
    monkeypatch.setattr(server, "_linger", lambda: 0.0)   # park every new connection in the selector
    clients: List[socket.socket] = []
    try:
        address = daemon.sock.getsockname()
        clients.append(socket.create_connection(address, timeout=WAIT))
        server._run_once(WAIT)          # accepts and parks the first connection
        clients.append(socket.create_connection(address, timeout=WAIT))   # listener ready first ...
        clients[0].sendall(b"P")                                          # ... then the parked one
        parked = [job.csock.sock for job in server._parking.parked()]
        assert len(parked) == 1
        deadline = time.monotonic() + WAIT
        while len(select.select([daemon.sock] + parked, [], [], 0)[0]) < 2:   # a peek: nothing disarmed
            assert time.monotonic() < deadline, "the two events never became ready together"
        server._run_once(0)             # accept evicts the first; its stale event must be skipped
        assert clients[0].recv(10) == b""       # closed by the eviction
        clients[1].sendall(connect_bytes())
        server._run_once(WAIT)          # the survivor is still served
    finally:
        for client in clients:
            client.close()
        daemon.close()


def test_commtimeout_closes_a_connection_that_stalls_mid_message(servertype):
    config.COMMTIMEOUT = 0.3
    with served_target("daemon") as target:
        with RawClient(target.port, timeout=WAIT) as client:
            client.handshake()
            client.send(invoke_bytes("thing", "echo", ["x"])[:30])
            start = time.monotonic()
            assert client.closed()
            assert time.monotonic() - start < 0.3 + 2.0


@pytest.mark.parametrize("parking", [_parking.EpollParking, _parking.SelectorParking])
def test_parked_connections_are_served_and_timed_out_by_either_parking_set(monkeypatch, parking):
    """Both parking sets (epoll on Linux, selectors elsewhere) on one server: a client whose calls
    come after the linger window (parked between calls), a trickler, and COMMTIMEOUT's sweep."""
    if parking is _parking.EpollParking and not hasattr(select, "epoll"):
        pytest.skip("no epoll on this platform")
    config.SERVERTYPE = "thread"
    config.COMMTIMEOUT = 0.5
    monkeypatch.setattr(threadpoolserver, "make_parking", parking)
    with served_target("daemon") as target:
        assert type(target.daemon.transportServer._parking) is parking
        with core.Proxy(target.uri) as proxy, RawClient(target.port, timeout=WAIT) as stalled:
            proxy._pyroTimeout = WAIT
            stalled.send(connect_bytes()[:5])
            parking_set = target.daemon.transportServer._parking
            for round_ in range(3):
                assert proxy.echo(round_) == round_
                local = proxy._pyroConnection.sock.getsockname()
                assert wait_until(lambda: any(job.caddr == local for job in parking_set.parked())), \
                    "the proxy's connection was never parked"
            assert stalled.closed()     # COMMTIMEOUT: never a whole CONNECT
        target.well_behaved_call()


# --- refusals on the header ----------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["thread", "multiplex"])
def limited(request):
    with ChildServer("daemon", request.param, MAX_MESSAGE_SIZE=LIMIT) as server:
        yield server


def test_lone_oversized_header_is_answered_at_once(limited):
    with RawClient(limited.port) as client:
        client.handshake()
        start = time.monotonic()
        client.send(header(proto.MSG_INVOKE, seq=9, data_size=LIMIT + 1, serializer_id=3))
        reply = client.reply()
        elapsed = time.monotonic() - start
        assert (reply.seq, bool(reply.flags & proto.FLAGS_EXCEPTION)) == (9, True)
        assert elapsed < 0.1, "answered after %.3f s" % elapsed
        client.send(b"\0" * (LIMIT + 1))        # the body is read off: the stream stays in step
        client.send(invoke_bytes("target", "echo", ["after"], seq=10))
        assert client.result() == "after"


def test_lone_oversized_connect_header_is_refused_at_once(limited):
    with RawClient(limited.port) as client:
        start = time.monotonic()
        client.send(header(proto.MSG_CONNECT, data_size=LIMIT + 1))
        reply = client.reply()
        assert reply.type == proto.MSG_CONNECTFAIL and b"max message size exceeded" in reply.data
        assert time.monotonic() - start < 0.1 * 10      # noisy machine: "did not wait for the body"


def test_ten_megabyte_call_gets_message_too_large(limited):
    config.MAX_MESSAGE_SIZE = 0
    config.SERIALIZER = "marshal"
    with core.Proxy(limited.target_uri()) as proxy:
        proxy._pyroTimeout = WAIT
        proxy._pyroBind()
        payload = b"x" * (10 * 1000 * 1000)
        start = time.monotonic()
        with pytest.raises(errors.MessageTooLargeError) as info:
            proxy.echo(payload)
        elapsed = time.monotonic() - start
        assert str(info.value).startswith("max message size exceeded (")
        assert elapsed < 1.0, "took %.2f s" % elapsed
        assert proxy.echo("next") == "next"     # a new connection


# --- one entry point -----------------------------------------------------------------------------------

class HookedDaemon(core.Daemon):
    """Counts handleRequest calls and rewords exception replies."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.requests = 0
        self.exceptions: List[str] = []
        super().__init__(*args, **kwargs)

    def handleRequest(self, conn: Any) -> None:
        self.requests += 1
        super().handleRequest(conn)

    def _sendExceptionResponse(self, connection: Any, seq: int, serializer_id: int, exc_value: Any,
                               tbinfo: Any, flags: int = 0, annotations: Any = None) -> None:
        self.exceptions.append(type(exc_value).__name__)
        super()._sendExceptionResponse(connection, seq, serializer_id, ValueError("hooked: %s" % exc_value),
                                       tbinfo, flags, annotations)


def _exercise(daemon: HookedDaemon, proxy: Any) -> None:
    assert proxy.echo("x") == "x"
    with pytest.raises(ValueError) as info:
        proxy.fail("boom")
    assert str(info.value).startswith("hooked: ")
    assert daemon.requests >= 2 and daemon.exceptions


@pytest.mark.parametrize("kind", ["thread", "multiplex", "existing"])
def test_overridden_hooks_are_called_on_every_server_type(kind, serve):
    if kind == "existing":
        ours, theirs = socket.socketpair()
        with ours, theirs:
            daemon = HookedDaemon(connected_socket=theirs)
            daemon.register(Thing(), "thing")
            with serve(daemon):
                with core.Proxy("thing", connected_socket=ours) as proxy:
                    _exercise(daemon, proxy)
        return
    config.SERVERTYPE = kind
    daemon = HookedDaemon(host=HOST, port=0)
    uri = daemon.register(Thing(), "thing")
    with serve(daemon):
        with core.Proxy(uri) as proxy:
            _exercise(daemon, proxy)
