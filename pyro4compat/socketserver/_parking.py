"""Where the thread server's idle connections wait: watched for their next bytes, holding no thread.

Theory of operation
-------------------
A connection that has no whole message for a worker is *parked*: the loop thread watches it
and takes it back when it becomes readable. Parking happens once per call on a busy server
with many clients (each client's next call comes long after its worker gave up lingering), so
what it costs matters as much as the call itself. Two implementations, one interface:

* :class:`EpollParking` (Linux). Every parked socket is armed in one ``epoll`` set with
  ``EPOLLONESHOT``: the worker that parks a connection arms it itself, one ``epoll_ctl``, and
  the kernel disarms it when it reports it readable. Neither the loop thread nor a wake-up byte
  is involved in parking, and a connection is never registered and unregistered per call.
* :class:`SelectorParking` (elsewhere). A worker queues the connection and wakes the loop
  thread with a byte; the loop thread (the only one touching the ``selectors`` selector)
  registers it, and unregisters it when it becomes readable. The queue is adopted at the start
  of a pass *and* after draining the waker, or a connection parked in between would lose its
  wake byte.

In both, ``job.watched`` is True exactly while the connection is parked, and only the loop
thread takes a job out (:meth:`ready`, :meth:`unwatch`): an event that comes after its job was
taken out earlier in the same batch (an eviction) finds nothing and is skipped. The server
calls :meth:`park` under its own lock, the lock its teardown takes to collect what is parked
(:meth:`close`), so no connection is parked into a closed set.
"""

from __future__ import annotations

import select
import selectors
import threading
from collections import deque
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional

__all__ = ["make_parking", "EpollParking", "SelectorParking"]

_EPOLL = getattr(select, "epoll", None)
_ARMED = getattr(select, "EPOLLIN", 0) | getattr(select, "EPOLLONESHOT", 0)
_ALWAYS = getattr(select, "EPOLLIN", 0)


class EpollParking(object):
    """Parked connections armed one-shot in an epoll set (see the module docstring)."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._epoll = _EPOLL()  # type: ignore[misc]
        self._fixed: Dict[int, Any] = {}     # listener, waker: always watched, by descriptor
        self._parked: Dict[int, Any] = {}    # descriptor -> parked job

    def watch_fixed(self, sock: Any, data: Any) -> None:
        fd = sock.fileno()
        self._epoll.register(fd, _ALWAYS)
        self._fixed[fd] = data

    def park(self, job: Any) -> bool:
        """Watch ``job`` until its next bytes come (any thread); False: its socket can't be watched.

        ``job.armed``: its descriptor is in the set (it stays there, disarmed, between calls; a
        closed socket leaves the set by itself).
        """
        fd = job.fd
        job.watched = True
        self._parked[fd] = job
        try:
            if job.armed:
                self._epoll.modify(fd, _ARMED)
            else:
                try:
                    self._epoll.register(fd, _ARMED)
                except FileExistsError:     # the number of a socket still open elsewhere (a dup)
                    self._epoll.modify(fd, _ARMED)
                job.armed = True
        except (OSError, ValueError):
            if self._parked.get(fd) is job:
                del self._parked[fd]
            job.watched = False
            return False
        return True

    watch = park    # the loop thread parks new connections the same way

    def adopt(self) -> None:
        """Nothing to adopt: workers arm their connections themselves."""

    def ready(self, timeout: Optional[float]) -> Iterator[Any]:
        """The fixed sockets' data and the parked jobs that became readable (taken out, one by one)."""
        for fd, _ in self._epoll.poll(-1 if timeout is None else timeout):
            data = self._fixed.get(fd)
            if data is None:
                data = self._parked.pop(fd, None)
                if data is None:
                    continue    # taken out earlier in this batch
                data.watched = False
            yield data

    def unwatch(self, job: Any) -> None:
        """Take a parked job out without an event (loop thread): it is about to be closed."""
        if self._parked.get(job.fd) is job:
            del self._parked[job.fd]
        job.watched = False

    def parked(self) -> List[Any]:
        return list(self._parked.copy().values())

    def queued(self) -> bool:
        """Parked but not watched yet: never here."""
        return False

    def close(self) -> List[Any]:
        """Stop watching; the jobs that were parked, for the caller to close."""
        jobs = self.parked()
        self._parked.clear()
        self._epoll.close()
        return jobs


class SelectorParking(object):
    """Parked connections in a ``selectors`` selector, registered by the loop thread (see the module docstring)."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake = wake
        self._lock = threading.Lock()
        self._returning: Deque[Any] = deque()
        self._closed = False

    def watch_fixed(self, sock: Any, data: Any) -> None:
        self._selector.register(sock, selectors.EVENT_READ, data)

    def park(self, job: Any) -> bool:
        """Queue ``job`` for the loop thread to watch, and wake it (any thread)."""
        with self._lock:
            if self._closed:
                return False
            self._returning.append(job)
        self._wake()
        return True

    def watch(self, job: Any) -> bool:
        """Watch ``job`` now (loop thread only)."""
        try:
            self._selector.register(job.csock.sock, selectors.EVENT_READ, job)
        except (OSError, ValueError, KeyError):
            return False
        job.watched = True
        return True

    def adopt(self) -> None:
        """Watch the connections that workers parked since the last pass (loop thread)."""
        while True:
            with self._lock:
                if not self._returning:
                    return
                job = self._returning.popleft()
            if not self.watch(job):
                job._finish()

    def ready(self, timeout: Optional[float]) -> Iterator[Any]:
        self.adopt()
        for key, _ in self._selector.select(timeout):
            data = key.data
            if hasattr(data, "watched"):
                if not data.watched:
                    continue    # taken out earlier in this batch
                self._selector.unregister(data.csock.sock)
                data.watched = False
            yield data

    def unwatch(self, job: Any) -> None:
        if job.watched:
            self._selector.unregister(job.csock.sock)
            job.watched = False

    def parked(self) -> List[Any]:
        try:    # another thread may be changing the map right now: then settle for what is queued
            keys = list(self._selector.get_map().values())
        except (RuntimeError, AttributeError):
            keys = []
        return [key.data for key in keys if hasattr(key.data, "watched")]

    def queued(self) -> bool:
        """Parked by a worker, not watched yet: the loop thread must wake to watch it."""
        return bool(self._returning)

    def close(self) -> List[Any]:
        with self._lock:
            self._closed = True
            jobs = list(self._returning)
            self._returning.clear()
        jobs += [key.data for key in list(self._selector.get_map().values()) if hasattr(key.data, "watched")]
        self._selector.close()
        return jobs


def make_parking(wake: Callable[[], None]) -> Any:
    """The best parking this platform has (``wake`` wakes the loop thread, for the fallback)."""
    return EpollParking(wake) if _EPOLL is not None and _ARMED != _ALWAYS else SelectorParking(wake)
