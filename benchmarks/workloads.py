"""The client side of every figure, written once and parametrised by the library module.

Each workload is ``fn(pyro, job) -> dict`` with at least ``ops`` (operations done),
``seconds`` (wall time of the timed part) and ``scale`` (how many units one op counts for:
1 for calls, megabytes for the echo figures). ``job`` is the plain dict the orchestrator
sends: ``uri``, ``ns_uri``, ``duration``, ``min_ops``, ``server_pid`` and ``params``.
Proxies are made before the clock starts and warmed up with one call, so a figure measures
the steady state it names, not connection setup (except ``connect``, which measures it).
"""

from __future__ import annotations

import marshal
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from service import nested_payload

Job = Dict[str, Any]
BATCH_SIZE = 1000
TEN_MB = 10 * 1000 * 1000


def timed_loop(duration: float, min_ops: int, step: Callable[[], int]) -> Tuple[int, float]:
    """Run ``step`` (which returns how many ops it did) until both limits are reached."""
    ops = 0
    clock = time.perf_counter
    start = clock()
    deadline = start + duration
    while True:
        ops += step()
        now = clock()
        if ops >= min_ops and now >= deadline:
            return ops, now - start


def _proxy(pyro: Any, job: Job) -> Any:
    proxy = pyro.Proxy(job["uri"])
    proxy.add(1, 2)  # connect + warm up outside the timed part
    return proxy


def small_calls(pyro: Any, job: Job) -> Dict[str, Any]:
    with _proxy(pyro, job) as proxy:
        add = proxy.add

        def step() -> int:
            for _ in range(20):
                add(1, 2)
            return 20
        ops, seconds = timed_loop(job["duration"], job["min_ops"], step)
    return {"ops": ops, "seconds": seconds}


def oneway(pyro: Any, job: Job) -> Dict[str, Any]:
    """Oneway calls, closed by one ordinary call so the server has read them all."""
    with _proxy(pyro, job) as proxy:
        note = proxy.note
        start = time.perf_counter()

        def step() -> int:
            for _ in range(20):
                note(1)
            return 20
        ops, _ = timed_loop(job["duration"], job["min_ops"], step)
        proxy.notes_seen()
        seconds = time.perf_counter() - start
    return {"ops": ops, "seconds": seconds}


def batch(pyro: Any, job: Job) -> Dict[str, Any]:
    with _proxy(pyro, job) as proxy:
        def step() -> int:
            calls = pyro.batch(proxy)
            for _ in range(BATCH_SIZE):
                calls.add(1, 2)
            for _ in calls():
                pass
            return BATCH_SIZE
        ops, seconds = timed_loop(job["duration"], job["min_ops"], step)
    return {"ops": ops, "seconds": seconds}


def _echo(pyro: Any, job: Job, payload: Any, megabytes: float) -> Dict[str, Any]:
    with pyro.Proxy(job["uri"]) as proxy:
        proxy._pyroBind()
        echo = proxy.echo
        echo(payload)  # warm up: buffers, serializer caches

        def step() -> int:
            echo(payload)
            return 1
        ops, seconds = timed_loop(job["duration"], job["min_ops"], step)
    return {"ops": ops, "seconds": seconds, "scale": megabytes}


def bytes_10mb(pyro: Any, job: Job) -> Dict[str, Any]:
    """Throughput counts the payload once per echo (10 MB up and 10 MB back = 10 MB)."""
    return _echo(pyro, job, b"\x5a" * TEN_MB, TEN_MB / 1e6)


_NESTED: List[Any] = []


def nested_1mb(pyro: Any, job: Job) -> Dict[str, Any]:
    """MB/s of a ~1 MB (marshal size) structure of dicts, lists, strings and numbers."""
    if not _NESTED:
        _NESTED.append(nested_payload())
    return _echo(pyro, job, _NESTED[0], len(marshal.dumps(_NESTED[0])) / 1e6)


