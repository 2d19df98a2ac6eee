"""A pool of worker threads that grows on demand and shrinks back when idle.

Theory of operation
-------------------
One lock (``Pool._lock``) guards every field below. A job (a plain callable) is handed to one
worker when it is submitted, as in Pyro4: that worker moves from ``idle`` to ``busy`` at once,
so the counts always say how many jobs have a thread. Jobs that find no worker wait in one
FIFO queue.

* A worker with nothing to do waits on its own condition variable (sharing that lock) and
  puts itself on the ``_sleepers`` stack; a new job goes into the ``job`` slot of the worker on
  top, the one idle the shortest time, and wakes it. Its stack, caches and (on glibc) malloc arena are still warm: a connection
  that goes back and forth between the selector and the pool keeps meeting the same thread,
  where a FIFO wake-up would rotate it through every idle worker.

* ``idle`` holds workers without a job (sleeping, or just started), ``busy`` those given one.
  ``len(idle) + len(busy)`` never exceeds ``THREADPOOL_SIZE``.
* A job gets an idle worker, else a new worker (started with the job) when the pool is below
  ``THREADPOOL_SIZE``, else it waits in the queue. :meth:`Pool.process` (Pyro4's entry point)
  refuses with :class:`NoFreeWorkersError` once more than ``backlog`` jobs would have to wait;
  :meth:`Pool.submit` never refuses (the socket server uses it for connections it already owns).
* A worker that finishes a job takes the next queued one; with nothing queued it exits when
  ``THREADPOOL_SIZE_MIN`` workers are idle already (Pyro4's rule), otherwise it waits.
* ``close()`` refuses new jobs, lets the workers drain what is queued, and joins the idle
  ones (never the calling thread, which may itself be a worker running the job that closes).
  A closed pool counts no workers, as Pyro4's: those still running a job are on their way out.
"""

from __future__ import annotations, with_statement

import logging
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, List, Optional, Set

from ..configuration import config

# Pyro4's module has no __all__, so its star-import also yields what it imported: the second line.
__all__ = ["PoolError", "NoFreeWorkersError", "Worker", "Pool",
           "config", "log", "logging", "threading", "time", "with_statement"]

log = logging.getLogger("Pyro4.threadpool")

_CLOSE_JOIN_SECONDS = 1.0  # upper bound for joining the idle workers on close()


class PoolError(Exception):
    """The pool cannot take the job."""


class NoFreeWorkersError(PoolError):
    """Every worker is busy and the pool may not grow or queue any further."""


class Worker(threading.Thread):
    """One pool thread; it runs queued jobs until the pool lets it go."""

    def __init__(self, pool: "Pool") -> None:
        super().__init__()
        self.daemon = True
        self.name = "Pyro-Worker-%d" % id(self)
        self.pool: Optional[Pool] = pool
        self.wakeup = threading.Condition(pool._lock)
        self.job: Optional[Callable[[], Any]] = None   # handed over by the pool, under its lock

    def run(self) -> None:
        pool = self.pool
        try:
            if pool is not None:
                pool._work(self)
        finally:
            self.pool = None


