"""Callbacks: a client runs its own daemon and the server calls back into it.

Both daemons run in this process on 127.0.0.1 port 0 (the "server" and the "client's" daemon),
each with its own request loop thread, on both server types. ``@callback`` methods make their
exceptions visible on the side that serves them too: the transport logs the error (Pyro4's
"error during handleRequest" warning) besides returning it to the caller.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, List

import pytest

import pyro4compat as Pyro4

from calls_support import daemon_serving

pytestmark = pytest.mark.timeout(30)

TRANSPORT_LOGGERS = ("Pyro4.threadpoolserver", "Pyro4.multiplexserver")


@Pyro4.expose
class Worker:
    """The server: does work, reports progress to the listener the client passed in."""

    def process(self, listener: Any, items: List[int]) -> int:
        total = 0
        for item in items:
            total += item
            listener.progress(item, total)
        return total

    @Pyro4.oneway
    def process_later(self, listener: Any, item: int) -> None:
        listener.progress(item, item)

    def call_back(self, listener: Any, method: str) -> Any:
        try:
            return getattr(listener, method)()
        except Exception as exc:  # report what the client's callback raised
            return "%s: %s" % (type(exc).__name__, exc)


class Listener:
    """The client's callback object, served by the client's own daemon."""

    def __init__(self) -> None:
        self.seen: List[Any] = []
        self.done = threading.Event()
        self.threads: List[str] = []

    @Pyro4.expose
    def progress(self, item: int, total: int) -> None:
        self.seen.append((item, total))
        self.threads.append(threading.current_thread().name)
        self.done.set()

    @Pyro4.expose
    @Pyro4.callback
    def marked_failure(self) -> None:
        raise RuntimeError("callback went wrong")

    @Pyro4.expose
    def plain_failure(self) -> None:
        raise RuntimeError("plain method went wrong")


@pytest.fixture
def setup(servertype, serve):
    with daemon_serving({"worker": Worker()}, serve) as (_, server_uris):
        listener = Listener()
        with daemon_serving({}, serve) as (client_daemon, _):
            client_daemon.register(listener)
            yield listener, server_uris["worker"]


def test_server_calls_back_into_the_clients_daemon(setup):
    listener, uri = setup
    with Pyro4.Proxy(uri) as worker:
        # The registered object is passed as a proxy (AUTOPROXY), so the server can call it.
        assert worker.process(listener, [1, 2, 3]) == 6
    assert listener.seen == [(1, 1), (2, 3), (3, 6)]
    assert threading.current_thread().name not in listener.threads


def test_oneway_call_whose_work_calls_back_later(setup):
    listener, uri = setup
    with Pyro4.Proxy(uri) as worker:
        assert worker.process_later(listener, 7) is None
        assert listener.done.wait(5)
    assert listener.seen == [(7, 7)]


class _Collector(logging.Handler):
    """Collects warnings; an event tells when one arrived (the transport logs after replying)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.texts: List[str] = []
        self.arrived = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name in TRANSPORT_LOGGERS:
            self.texts.append(record.getMessage())
            self.arrived.set()


@pytest.fixture
def transport_warnings():
    """Pyro4's loggers are silent (level 9999) unless configured: open them up for the test."""
    pyro_logger = logging.getLogger("Pyro4")
    saved = pyro_logger.level
    collector = _Collector()
    pyro_logger.setLevel(logging.WARNING)
    pyro_logger.addHandler(collector)
    yield collector
    pyro_logger.removeHandler(collector)
    pyro_logger.setLevel(saved)


def test_callback_error_is_logged_locally_and_returned_to_the_caller(setup, transport_warnings):
    listener, uri = setup
    with Pyro4.Proxy(uri) as worker:
        assert worker.call_back(listener, "plain_failure") == "RuntimeError: plain method went wrong"
        assert worker.call_back(listener, "marked_failure") == "RuntimeError: callback went wrong"
        assert transport_warnings.arrived.wait(5)
        # the callback connection was dropped after the error; the next call reopens it
        assert worker.call_back(listener, "plain_failure") == "RuntimeError: plain method went wrong"
    texts = transport_warnings.texts
    assert len(texts) == 1, texts  # only the @callback method's error is logged where it ran
    assert texts[0].startswith("error during handleRequest: callback went wrong")
    assert "RuntimeError" in texts[0]
