"""``Daemon.shutdown()`` with a grace: new connections refused at once, open ones served a while longer.

Pyro4's thread server went on answering connections that were open when ``shutdown()`` was
called; applications rely on it (workers unregistering from a name server that their master is
shutting down). Every test runs on both server types. Waits are on events and joins; time
bounds are "did not hang" bounds, or compare against a grace far longer than the bound.
"""

from __future__ import annotations

import threading
import time
from typing import Iterator, List, Tuple

import pytest

from pyro4compat import errors, naming
from pyro4compat._client.proxy import Proxy
from pyro4compat._server.daemon import Daemon
from pyro4compat._server.exposure import expose
from pyro4compat.configuration import config

pytestmark = pytest.mark.timeout(60)

LONG_GRACE = 30.0   # far longer than any bound below: a test that waits for it would fail


@expose
class Service:
    def __init__(self) -> None:
        self.shutdown_returned = threading.Event()

    def ping(self) -> str:
        return "pong"

    def shut_down_my_daemon(self) -> str:
        self._pyroDaemon.shutdown()
        self.shutdown_returned.set()
        return "shutting down"


class Running:
    """A daemon whose requestLoop runs in a thread; ``loop_ended`` is set when it returns."""

    def __init__(self) -> None:
        self.daemon = Daemon(host="127.0.0.1", port=0)
        self.service = Service()
        self.uri = self.daemon.register(self.service, "service")
        self.loop_ended = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        try:
            self.daemon.requestLoop()
        finally:
            self.loop_ended.set()

    def shutdown_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.daemon.shutdown, daemon=True)
        thread.start()
        return thread

    def refuses_new_connections(self) -> bool:
        try:
            with Proxy(self.uri) as fresh:
                fresh._pyroTimeout = 5
                fresh._pyroBind()
        except errors.CommunicationError:
            return True
        return False


@pytest.fixture
def running(servertype) -> Iterator[Running]:
    started = Running()
    try:
        yield started
    finally:
        started.daemon.close()
        started.thread.join(10)


def wait_until_refused(running: Running) -> None:
    deadline = time.monotonic() + 10
    while not running.refuses_new_connections():
        assert time.monotonic() < deadline, "the listening socket stayed open"
        time.sleep(0.01)


def test_open_connection_is_answered_during_the_grace_new_ones_refused(running: Running) -> None:
    config.SHUTDOWN_GRACE = LONG_GRACE
    running.daemon.transportServer.grace = LONG_GRACE
    with Proxy(running.uri) as proxy:
        assert proxy.ping() == "pong"
        shutting = running.shutdown_in_thread()
        wait_until_refused(running)
        for _ in range(3):
            assert proxy.ping() == "pong"
        assert not running.loop_ended.is_set()
    # the last open connection ended: the loop returns now, not after the grace
    assert running.loop_ended.wait(10)
    shutting.join(10)
    assert not shutting.is_alive()


def test_idle_connection_is_closed_when_the_grace_ends(running: Running) -> None:
    running.daemon.transportServer.grace = 0.3
    proxy = Proxy(running.uri)
    try:
        assert proxy.ping() == "pong"
        started = time.monotonic()
        running.daemon.shutdown()      # returns once the loop stopped
        assert running.loop_ended.is_set()
        assert time.monotonic() - started >= 0.25
        with pytest.raises(errors.CommunicationError):
            proxy.ping()        # closed by the server, and a reconnect is refused
    finally:
        proxy._pyroRelease()


def test_no_open_connection_means_no_wait(running: Running) -> None:
    running.daemon.transportServer.grace = LONG_GRACE
    with Proxy(running.uri) as proxy:
        assert proxy.ping() == "pong"
    started = time.monotonic()
    running.daemon.shutdown()
    assert running.loop_ended.is_set()
    assert time.monotonic() - started < 10


def test_shutdown_from_inside_a_call_answers_it_at_once(running: Running) -> None:
    running.daemon.transportServer.grace = LONG_GRACE
    with Proxy(running.uri) as proxy:
        proxy._pyroTimeout = 10     # the reply comes long before the grace would end
        assert proxy.shut_down_my_daemon() == "shutting down"
        assert running.service.shutdown_returned.is_set()
        wait_until_refused(running)
        assert proxy.ping() == "pong"       # still served: the grace runs
    assert running.loop_ended.wait(10)
    assert running.daemon.transportServer is None       # the loop closed the daemon


def test_close_does_not_wait(running: Running) -> None:
    running.daemon.transportServer.grace = LONG_GRACE
    proxy = Proxy(running.uri)
    try:
        assert proxy.ping() == "pong"
        running.daemon.close()
        assert running.loop_ended.wait(10)
        with pytest.raises(errors.CommunicationError):
            proxy.ping()
    finally:
        proxy._pyroRelease()


@pytest.mark.parametrize("value", ["soon", -1.0, float("nan")])
def test_a_bad_grace_is_refused_when_the_daemon_is_made(servertype, value) -> None:
    config.SHUTDOWN_GRACE = value
    with pytest.raises(ValueError, match=r"config.SHUTDOWN_GRACE \(PYRO_SHUTDOWN_GRACE\) must be a number"):
        Daemon(host="127.0.0.1", port=0)


def test_zero_grace_stops_at_once(servertype) -> None:
    config.SHUTDOWN_GRACE = 0
    running = Running()
    with Proxy(running.uri) as proxy:
        assert proxy.ping() == "pong"
        running.daemon.shutdown()
        assert running.loop_ended.is_set()
        with pytest.raises(errors.CommunicationError):
            proxy.ping()
    running.thread.join(10)


def test_workers_unregister_while_the_name_server_shuts_down(servertype) -> None:
    """The application pattern: a master shuts its name server down while workers still unregister."""
    config.SHUTDOWN_GRACE = LONG_GRACE
    uri, daemon, _ = naming.startNS(host="127.0.0.1", port=0)
    loop = threading.Thread(target=daemon.requestLoop, daemon=True)
    loop.start()
    workers: List[Tuple[str, Proxy]] = []
    try:
        for number in range(4):
            name = "worker.%d" % number
            ns = Proxy(uri)
            ns.register(name, "PYRO:%s@127.0.0.1:1" % name)
            workers.append((name, ns))
        master = threading.Thread(target=daemon.shutdown, daemon=True)
        master.start()
        deadline = time.monotonic() + 10
        while daemon.transportServer is not None and daemon.transportServer.sock is not None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        for name, ns in workers:
            ns.remove(name)             # answered: the connection was open before the shutdown
            assert ns.lookup("Pyro.NameServer") == uri
        assert workers[0][1].list(prefix="worker.") == {}
    finally:
        for _, ns in workers:
            ns._pyroRelease()
    loop.join(10)
    master.join(10)
    assert not loop.is_alive() and not master.is_alive()
