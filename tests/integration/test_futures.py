"""Future and FutureResult behaviour, and the bounded pool that runs them.

Synchronisation is by events; the few delays only decide an order, never a timing.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any, Callable, Iterator

import pytest

from pyro4compat import futures
from pyro4compat._serializers import exception_wrapper
from pyro4compat.futures import Future, FutureResult, _ExceptionWrapper

WAIT = 10.0  # seconds any event wait may take before the test counts as hung
_pool_ids = itertools.count()


def make_pool(**kwargs: Any) -> futures._Executor:
    settings = dict(soft_limit=4, hard_limit=8, idle_timeout=0.05, stall_interval=0.05)
    settings.update(kwargs)
    return futures._Executor(name="test-futures-%d" % next(_pool_ids), **settings)


def pool_threads(pool: futures._Executor) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(pool.name + "-")]


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[futures._Executor]:
    """A small private pool standing in for the shared one; checked to drain afterwards."""
    small = make_pool()
    monkeypatch.setattr(futures, "_executor", small)
    yield small
    assert small.wait_all_exited(WAIT), small.stats()


@pytest.fixture
def hook_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[list, threading.Event]]:
    """Capture what reaches threading.excepthook (exceptions that escape a task)."""
    calls: list = []
    seen = threading.Event()

    def hook(args: Any) -> None:
        calls.append((args.exc_type, args.exc_value, args.thread))
        seen.set()

    monkeypatch.setattr(threading, "excepthook", hook)
    yield calls, seen


def gated(fn: Callable[..., Any], gate: threading.Event,
          started: threading.Event | None = None) -> Callable[..., Any]:
    """``fn`` that first announces it started, then waits for ``gate``."""
    def run(*args: Any, **kwargs: Any) -> Any:
        if started is not None:
            started.set()
        assert gate.wait(WAIT)
        return fn(*args, **kwargs)
    return run


def error_of(fn: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(Exception) as info:
        fn()
    return type(info.value).__name__, str(info.value)


# ---- Future --------------------------------------------------------------------------------

@pytest.mark.timeout(10)
def test_future_starts_with_pyro4s_attributes() -> None:
    f = Future(len)
    assert (f.callable, f.chain, f.exceptionhandler, f.call_delay, f.cancelled, f.completed) == \
        (len, [], None, 0, False, False)


@pytest.mark.timeout(10)
def test_call_returns_result_of_callable_with_args_and_kwargs(pool: futures._Executor) -> None:
    result = Future(lambda a, b=0: a - b)(10, b=3)
    assert isinstance(result, FutureResult)
    assert result.value == 7
    assert result.ready and result.wait() is True


@pytest.mark.timeout(10)
def test_then_chain_passes_each_value_on_with_extra_arguments(pool: futures._Executor) -> None:
    f = Future(lambda: 2)
    assert f.then(lambda v, m: v * m, 10) is f
    assert f.then(lambda v, suffix: "%d%s" % (v, suffix), suffix="!") is f
    assert [call for call, _, _ in f.chain] and len(f.chain) == 2
    assert f().value == "20!"


@pytest.mark.timeout(10)
def test_iferror_returns_self_and_stores_handler() -> None:
    f = Future(len)
    assert f.iferror(print) is f and f.exceptionhandler is print


@pytest.mark.timeout(10)
def test_calling_twice_raises_while_pending_and_after_completion(pool: futures._Executor) -> None:
    gate = threading.Event()
    f = Future(gated(lambda: "ok", gate))
    result = f()
    assert error_of(f) == ("RuntimeError", "the future has already been evaluated")
    gate.set()
    assert result.value == "ok"
    assert error_of(f) == ("RuntimeError", "the future has already been evaluated")
    assert (f.completed, f.cancelled, hasattr(f, "chain")) == (True, False, False)


@pytest.mark.timeout(10)
def test_then_after_start_is_an_attribute_error_as_in_pyro4(pool: futures._Executor) -> None:
    f = Future(lambda: 1)
    f().wait(WAIT)
    with pytest.raises(AttributeError, match="chain"):
        f.then(str)


@pytest.mark.timeout(10)
def test_cancel_before_call_prevents_it() -> None:
    ran = []
    f = Future(lambda: ran.append(1))
    assert f.cancel() is True
    assert f.cancel() is True and f.delay(1) is True  # not completed yet, as in Pyro4
    assert error_of(f) == ("RuntimeError", "the future has been cancelled")
    assert (f.cancelled, f.completed, ran) == (True, False, [])


@pytest.mark.timeout(10)
def test_delay_and_cancel_report_false_once_running_or_done(pool: futures._Executor) -> None:
    gate, started = threading.Event(), threading.Event()
    f = Future(gated(lambda: "done", gate, started))
    result = f()
    assert started.wait(WAIT)
    assert (f.delay(5), f.cancel()) == (False, False)
    gate.set()
    assert result.value == "done"
    assert (f.delay(5), f.cancel(), f.cancelled, f.call_delay) == (False, False, False, 0)


@pytest.mark.timeout(10)
def test_delay_defers_the_start_behind_undelayed_work(pool: futures._Executor) -> None:
    order: list[str] = []
    slow = Future(order.append)
    assert slow.delay(0.2) is True
    slow_result = slow("delayed")
    fast_result = Future(order.append)("immediate")
    fast_result.wait(WAIT)
    assert slow_result.wait(WAIT)
    assert order == ["immediate", "delayed"]
    assert slow.call_delay == 0 and isinstance(slow.call_delay, float)


@pytest.mark.timeout(10)
def test_delay_on_a_pending_call_counts_from_now(pool: futures._Executor) -> None:
    f = Future(lambda: "late")
    f.delay(60)
    result = f()
    assert result.wait(0) is False
    assert f.delay(0.01) is True  # shortens the wait: the 60 s timer must not be the one used
    assert result.value == "late"
    assert pool.stats()["timers"] == 0


@pytest.mark.timeout(10)
def test_delay_on_a_queued_call_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    busy = make_pool(soft_limit=1, hard_limit=1, stall_interval=60)
    monkeypatch.setattr(futures, "_executor", busy)
    gate, started = threading.Event(), threading.Event()
    blocker = Future(gated(lambda: None, gate, started))()
    assert started.wait(WAIT)
    order: list[str] = []
    queued = Future(order.append)
    queued_result = queued("queued")  # sits in the queue behind the blocker
    assert queued.delay(0.2) is True
    other = Future(order.append)
    other.delay(0.01)
    other_result = other("other")
    gate.set()
    assert blocker.wait(WAIT) and queued_result.wait(WAIT) and other_result.wait(WAIT)
    assert order == ["other", "queued"]
    assert busy.wait_all_exited(WAIT)


@pytest.mark.timeout(10)
def test_cancel_during_delay_resolves_result_promptly(pool: futures._Executor) -> None:
    ran, handled = [], []
    f = Future(lambda: ran.append(1))
    f.delay(60)
    result = f().iferror(handled.append)
    assert f.cancel() is True
    assert result.wait(WAIT)  # the 60 s delay is not waited out
    assert error_of(lambda: result.value) == ("RuntimeError", "future has been cancelled")
    assert [str(e) for e in handled] == ["future has been cancelled"] and ran == []
    assert (f.completed, f.cancelled, f.cancel(), f.delay(1)) == (True, True, False, False)
    assert error_of(f) == ("RuntimeError", "the future has already been evaluated")
    assert pool.stats()["timers"] == 0


@pytest.mark.timeout(10)
def test_negative_delay_runs_at_once_and_is_kept(pool: futures._Executor) -> None:
    f = Future(lambda: "now")
    assert f.delay(-1) is True
    assert f().value == "now" and f.call_delay == -1


@pytest.mark.parametrize("where", ["callable", "chain"])
@pytest.mark.timeout(10)
def test_exception_reaches_both_handlers_then_the_reader(pool: futures._Executor, where: str) -> None:
    calls: list[tuple[str, object]] = []
    gate = threading.Event()
    bad = ValueError("bad")

    def boom(*_: Any) -> None:
        raise bad

    f = Future(gated(boom, gate)) if where == "callable" else Future(gated(lambda: 1, gate)).then(boom)
    f.iferror(lambda e: calls.append(("future", e)))
    result = f().iferror(lambda e: calls.append(("result", e)))
    gate.set()
    with pytest.raises(ValueError) as info:
        result.value
    assert info.value is bad and calls == [("future", bad), ("result", bad)]


@pytest.mark.timeout(10)
def test_failing_result_callback_becomes_the_results_exception(pool: futures._Executor) -> None:
    calls: list[str] = []
    gate = threading.Event()
    f = Future(gated(lambda: 1, gate)).iferror(lambda e: calls.append("future:%r" % e))
    result = f().then(lambda v: v / 0).iferror(lambda e: calls.append("result:%s" % type(e).__name__))
    gate.set()
    with pytest.raises(ZeroDivisionError):
        result.value
    assert calls == ["future:ZeroDivisionError('division by zero')", "result:ZeroDivisionError"]


@pytest.mark.timeout(10)
def test_failing_exception_handler_leaves_result_unset_as_in_pyro4(pool, hook_calls) -> None:
    calls, seen = hook_calls

    def handler(exc: Exception) -> None:
        raise KeyError("handler broke")

    result = Future(lambda: 1 / 0).iferror(handler)()
    assert seen.wait(WAIT)
    assert calls[0][0] is KeyError and calls[0][2].name.startswith(pool.name)
    assert result.ready is False
    assert Future(lambda: "still serving")().value == "still serving"


@pytest.mark.timeout(10)
def test_base_exception_escapes_to_excepthook_and_worker_survives(pool, hook_calls) -> None:
    calls, seen = hook_calls

    def interrupt() -> None:
        raise KeyboardInterrupt

    Future(interrupt)()
    assert seen.wait(WAIT) and calls[0][0] is KeyboardInterrupt
    assert Future(lambda: 5)().value == 5


@pytest.mark.timeout(10)
def test_background_threads_are_daemons_and_not_the_caller(pool: futures._Executor) -> None:
    thread = Future(threading.current_thread)().value
    assert thread is not threading.current_thread() and thread.daemon


# ---- FutureResult ----------------------------------------------------------------------------

@pytest.mark.timeout(10)
def test_futureresult_starts_empty() -> None:
    r = FutureResult()
    assert (r.ready, r.wait(0), r.wait(0.01), r.callchain, r.exceptionhandler) == \
        (False, False, False, [], None)
    assert r.valueLock.acquire(blocking=False)
    r.valueLock.release()


@pytest.mark.timeout(10)
def test_value_setter_runs_chain_in_order_and_clears_it() -> None:
    r = FutureResult()
    assert r.then(lambda v, a: v + a, 1) is r
    assert r.then(lambda v, b=0: v * b, b=3) is r
    r.value = 4
    assert (r.ready, r.wait(), r.value, r.callchain) == (True, True, 15, [])


@pytest.mark.timeout(10)
def test_then_on_ready_result_runs_at_once_in_the_caller() -> None:
    r = FutureResult()
    r.value = 10
    where: list[threading.Thread] = []
    assert r.then(lambda v, d: where.append(threading.current_thread()) or v - d, 3) is r
    assert r.value == 7 and where == [threading.current_thread()]


@pytest.mark.timeout(10)
def test_callback_returning_a_wrapper_stops_the_chain() -> None:
    r, never = FutureResult(), []
    r.then(lambda v: _ExceptionWrapper(KeyError("k"))).then(never.append)
    r.value = 1
    assert never == [] and error_of(lambda: r.value) == ("KeyError", "'k'")


@pytest.mark.timeout(10)
def test_exception_value_calls_handler_and_skips_chain() -> None:
    r, handled, never = FutureResult(), [], []
    exc = ValueError("x")
    assert r.iferror(handled.append) is r
    r.then(never.append)
    r.value = _ExceptionWrapper(exc)
    assert (handled, never, r.ready, r.callchain) == ([exc], [], True, [])
    with pytest.raises(ValueError) as info:
        r.value
    assert info.value is exc
    r.then(lambda wrapper: type(wrapper).__name__)  # Pyro4 hands the wrapper itself on
    assert r.value == "_ExceptionWrapper"


@pytest.mark.timeout(10)
def test_set_cancelled_and_setting_twice() -> None:
    r = FutureResult()
    r.set_cancelled()
    assert error_of(lambda: r.value) == ("RuntimeError", "future has been cancelled")
    r.value = 2
    r.value = 3
    assert r.value == 3 and r.get_value() == 3


@pytest.mark.timeout(10)
def test_value_blocks_until_another_thread_delivers() -> None:
    r, got, reading = FutureResult(), [], threading.Event()

    def reader() -> None:
        reading.set()
        got.append(r.value)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    assert reading.wait(WAIT)
    assert r.wait(0.01) is False
    r.set_value("delivered")
    t.join(WAIT)
    assert got == ["delivered"]


@pytest.mark.timeout(10)
def test_exception_wrapper_is_reexported() -> None:
    assert futures._ExceptionWrapper is exception_wrapper._ExceptionWrapper
    assert sorted(futures.__all__) == ["Future", "FutureResult", "_ExceptionWrapper"]


# ---- the pool --------------------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_load_500_blocked_futures_stay_bounded_then_all_complete(pool: futures._Executor) -> None:
    gate = threading.Event()
    lock, running, peak = threading.Lock(), [0], [0]

    def work(n: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        gate.wait(WAIT)
        with lock:
            running[0] -= 1
        return n * 2

    results = [Future(work)(n) for n in range(500)]
    assert pool.stats()["workers"] <= 8 and len(pool_threads(pool)) <= 8 + 1
    gate.set()
    assert [r.value for r in results] == [n * 2 for n in range(500)]
    assert 1 <= peak[0] <= 8


@pytest.mark.timeout(60)
def test_load_on_the_shared_pool_stays_under_its_hard_limit() -> None:
    gate = threading.Event()
    shared = futures._executor
    results = [Future(gated(lambda n: n, gate))(n) for n in range(500)]
    assert len(pool_threads(shared)) <= futures.HARD_LIMIT + 1 < 500
    gate.set()
    assert sum(r.value for r in results) == sum(range(500))


@pytest.mark.timeout(30)
def test_shared_pool_returns_to_zero_threads_after_a_call() -> None:
    shared = futures._executor
    assert Future(lambda: 1)().value == 1
    assert shared.wait_all_exited(WAIT)
    for thread in pool_threads(shared):
        thread.join(WAIT)
    assert pool_threads(shared) == [] and shared.stats()["workers"] == 0


@pytest.mark.timeout(30)
def test_nested_waits_cannot_deadlock_a_tiny_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    # Two runnable workers and no stall rescue: only managed blocking can let this finish.
    tiny = make_pool(soft_limit=2, hard_limit=64, stall_interval=3600)
    monkeypatch.setattr(futures, "_executor", tiny)

    def nest(depth: int) -> int:
        if depth == 0:
            return 1
        inner = Future(nest)(depth - 1)
        assert inner.wait() is True
        return inner.value + 1

    results = [Future(nest)(4) for _ in range(6)]
    assert [r.value for r in results] == [5] * 6
    assert tiny.wait_all_exited(WAIT)


@pytest.mark.timeout(30)
def test_chained_wait_inside_result_callback_does_not_deadlock(monkeypatch) -> None:
    tiny = make_pool(soft_limit=1, hard_limit=4, stall_interval=3600)
    monkeypatch.setattr(futures, "_executor", tiny)
    f = Future(lambda: 3).then(lambda v: Future(lambda: v * 7)().value)
    assert f().value == 21
    assert tiny.wait_all_exited(WAIT)


@pytest.mark.timeout(30)
def test_stall_growth_rescues_event_dependencies(monkeypatch: pytest.MonkeyPatch) -> None:
    # Waiters hold both runnable workers on a plain Event that a queued future will set.
    tiny = make_pool(soft_limit=2, hard_limit=4, stall_interval=0.02)
    monkeypatch.setattr(futures, "_executor", tiny)
    go = threading.Event()
    waiters = [Future(go.wait)(WAIT) for _ in range(2)]
    setter = Future(go.set)()
    assert [w.value for w in waiters] == [True, True] and setter.wait(WAIT)
    assert tiny.wait_all_exited(WAIT)


@pytest.mark.timeout(30)
def test_hard_limit_holds_even_when_stalled(monkeypatch: pytest.MonkeyPatch) -> None:
    tiny = make_pool(soft_limit=1, hard_limit=3, stall_interval=0.01)
    monkeypatch.setattr(futures, "_executor", tiny)
    gate = threading.Event()
    started = [threading.Event() for _ in range(3)]
    results = [Future(gated(lambda: None, gate, s))() for s in started]
    results += [Future(gated(lambda: None, gate))() for _ in range(20)]
    assert all(s.wait(WAIT) for s in started)  # only stall growth can start the 2nd and 3rd
    assert tiny.stats()["workers"] == 3 and len(pool_threads(tiny)) <= 4
    gate.set()
    assert all(r.wait(WAIT) for r in results)
    assert tiny.wait_all_exited(WAIT)


@pytest.mark.timeout(30)
def test_delays_pin_no_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    single = make_pool(soft_limit=1, hard_limit=1)
    monkeypatch.setattr(futures, "_executor", single)
    delayed = [Future(lambda: None) for _ in range(10)]
    pending = [f.delay(3600) and f() for f in delayed]
    assert single.stats()["timers"] == 10
    assert Future(lambda: "through")().value == "through"
    assert all(f.cancel() for f in delayed)
    assert all(r.wait(WAIT) for r in pending)
    assert single.stats()["timers"] == 0 and single.wait_all_exited(WAIT)


@pytest.mark.timeout(10)
def test_worker_in_a_managed_wait_is_counted_as_blocked(pool: futures._Executor) -> None:
    def observe() -> tuple[int, int]:
        with futures._blocking():
            inside = pool.stats()["blocked"]
        return inside, pool.stats()["blocked"]

    assert Future(observe)().value == (1, 0)


@pytest.mark.timeout(10)
def test_submit_helper_runs_tasks_on_the_pool(pool: futures._Executor) -> None:
    done, where = threading.Event(), []
    futures._submit(lambda: (where.append(threading.current_thread().name), done.set()))
    assert done.wait(WAIT) and where[0].startswith(pool.name)
    with futures._blocking():  # outside a worker it changes nothing
        assert pool.stats()["blocked"] == 0


@pytest.mark.timeout(10)
def test_pool_rejects_inverted_limits() -> None:
    with pytest.raises(ValueError):
        futures._Executor(soft_limit=4, hard_limit=2)


def _idle_workers(pool: futures._Executor, count: int) -> None:
    """Start ``count`` workers at once, then let them all go idle."""
    gate = threading.Event()
    started = [threading.Event() for _ in range(count)]
    for event in started:
        pool.submit(gated(lambda: None, gate, event))
    assert all(event.wait(WAIT) for event in started)
    gate.set()
    nudge = threading.Event()
    for _ in range(int(WAIT * 1000)):    # the workers report idle within WAIT seconds
        if pool.stats()["idle"] == count:
            return
        nudge.wait(0.001)
    raise AssertionError("workers did not go idle: %r" % pool.stats())


def test_a_burst_wakes_one_idle_worker_at_a_time() -> None:
    pool = make_pool(idle_timeout=0.5)  # idle through the test, gone soon after
    _idle_workers(pool, 3)
    done = threading.Semaphore(0)
    with pool._lock:    # the whole burst arrives before any woken worker can run
        for _ in range(10):
            pool._enqueue(done.release)
        assert pool._waking == 1 and len(pool._sleepers) == 2
    assert all(done.acquire(timeout=WAIT) for _ in range(10))
    assert pool.wait_all_exited(WAIT)


def test_slow_tasks_in_a_burst_still_run_side_by_side() -> None:
    pool = make_pool(idle_timeout=0.5)  # idle through the test, gone soon after
    _idle_workers(pool, 3)
    gate = threading.Event()
    started = [threading.Event() for _ in range(3)]
    with pool._lock:
        for event in started:
            pool._enqueue(gated(lambda: None, gate, event))
    assert all(event.wait(WAIT) for event in started)   # each woke the next as it took its task
    assert pool.stats()["waking"] == 0
    gate.set()
    assert pool.wait_all_exited(WAIT)
