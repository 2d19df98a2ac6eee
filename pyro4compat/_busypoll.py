"""A short, adaptive busy-poll before a connection blocks for its next message.

Why
---
On loopback and on virtual machines most of a small call's round trip is not Python at all:
it is the receiving thread going to sleep in ``recv`` and being woken again (on a 2-core VM a
bare TCP ping-pong does ~13,000 round trips/s blocking, ~90,000/s when both ends poll). A
caller that expects its answer within a few tens of microseconds therefore asks the socket,
without blocking, whether it is readable, for up to ``config.BUSYPOLL_US`` microseconds, and
only then blocks as before. The wire is untouched: this only changes *when* we call ``recv``.

Theory of operation
-------------------
* **Bounded, and configuration.** One wait spins at most ``config.BUSYPOLL_US`` microseconds
  (``PYRO_BUSYPOLL_US``, default 200; 0 turns it off), then falls back to the ordinary
  blocking receive. Data that arrives later is received exactly as without spinning. Each
  wait reads the item (see :mod:`._tunings`), so a change takes effect at the next wait; a
  :class:`SocketSpinner` makes its poll object at its first spin, not before.
* **Adaptive.** Each :class:`Spinner` belongs to one waiter: a connection, or a multiplex
  server's selector. A spin that ends without data
  (a slow server, a remote host, an idle client) doubles the number of following waits that
  skip spinning, up to :data:`_MAX_SKIP`; a spin that finds data resets it. A peer that never
  answers quickly costs one spin per ``_MAX_SKIP`` waits.
* **One spinner per process.** A spinning thread holds ``_spin_slot`` (a non-blocking
  acquire); a thread that finds it taken blocks at once instead. Spinning threads of one
  process would only fight over the GIL and the cores the real work needs.
* **The GIL.** A spinner releases the GIL only for each zero-timeout poll and takes it straight
  back, so another thread of the process that wants the GIL meanwhile waits until the spin
  ends (CPython hands the GIL over only after its switch interval). Spinning is therefore
  *gated* on :data:`._workers.in_flight` (kept by the worker pool module, see there why),
  the threads of ours that are busy: inside a proxy call, handling
  a request, or running a oneway call. A caller spins only while no other of them is busy
  (:func:`quiet`), a waiter that is not busy itself (a lingering worker, the multiplex loop)
  only while none is (:func:`idle`). Four client threads calling at once do not spin; idle
  threads of the application (a reader of stdin, a timer) don't count, they don't want the
  GIL. A client and a daemon in one process may spin into each other briefly; those spins
  miss and back off.
* **Plain sockets only.** TLS sockets keep decrypted bytes the poll cannot see, and platforms
  without ``select.poll`` have no cheap zero-timeout check; there a Spinner is never made.
"""

from __future__ import annotations

import os
import select
import threading
import time
from typing import Any, Callable, List, Optional, TypeVar

from ._tunings import busypoll_seconds, reader
from ._workers import begin_work, end_work, in_flight

__all__ = ["Spinner", "SocketSpinner", "spinner_for", "spin_seconds", "begin_work", "end_work",
           "quiet", "idle"]

T = TypeVar("T")

spin_seconds = reader("BUSYPOLL_US", busypoll_seconds, 0.0)  # seconds of one spin now; 0.0: off
_MAX_SKIP = 256     # waits without a spin after repeated misses, at most
_spin_slot = threading.Lock()  # held by the one thread of this process that spins (see above)
_clock = time.perf_counter


class Spinner(object):
    """The busy-poll state of one waiter (a connection's socket, or a server's selector)."""

    __slots__ = ("_skip", "_backoff")

    def __init__(self) -> None:
        self._skip = 0
        self._backoff = 1

    def spin(self, probe: Callable[[], T], gate: Optional[Callable[[], bool]] = None) -> Optional[T]:
        """Call the zero-timeout ``probe`` until it returns something true (returned), for one spin at most.

        ``gate`` (default :func:`quiet`) says whether spinning is welcome now. None when this
        wait does not spin or the spin ran out: the caller then blocks as usual.
        """
        seconds = spin_seconds()
        if not seconds:
            return None
        if self._skip:
            self._skip -= 1
            return None
        if not (gate or quiet)():
            return None
        if not _spin_slot.acquire(False):
            return None     # another thread of this process is spinning: block instead
        try:
            deadline = _clock() + seconds
            while True:
                found = probe()
                if found:
                    self._backoff = 1
                    return found
                if _clock() >= deadline:
                    self._skip = self._backoff
                    self._backoff = min(self._backoff * 2, _MAX_SKIP)
                    return None
        except (OSError, ValueError):
            self._skip = _MAX_SKIP   # a closed socket or selector: the blocking call will report it
            return None
        finally:
            _spin_slot.release()


class SocketSpinner(Spinner):
    """Spins on one socket being readable.

    The poll object is made at the first spin: a connection that never spins (busy-polling
    off) never pays for one, and one that starts spinning later gets it then.
    """

    __slots__ = ("_fileno", "_poll")

    def __init__(self, fileno: int) -> None:
        super().__init__()
        self._fileno = fileno
        self._poll: Optional[Callable[[int], List[Any]]] = None

    def _readable(self) -> bool:
        poll = self._poll
        if poll is None:
            poller = select.poll()
            poller.register(self._fileno, select.POLLIN)   # a closed descriptor raises: see spin
            poll = self._poll = poller.poll
        return bool(poll(0))

    def wait(self, gate: Optional[Callable[[], bool]] = None) -> bool:
        """Return once the socket is readable (True) or one spin is over (False: the caller blocks)."""
        return bool(self.spin(self._readable, gate))


def spinner_for(sock: Any) -> Optional[SocketSpinner]:
    """A SocketSpinner for a plain socket, or None where spinning can never apply.

    Made whether or not busy-polling is on now: each wait reads ``config.BUSYPOLL_US``.
    """
    if not hasattr(select, "poll") or hasattr(sock, "pending"):
        return None
    try:
        fileno = sock.fileno()
    except (OSError, ValueError, AttributeError, TypeError):  # not a real socket
        return None
    return SocketSpinner(fileno) if isinstance(fileno, int) and fileno >= 0 else None   # -1: closed


def _reset_after_fork() -> None:
    """A forked child has only the forking thread: no other spinner, nothing of ours busy."""
    global _spin_slot
    _spin_slot = threading.Lock()
    del in_flight[:]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def quiet() -> bool:
    """The default gate: no thread of ours but the caller is busy (see the module doc)."""
    return len(in_flight) <= 1


def idle() -> bool:
    """The gate for waiters that are not busy themselves (a lingering worker, the multiplex loop)."""
    return not in_flight
