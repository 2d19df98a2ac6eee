"""Futures: run a callable, then a chain of follow-up calls, in the background.

``Future`` and ``FutureResult`` behave as Pyro4 4.82's do: same attributes, return values,
error texts and order of calls. The one deliberate difference is *where* the work runs.
Pyro4 starts a new thread per call, so a burst of 10,000 calls makes 10,000 threads; we run
the work on a small shared pool of daemon threads that grows on demand and shrinks to zero.

Theory of operation
-------------------
The pool is a :class:`pyro4compat._workers.WorkerPool` (the process-wide one is
``_executor``), the implementation the thread server and oneway calls use too; its module
docstring gives the rules. Here it is set up with no minimum, ``SOFT_LIMIT`` runnable workers
before queued work waits, ``HARD_LIMIT`` at most, ``IDLE_TIMEOUT``, one wake-up at a time and
a stall monitor. For a user that means:

1. A trickle of work keeps meeting one warm thread; a burst of short tasks is drained by one
   or two threads; a process that made one call soon has no extra threads again.
2. A worker that waits for a ``FutureResult`` that isn't ready (its ``wait()`` or ``value``)
   stops counting as runnable, so a callable that starts a future and waits for it (nested
   calls, chains) never waits on work queued behind itself.
3. A callable waiting for an Event, a lock or a socket that another queued future will
   release: when no task has left the queue for ``STALL_INTERVAL``, the pool grows (never past
   ``HARD_LIMIT``), degrading towards Pyro4's thread-per-call instead of deadlocking.
4. ``Future.delay`` puts the start on a timer heap the pool's monitor thread releases into
   the queue: a delay pins no worker, a cancelled one frees its timer at once.
5. Whatever a task lets escape goes to ``threading.excepthook``, as an uncaught exception in
   Pyro4's per-call thread would; the worker lives on.

What users can tell apart from Pyro4 (timing only, never values or texts): ``cancel()``
during a delay resolves the result at once (Pyro4 noticed within 2 s); ``delay()`` on a call
already pending restarts its countdown from now; in a burst, each task after the first may
start one thread wake-up later (rule 1); under a stall the start of queued work may lag by
``STALL_INTERVAL``. As in Pyro4, an exception handler that raises (or a callable that
raises a BaseException) goes to ``threading.excepthook`` and leaves the result unresolved.

Who holds which lock: ``Future._state_lock`` guards the Future's start/delay/cancel
transitions and may take the pool's lock inside it; the pool never calls out while holding
its own lock. ``FutureResult.valueLock`` is held while then-callbacks run, as in Pyro4.

Other modules (async proxies, batches) hand work to the same pool with :func:`_submit`.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import threading
import time
from typing import Any, Callable, Iterator

from ._serializers.exception_wrapper import _ExceptionWrapper
from ._workers import WorkerPool, WorkerThread

__all__ = ["Future", "FutureResult", "_ExceptionWrapper"]

log = logging.getLogger("Pyro4.futures")

Task = Callable[[], Any]

SOFT_LIMIT = 32  # runnable workers before queued work waits for a free one
HARD_LIMIT = 256  # never more workers than this, whatever blocks
IDLE_TIMEOUT = 1.0  # seconds an idle worker waits for work before it exits
STALL_INTERVAL = 0.1  # seconds without queue progress that count as a stall


class _Executor(WorkerPool):
    """The futures pool: a WorkerPool with the limits of the module docstring."""

    def __init__(self, soft_limit: int = SOFT_LIMIT, hard_limit: int = HARD_LIMIT,
                 idle_timeout: float = IDLE_TIMEOUT, stall_interval: float = STALL_INTERVAL,
                 name: str = "pyro4compat-futures") -> None:
        if not 1 <= soft_limit <= hard_limit:
            raise ValueError("need 1 <= soft_limit <= hard_limit")
        super().__init__(name, soft_limit, hard_limit=hard_limit, idle_timeout=idle_timeout,
                         one_wakeup=True, stall_interval=stall_interval)
        self._timers: list[tuple[float, int, _TimerHandle]] = []   # a heap, guarded by the lock
        self._live_timers = 0
        self._timer_seq = itertools.count()

    def schedule(self, delay: float, task: Task) -> _TimerHandle:
        """Run ``task()`` on a worker ``delay`` seconds from now, unless cancelled first."""
        handle = _TimerHandle(self, task)
        with self._lock:
            heapq.heappush(self._timers, (time.monotonic() + delay, next(self._timer_seq), handle))
            self._live_timers += 1
            self._wake_monitor()
        return handle

    def _stats(self) -> dict[str, int]:
        return dict(super()._stats(), timers=self._live_timers)

    def _cancel_timer(self, handle: _TimerHandle) -> bool:
        with self._lock:
            if not handle.pending:
                return False
            handle.pending = False
            self._live_timers -= 1
            if not self._live_timers:
                self._timers.clear()
                self._monitor_wake.notify()
            return True

    def _release_timers(self, now: float) -> float | None:
        """Lock held, on the monitor thread: queue the due tasks; when the next is due."""
        while self._timers and self._timers[0][0] <= now:
            handle = heapq.heappop(self._timers)[2]
            if handle.pending:
                handle.pending = False
                self._live_timers -= 1
                self._enqueue(handle.task)
        return self._timers[0][0] if self._timers else None


class _TimerHandle:
    """A task due later; ``cancel()`` tells whether it was stopped before it was queued."""

    __slots__ = ("pool", "task", "pending")

    def __init__(self, pool: _Executor, task: Task) -> None:
        self.pool = pool
        self.task = task
        self.pending = True

    def cancel(self) -> bool:
        return self.pool._cancel_timer(self)


_executor = _Executor()


def _submit(task: Task) -> None:
    """Run ``task()`` on the shared futures pool; for async proxies and batches."""
    _executor.submit(task)


@contextlib.contextmanager
def _blocking() -> Iterator[None]:
    """Wrap a wait that pool work will end, so a pool worker waiting here can't starve it."""
    worker = threading.current_thread()
    pool = worker.pool if isinstance(worker, WorkerThread) else None
    if pool is None:
        yield
    else:
        with pool.blocking():
            yield


