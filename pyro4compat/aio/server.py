"""The asyncio transport under ``aio.Daemon``: one event loop reads, a worker pool dispatches.

Theory of operation
-------------------
**On the loop** (the loop that runs ``await daemon.serve()``): accepting, TLS (asyncio's own),
reading, framing and validation, writing, COMMTIMEOUT sweeps, and ``async def`` methods. Each
connection is an ``asyncio.BufferedProtocol`` (:class:`._connection._Connection`) whose
``data_received`` feeds its :class:`~pyro4compat._frames.FrameReader` and takes whole messages
(or the receive error that stands for one) through ``message.next_item`` with
``socketserver._receiving.REQUIRED_TYPES``, the step the thread and multiplex servers use:
the same single receive path, so a slow sender costs a few bytes of buffer, never a thread. All protocol state is touched on the loop only.

**On workers** (a :class:`pyro4compat._workers.WorkerPool` of its own, soft limit ``THREADPOOL_SIZE``,
idle workers exit): every complete message goes to the daemon's dispatch exactly as on the
thread and multiplex servers: the item waits in ``conn._pyroReceived`` and the worker calls
``daemon._handshake(conn)`` or ``daemon.handleRequest(conn)`` (so an override of either is
honoured), and decoding, instance modes, ``current_context``, ``@callback``, oneway calls,
streams, early ``MessageTooLargeError`` replies and error replies behave the same. Plain methods therefore never stall the
loop. An ``async def`` method is handed back to the loop by ``aio.Daemon._pyroRunAsync`` and its
worker waits for it (see docs/asyncio.rst for why, and what that costs).

**Runners: as few workers as keep the work moving.** A connection with a message to serve
puts its work (:meth:`._connection._Connection._run`) on the server's run queue (``_runq``), which pool jobs
called runners (:meth:`AsyncioServer._drain`) empty one job after another; the loop submits a
runner to the pool only when none is runnable. Under the GIL more threads would not run more
Python at once; each extra one costs a wake-up and a hand-over of the GIL at every syscall
(this, not the calls, was most of the asyncio server's CPU per call with 100 clients), and a
batch of messages read in one turn of the loop now costs one wake-up. A runner that is stuck (a
plain method that blocks, or a long one) must not hold up the queue: while work is queued the
loop checks every ``_STALL`` seconds (:meth:`AsyncioServer._check_stall`) whether any runner took
a job meanwhile; when none did, the runners are *parked* (not counted as runnable) and a new one
starts (unless one still waits for a pool thread: the pool's own stall rule is at work), so
plain methods that wait for each other still meet, as on the thread server. A runner
that waits for the loop (an ``async def`` call, an async generator's step) parks itself for the
wait (:meth:`AsyncioServer.blocking`), so its queued work gets a runner at once. A runner leaves
when the queue is empty, or when it finds another runnable one (a parked runner that finished
its call): one runnable runner remains. A connection with more messages queued keeps its runner
while no other connection waits, and otherwise goes to the back of the run queue (fair turns).
The pool under the runners keeps its own limits (``THREADPOOL_SIZE`` soft, stall growth).

**Order and back-pressure**: a connection has at most one worker; further complete messages
queue on the connection (reading pauses past ``_MAX_QUEUED``), and the worker takes the next
one itself when it is done with one (a pipelining client's requests run back to back without a
trip through the loop) unless other connections wait for a runner. The connection's ``lock``
guards ``busy`` and the queue's head between the loop and that worker. ``_runq_lock`` guards
appends to the run queue and the runners' counts; a runner takes work off the queue without it
(``deque.popleft`` is atomic) and takes it only to decide whether to leave, so work queued while
the last runner leaves always gets a new one. A worker's replies are collected in the
connection's outbox and written by the loop; completions that finish together reach the loop
in one wake-up, through a deque and a flag that need no lock (:meth:`AsyncioServer.complete`).
Except for a lone caller: a runner whose job was the only work in sight
(:meth:`AsyncioServer.quiet`) writes the reply to a plain socket itself
(``_Connection._send_now``) and the loop is not woken at all; under load that would cost a GIL
hand-over per reply, so the loop keeps writing then. While the transport's write buffer is over its
high-water mark (a client that does not read) no further message of that connection is
dispatched; with COMMTIMEOUT set such a client, and one that stalls mid-message or before its
handshake, is closed after that long.

**Shutdown**: ``begin_shutdown`` stops accepting at once; ``serve`` answers what is in flight
for up to ``SHUTDOWN_GRACE`` seconds, then closes every connection and returns. ``close`` skips
the grace. Both are safe from any thread, including a worker serving a call.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import os
import socket
import threading
import time
from typing import Any, Callable, Deque, Iterator, List, Optional, Set, Tuple

from .. import errors
from ..configuration import config
from .._workers import WorkerPool, report_uncaught
from ..futures import HARD_LIMIT
from ..socketserver import _close_listener, _housekeeping_interval, _listen, _poll_timeout, _shutdown_grace
from ._connection import _Connection

__all__ = ["AsyncioServer"]

log = logging.getLogger("Pyro4.aioserver")

_DRAIN_POLL = 0.02
_RECV_BUFFER = 256 * 1024  # the loop's one receive buffer (asyncio's own receive size)
_STALL = 0.01            # queued work waits this long for stuck runners before another one starts


class _Runner:
    """A worker draining the server's run queue; ``parked`` while stuck or waiting (not runnable)."""

    __slots__ = ("parked", "started", "taken")

    def __init__(self) -> None:
        self.parked = False
        self.started = False    # running on a pool thread (not waiting in the pool's queue)
        self.taken = 0          # jobs it took from the run queue


