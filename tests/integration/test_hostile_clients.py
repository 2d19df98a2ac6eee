"""Hostile clients (issue 8, item 5): slow senders, connection storms, clients vanishing mid-call
and mid-reply, many idle connections. Daemon and name server, both server types.

Throughout, a well-behaved client must be served promptly (each call under ``PROMPT`` seconds),
and afterwards the process must be back to its idle thread and file descriptor counts.

Neither server type gives a slow sender a thread: both read without blocking and serve only
whole messages (``test_slow_clients.py`` runs 200 trickling connections against them).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Any, List

import pytest

from pyro4compat import core, errors
from pyro4compat.configuration import config

from hostile_support import (PROMPT, TARGETS, RawClient, assert_idle, connect_bytes, served_target, settled)
from remote_helpers import HOST, WAIT

pytestmark = [pytest.mark.timeout(60), pytest.mark.filterwarnings("ignore:Pyro protocol error occurred")]


@pytest.fixture(params=[(kind, st) for kind in TARGETS for st in ("thread", "multiplex")],
                ids=lambda p: "%s-%s" % p)
def target(request):
    kind, servertype = request.param
    config.SERVERTYPE = servertype
    config.THREADPOOL_SIZE_MIN = 2
    with served_target(kind) as tgt:
        tgt.well_behaved_call()
        tgt.idle = settled()
        yield tgt


def timed_calls(target: Any, count: int) -> float:
    """``count`` calls on one proxy; returns the slowest one's duration."""
    slowest = 0.0
    with core.Proxy(target.uri) as proxy:
        proxy._pyroTimeout = WAIT
        for _ in range(count):
            start = time.monotonic()
            if target.kind == "nameserver":
                proxy.count()
            else:
                proxy.echo(1)
            slowest = max(slowest, time.monotonic() - start)
    return slowest


class Trickler(threading.Thread):
    """One timer thread that sends each slow client its next byte every ``interval`` seconds."""

    def __init__(self, clients: List[RawClient], message: bytes, interval: float = 0.02) -> None:
        super().__init__(name="trickler", daemon=True)
        self.clients, self.message, self.interval = clients, message, interval
        self.sent = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while self.sent < len(self.message) and not self.stop.wait(self.interval):
            for client in self.clients:
                client.send(self.message[self.sent:self.sent + 1])
            self.sent += 1

    def finish(self) -> None:
        self.stop.set()
        self.join(WAIT)
        for client in self.clients:
            client.send(self.message[self.sent:])


def test_slow_senders_do_not_hold_up_others(target):
    count = 50 if target.daemon.transportServer.__class__.__name__.endswith("Multiplex") else 10
    slow = [RawClient(target.port) for _ in range(count)]
    try:
        trickler = Trickler(slow, connect_bytes())
        trickler.start()
        slowest = timed_calls(target, 30)
        assert trickler.sent < len(connect_bytes())      # they were still mid-message all along
        trickler.finish()
        assert slowest < PROMPT, "a call took %.2f s while %d clients trickled" % (slowest, count)
        for client in slow:
            assert client.reply().type == 2            # CONNECTOK: a slow client is served too, in the end
    finally:
        for client in slow:
            client.close()
    assert_idle(target.idle)


def test_slow_reader_of_a_large_reply(target):
    """A client that never reads its (large) reply: others are still served; it is dropped on close."""
    if target.kind == "nameserver":
        pytest.skip("needs the echo method")
    config.COMMTIMEOUT = 0
    with RawClient(target.port) as lazy:
        lazy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        lazy.handshake()
        from hostile_support import invoke_bytes
        lazy.send(invoke_bytes("thing", "echo", ["x" * 200000]))
        if target.daemon.transportServer.__class__.__name__.endswith("Multiplex"):
            # the multiplex server's blocking send (documented) waits for this reader: release it
            lazy.sock.recv(1 << 20)
        assert timed_calls(target, 10) < PROMPT
    assert_idle(target.idle)


def test_connection_storm(target):
    """2,000 connections opened and dropped at once, some after a partial header or a RST,
    while a well-behaved client keeps calling. (With Pyro4's listen backlog of 100 the storm
    overflowed the accept queue and connects waited for SYN retries: 12-15 s instead of 0.3 s.)"""
    slowest: List[float] = []
    caller = threading.Thread(target=lambda: slowest.append(timed_calls(target, 40)))
    start = time.monotonic()
    caller.start()
    for n in range(2000):
        sock = socket.socket()
        sock.connect((HOST, target.port))
        if n % 5 == 1:
            sock.send(b"PYRO\x00\x30\x00")
        elif n % 5 == 2:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif n % 5 == 3:
            sock.send(connect_bytes())
        sock.close()
    storm = time.monotonic() - start
    caller.join(WAIT)
    assert storm < 8.0, "2,000 connects took %.1f s" % storm
    assert slowest and slowest[0] < PROMPT
    assert timed_calls(target, 10) < PROMPT
    assert_idle(target.idle)


def test_many_idle_connections(target):
    """300 handshaken connections that then say nothing: no worker each, everyone else served."""
    idle_clients = [RawClient(target.port) for _ in range(300)]
    try:
        for client in idle_clients:
            client.handshake()
        workers = [t for t in threading.enumerate() if t.name.startswith("Pyro-Worker")]
        assert len(workers) <= config.THREADPOOL_SIZE
        assert timed_calls(target, 20) < PROMPT
    finally:
        for client in idle_clients:
            client.close()
    assert_idle(target.idle)


def test_clients_vanishing_mid_call(target):
    """20 callers vanish (RST) while their calls run; the calls finish, the replies go nowhere."""
    if target.kind == "nameserver":
        pytest.skip("needs a call that blocks")
    if target.daemon.transportServer.__class__.__name__.endswith("Multiplex"):
        count = 1       # the multiplex server runs one call at a time
    else:
        count = 20
    thing = target.thing
    thing.release.clear()
    callers: List[Any] = []
    failures: List[BaseException] = []

    def call(proxy: Any) -> None:
        try:
            proxy.block()
        except errors.CommunicationError as exc:
            failures.append(exc)

    for _ in range(count):
        proxy = core.Proxy(target.uri)
        proxy._pyroBind()
        thread = threading.Thread(target=call, args=(proxy,))
        thing.fired_event.clear()
        thread.start()
        assert thing.fired_event.wait(WAIT)         # this call is running on the server now
        callers.append((proxy, thread))
    for proxy, thread in callers:
        sock = proxy._pyroConnection.sock
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
        thread.join(WAIT)
    thing.release.set()
    assert len(failures) == count
    for proxy, _ in callers:
        proxy._pyroRelease()
    assert timed_calls(target, 10) < PROMPT
    assert_idle(target.idle)


def test_client_vanishing_mid_reply(target):
    """Clients that close while a large reply is on its way."""
    if target.kind == "nameserver":
        pytest.skip("needs the echo method")
    from hostile_support import invoke_bytes
    for _ in range(10):
        with RawClient(target.port) as client:
            client.handshake()
            client.send(invoke_bytes("thing", "echo", ["y" * 3000000]))
            client.sock.recv(1000)       # the reply has started
            client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert timed_calls(target, 10) < PROMPT
    assert_idle(target.idle)
