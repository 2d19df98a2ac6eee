"""Integration fixtures: daemons on loopback (port 0), both server types."""

from __future__ import annotations

import contextlib
import threading

import pytest

from pyro4compat.configuration import config

SERVERTYPES = ["thread", "multiplex"]


@pytest.fixture(params=SERVERTYPES)
def servertype(request) -> str:
    """Run the test once per server type; config.SERVERTYPE is set accordingly."""
    config.SERVERTYPE = request.param
    return request.param


@contextlib.contextmanager
def serving(daemon, join_timeout: float = 10.0):
    """Run ``daemon.requestLoop()`` in a thread; shut it down and join it on exit.

    The listening socket already exists, so clients can connect before the loop starts:
    no waiting needed.
    """
    thread = threading.Thread(target=daemon.requestLoop, name="test-daemon-loop", daemon=True)
    thread.start()
    try:
        yield daemon
    finally:
        daemon.shutdown()
        thread.join(join_timeout)
        assert not thread.is_alive(), "daemon loop did not stop"


@pytest.fixture
def serve():
    """The :func:`serving` context manager."""
    return serving
