"""Proxy sharing between threads: one proxy serves many threads, but one call at a time.

Run it with ``python examples/proxy_sharing.py``. A Pyro4 proxy owns one connection, and a
lock makes its calls take turns: sharing it between threads is safe, but their calls run one
after the other. Threads that need to call *in parallel* each take their own proxy, for example
a copy: ``copy.copy(proxy)`` gives an unconnected proxy for the same URI. Four threads make a
0.2 s call each, first through one shared proxy, then through one proxy each. A daemon (thread
pool server) in a thread on 127.0.0.1. Exits 0 when every step worked.
"""

from __future__ import annotations

import copy
import threading
import time

import pyro4compat as Pyro4


@Pyro4.expose
class Slow:
    def work(self, who: str) -> str:
        time.sleep(0.2)
        return who + " done"


def run_threads(proxies) -> tuple:
    results = []
    lock = threading.Lock()

    def call(index: int, proxy) -> None:
        answer = proxy.work("thread %d" % index)
        with lock:
            results.append(answer)

    threads = [threading.Thread(target=call, args=(i, proxy)) for i, proxy in enumerate(proxies)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return sorted(results), time.monotonic() - started


def main() -> int:
    with Pyro4.Daemon(host="127.0.0.1") as daemon:
        uri = daemon.register(Slow())
        threading.Thread(target=daemon.requestLoop, daemon=True).start()
        expected = ["thread %d done" % i for i in range(4)]

        with Pyro4.Proxy(uri) as shared:
            results, shared_time = run_threads([shared] * 4)
            print("one shared proxy:     %s in %.2f s (calls took turns)" % (results, shared_time))
            assert results == expected and shared_time >= 0.75

            own = [copy.copy(shared) for _ in range(4)]
            results, own_time = run_threads(own)
            print("a proxy per thread:   %s in %.2f s (in parallel)" % (results, own_time))
            assert results == expected and own_time < shared_time
            for proxy in own:
                proxy._pyroRelease()
        daemon.shutdown()
    print("proxy sharing example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
