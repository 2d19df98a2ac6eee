"""The one worker pool (pyro4compat._workers) behind the thread server, oneway calls and futures."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Iterator, List

import pytest

from pyro4compat import _workers
from pyro4compat.configuration import config
from pyro4compat.socketserver.threadpool import NoFreeWorkersError, Pool, PoolError
from pyro4compat.socketserver.threadpoolserver import SocketServer_Threadpool

WAIT = 10.0


def wait_for(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


@pytest.fixture
def pools() -> Iterator[List[_workers.WorkerPool]]:
    """Pools made by a test; closed and drained afterwards."""
    made: List[_workers.WorkerPool] = []
    yield made
    for pool in made:
        pool.close()


def make(pools: List[_workers.WorkerPool], max_workers: int, **kwargs: Any) -> _workers.WorkerPool:
    pool = _workers.WorkerPool("test-workers-%d" % len(pools), max_workers, **kwargs)
    pools.append(pool)
    return pool


@pytest.mark.timeout(30)
@pytest.mark.parametrize("exc_type", [SystemExit, KeyboardInterrupt, GeneratorExit, ValueError])
def test_a_job_raising_any_base_exception_keeps_its_worker(pools, monkeypatch, exc_type) -> None:
    reported: List[type] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: reported.append(args.exc_type))
    pool = make(pools, 1, min_workers=1)
    done = threading.Event()

    def boom() -> None:
        raise exc_type("from a job")

    for _ in range(3):
        pool.submit(boom)
    pool.submit(done.set)
    assert done.wait(WAIT)
    assert wait_for(lambda: pool.stats()["busy"] == 0)
    assert pool.stats()["workers"] == 1 and reported == [exc_type] * 3


@pytest.mark.timeout(30)
def test_the_server_pool_logs_what_a_job_raises_and_serves_on() -> None:
    config.THREADPOOL_SIZE, config.THREADPOOL_SIZE_MIN = 2, 1
    records: List[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = records.append   # type: ignore[method-assign]
    logger = logging.getLogger("Pyro4.threadpool")
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.ERROR   # Pyro4's loggers are off unless configured
    try:
        with Pool() as pool:
            done = threading.Event()
            for _ in range(4):
                pool.process(lambda: (_ for _ in ()).throw(SystemExit(3)))
                assert wait_for(lambda: not pool.busy)
            pool.process(done.set)
            assert done.wait(WAIT)
            assert wait_for(lambda: not pool.busy and pool.num_workers() == 1)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        config.reset()
    assert len(records) == 4 and "unhandled exception from job in worker thread" in records[0].getMessage()


@pytest.mark.timeout(30)
def test_grows_to_its_limit_and_no_further_then_queues(pools) -> None:
    pool = make(pools, 3)
    gate, started = threading.Event(), threading.Semaphore(0)

    def job() -> None:
        started.release()
        gate.wait(WAIT)

    for _ in range(5):
        pool.submit(job)
    for _ in range(3):
        assert started.acquire(timeout=WAIT)
    stats = pool.stats()
    assert (stats["workers"], stats["busy"], stats["queued"]) == (3, 3, 2)
    assert not started.acquire(timeout=0.05)
    assert not pool.has_spare() and not pool.spare_now()    # the lock-free snapshot agrees at rest
    assert pool.busy_now() == pool.busy_count() == 3
    gate.set()
    for _ in range(2):
        assert started.acquire(timeout=WAIT)
    assert pool.wait_all_exited(WAIT)     # no minimum, no idle timeout: all leave at once
    assert pool.has_spare() and pool.spare_now() and pool.busy_now() == 0


@pytest.mark.timeout(30)
def test_process_refuses_past_the_backlog_submit_never() -> None:
    config.THREADPOOL_SIZE, config.THREADPOOL_SIZE_MIN = 1, 1
    gate = threading.Event()
    try:
        with Pool(backlog=2) as pool:
            for _ in range(3):
                pool.process(lambda: gate.wait(WAIT))
            with pytest.raises(NoFreeWorkersError):
                pool.process(gate.set)
            pool.submit(gate.set)
            assert pool.waiting == 3 and pool.active() == 4
            gate.set()
            assert wait_for(lambda: pool.active() == 0)
    finally:
        config.reset()


@pytest.mark.timeout(30)
def test_idle_workers_above_the_minimum_time_out(pools) -> None:
    pool = make(pools, 4, min_workers=1, idle_timeout=0.05)
    gate, started = threading.Event(), threading.Semaphore(0)
    for _ in range(4):
        pool.submit(lambda: (started.release(), gate.wait(WAIT)))
    for _ in range(4):
        assert started.acquire(timeout=WAIT)
    gate.set()
    assert wait_for(lambda: pool.stats()["idle"] == 4, 5.0) or pool.stats()["workers"] < 4
    assert wait_for(lambda: pool.stats()["workers"] == 1)   # the minimum stays
    time.sleep(0.15)
    assert pool.stats()["workers"] == 1 and pool.stats()["idle"] == 1


@pytest.mark.timeout(30)
@pytest.mark.parametrize("one_wakeup", [False, True])
def test_the_worker_idle_the_shortest_time_gets_the_next_job(pools, one_wakeup) -> None:
    pool = make(pools, 4, min_workers=4, one_wakeup=one_wakeup)
    assert wait_for(lambda: len(pool._sleepers) == 4)
    ran_on: List[threading.Thread] = []
    done = threading.Semaphore(0)
    for _ in range(6):
        pool.submit(lambda: (ran_on.append(threading.current_thread()), done.release()))
        assert done.acquire(timeout=WAIT)
        assert wait_for(lambda: len(pool._sleepers) == 4)
    assert len(set(ran_on)) == 1, ran_on     # a FIFO wake-up would rotate through all four


@pytest.mark.timeout(60)
@pytest.mark.parametrize("one_wakeup", [False, True])
def test_jobs_that_meet_workers_timing_out_all_run_and_gates_stay_closed(pools, one_wakeup) -> None:
    """Idle timeouts as short as the gaps between jobs: a worker is often taken off the stack just
    as its wait times out. Every job still runs exactly once, no gate is opened twice (that
    raises in the waker), the sleepers' gates are closed, and the pool serves on."""
    pool = make(pools, 3, idle_timeout=0.0005, one_wakeup=one_wakeup)
    done = threading.Semaphore(0)
    total = 0
    for burst in range(300):
        for _ in range(burst % 3 + 1):
            pool.submit(done.release)
            total += 1
        time.sleep(0.0005 * (burst % 3))
    for _ in range(total):
        assert done.acquire(timeout=WAIT)
    assert wait_for(lambda: pool.stats()["busy"] == 0)
    assert not done.acquire(False)      # no job ran twice
    with pool._lock:
        assert not any(worker.gate.acquire(False) for worker in pool._sleepers)
    pool.submit(done.release)
    assert done.acquire(timeout=WAIT)