def threads4(pyro: Any, job: Job, count: int = 4) -> Dict[str, Any]:
    """``count`` client threads, each with its own proxy; total calls/s."""
    proxies = [_proxy(pyro, job) for _ in range(count)]
    ready = threading.Barrier(count + 1)
    results: List[Optional[Tuple[int, float]]] = [None] * count
    errors: List[BaseException] = []

    def worker(index: int) -> None:
        add = proxies[index].add

        def step() -> int:
            for _ in range(10):
                add(1, 2)
            return 10
        ready.wait()
        try:
            results[index] = timed_loop(job["duration"], job["min_ops"] // count, step)
        except BaseException as exc:  # reported, not swallowed
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    start = time.perf_counter()
    ready.wait()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    for proxy in proxies:
        proxy._pyroRelease()
    if errors:
        raise errors[0]
    return {"ops": sum(r[0] for r in results if r), "seconds": seconds}


def many_clients(pyro: Any, job: Job) -> Dict[str, Any]:
    """One of several client processes: ``threads`` threads, a proxy each, calling ``echo(1)``.

    Every proxy connects and makes one call first; then all threads call from the wall-clock
    time ``start_at`` until ``start_at + duration`` (the same window in every process, set by
    the orchestrator, which reads the server's CPU time at both ends). Calls that end inside
    the window count. ``late`` says how long after ``start_at`` this process was ready.
    """
    params = job["params"]
    count, start_at = params["threads"], params["start_at"]
    end_at = start_at + job["duration"]
    ready = threading.Barrier(count + 1)
    calls = [0] * count
    errors: List[BaseException] = []

    def worker(index: int) -> None:
        try:
            proxy = _proxy(pyro, job)
        except BaseException as exc:  # reported, not swallowed
            errors.append(exc)
            ready.abort()
            return
        echo, clock, done = proxy.echo, time.time, 0
        try:
            ready.wait()
            time.sleep(max(0.0, start_at - clock()))
            while True:
                echo(1)
                if clock() >= end_at:
                    break
                done += 1
            calls[index] = done
        except BaseException as exc:
            errors.append(exc)
        finally:
            proxy._pyroRelease()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    try:
        ready.wait()
    except threading.BrokenBarrierError:
        pass
    late = max(0.0, time.time() - start_at)
    time.sleep(max(0.0, start_at - time.time()))
    cpu_before = time.process_time()
    for thread in threads:
        thread.join()
    cpu = time.process_time() - cpu_before
    if errors:
        raise errors[0]
    return {"ops": sum(calls), "seconds": job["duration"], "late": late, "window_cpu": cpu}


def connect(pyro: Any, job: Job) -> Dict[str, Any]:
    """New proxy + one call + release, per second."""
    uri = pyro.URI(job["uri"])

    def step() -> int:
        with pyro.Proxy(uri) as proxy:
            proxy.add(1, 2)
        return 1
    step()
    ops, seconds = timed_loop(job["duration"], job["min_ops"], step)
    return {"ops": ops, "seconds": seconds}


def iterator(pyro: Any, job: Job) -> Dict[str, Any]:
    """Items/s of a remote generator (Pyro4 streams it: one round trip per item)."""
    with _proxy(pyro, job) as proxy:
        items = proxy.numbers()
        next(items)

        def step() -> int:
            for _ in range(20):
                next(items)
            return 20
        ops, seconds = timed_loop(job["duration"], job["min_ops"], step)
        items.close()
    return {"ops": ops, "seconds": seconds}


def _ns(pyro: Any, job: Job) -> Any:
    ns = pyro.Proxy(job["ns_uri"])
    ns.ping()
    return ns


def ns_register(pyro: Any, job: Job) -> Dict[str, Any]:
    """Registrations/s, cycling over 1,000 names (later rounds replace earlier entries)."""
    with _ns(pyro, job) as ns:
        counter = [0]

        def step() -> int:
            base = counter[0]
            for i in range(10):
                ns.register("bench.reg.%d" % ((base + i) % 1000), job["uri"])
            counter[0] = base + 10
            return 10
        ops, seconds = timed_loop(job["duration"], job["min_ops"], step)
    return {"ops": ops, "seconds": seconds}


def ns_lookup(pyro: Any, job: Job) -> Dict[str, Any]:
    with _ns(pyro, job) as ns:
        ns.register("bench.lookup", job["uri"])

        def step() -> int:
            for _ in range(10):
                ns.lookup("bench.lookup")
            return 10
        ops, seconds = timed_loop(job["duration"], job["min_ops"], step)
    return {"ops": ops, "seconds": seconds}


WORKLOADS: Dict[str, Callable[[Any, Job], Dict[str, Any]]] = {
    "small_calls": small_calls, "oneway": oneway, "batch": batch, "bytes_10mb": bytes_10mb,
    "nested_1mb": nested_1mb, "threads4": threads4, "connect": connect, "iterator": iterator,
    "ns_register": ns_register, "ns_lookup": ns_lookup, "many_clients": many_clients,
}
