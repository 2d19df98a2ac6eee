"""The ``connections`` figure set: what idle connected proxies cost a thread server.

Issue 7 items 3 and 4. The client opens a few *active* proxies first, then ``idle`` more
that only connect, and reports from ``/proc`` the server's threads and RSS, the latency of
calls on the active proxies (one client thread each) and the latency of a call made on a
proxy that has been idle (each idle proxy in turn wakes up for one call). Real Pyro4's
thread server pins one worker per connection and refuses connections past
``THREADPOOL_SIZE``; those refusals are counted, not hidden.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, List, Optional

from workloads import Job


def server_stats(pid: int) -> Dict[str, Optional[float]]:
    """Threads and resident memory (MB) of process ``pid``, from ``/proc`` (Linux only)."""
    stats: Dict[str, Optional[float]] = {"threads": None, "rss_mb": None}
    try:
        with open("/proc/%d/status" % pid) as status:
            for line in status:
                if line.startswith("Threads:"):
                    stats["threads"] = float(line.split()[1])
                elif line.startswith("VmRSS:"):
                    stats["rss_mb"] = int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return stats


def _percentile(values: List[float], fraction: float) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _active_latencies(proxies: List[Any], duration: float) -> Dict[str, Any]:
    """Each active proxy calls from its own thread for ``duration``; latencies in µs."""
    samples: List[List[float]] = [[] for _ in proxies]
    barrier = threading.Barrier(len(proxies))

    def worker(index: int) -> None:
        add, mine, clock = proxies[index].add, samples[index], time.perf_counter
        barrier.wait()
        deadline = clock() + duration
        while True:
            before = clock()
            add(1, 2)
            after = clock()
            mine.append((after - before) * 1e6)
            if after >= deadline:
                return

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(proxies))]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    flat = [value for chunk in samples for value in chunk]
    return {"active_calls_per_s": len(flat) / seconds, "active_p50_us": _percentile(flat, 0.5),
            "active_p99_us": _percentile(flat, 0.99)}


def _wake_latencies(proxies: List[Any], duration: float) -> Dict[str, Any]:
    """One call on each idle proxy in turn (until ``duration``, at least one round of 50)."""
    latencies: List[float] = []
    clock = time.perf_counter
    deadline = clock() + duration
    for proxy in proxies:
        before = clock()
        proxy.add(1, 2)
        latencies.append((clock() - before) * 1e6)
        if len(latencies) >= 50 and clock() >= deadline:
            break
    return {"wake_p50_us": _percentile(latencies, 0.5), "wake_p99_us": _percentile(latencies, 0.99),
            "woken": len(latencies)}


def connections(pyro: Any, job: Job) -> Dict[str, Any]:
    params = job["params"]
    pid = job["server_pid"]
    result: Dict[str, Any] = {"idle_wanted": params["idle"]}
    base = server_stats(pid)
    active = [pyro.Proxy(job["uri"]) for _ in range(params["active"])]
    for proxy in active:
        proxy.add(1, 2)
    with_active = server_stats(pid)
    idle: List[Any] = []
    refused = 0
    for _ in range(params["idle"]):
        proxy = pyro.Proxy(job["uri"])
        try:
            proxy._pyroBind()
        except pyro.errors.CommunicationError:
            refused += 1
            continue
        idle.append(proxy)
    for proxy in active:
        proxy.add(1, 2)  # the server has taken in every connection by now
    loaded = server_stats(pid)
    result.update(_active_latencies(active, job["duration"]))
    result.update(_wake_latencies(idle, job["duration"]))
    after = server_stats(pid)
    result.update({
        "idle_connected": len(idle), "refused": refused,
        "threads_base": base["threads"], "threads_idle": loaded["threads"],
        "threads_after_wakes": after["threads"],
        "rss_base_mb": base["rss_mb"], "rss_idle_mb": loaded["rss_mb"], "rss_after_mb": after["rss_mb"],
        "kb_per_idle": (((loaded["rss_mb"] or 0) - (with_active["rss_mb"] or 0)) * 1024 / len(idle)
                        if idle else None),
    })
    for proxy in active + idle:
        proxy._pyroRelease()
    result.update({"ops": 1, "seconds": 1.0})
    return result
