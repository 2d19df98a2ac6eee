"""Running daemons inside another event loop: ``Daemon.sockets``, ``events()``, ``selector``, ``combine()``.

``ExternalLoop`` is the kind of loop a GUI toolkit or an application owns: a hand-written
``selectors`` loop that, on every turn, watches the current ``sockets`` of each daemon it serves
and hands the ready ones to that daemon's ``events()``. A socket pair wakes it to stop.
"""

from __future__ import annotations

import select
import selectors
import socket
import threading
import time
from typing import Any, Dict, List

import pytest

import pyro4compat as Pyro4
from pyro4compat.configuration import config
from pyro4compat.socketserver import _parking, threadpoolserver
from remote_helpers import WAIT, wait_until

pytestmark = pytest.mark.timeout(30)


@Pyro4.expose
class Named:
    def __init__(self, name: str) -> None:
        self.name = name

    def who(self) -> str:
        return self.name

    def add(self, a: int, b: int) -> int:
        return a + b


class ExternalLoop:
    """A selectors loop, owned by the application, that serves any number of daemons."""

    def __init__(self, daemons: List[Any]) -> None:
        self.daemons = daemons
        self.selector = selectors.DefaultSelector()
        self.stop_reader, self.stop_writer = socket.socketpair()
        self.selector.register(self.stop_reader, selectors.EVENT_READ, None)
        self.registered: Dict[Any, Any] = {}
        self.turns_with_events = 0
        self.thread = threading.Thread(target=self.run, name="external-loop", daemon=True)

    def _sync_registrations(self) -> None:
        """Watch exactly the daemons' current sockets (connections come and go)."""
        wanted = {sock: daemon for daemon in self.daemons for sock in daemon.sockets}
        for sock in [s for s in self.registered if s not in wanted]:
            try:
                self.selector.unregister(sock)
            except (KeyError, ValueError):
                pass
            del self.registered[sock]
        for sock, daemon in wanted.items():
            if sock not in self.registered:
                self.selector.register(sock, selectors.EVENT_READ, daemon)
                self.registered[sock] = daemon

    def run(self) -> None:
        while True:
            self._sync_registrations()
            per_daemon: Dict[Any, List[Any]] = {}
            for key, _ in self.selector.select(timeout=5):
                if key.data is None:
                    return  # asked to stop
                per_daemon.setdefault(key.data, []).append(key.fileobj)
            for daemon, ready in per_daemon.items():
                self.turns_with_events += 1
                daemon.events(ready)

    def __enter__(self) -> "ExternalLoop":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop_writer.send(b"x")
        self.thread.join(10)
        assert not self.thread.is_alive(), "external loop did not stop"
        self.selector.close()
        self.stop_reader.close()
        self.stop_writer.close()


def test_external_selectors_loop_serves_two_daemons(servertype):
    first, second = Pyro4.Daemon(host="127.0.0.1"), Pyro4.Daemon(host="127.0.0.1")
    uris = [first.register(Named("first")), second.register(Named("second"))]
    assert first.sock in first.sockets and second.sock in second.sockets
    try:
        with ExternalLoop([first, second]) as loop:
            proxies = [Pyro4.Proxy(uri) for uri in uris for _ in range(3)]
            for round_ in range(3):
                assert [p.who() for p in proxies] == ["first"] * 3 + ["second"] * 3
                assert [p.add(round_, 1) for p in proxies] == [round_ + 1] * 6
            for proxy in proxies:
                proxy._pyroRelease()
            assert proxies[0].who() == "first"  # reconnects after the release
            proxies[0]._pyroRelease()
        assert loop.turns_with_events > 0
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("other_type", ["multiplex", "thread"])
def test_combine_serves_another_daemon_from_a_multiplex_loop(serve, other_type):
    config.SERVERTYPE = "multiplex"
    host = Pyro4.Daemon(host="127.0.0.1")
    config.SERVERTYPE = other_type
    other = Pyro4.Daemon(host="127.0.0.1")
    host_uri, other_uri = host.register(Named("host")), other.register(Named("other"))
    try:
        if other_type == "thread":
            # as in Pyro4: the thread pool server can't hand its loop to another server
            with pytest.raises(AttributeError):
                host.combine(other)
            return
        host.combine(other)
        assert other.sock in host.sockets
        with serve(host):  # only the host runs a loop; it serves both daemons
            with Pyro4.Proxy(host_uri) as p1, Pyro4.Proxy(other_uri) as p2:
                for _ in range(3):
                    assert (p1.who(), p2.who()) == ("host", "other")
    finally:
        other.close()
        host.close()


def test_combine_on_a_thread_pool_daemon_is_refused():
    config.SERVERTYPE = "thread"
    host = Pyro4.Daemon(host="127.0.0.1")
    config.SERVERTYPE = "multiplex"
    other = Pyro4.Daemon(host="127.0.0.1")
    try:
        with pytest.raises(TypeError, match="You can't use the loop combiner on the threadpool server type"):
            host.combine(other)
    finally:
        host.close()
        other.close()


