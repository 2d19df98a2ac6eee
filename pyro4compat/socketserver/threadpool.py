"""Pyro4's thread pool (``Pool``, ``Worker``, ``PoolError``, ``NoFreeWorkersError``), for the thread server.

The pool itself is :class:`pyro4compat._workers.WorkerPool`, the one implementation behind
the thread server, oneway calls and futures; its module docstring gives the theory of
operation (locks, the newest-idle-first wake-up stack, growth, shrinking, close). This module
sets it up with Pyro4's numbers and behaviour:

* between ``THREADPOOL_SIZE_MIN`` and ``THREADPOOL_SIZE`` workers (read at construction);
  the minimum is started at once, a worker above it exits as soon as it has nothing to do;
* a job gets its worker in :meth:`Pool.process` itself (``busy``/``idle`` change there, as
  Pyro4's tests read them); :meth:`Pool.process` refuses with :class:`NoFreeWorkersError`
  once more than ``backlog`` jobs would have to wait, :meth:`Pool.submit` never refuses (the
  socket server uses it for connections it already owns);
* whatever a job raises, ``BaseException`` included, is logged as Pyro4 logs it and the
  worker lives on;
* a closed pool counts no workers, as Pyro4's: those still running a job are on their way out.
"""

from __future__ import annotations, with_statement

import logging
import sys
import threading
import time
from typing import Any, Callable

from .._workers import WorkerPool, WorkerThread
from ..configuration import config

# Pyro4's module has no __all__, so its star-import also yields what it imported: the second line.
__all__ = ["PoolError", "NoFreeWorkersError", "Worker", "Pool",
           "config", "log", "logging", "threading", "time", "with_statement"]

log = logging.getLogger("Pyro4.threadpool")


class PoolError(Exception):
    """The pool cannot take the job."""


class NoFreeWorkersError(PoolError):
    """Every worker is busy and the pool may not grow or queue any further."""


class Worker(WorkerThread):
    """One pool thread, named as Pyro4 names it."""

    def __init__(self, pool: "Pool") -> None:
        super().__init__(pool)
        self.name = "Pyro-Worker-%d" % id(self)


class Pool(WorkerPool):
    """Worker threads between ``THREADPOOL_SIZE_MIN`` and ``THREADPOOL_SIZE`` (read at construction).

    ``backlog`` is how many jobs :meth:`process` may queue while every worker is busy before
    it raises :class:`NoFreeWorkersError`; 0 gives Pyro4's behaviour (refuse at once).
    """

    worker_class = Worker
    closed_error = PoolError
    full_error = NoFreeWorkersError

    def __init__(self, backlog: int = 0) -> None:
        if config.THREADPOOL_SIZE < 1 or config.THREADPOOL_SIZE_MIN < 1:
            raise ValueError("threadpool sizes must be greater than zero")
        if config.THREADPOOL_SIZE_MIN > config.THREADPOOL_SIZE:
            raise ValueError("minimum threadpool size must be less than or equal to max size")
        super().__init__("Pyro-Worker", config.THREADPOOL_SIZE, min_workers=config.THREADPOOL_SIZE_MIN)
        self.backlog = backlog
        log.debug("worker pool created with initial size %d", self.num_workers())

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        with self._lock:
            busy, idle = len(self.busy), len(self.idle)
        return "<%s.%s at 0x%x; %d busy workers; %d idle workers>" % (
            type(self).__module__, type(self).__name__, id(self), busy, idle)

    def active(self) -> int:
        """Jobs running or queued (one consistent reading)."""
        with self._lock:
            return len(self.busy) + len(self._jobs)

    @property
    def waiting(self) -> int:
        """Queued jobs: those that found no worker."""
        with self._lock:
            return len(self._jobs)

    def process(self, job: Callable[[], Any]) -> None:
        """Run ``job`` on a worker; NoFreeWorkersError when all are busy and the backlog is full."""
        with self._lock:
            self._enqueue(job, self.backlog)

    def close(self) -> None:
        """Take no more jobs; queued ones still run. Idle workers are joined (bounded wait)."""
        if not self.closed:
            log.debug("closing down")
        super().close()

    def _report(self, worker: WorkerThread) -> None:
        exc = sys.exc_info()[1]
        log.exception("unhandled exception from job in worker thread %s: %s", worker.name, exc)
