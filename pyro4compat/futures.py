"""Futures: run a callable, then a chain of follow-up calls, in the background.

``Future`` and ``FutureResult`` behave as Pyro4 4.82's do: same attributes, return values,
error texts and order of calls. The one deliberate difference is *where* the work runs.
Pyro4 starts a new thread per call, so a burst of 10,000 calls makes 10,000 threads; we run
the work on a small shared pool of daemon threads that grows on demand and shrinks to zero.

Theory of operation
-------------------
The pool (``_Executor``; the process-wide one is ``_executor``) owns, all guarded by its
single lock:

* ``_queue``: ready tasks (zero-argument callables), first in first out;
* ``_timers``: a heap of tasks due later (``Future.delay``), each behind a ``_TimerHandle``;
* counters: ``_workers`` alive, ``_idle`` waiting for work, ``_waking`` of those already
  woken for a task but not yet running, ``_blocked`` parked in a managed wait, ``_taken``
  tasks dequeued so far (the monitor's progress meter).

Rules:

1. Submitting wakes an idle worker, the one idle the shortest time (each waits on its own
   condition, the newest on top of ``_sleepers``): a trickle of work keeps meeting one warm
   thread while the others time out. One wake-up at a time: while a woken worker has not
   started yet, a new task only joins the queue, and a worker that takes a task with more
   still queued wakes the next one. A burst of short tasks (a stream of oneway calls) is
   then drained by one or two threads instead of waking a thread per task, and a slow task
   still holds up the ones behind it for no longer than that next wake-up. If there are
   more queued tasks than idle workers, it starts a worker, as long as fewer than
   ``soft_limit`` workers are *runnable* (alive and not blocked). A worker idle for
   ``idle_timeout`` exits, so a process that made one call soon has no extra threads again.
2. Managed blocking: a worker about to wait for a ``FutureResult`` that isn't ready (its
   ``wait()`` or ``value``) declares itself blocked first. It stops counting as runnable, so
   queued work gets a fresh worker. A callable that starts a future and waits for it (nested
   calls, chains) therefore never waits on work queued behind itself.
3. Unknown blocking (a callable waiting for an Event, a lock or a socket that another queued
   future will release): while there is backlog, a monitor thread watches ``_taken``. When
   no task has left the queue for ``stall_interval`` it adds workers (a quarter more, at
   least one). The pool degrades towards Pyro4's thread-per-call instead of deadlocking.
4. Rules 2 and 3 never grow the pool past ``hard_limit`` workers (+1 monitor thread).
5. The monitor also moves due timers to the queue. It exits once there is neither backlog
   nor a live timer. Delays therefore pin no worker, and a cancelled delay frees its
   timer at once.
6. Tasks run outside the lock. Whatever a task lets escape goes to ``threading.excepthook``,
   as an uncaught exception in Pyro4's per-call thread would; the worker lives on.

What users can tell apart from Pyro4 (timing only, never values or texts): ``cancel()``
during a delay resolves the result at once (Pyro4 noticed within 2 s); ``delay()`` on a call
already pending restarts its countdown from now; in a burst, each task after the first may
start one thread wake-up later (rule 1); under a stall the start of queued work may lag by
``stall_interval``. As in Pyro4, an exception handler that raises (or a callable that
raises a BaseException) goes to ``threading.excepthook`` and leaves the result unresolved.

Who holds which lock: ``Future._state_lock`` guards the Future's start/delay/cancel
transitions and may take the pool's lock inside it; the pool never calls out while holding
its own lock. ``FutureResult.valueLock`` is held while then-callbacks run, as in Pyro4.

Other modules (async proxies, batches) hand work to the same pool with :func:`_submit`.
"""

from __future__ import annotations

import collections
import contextlib
import heapq
import itertools
import logging
import os
import sys
import threading
import time
from typing import Any, Callable, Iterator

from ._serializers.exception_wrapper import _ExceptionWrapper

__all__ = ["Future", "FutureResult", "_ExceptionWrapper"]

log = logging.getLogger("Pyro4.futures")

Task = Callable[[], Any]

SOFT_LIMIT = 32  # runnable workers before queued work waits for a free one
HARD_LIMIT = 256  # never more workers than this, whatever blocks
IDLE_TIMEOUT = 1.0  # seconds an idle worker waits for work before it exits
STALL_INTERVAL = 0.1  # seconds without queue progress that count as a stall