def test_selector_property(servertype):
    with Pyro4.Daemon(host="127.0.0.1") as daemon:
        if servertype == "multiplex":
            assert isinstance(daemon.selector, selectors.BaseSelector)
            assert daemon.sock in [key.fileobj for key in daemon.selector.get_map().values()]
        else:
            with pytest.raises(TypeError, match="threadpool server doesn't have multiplexing selector"):
                _ = daemon.selector


def test_events_with_nothing_ready_returns_at_once(servertype):
    with Pyro4.Daemon(host="127.0.0.1") as daemon:
        assert daemon.events([]) is None


def test_connection_parked_while_events_runs_is_watched_afterwards(monkeypatch):
    """Where parking goes through the loop thread (selectors, no epoll): a worker may park a
    connection between events()' adoption step and its waker drain.

    The waker byte is then consumed in that same pass, so events() must adopt after draining:
    otherwise the parked connection is in no selector and an external loop never calls
    events() for it again (the client waits for ever).
    """
    config.SERVERTYPE = "thread"
    monkeypatch.setattr(threadpoolserver, "make_parking", _parking.SelectorParking)
    with Pyro4.Daemon(host="127.0.0.1") as daemon:
        server = daemon.transportServer
        client_side, server_side = socket.socketpair()
        try:
            job = threadpoolserver.ClientConnectionJob(server_side, "parked-client", daemon, server)
            adopt = server._parking.adopt
            parked = []

            def adopt_then_worker_parks() -> None:
                adopt()
                if not parked:          # the interleaving: a worker parks right after adoption
                    parked.append(job)
                    server._park(job)
            monkeypatch.setattr(server._parking, "adopt", adopt_then_worker_parks)
            daemon.events([server._waker.reader])
            assert server_side in daemon.sockets
        finally:
            client_side.close()


def test_connection_a_worker_parks_wakes_an_external_loop(monkeypatch):
    """A worker parks its connection itself (epoll); an external loop blocked on an older
    ``sockets`` list is woken through the waker, and the connection is in the list it fetches next."""
    config.SERVERTYPE = "thread"
    with Pyro4.Daemon(host="127.0.0.1") as daemon:
        server = daemon.transportServer
        client_side, server_side = socket.socketpair()
        try:
            job = threadpoolserver.ClientConnectionJob(server_side, "parked-client", daemon, server)
            before = daemon.sockets + [server._waker.reader]   # the list while the job is out with a worker
            server._park(job)
            assert select.select(before, [], [], WAIT)[0], "the external loop was not woken"
            daemon.events(before)
            assert server_side in daemon.sockets
            client_side.sendall(b"P")       # its bytes reach the loop: taken out, partial, parked again
            daemon.events(daemon.sockets)
            assert server_side in daemon.sockets
        finally:
            client_side.close()


def test_idle_daemon_lists_only_its_listening_socket(servertype):
    """As in Pyro4: no waker or other helper socket of ours in ``sockets``."""
    with Pyro4.Daemon(host="127.0.0.1") as daemon:
        assert daemon.sockets == [daemon.sock]


def test_multiplex_lists_listener_and_connected_clients_as_pyro4(serve):
    config.SERVERTYPE = "multiplex"
    with Pyro4.Daemon(host="127.0.0.1") as daemon:
        uri = daemon.register(Named("m"))
        with serve(daemon):
            with Pyro4.Proxy(uri) as proxy:
                assert proxy.who() == "m"
                local = proxy._pyroConnection.sock.getsockname()
                sockets = daemon.sockets
                assert len(sockets) == 2 and sockets[0] is daemon.sock
                assert getattr(sockets[1], "sock", sockets[1]).getpeername() == local  # (a SocketConnection)
            assert wait_until(lambda: daemon.sockets == [daemon.sock])


def _connection_listed(daemon: Any, proxy: Any) -> bool:
    local = proxy._pyroConnection.sock.getsockname()
    plain = [getattr(sock, "sock", sock) for sock in daemon.sockets if sock is not daemon.sock]
    return any(sock.family == socket.AF_INET and sock.getpeername() == local for sock in plain)


def test_external_loop_is_woken_for_a_connection_back_from_a_worker(servertype):
    """Without the waker in ``sockets`` while a worker holds a connection, the loop below would only
    see the parked connection after its 5 s select timeout."""
    daemon = Pyro4.Daemon(host="127.0.0.1")
    uri = daemon.register(Named("x"))
    try:
        with ExternalLoop([daemon]), Pyro4.Proxy(uri) as proxy:
            for _ in range(3):
                assert proxy.who() == "x"
                assert wait_until(lambda: _connection_listed(daemon, proxy))  # parked, idle
                started = time.monotonic()
                assert proxy.add(1, 2) == 3
                assert time.monotonic() - started < 2.5
    finally:
        daemon.close()