class AsyncioServer:
    """Transport server for ``aio.Daemon``: listening socket made at once, served by :meth:`serve`."""

    def __init__(self) -> None:
        self.sock: Any = None
        self.daemon: Any = None
        self.locationStr: Optional[str] = None
        self.connections: Set[_Connection] = set()
        self.recv_buffer = bytearray(_RECV_BUFFER)   # every connection receives into it, on the loop
        self.recv_view = memoryview(self.recv_buffer)
        self.running: Set[Any] = set()    # async def calls in progress on the loop (oneway ones too)
        self._completed: Deque[Tuple[_Connection, List[bytes], Any]] = collections.deque()   # results for the loop
        self._completion_pending = False
        self._runq: Deque[Tuple[_Connection, Any]] = collections.deque()   # (connection, message) waiting for a runner
        self._runq_lock = threading.Lock()    # appends to _runq, _runners, _runnable, runners' parked (see _drain)
        self._runners: Set[_Runner] = set()
        self._runnable = 0                    # runners not parked
        self._taken = 0                       # jobs taken off _runq so far (the stall check's progress; no lock)
        self._stall_seen = 0
        self._stall_timer: Any = None         # the loop's pending stall check
        self._local = threading.local()       # .runner: the runner the calling worker is
        self.pool = WorkerPool("pyro4compat-aio", max(config.THREADPOOL_SIZE, 1), one_wakeup=True,
                               hard_limit=max(config.THREADPOOL_SIZE, HARD_LIMIT), idle_timeout=1.0,
                               stall_interval=0.1)
        self.evloop: Optional[asyncio.AbstractEventLoop] = None
        self.loop_thread: Optional[threading.Thread] = None
        self.stopped = threading.Event()
        self.stopped.set()
        self.stopping = False
        self.grace = 0.0
        self._tls: Any = None
        self._unix = False
        self._closed = False
        self._drain_until: Optional[float] = None
        self._wake: Optional[asyncio.Event] = None
        self._server: Any = None          # the asyncio Server while serving
        self._sockname: Any = None

    def init(self, daemon: Any, host: Optional[str], port: int, unixsocket: Optional[str] = None) -> None:
        log.info("starting asyncio socketserver")
        self.daemon = daemon
        self.grace = _shutdown_grace()
        self.sock, self.locationStr, self._tls = _listen(log, host, port, unixsocket)
        self._unix = bool(unixsocket)
        self._sockname = self.sock.getsockname()

    def __repr__(self) -> str:
        return "<%s on %s; %d connections>" % (type(self).__name__, self.locationStr, len(self.connections))

    @property
    def sockets(self) -> List[Any]:
        listener = [self.sock] if self.sock is not None else []
        return listener + [c.conn.sock for c in list(self.connections)]

    # --- serving --------------------------------------------------------------------------------

    async def serve(self, loopCondition: Callable[[], bool] = lambda: True) -> None:
        """Serve on the running loop until shut down, closed, or ``loopCondition()`` turns false."""
        if self._closed or self.sock is None:
            raise errors.PyroError("cannot serve a closed daemon")
        if self.evloop is not None:
            raise errors.PyroError("this daemon is already being served")
        loop = asyncio.get_running_loop()
        self.evloop, self.loop_thread, self._wake = loop, threading.current_thread(), asyncio.Event()
        self.stopped.clear()
        options = dict(sock=self.sock, ssl=self._tls, backlog=socket.SOMAXCONN)
        if self._tls is not None:
            options["ssl_handshake_timeout"] = config.COMMTIMEOUT or None
        try:
            make = loop.create_unix_server if self._unix else loop.create_server
            self._server = await make(lambda: _Connection(self), **options)  # type: ignore[operator]
        except BaseException:
            self.evloop = None
            self.stopped.set()
            raise
        try:
            await self._run(loopCondition)
        finally:
            self._stop_accepting()
            for connection in list(self.connections):
                connection.transport.abort()
            self.connections.clear()
            self._closed = True
            self.evloop = None
            self.stopped.set()

    async def _run(self, loopCondition: Callable[[], bool]) -> None:
        commtimeout = config.COMMTIMEOUT
        next_housekeeping = time.monotonic() + _housekeeping_interval()
        next_sweep = time.monotonic() + commtimeout / 4.0 if commtimeout else float("inf")
        while not self._closed:
            now = time.monotonic()
            if self._drain_until is not None:
                if now >= self._drain_until or not (self.running or any(c.in_flight() for c in self.connections)):
                    return
                timeout = _DRAIN_POLL
            else:
                if not loopCondition():
                    return
                timeout = max(min(next_housekeeping, next_sweep) - now, 0.0)
                poll = _poll_timeout()
                timeout = timeout if poll is None else min(timeout, poll)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)  # type: ignore[union-attr]
            except asyncio.TimeoutError:
                pass
            self._wake.clear()  # type: ignore[union-attr]
            now = time.monotonic()
            if now >= next_sweep:
                next_sweep = now + max(commtimeout / 4.0, 0.05)
                self._sweep(now, commtimeout)
            if now >= next_housekeeping and self._drain_until is None:
                next_housekeeping = now + _housekeeping_interval()
                self.pool.submit(self._housekeeping)

    def _housekeeping(self) -> None:
        try:
            self.daemon._housekeeping()
        except Exception as exc:
            log.warning("error during housekeeping: %s", exc)

    def _sweep(self, now: float, commtimeout: float) -> None:
        for connection in [c for c in self.connections if c.stalled(now, commtimeout)]:
            if connection.write_paused_at is not None or connection.frames:
                connection.transport.abort()   # not reading, or part-way after the handshake
            else:
                timeout = errors.TimeoutError("receiving: timeout")   # Pyro4's CONNECTFAIL text, then closed
                connection.queue.append(timeout)
                connection.kick()

    # --- from any thread -------------------------------------------------------------------------

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` on the serving loop (dropped once the loop is gone)."""
        loop = self.evloop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            pass   # the loop closed meanwhile: so did every connection

    # --- the run queue: connections' work on as few workers as keep it moving --------------------

    def run(self, connection: _Connection, item: Any) -> None:
        """On the loop: queue a connection's next message; a runner starts only if none is runnable."""
        arm = self._stall_timer is None and self.evloop is not None   # (the timer is the loop's)
        with self._runq_lock:
            self._runq.append((connection, item))
            runner = self._add_runner() if not self._runnable else None
            if arm:
                self._stall_seen = self._taken
        if runner is not None:
            self.pool.submit(functools.partial(self._drain, runner))
        if arm:   # also behind a fresh runner: it may get stuck before it reaches the rest of the queue
            self._stall_timer = self.evloop.call_later(_STALL, self._check_stall)   # type: ignore[union-attr]

    def run_later(self, connection: _Connection, item: Any) -> None:
        """From a runner, which then goes on draining: queue a message behind the work waiting."""
        with self._runq_lock:
            self._runq.append((connection, item))

    def quiet(self) -> bool:
        """On a runner: its job was the only work in sight (the loop likely waits for events)."""
        runner = getattr(self._local, "runner", None)
        return not self._runq and runner is not None and runner.taken == 1

    def _add_runner(self) -> _Runner:
        """(lock held) A runnable runner, to be submitted to the pool once the lock is released."""
        runner = _Runner()
        self._runners.add(runner)
        self._runnable += 1
        return runner

    def _drain(self, runner: _Runner) -> None:
        """A pool job: run queued work until the queue is empty or another runner is runnable too."""
        self._local.runner = runner
        lock, runq = self._runq_lock, self._runq
        runner.started = True
        try:
            while True:
                if runner.parked or self._runnable > 1 or not runq:
                    with lock:   # whether to leave (or count as runnable again) is decided under the lock
                        if runner.parked:
                            runner.parked = False
                            self._runnable += 1
                        if not runq or self._runnable > 1:
                            self._runnable -= 1
                            self._runners.discard(runner)
                            return
                        connection, item = runq.popleft()
                else:
                    try:
                        connection, item = runq.popleft()   # (atomic; only runners take from the queue)
                    except IndexError:
                        continue
                self._taken += 1   # (only ever compared for a change: a rare lost increment is harmless)
                runner.taken += 1
                try:
                    connection._run(item)
                except BaseException:
                    report_uncaught()
        finally:
            self._local.runner = None

    def _check_stall(self) -> None:
        """On the loop, every ``_STALL`` while work is queued: when no runner took any job meanwhile,
        every runner is stuck in a call (or in a long one): they are parked and a new runner starts."""
        self._stall_timer = None
        with self._runq_lock:
            if not self._runq:
                return
            runner = None
            if self._taken != self._stall_seen:
                self._stall_seen = self._taken
            elif all(r.started for r in self._runners):   # else the pool's own stall rule applies
                for stuck in self._runners:
                    stuck.parked = True
                self._runnable = 0
                runner = self._add_runner()
        if runner is not None:
            self.pool.submit(functools.partial(self._drain, runner))
        if self.evloop is not None:
            self._stall_timer = self.evloop.call_later(_STALL, self._check_stall)

    @contextlib.contextmanager
    def blocking(self) -> Iterator[None]:
        """Around a runner's wait for the loop (an ``async def`` call): it stops counting as
        runnable meanwhile, so queued work gets another runner at once instead of after a stall."""
        runner = getattr(self._local, "runner", None)
        if runner is None or runner.parked:
            yield
            return
        with self._runq_lock:
            runner.parked = True
            self._runnable -= 1
            fresh = self._add_runner() if self._runq and not self._runnable else None
        if fresh is not None:
            self.pool.submit(functools.partial(self._drain, fresh))
        try:
            yield
        finally:
            with self._runq_lock:
                if runner.parked:
                    runner.parked = False
                    self._runnable += 1

    # --- completions ---------------------------------------------------------------------------

    def complete(self, connection: _Connection, outbox: List[bytes], verdict: Any) -> None:
        """From a worker: ``connection._done(outbox, verdict)`` on the loop. Completions that arrive
        before the loop has taken the previous ones join that batch: one loop wake-up for all.

        No lock: appending and taking from the deque are atomic. The flag stays set while the
        loop works through the deque (completions arriving meanwhile join that batch, without a
        wake-up each), and the loop clears it *before* its last look at the deque: a completion
        either is seen by that look or sees the flag clear and wakes the loop itself (at worst a
        wake-up that finds nothing)."""
        self._completed.append((connection, outbox, verdict))
        if not self._completion_pending:
            self._completion_pending = True
            self.call_soon(self._run_completed)

    def _run_completed(self) -> None:
        completed = self._completed
        while True:
            while completed:
                connection, outbox, verdict = completed.popleft()
                connection._done(outbox, verdict)
            self._completion_pending = False
            if not completed:
                return
            self._completion_pending = True   # one arrived after the drain, before the flag cleared

    def on_loop(self) -> bool:
        return self.loop_thread is threading.current_thread() and self.evloop is not None

    def begin_shutdown(self) -> bool:
        """Stop accepting now; True when a running ``serve`` will answer what is in flight and return."""
        self.stopping = True
        if self.evloop is None:
            self.close()
            return False
        self._drain_until = time.monotonic() + self.grace
        self.call_soon(self._stop_listening)
        return True

    def _stop_listening(self) -> None:
        for connection in list(self.connections):
            if not connection.in_flight():
                connection.close_now()
        self._stop_accepting()
        if self._wake is not None:
            self._wake.set()

    def _stop_accepting(self) -> None:
        """Close the listening socket (on the loop, through asyncio's server while serving)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        _close_listener(self.sock)
        if isinstance(self._sockname, str) and self._sockname and os.path.exists(self._sockname):
            try:
                os.remove(self._sockname)
            except OSError:
                pass

    def shutdown(self) -> bool:
        """``core.Daemon.shutdown`` protocol (aio.Daemon overrides shutdown and uses begin_shutdown)."""
        return self.begin_shutdown()

    def serving_here(self) -> bool:
        """Is the calling thread one of this server's workers (a call asking for shutdown)?"""
        return threading.current_thread().name.startswith(self.pool.name + "-")

    def close(self) -> None:
        """Close everything, at once; safe from any thread."""
        self._closed = True
        if self.evloop is None:
            if self.sock is not None:
                _close_listener(self.sock)
            return
        self.call_soon(self._wake.set)  # type: ignore[union-attr]

    def loop(self, loopCondition: Callable[[], bool] = lambda: True) -> None:
        """``core.Daemon.requestLoop``'s entry: serve on a new event loop in this thread."""
        asyncio.run(self.serve(loopCondition))

    def events(self, eventsockets: Any) -> None:
        raise TypeError("the asyncio server is driven by its event loop: await daemon.serve()")

    def combine_loop(self, server: Any) -> None:
        raise TypeError("cannot combine with the asyncio server: serve each daemon as its own task")