_local = threading.local()  # .pool: the _Executor whose worker this thread is
_thread_ids = itertools.count(1)


class _TimerHandle:
    """A task due later; ``cancel()`` tells whether it was stopped before it was queued."""

    __slots__ = ("pool", "task", "pending")

    def __init__(self, pool: _Executor, task: Task) -> None:
        self.pool = pool
        self.task = task
        self.pending = True

    def cancel(self) -> bool:
        return self.pool._cancel_timer(self)


class _Executor:
    """The bounded, self-shrinking thread pool described in the module docstring."""

    def __init__(self, soft_limit: int = SOFT_LIMIT, hard_limit: int = HARD_LIMIT,
                 idle_timeout: float = IDLE_TIMEOUT, stall_interval: float = STALL_INTERVAL,
                 name: str = "pyro4compat-futures") -> None:
        if not 1 <= soft_limit <= hard_limit:
            raise ValueError("need 1 <= soft_limit <= hard_limit")
        self._soft = soft_limit
        self._hard = hard_limit
        self._idle_timeout = idle_timeout
        self._stall_interval = stall_interval
        self.name = name
        self._lock = threading.Lock()
        self._sleepers: list[threading.Condition] = []  # idle workers' wake-ups, newest last
        self._monitor_wake = threading.Condition(self._lock)
        self._changed = threading.Condition(self._lock)  # a worker or the monitor exited
        self._queue: collections.deque[Task] = collections.deque()
        self._timers: list[tuple[float, int, _TimerHandle]] = []
        self._live_timers = 0
        self._timer_seq = itertools.count()
        self._workers = self._idle = self._blocked = self._taken = 0
        self._waking = 0  # idle workers notified of work that have not taken it yet
        self._monitor_alive = False

    # ---- public to the package -------------------------------------------------------------

    def submit(self, task: Task) -> None:
        """Run ``task()`` on a worker as soon as one is free."""
        with self._lock:
            self._enqueue(task)

    def schedule(self, delay: float, task: Task) -> _TimerHandle:
        """Run ``task()`` on a worker ``delay`` seconds from now, unless cancelled first."""
        handle = _TimerHandle(self, task)
        with self._lock:
            heapq.heappush(self._timers, (time.monotonic() + delay, next(self._timer_seq), handle))
            self._live_timers += 1
            self._wake_monitor()
        return handle

    @contextlib.contextmanager
    def blocking(self) -> Iterator[None]:
        """Mark the calling worker as waiting on other pool work for the duration (rule 2)."""
        with self._lock:
            self._blocked += 1
            self._spawn_if_starved()
        try:
            yield
        finally:
            with self._lock:
                self._blocked -= 1

    def stats(self) -> dict[str, int]:
        """A snapshot of the counters, for tests and debugging."""
        with self._lock:
            return {"workers": self._workers, "idle": self._idle, "waking": self._waking,
                    "blocked": self._blocked,
                    "queued": len(self._queue), "timers": self._live_timers,
                    "monitor": int(self._monitor_alive)}

    def wait_all_exited(self, timeout: float | None = None) -> bool:
        """Wait until every worker and the monitor have exited; False on timeout."""
        with self._lock:
            return self._changed.wait_for(lambda: not self._workers and not self._monitor_alive,
                                          timeout)

    # ---- internals (called with the lock held unless said otherwise) -----------------------

    def _enqueue(self, task: Task) -> None:
        self._queue.append(task)
        self._wake_one()
        if len(self._queue) > self._idle and not self._spawn_if_starved():
            self._wake_monitor()  # saturated: let the monitor watch for a stall

    def _wake_one(self) -> None:
        """Wake the worker idle the shortest time (still warm), unless one is waking already (rule 1)."""
        if self._sleepers and not self._waking:
            self._sleepers.pop().notify()
            self._waking += 1

    def _spawn_if_starved(self) -> bool:
        starved = len(self._queue) > self._idle
        if starved and self._workers - self._blocked < self._soft and self._workers < self._hard:
            self._spawn(self._worker_main, "worker-%d" % next(_thread_ids))
            self._workers += 1
            return True
        return False

    def _spawn(self, target: Callable[[], None], suffix: str) -> None:
        threading.Thread(target=target, name="%s-%s" % (self.name, suffix), daemon=True).start()

    def _wake_monitor(self) -> None:
        if self._monitor_alive:
            self._monitor_wake.notify()
        else:
            self._spawn(self._monitor_main, "monitor")
            self._monitor_alive = True

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

    # ---- worker threads ------------------------------------------------------------------

    def _worker_main(self) -> None:
        """Unlocked. Take tasks until idle for too long or surplus, then exit."""
        _local.pool = self
        wakeup = threading.Condition(self._lock)
        while True:
            with self._lock:
                task = self._next_task(wakeup)
                if task is None:
                    self._workers -= 1
                    self._changed.notify_all()
                    return
            _run_task(task)
            del task

    def _next_task(self, wakeup: threading.Condition) -> Task | None:
        deadline = None
        while True:
            if self._queue:
                self._taken += 1
                task = self._queue.popleft()
                if self._queue:
                    self._wake_one()  # the next task gets its own worker
                elif self._monitor_alive:
                    self._monitor_wake.notify()  # backlog gone: the monitor may retire now
                return task
            if self._workers - self._blocked > self._soft:
                return None  # a surplus worker from rule 2 or 3: leave without lingering
            now = time.monotonic()
            if deadline is None:
                deadline = now + self._idle_timeout
            elif now >= deadline:
                return None
            self._idle += 1
            self._sleepers.append(wakeup)
            wakeup.wait(deadline - now)
            if wakeup in self._sleepers:
                self._sleepers.remove(wakeup)  # timed out, and nobody popped it meanwhile
            else:
                self._waking -= 1              # popped and notified: this worker is up now
            self._idle -= 1

    # ---- monitor thread ------------------------------------------------------------------

    def _monitor_main(self) -> None:
        """Unlocked entry of the monitor thread (rules 3 and 5)."""
        with self._lock:
            try:
                self._monitor_loop()
            finally:
                self._monitor_alive = False
                self._changed.notify_all()

    def _monitor_loop(self) -> None:
        seen = self._taken
        stall_at: float | None = None
        while True:
            now = time.monotonic()
            self._release_due_timers(now)
            if len(self._queue) <= self._idle:
                stall_at = None
            elif stall_at is None or self._taken != seen:
                seen, stall_at = self._taken, now + self._stall_interval
            elif now >= stall_at:
                self._grow_after_stall()
                stall_at = now + self._stall_interval
            wake_times = [self._timers[0][0]] if self._timers else []
            if stall_at is not None:
                wake_times.append(stall_at)
            if not wake_times:
                return
            self._monitor_wake.wait(max(0.0, min(wake_times) - now))

    def _release_due_timers(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            handle = heapq.heappop(self._timers)[2]
            if handle.pending:
                handle.pending = False
                self._live_timers -= 1
                self._enqueue(handle.task)

    def _grow_after_stall(self) -> None:
        extra = min(self._hard - self._workers, max(1, self._workers // 4))
        if extra > 0:
            log.debug("futures pool stalled with %d queued tasks; adding %d workers to %d",
                      len(self._queue), extra, self._workers)
        for _ in range(extra):
            self._spawn(self._worker_main, "worker-%d" % next(_thread_ids))
            self._workers += 1


def _run_task(task: Task) -> None:
    """Run one task; report an escaping exception as a dying thread would (rule 6)."""
    try:
        task()
    except BaseException:
        exc_type, exc_value, exc_tb = sys.exc_info()
        try:
            threading.excepthook(threading.ExceptHookArgs(  # type: ignore[attr-defined]
                (exc_type, exc_value, exc_tb, threading.current_thread())))
        except Exception:
            log.exception("threading.excepthook failed")
        finally:
            del exc_type, exc_value, exc_tb


_executor = _Executor()


def _submit(task: Task) -> None:
    """Run ``task()`` on the shared futures pool; for async proxies and batches."""
    _executor.submit(task)


@contextlib.contextmanager
def _blocking() -> Iterator[None]:
    """Wrap a wait that pool work will end, so a pool worker waiting here can't starve it."""
    pool = getattr(_local, "pool", None)
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
