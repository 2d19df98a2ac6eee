"""Shared pieces of the remote-call integration tests: served classes, daemons, bounded waits."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any, Callable, Dict, Iterator, List

from pyro4compat import core, errors
from pyro4compat._context import current_context

WAIT = 10.0  # seconds any wait may take before the test counts as hung
HOST = "127.0.0.1"


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT, interval: float = 0.005) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes; returns its last value.

    Used only for conditions nobody can signal (thread counts, open descriptors), never to
    order events.
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return bool(predicate())
        time.sleep(interval)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@core.expose
class Thing:
    """The object most tests call: methods, a property pair, oneway, failures, context."""

    def __init__(self) -> None:
        self._value = 1
        self.fired: List[Any] = []
        self.fired_event = threading.Event()
        self.release = threading.Event()

    def echo(self, value: Any) -> Any:
        return value

    def add(self, a: Any, b: Any = 0) -> Any:
        return a + b

    @property
    def value(self) -> Any:
        return self._value

    @value.setter
    def value(self, new: Any) -> None:
        self._value = new

    @property
    def readonly(self) -> str:
        return "fixed"

    @core.oneway
    def fire(self, value: Any) -> None:
        self.fired.append((value, threading.current_thread().name))
        self.fired_event.set()

    @core.oneway
    def fire_and_block(self) -> None:
        """Oneway that blocks until the test releases it (proves whether the call is threaded)."""
        self.fired_event.set()
        self.release.wait(WAIT)

    def fail(self, text: str) -> None:
        raise ValueError(text)

    def block(self) -> str:
        """Hold the call until the test releases it."""
        self.fired_event.set()
        self.release.wait(WAIT)
        return "released"

    def context(self) -> Dict[str, Any]:
        ctx = current_context
        ctx.response_annotations = {"RESP": b"response-bytes"}
        return {"addr": list(ctx.client_sock_addr) if isinstance(ctx.client_sock_addr, tuple)
                else ctx.client_sock_addr,
                "seq": ctx.seq, "annotations": {k: bytes(v).decode("latin-1") for k, v in ctx.annotations.items()},
                "corr": str(ctx.correlation_id), "flags": ctx.msg_flags,
                "serializer_id": ctx.serializer_id}

    def shutdown_daemon(self) -> str:
        self._pyroDaemon.shutdown()
        return "bye"


def make_daemon(**kwargs: Any) -> core.Daemon:
    kwargs.setdefault("host", HOST)
    return core.Daemon(**kwargs)


@contextlib.contextmanager
def served(serve: Any, obj: Any = None, object_id: str = "thing", daemon: Any = None,
           **kwargs: Any) -> Iterator[tuple]:
    """A serving daemon with ``obj`` (a new Thing by default) registered: yields (daemon, uri, obj)."""
    daemon = daemon or make_daemon(**kwargs)
    obj = Thing() if obj is None else obj
    uri = daemon.register(obj, object_id)
    with serve(daemon):
        yield daemon, uri, obj


class Recorder:
    """Collects hook calls from the daemon's threads; tests wait on its condition."""

    def __init__(self) -> None:
        self.items: List[Any] = []
        self.cond = threading.Condition()

    def add(self, item: Any) -> None:
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def wait_count(self, count: int, timeout: float = WAIT) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.items) >= count, timeout)


def refused_port() -> int:
    """A loopback port nothing listens on (bound then closed at once)."""
    import socket
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def expect_communication_error(call: Callable[[], Any]) -> errors.CommunicationError:
    try:
        call()
    except errors.CommunicationError as exc:
        return exc
    raise AssertionError("no CommunicationError")
