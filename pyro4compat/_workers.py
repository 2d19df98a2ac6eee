"""The one worker pool behind the thread server, oneway calls and futures.

One implementation, three instances, because their limits answer different questions:
the thread server's :class:`~pyro4compat.socketserver.threadpool.Pool` has Pyro4's numbers and
counts (``THREADPOOL_SIZE_MIN`` to ``THREADPOOL_SIZE``, a job gets its thread in ``process()``
itself, surplus workers leave at once); the futures pool (futures, async proxies, batches)
and the oneway pool have no minimum, a soft limit of runnable workers, idle timeouts and a
stall monitor. Those two are apart so a flood of futures can't delay a daemon's oneway
calls, and a daemon at rest sheds its oneway threads sooner.

Theory of operation
-------------------
One lock (``_lock``) guards every field; jobs run outside it and the pool never calls out
while holding it. A job is handed to one worker when it is submitted (its ``job`` slot), which
moves from ``idle`` to ``busy`` at once: ``busy`` counts the jobs that have a thread. Jobs
that find none wait in one FIFO queue, ``_jobs``.

1. **Newest idle first.** An idle worker waits at its own gate (a plain lock held closed) on
   top of the ``_sleepers`` stack; a job goes to the one on top: its stack, caches and malloc
   arena are warm, and a trickle of work keeps meeting one thread while the others time out.
   Whoever takes a worker off the stack (under ``_lock``) opens its gate, once; a worker whose
   wait timed out just as it was taken off closes its gate again before it goes on.
2. **One wake-up at a time** (``one_wakeup``: futures, oneway): while a woken worker has not
   taken its job, new jobs only join the queue, and a worker that takes a job with more
   queued wakes the next sleeper with the oldest. A burst of short jobs (oneway calls) is
   drained by one or two threads instead of waking one per job; a slow job holds up the
   next for one wake-up at most. The server pool wakes a thread per job, as Pyro4 counts.
3. **Growth.** A job that finds no free worker starts one while fewer than ``max_workers``
   are *runnable* (alive, not in a managed wait) and fewer than ``hard_limit`` alive, also
   when more jobs are queued than sleepers could take. Else it is queued;
   :meth:`WorkerPool._enqueue` refuses past ``backlog`` queued jobs.
4. **Shrinking.** A worker without a job exits once ``closed``; while more than
   ``min_workers`` are idle it waits at most ``idle_timeout`` (0: not at all, Pyro4's rule);
   a surplus runnable worker (rules 5, 6) leaves without waiting.
5. **Managed blocking**: a worker about to wait for other pool work (a ``FutureResult``)
   enters :meth:`WorkerPool.blocking` and stops counting as runnable, so queued work gets a
   fresh worker: nested futures never wait on work queued behind themselves.
6. **Stalls and timers** (``stall_interval``): while more jobs are queued than sleepers, a
   monitor thread watches ``_taken``; when no job started for ``stall_interval`` it starts
   workers for the oldest (a quarter more, at least one, never past ``hard_limit``): jobs
   waiting on each other through an Event degrade towards Pyro4's thread per call instead of
   deadlocking. It also runs :meth:`WorkerPool._release_timers` (the futures pool's delays),
   and exits when there is neither backlog nor a timer.
7. **Nothing kills a worker.** Whatever a job raises, ``BaseException`` included, goes to
   :meth:`WorkerPool._report` (``threading.excepthook``, as in Pyro4's per-call threads; the
   server pool logs it as Pyro4 does) and the worker goes on.
8. **close()** refuses new jobs, lets the workers drain the queue, joins the idle ones for a
   bounded time (never the calling thread) and then counts no workers, as Pyro4's pool.

Two readings skip the lock on purpose: :meth:`WorkerPool.spare_now` and
:meth:`WorkerPool.busy_now`, which the thread server asks once per request (may a worker
linger, may it spin?). Each reads fields written under the lock (a ``len`` is atomic), so the
answer is a recent snapshot; nothing that needs the lock is decided on it (who gets a job
always is decided under the lock). Taking the lock there cost measurably: with 100 busy
connections and busy-polling on, dropping it took the thread server from 203-251 to 189-212 us
of CPU per call (benchmarks/RESULTS.md).

The busy-poll gate's count (:data:`in_flight`) lives here too, but ``busy`` can't serve it:
the gate counts our threads inside a *call* (a client thread in a proxy call is no pool
worker; a server worker lingering for a next request holds a job but is not busy), and
reading pools' counts under their locks would tax every spin decision. So it is a lock-free
list (``append``/``pop`` are atomic); a pool with ``counts_busy`` (oneway) counts its jobs.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import os
import sys
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional, Set

__all__ = ["WorkerPool", "WorkerThread", "report_uncaught", "in_flight",
           "begin_work", "end_work"]

log = logging.getLogger("Pyro4.workers")

Job = Callable[[], Any]
_CLOSE_JOIN_SECONDS = 1.0  # upper bound for joining the idle workers on close()
_thread_ids = itertools.count(1)

# One entry per thread of ours inside a call (client), a request (server) or a oneway call.
in_flight: List[None] = []
begin_work = in_flight.append   # begin_work(None) ... end_work()
# Drops the last entry; no error when there is none (begun before a fork that emptied the list in
# this child). Built from C callables: it runs once per call on each side.
end_work: Callable[[], None] = functools.partial(in_flight.__delitem__, slice(-1, None))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=in_flight.clear)   # the child has only the forking thread


def report_uncaught() -> None:
    """From an ``except`` block: hand the exception to ``threading.excepthook``, as a dying thread would."""
    exc_type, exc_value, exc_tb = sys.exc_info()
    try:
        threading.excepthook(threading.ExceptHookArgs(  # type: ignore[attr-defined]
            (exc_type, exc_value, exc_tb, threading.current_thread())))
    except Exception:
        log.exception("threading.excepthook failed")
    finally:
        del exc_type, exc_value, exc_tb


class WorkerThread(threading.Thread):
    """One pool thread; it runs the jobs its pool hands it until the pool lets it go."""

    def __init__(self, pool: "WorkerPool") -> None:
        super().__init__(name="%s-worker-%d" % (pool.name, next(_thread_ids)), daemon=True)
        self.pool: Optional[WorkerPool] = pool
        # closed (held) except while a waker lets this worker through: a plain lock, so waiting
        # and waking run no Python code (a Condition runs about 90 bytecodes per hand-over)
        self.gate = threading.Lock()
        self.gate.acquire()
        self.job: Optional[Job] = None      # handed over by the pool, under its lock
        self.woken = False                  # popped off the sleepers with a job: counted in _waking

    def run(self) -> None:
        pool = self.pool
        try:
            if pool is not None:
                pool._work(self)
        finally:
            self.pool = None


class WorkerPool(object):
    """Worker threads run submitted jobs by the rules of the module docstring."""

    worker_class = WorkerThread
    closed_error: type = RuntimeError      # what submitting to a closed pool raises
    full_error: type = RuntimeError        # what _enqueue raises past its backlog

    def __init__(self, name: str, max_workers: int, min_workers: int = 0, hard_limit: Optional[int] = None,
                 idle_timeout: float = 0.0, one_wakeup: bool = False, counts_busy: bool = False,
                 stall_interval: Optional[float] = None) -> None:
        hard = max_workers if hard_limit is None else hard_limit
        if not 0 <= min_workers <= max_workers or not 1 <= max_workers <= hard:
            raise ValueError("need 0 <= min_workers <= max_workers <= hard_limit, max_workers >= 1")
        self.name = name
        self.max_workers, self.min_workers, self.hard_limit = max_workers, min_workers, hard
        self.idle: Set[WorkerThread] = set()    # workers without a job
        self.busy: Set[WorkerThread] = set()    # workers given one
        self.closed = False
        self._idle_timeout = idle_timeout
        self._one_wakeup = one_wakeup
        self._counts_busy = counts_busy
        self._stall_interval = stall_interval
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)      # a worker or the monitor exited
        self._monitor_wake = threading.Condition(self._lock)
        self._monitor_alive = False
        self._jobs: Deque[Job] = deque()
        self._sleepers: List[WorkerThread] = []  # waiting workers, the most recently idle last
        self._starting: List[WorkerThread] = []  # started without a job, not waiting yet
        self._waking = self._blocked = self._taken = 0
        with self._lock:
            for _ in range(min_workers):
                self._start_worker(None)

    # ---- the package's API -------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        """Run ``job()`` on a worker as soon as one is free; never refused while the pool is open."""
        with self._lock:
            self._enqueue(job, None)

    @contextlib.contextmanager
    def blocking(self) -> Iterator[None]:
        """Mark the calling worker as waiting on other pool work for the duration (rule 5)."""
        with self._lock:
            self._blocked += 1
            if self._starved() and self._can_grow():
                self._start_worker(self._take_queued())
        try:
            yield
        finally:
            with self._lock:
                self._blocked -= 1

    def num_workers(self) -> int:
        with self._lock:
            return self._count()

    def has_spare(self) -> bool:
        """Would a job get a thread at once, with nothing queued? (one consistent reading)"""
        with self._lock:
            return self.spare_now()

    def spare_now(self) -> bool:
        """:meth:`has_spare` without the lock: a snapshot for per-request heuristics (see the module doc)."""
        return not self._jobs and bool(self.idle or self._count() < self.max_workers)

    def busy_now(self) -> int:
        """Workers given a job, read without the lock: a snapshot (see the module doc)."""
        return len(self.busy)

    def busy_count(self) -> int:
        with self._lock:
            return self.busy_now()

    def is_busy(self, thread: threading.Thread) -> bool:
        with self._lock:
            return thread in self.busy

    def stats(self) -> Dict[str, int]:
        """A snapshot of the counts, for tests and debugging."""
        with self._lock:
            return self._stats()

    def _stats(self) -> Dict[str, int]:
        return {"workers": self._count(), "idle": len(self.idle), "busy": len(self.busy),
                "waking": self._waking, "blocked": self._blocked, "queued": len(self._jobs),
                "monitor": int(self._monitor_alive)}

    def wait_all_exited(self, timeout: Optional[float] = None) -> bool:
        """Wait until every worker and the monitor have exited; False on timeout."""
        with self._lock:
            return self._changed.wait_for(lambda: not self._count() and not self._monitor_alive, timeout)

    def close(self) -> None:
        """Take no more jobs; queued ones still run. Idle workers are joined (bounded wait)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            sleepers, self._sleepers = self._sleepers, []
            for sleeper in sleepers:
                sleeper.gate.release()
            idle = list(self.idle)
            self.idle, self.busy = set(), set()   # as in Pyro4: workers finishing a job are leaving
        current = threading.current_thread()
        deadline = time.monotonic() + _CLOSE_JOIN_SECONDS
        for worker in idle:
            if worker is not current:
                worker.join(max(deadline - time.monotonic(), 0.0))

    # ---- internals: the lock is held ---------------------------------------------------------

    def _count(self) -> int:
        return len(self.idle) + len(self.busy)

    def _starved(self) -> bool:
        return len(self._jobs) > len(self._sleepers)

    def _can_grow(self) -> bool:
        count = self._count()
        return count - self._blocked < self.max_workers and count < self.hard_limit

    def _enqueue(self, job: Job, backlog: Optional[int] = None) -> None:
        """Give ``job`` a worker, a new worker, or a place in the queue (rules 1-3)."""
        if self.closed:
            raise self.closed_error("job queue is closed")
        sleepers = self._sleepers
        if sleepers and not (self._one_wakeup and self._waking):
            self._wake(sleepers.pop(), job)
        elif self._starting:                    # just started, not waiting yet: it looks first
            self._hand_over(self._starting.pop(), job)
        elif len(self._jobs) >= len(sleepers) and self._can_grow():
            self._start_worker(job)
        elif backlog is not None and len(self._jobs) >= backlog:
            raise self.full_error("no free workers available, increase thread pool size")
        else:
            self._jobs.append(job)
            if self._stall_interval is not None and self._starved():
                self._wake_monitor()

    def _hand_over(self, worker: WorkerThread, job: Job) -> None:
        self.idle.discard(worker)
        if not self.closed:                     # a closed pool counts no workers
            self.busy.add(worker)
        worker.job = job

    def _wake(self, worker: WorkerThread, job: Job) -> None:
        self._hand_over(worker, job)
        worker.woken = True
        self._waking += 1
        worker.gate.release()   # (it was on the sleepers' stack: its gate is closed, and taken off it, opened once)

    def _take_queued(self) -> Job:
        job = self._jobs.popleft()
        if not self._jobs and self._monitor_alive:
            self._monitor_wake.notify()         # backlog gone: the monitor may retire now
        return job

    def _start_worker(self, job: Optional[Job]) -> None:
        worker = self.worker_class(self)
        worker.job = job
        if job is None:
            self.idle.add(worker)
            self._starting.append(worker)
        else:
            self.busy.add(worker)
        worker.start()

    def _report(self, worker: WorkerThread) -> None:
        """From an ``except`` block in a worker: what to do with what a job raised (rule 7)."""
        report_uncaught()

    def _work(self, worker: WorkerThread) -> None:
        """A worker's life: take a job, run it outside the lock, repeat until surplus or closed."""
        lock = self._lock
        lock.acquire()
        try:
            if worker in self._starting:
                self._starting.remove(worker)
            while True:
                job = worker.job if worker.job is not None else self._next_job(worker)
                if job is None:
                    return
                worker.job = None
                self._taken += 1
                if self._jobs and self._sleepers and not self._waking:
                    self._wake(self._sleepers.pop(), self._take_queued())   # rule 2: pass the baton
                lock.release()
                try:
                    if self._counts_busy:
                        in_flight.append(None)
                    try:
                        job()
                    finally:
                        if self._counts_busy:
                            end_work()
                except BaseException:
                    try:
                        self._report(worker)
                    except BaseException:
                        pass    # a reporter that fails must not cost the worker either
                finally:
                    job = None  # drop references (connections) before waiting again
                    lock.acquire()
                if self._jobs:                      # stays busy with the oldest queued job
                    worker.job = self._take_queued()
                    continue
                self.busy.discard(worker)
                if not self.closed:
                    self.idle.add(worker)
        finally:
            self.idle.discard(worker)
            self.busy.discard(worker)
            self._changed.notify_all()
            lock.release()

    def _next_job(self, worker: WorkerThread) -> Optional[Job]:
        """An idle worker's wait for a job (rules 1 and 4); None: it leaves."""
        deadline: Optional[float] = None
        while True:
            if worker.job is not None:
                return worker.job
            if self._jobs:
                self._hand_over(worker, self._take_queued())
                return worker.job
            if self.closed or self._count() - self._blocked > self.max_workers:
                return None
            timeout = None
            if len(self.idle) > self.min_workers:
                if self._idle_timeout <= 0:
                    return None
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self._idle_timeout
                elif now >= deadline:
                    return None
                timeout = deadline - now
            self._sleepers.append(worker)
            lock = self._lock
            lock.release()
            try:
                passed = worker.gate.acquire(True, -1 if timeout is None else timeout)
            finally:
                lock.acquire()
            if worker in self._sleepers:            # timed out, nobody opened the gate
                self._sleepers.remove(worker)
            elif not passed:                        # opened just after the timeout: close it again
                worker.gate.acquire()
            if worker.woken:
                worker.woken = False
                self._waking -= 1

    # ---- the monitor thread (rule 6) -----------------------------------------------------------

    def _wake_monitor(self) -> None:
        if self._monitor_alive:
            self._monitor_wake.notify()
        else:
            self._monitor_alive = True
            threading.Thread(target=self._monitor_main, name="%s-monitor" % self.name, daemon=True).start()

    def _monitor_main(self) -> None:
        with self._lock:
            try:
                self._monitor_loop()
            finally:
                self._monitor_alive = False
                self._changed.notify_all()

    def _monitor_loop(self) -> None:
        seen, stall_at = self._taken, None     # type: int, Optional[float]
        interval = self._stall_interval if self._stall_interval is not None else 0.0
        while True:
            now = time.monotonic()
            next_timer = self._release_timers(now)
            if not self._starved() or self._stall_interval is None:
                stall_at = None
            elif stall_at is None or self._taken != seen:
                seen, stall_at = self._taken, now + interval
            elif now >= stall_at:
                self._grow_after_stall()
                stall_at = now + interval
            wake_times = [t for t in (next_timer, stall_at) if t is not None]
            if not wake_times:
                return
            self._monitor_wake.wait(max(0.0, min(wake_times) - now))

    def _release_timers(self, now: float) -> Optional[float]:
        """Monitor hook: queue the jobs due by ``now``; the next due time, None if none."""
        return None

    def _grow_after_stall(self) -> None:
        extra = min(self.hard_limit - self._count(), max(1, self._count() // 4), len(self._jobs))
        if extra > 0:
            log.debug("%s stalled with %d queued jobs; adding %d workers to %d",
                      self.name, len(self._jobs), extra, self._count())
        for _ in range(extra):
            self._start_worker(self._take_queued())