class Pool(object):
    """Worker threads between ``THREADPOOL_SIZE_MIN`` and ``THREADPOOL_SIZE`` (read at construction).

    ``backlog`` is how many jobs :meth:`process` may queue while every worker is busy before
    it raises :class:`NoFreeWorkersError`; 0 gives Pyro4's behaviour (refuse at once).
    """

    def __init__(self, backlog: int = 0) -> None:
        if config.THREADPOOL_SIZE < 1 or config.THREADPOOL_SIZE_MIN < 1:
            raise ValueError("threadpool sizes must be greater than zero")
        if config.THREADPOOL_SIZE_MIN > config.THREADPOOL_SIZE:
            raise ValueError("minimum threadpool size must be less than or equal to max size")
        self.max_workers: int = config.THREADPOOL_SIZE
        self.min_workers: int = config.THREADPOOL_SIZE_MIN
        self.backlog = backlog
        self.idle: Set[Worker] = set()
        self.busy: Set[Worker] = set()
        self.closed = False
        self._jobs: Deque[Callable[[], Any]] = deque()
        self._lock = threading.Lock()
        self._sleepers: List[Worker] = []   # waiting workers, the most recently idle last
        with self._lock:
            for _ in range(self.min_workers):
                self._start_worker()
        log.debug("worker pool created with initial size %d", self.num_workers())

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<%s.%s at 0x%x; %d busy workers; %d idle workers>" % (
            type(self).__module__, type(self).__name__, id(self), len(self.busy), len(self.idle))

    def num_workers(self) -> int:
        return len(self.busy) + len(self.idle)

    def active(self) -> int:
        """Jobs running or queued (one consistent reading)."""
        with self._lock:
            return len(self.busy) + len(self._jobs)

    @property
    def waiting(self) -> int:
        """Queued jobs: those that found no worker."""
        return len(self._jobs)

    def process(self, job: Callable[[], Any]) -> None:
        """Run ``job`` on a worker; NoFreeWorkersError when all are busy and the backlog is full."""
        self._enqueue(job, self.backlog)

    def submit(self, job: Callable[[], Any]) -> None:
        """Run ``job`` on a worker as soon as one is free; never refused while the pool is open."""
        self._enqueue(job, None)

    def _enqueue(self, job: Callable[[], Any], backlog: Optional[int]) -> None:
        with self._lock:
            if self.closed:
                raise PoolError("job queue is closed")
            if self._sleepers:                          # the one idle the shortest time
                worker = self._sleepers.pop()
                self._hand_over(worker, job)
                worker.wakeup.notify()
            elif self.idle:                             # just started, not waiting yet: it looks first
                self._hand_over(next(iter(self.idle)), job)
            elif self.num_workers() < self.max_workers:
                self._start_worker(job)
            elif backlog is not None and len(self._jobs) >= backlog:
                raise NoFreeWorkersError("no free workers available, increase thread pool size")
            else:
                self._jobs.append(job)

    def _hand_over(self, worker: Worker, job: Callable[[], Any]) -> None:
        self.idle.discard(worker)
        self.busy.add(worker)
        worker.job = job

    def _start_worker(self, job: Optional[Callable[[], Any]] = None) -> None:
        worker = Worker(self)
        worker.job = job
        (self.idle if job is None else self.busy).add(worker)
        worker.start()

    def _work(self, worker: Worker) -> None:
        """A worker's life: wait for a job, run it, repeat until surplus or closed."""
        lock = self._lock
        with lock:
            while True:
                while worker.job is None and not self.closed:
                    self._sleepers.append(worker)
                    worker.wakeup.wait()
                    if worker in self._sleepers:    # woken by close(), not popped for a job
                        self._sleepers.remove(worker)
                job, worker.job = worker.job, None
                if job is None:                         # closed
                    self.idle.discard(worker)
                    return
                lock.release()
                try:
                    job()
                except BaseException as exc:    # even SystemExit: the worker lives on, never leaks from busy
                    log.exception("unhandled exception from job in worker thread %s: %s", worker.name, exc)
                finally:
                    job = None  # drop references (connections) before waiting again
                    lock.acquire()
                if self._jobs:                          # stays busy with the oldest queued job
                    worker.job = self._jobs.popleft()
                    continue
                self.busy.discard(worker)
                if self.closed or len(self.idle) >= self.min_workers:
                    log.debug("worker counts: %d busy, %d idle", len(self.busy), len(self.idle))
                    return
                self.idle.add(worker)

    def close(self) -> None:
        """Take no more jobs; queued ones still run. Idle workers are joined (bounded wait)."""
        with self._lock:
            if self.closed:
                return
            log.debug("closing down")
            self.closed = True
            for sleeper in self._sleepers:
                sleeper.wakeup.notify()
            idle = list(self.idle)
            self.idle, self.busy = set(), set()   # as in Pyro4: workers finishing a job are leaving
        current = threading.current_thread()
        deadline = time.monotonic() + _CLOSE_JOIN_SECONDS
        for worker in idle:
            if worker is not current:
                worker.join(max(deadline - time.monotonic(), 0.0))