@pytest.mark.timeout(30)
def test_close_refuses_new_jobs_and_runs_the_queued_ones(pools) -> None:
    pool = make(pools, 1)
    gate, ran = threading.Event(), []
    pool.submit(lambda: gate.wait(WAIT))
    for n in range(3):
        pool.submit(lambda n=n: ran.append(n))
    assert pool.stats()["queued"] == 3
    closer = threading.Thread(target=pool.close)
    closer.start()
    assert wait_for(lambda: pool.closed)
    with pytest.raises(RuntimeError):
        pool.submit(lambda: None)
    gate.set()
    closer.join(WAIT)
    assert wait_for(lambda: ran == [0, 1, 2])
    assert (pool.busy, pool.idle) == (set(), set())     # a closed pool counts no workers, as Pyro4's
    assert not [t for t in threading.enumerate() if t.name.startswith(pool.name + "-")] or \
        wait_for(lambda: not [t for t in threading.enumerate() if t.name.startswith(pool.name + "-")])


@pytest.mark.timeout(30)
def test_a_closed_server_pool_raises_pool_error() -> None:
    config.THREADPOOL_SIZE, config.THREADPOOL_SIZE_MIN = 2, 1
    try:
        pool = Pool()
        pool.close()
        with pytest.raises(PoolError):
            pool.process(lambda: None)
        with pytest.raises(PoolError):
            pool.submit(lambda: None)
    finally:
        config.reset()


@pytest.mark.timeout(30)
def test_a_counting_pool_marks_its_jobs_busy_for_the_spin_gate(pools) -> None:
    pool = make(pools, 2, counts_busy=True)
    seen: List[int] = []
    done = threading.Event()
    before = len(_workers.in_flight)
    pool.submit(lambda: (seen.append(len(_workers.in_flight)), done.set()))
    assert done.wait(WAIT)
    assert seen == [before + 1] and wait_for(lambda: len(_workers.in_flight) == before)


@pytest.mark.timeout(30)
def test_the_thread_server_reads_pool_counts_under_the_lock_except_its_per_request_snapshots() -> None:
    """serving_here takes the pool's lock; _linger and _may_spin (asked per request) read a snapshot."""
    config.THREADPOOL_SIZE, config.THREADPOOL_SIZE_MIN = 2, 1
    server = SocketServer_Threadpool()
    server.pool = Pool()
    try:
        locked_out, snapshots = threading.Event(), threading.Event()
        seen: List[Any] = []
        with server.pool._lock:
            reader = threading.Thread(target=lambda: (server.serving_here(), locked_out.set()))
            snapper = threading.Thread(target=lambda: (seen.append((server._linger(), server._may_spin())),
                                                       snapshots.set()))
            reader.start()
            snapper.start()
            assert snapshots.wait(WAIT)     # answered while the lock is held
            assert not locked_out.wait(0.05)
        assert locked_out.wait(WAIT)
        reader.join(WAIT)
        snapper.join(WAIT)
        assert seen[0][0] > 0 and seen[0][1]
        gate, started = threading.Event(), threading.Semaphore(0)
        for _ in range(3):      # two workers busy, one job queued: no spare worker, no spinning
            server.pool.submit(lambda: (started.release(), gate.wait(WAIT)))
        assert started.acquire(timeout=WAIT) and started.acquire(timeout=WAIT)
        assert server._linger() == 0 and not server._may_spin() and not server.serving_here()
        gate.set()
        assert wait_for(lambda: server._linger() > 0 and server._may_spin())
    finally:
        server.pool.close()
        config.reset()


@pytest.mark.timeout(30)
def test_managed_blocking_lets_queued_work_past_a_waiting_worker(pools) -> None:
    pool = make(pools, 1, hard_limit=2)
    inner_done = threading.Event()

    def outer() -> None:
        pool.submit(inner_done.set)
        with pool.blocking():
            assert inner_done.wait(WAIT)

    finished = threading.Event()
    pool.submit(lambda: (outer(), finished.set()))
    assert finished.wait(WAIT) and inner_done.is_set()


def test_bad_limits_are_refused() -> None:
    for kwargs in (dict(max_workers=0), dict(max_workers=2, min_workers=3),
                   dict(max_workers=4, hard_limit=2), dict(max_workers=1, min_workers=-1)):
        with pytest.raises(ValueError):
            _workers.WorkerPool("bad", **kwargs)
