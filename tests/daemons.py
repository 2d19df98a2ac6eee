"""Running a daemon's request loop in a thread for the length of a test."""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator


@contextlib.contextmanager
def serving(daemon: Any, join_timeout: float = 10.0) -> Iterator[Any]:
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
