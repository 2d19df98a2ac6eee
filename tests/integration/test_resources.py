"""A daemon returns to its idle level of threads and open descriptors after clients come and go:
normally, in the middle of a call, or by vanishing (the raw socket just closes). Both server types.

Threads and descriptors are counted for the whole process (``threading.active_count()``,
``/proc/self/fd``), so the test's own client sockets count too: every scenario closes them.
The counts are awaited with a bounded poll, since nothing signals "all cleaned up".
"""

from __future__ import annotations

import socket
import threading
from typing import Any, Callable, List

import pytest

from pyro4compat import core, errors
from pyro4compat.configuration import config

from remote_helpers import HOST, WAIT, Thing, open_fds, served, wait_until

pytestmark = [pytest.mark.timeout(40),
              pytest.mark.skipif(not __import__("os").path.isdir("/proc/self/fd"), reason="needs /proc")]


def normal_clients(uri: Any, thing: Thing) -> None:
    proxies = [core.Proxy(uri) for _ in range(6)]
    threads = [threading.Thread(target=lambda p=p: [p.echo(i) for i in range(20)]) for p in proxies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    for proxy in proxies:
        proxy._pyroRelease()


def oneway_clients(uri: Any, thing: Thing) -> None:
    with core.Proxy(uri) as proxy:
        for n in range(5):
            proxy.fire(n)
        assert proxy.echo("sync") == "sync"


def client_leaves_mid_call(uri: Any, thing: Thing) -> None:
    """The client's socket closes while the server is still running its call."""
    proxy = core.Proxy(uri)
    proxy._pyroBind()
    failures: List[BaseException] = []

    def call() -> None:
        try:
            proxy.block()
        except errors.CommunicationError as exc:
            failures.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    assert thing.fired_event.wait(WAIT)
    proxy._pyroConnection.sock.shutdown(socket.SHUT_RDWR)  # the caller's recv ends at once
    caller.join(WAIT)
    assert failures and proxy._pyroConnection is None
    thing.release.set()  # the server finishes the call; its reply has nowhere to go


def client_vanishes(uri: Any, thing: Thing) -> None:
    """Raw sockets close without a goodbye: after a call, mid-handshake, mid-header, or silent."""
    proxy = core.Proxy(uri)
    assert proxy.echo(1) == 1
    proxy._pyroConnection.sock.close()
    for payload in (b"", b"PYRO", b"PYRO\x00\x30\x00\x01"):
        raw = socket.create_connection((HOST, uri.port))
        if payload:
            raw.sendall(payload)
        raw.close()
    aborted = socket.create_connection((HOST, uri.port))  # close with a reset instead of a FIN
    aborted.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    aborted.close()


def client_sends_garbage(uri: Any, thing: Thing) -> None:
    # (at least a header's 24 bytes: with fewer, a daemon rightly waits for the rest, as Pyro4 does)
    for junk in (b"GET / HTTP/1.0\r\nHost: example\r\n\r\n", b"PYRO" + b"\xff" * 40):
        with socket.create_connection((HOST, uri.port)) as raw:
            raw.sendall(junk)
            raw.settimeout(WAIT)
            try:
                while raw.recv(4096):
                    pass
            except ConnectionResetError:
                pass


SCENARIOS = [normal_clients, oneway_clients, client_leaves_mid_call, client_vanishes, client_sends_garbage]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.__name__ for s in SCENARIOS])
def test_daemon_returns_to_idle(servertype, serve, scenario: Callable[[Any, Thing], None]):
    config.THREADPOOL_SIZE_MIN = 2
    config.THREADPOOL_SIZE = 16
    with served(serve) as (daemon, uri, thing):
        with core.Proxy(uri) as warmup:
            assert warmup.echo("warm") == "warm"
        idle_threads, idle_fds = _settled()
        scenario(uri, thing)
        # threads may end below the baseline: a pool worker above THREADPOOL_SIZE_MIN that was
        # still finishing the warm-up may have retired meanwhile; more would be a leak
        ok = wait_until(lambda: threading.active_count() <= idle_threads and open_fds() == idle_fds)
        assert ok, "threads %d (idle %d), fds %d (idle %d): %s" % (
            threading.active_count(), idle_threads, open_fds(), idle_fds,
            [t.name for t in threading.enumerate()])
        with core.Proxy(uri) as proxy:
            assert proxy.echo("after") == "after"  # and it still serves


def _settled() -> tuple:
    """The counts once they stopped moving (the warm-up client's traces gone)."""
    previous = None

    def stable() -> bool:
        nonlocal previous
        now = (threading.active_count(), open_fds())
        same, previous = now == previous, now
        return same

    wait_until(stable, interval=0.05)
    return previous


def test_daemon_shutdown_releases_everything(servertype, serve):
    before_threads, before_fds = threading.active_count(), open_fds()
    with served(serve) as (daemon, uri, thing):
        proxies = [core.Proxy(uri) for _ in range(4)]
        for proxy in proxies:
            proxy.echo(1)
    for proxy in proxies:
        proxy._pyroRelease()
    assert wait_until(lambda: (threading.active_count(), open_fds()) == (before_threads, before_fds)), \
        [t.name for t in threading.enumerate()]