def _fresh_pool_after_fork() -> None:
    """The child of a fork inherits the counters but none of the threads: start over."""
    global _executor
    _executor = _Executor()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_pool_after_fork)


class Future:
    """A callable run later in the background; calling the Future returns a FutureResult.

    Unlike ``FutureResult`` it can be delayed and cancelled until it starts.
    """

    def __init__(self, somecallable: Callable[..., Any]) -> None:
        self.callable = somecallable
        self.chain: list[tuple[Callable[..., Any], tuple, dict]] = []
        self.exceptionhandler: Callable[[Exception], Any] | None = None
        self.call_delay: float = 0
        self.cancelled = False
        self.completed = False
        self._state_lock = threading.Lock()
        self._pool: _Executor | None = None
        self._start_task: Task | None = None  # set while a call is pending
        self._timer: _TimerHandle | None = None  # set while the pending start waits on a timer
        self._due: float | None = None  # monotonic time the pending call may start

    def __call__(self, *args: Any, **kwargs: Any) -> FutureResult:
        """Start the call (after the delay, if any); return its FutureResult at once."""
        with self._state_lock:
            if self.completed or not hasattr(self, "chain"):
                raise RuntimeError("the future has already been evaluated")
            if self.cancelled:
                raise RuntimeError("the future has been cancelled")
            chain = self.chain
            del self.chain  # as in Pyro4: then() on a started future is an AttributeError
            result = FutureResult()
            self._pool = pool = _executor
            self._start_task = lambda: self._start(result, chain, args, kwargs)
            if self.call_delay > 0:
                self._due = time.monotonic() + self.call_delay
                self._timer = pool.schedule(self.call_delay, self._start_task)
            else:
                pool.submit(self._start_task)
        return result

    def delay(self, seconds: float) -> bool:
        """Delay the start by ``seconds``; False once the call has started.

        On a call that is already pending, the new delay counts from now.
        """
        with self._state_lock:
            if self.completed:
                return False
            self.call_delay = seconds
            if self._start_task is not None:
                self._due = time.monotonic() + seconds
                self._restart_timer(seconds)
            return True

    def cancel(self) -> bool:
        """Cancel the call unless it has started; True when that succeeded."""
        with self._state_lock:
            if self.completed:
                return False
            self.cancelled = True
            if self._start_task is not None:
                self._restart_timer(0)  # deliver the cancellation to the result now
            return True

    def then(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        """Queue ``call(previous_result, *args, **kwargs)`` after the callable; returns self."""
        self.chain.append((call, args, kwargs))
        return self

    def iferror(self, exceptionhandler: Callable[[Exception], Any]) -> Future:
        """Have ``exceptionhandler(exc)`` called when the callable or chain raises; returns self."""
        self.exceptionhandler = exceptionhandler
        return self

    def _restart_timer(self, seconds: float) -> None:
        """State lock held. Move a timer-held start to ``seconds`` from now.

        A start that already sits in the queue is left there: it re-checks ``_due`` and
        ``cancelled`` when it runs.
        """
        if self._timer is None or not self._timer.cancel():
            return
        assert self._pool is not None and self._start_task is not None
        if seconds > 0:
            self._timer = self._pool.schedule(seconds, self._start_task)
        else:
            self._timer = None
            self._pool.submit(self._start_task)

    def _start(self, result: FutureResult, chain: list, args: tuple, kwargs: dict) -> None:
        """On a worker: the pending call's start, then the callable and its chain."""
        with self._state_lock:
            self._timer = None
            if not self.cancelled and self._due is not None:
                remaining = self._due - time.monotonic()
                if remaining > 0:  # delay() moved the start while it sat in the queue
                    assert self._pool is not None and self._start_task is not None
                    self._timer = self._pool.schedule(remaining, self._start_task)
                    return
            self.completed = True
            self._start_task = None
            cancelled = self.cancelled
            if not cancelled and self.call_delay > 0:
                self.call_delay -= self.call_delay  # counted down to a zero of its own type, as Pyro4 does
        if cancelled:
            result.set_cancelled()
            return
        self._evaluate(result, chain, args, kwargs)

    def _evaluate(self, result: FutureResult, chain: list, args: tuple, kwargs: dict) -> None:
        # Delivering the value runs the result's then-callbacks; one that raises lands in the
        # except clause below, as in Pyro4, and the result then holds that exception.
        try:
            value = self.callable(*args, **kwargs)
            for call, call_args, call_kwargs in chain:
                value = call(value, *call_args, **call_kwargs)
            result.value = value
        except Exception as exc:
            if self.exceptionhandler:
                self.exceptionhandler(exc)
            result.value = _ExceptionWrapper(exc)


class FutureResult:
    """The value of a background call, available later.

    Reading ``value`` blocks until it is there and raises the call's exception if it failed.
    Whoever produces the result assigns ``value`` once (the setter runs the then-chain).
    """

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._value: Any = None
        self.callchain: list[tuple[Callable[..., Any], tuple, dict]] = []
        self.valueLock = threading.Lock()
        self.exceptionhandler: Callable[[Exception], Any] | None = None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds (None: forever); True when the result is ready."""
        if self._ready.is_set() or (timeout is not None and timeout <= 0):
            return self._ready.is_set()
        with _blocking():
            return self._ready.wait(timeout)

    @property
    def ready(self) -> bool:
        """True once the value (or the exception) is available."""
        return self._ready.is_set()

    def get_value(self) -> Any:
        if not self._ready.is_set():
            with _blocking():
                self._ready.wait()
        value = self._value
        if isinstance(value, _ExceptionWrapper):
            value.raiseIt()
        return value

    def set_value(self, value: Any) -> None:
        with self.valueLock:
            self._value = value
            if isinstance(value, _ExceptionWrapper):
                if self.exceptionhandler:
                    self.exceptionhandler(value.exception)
            else:
                for call, args, kwargs in self.callchain:
                    self._value = call(self._value, *args, **kwargs)
                    if isinstance(self._value, _ExceptionWrapper):
                        break  # a callback handed back an error: the rest of the chain is moot
            self.callchain = []
            self._ready.set()

    value = property(get_value, set_value, None,
                     "The call's result; reading blocks until available, and raises its exception.")

    def set_cancelled(self) -> None:
        """Resolve as cancelled: reading ``value`` raises RuntimeError."""
        self.set_value(_ExceptionWrapper(RuntimeError("future has been cancelled")))

    def then(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> FutureResult:
        """Chain ``call(value, *args, **kwargs)``; runs now if the value is there. Returns self."""
        with self.valueLock:
            if self._ready.is_set():
                self._value = call(self._value, *args, **kwargs)
            else:
                self.callchain.append((call, args, kwargs))
            return self

    def iferror(self, exceptionhandler: Callable[[Exception], Any]) -> FutureResult:
        """Have ``exceptionhandler(exc)`` called when an exception arrives; returns self."""
        self.exceptionhandler = exceptionhandler
        return self
