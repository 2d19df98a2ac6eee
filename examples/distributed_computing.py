"""Distributed computing: a dispatcher hands out work items; any number of workers process them.

Run it with ``python examples/distributed_computing.py``. The ``Dispatcher`` is one shared
object holding two queues: work to do and results. Workers (threads here; in real life, processes
on other machines with the dispatcher's URI) pull an item, compute, and push the result back;
the client puts the work in and collects the results. Nobody needs to know how many workers
there are, and a fast worker simply takes more items. The work: factorize some integers.
Exits 0 when every step worked.
"""

from __future__ import annotations

import collections
import queue
import threading

import pyro4compat as Pyro4


@Pyro4.expose
@Pyro4.behavior(instance_mode="single")
class Dispatcher:
    def __init__(self) -> None:
        self.work = queue.Queue()
        self.results = queue.Queue()

    def put_work(self, item) -> None:
        self.work.put(item)

    def get_work(self, timeout: float = 0.2):
        """The next work item, or None when there was none for `timeout` seconds."""
        try:
            return self.work.get(timeout=timeout)
        except queue.Empty:
            return None

    def put_result(self, item) -> None:
        self.results.put(item)

    def get_result(self, timeout: float = 5):
        return self.results.get(timeout=timeout)


def factorize(n: int) -> list:
    factors, divisor = [], 2
    while divisor * divisor <= n:
        while n % divisor == 0:
            factors.append(divisor)
            n //= divisor
        divisor += 1
    return factors + ([n] if n > 1 else [])


def worker(name: str, dispatcher_uri, stop: threading.Event) -> None:
    with Pyro4.Proxy(dispatcher_uri) as dispatcher:  # each worker its own proxy (connection)
        while not stop.is_set():
            item = dispatcher.get_work()
            if item is not None:
                item["factors"] = factorize(item["number"])
                item["worker"] = name
                dispatcher.put_result(item)


def main() -> int:
    with Pyro4.Daemon(host="127.0.0.1") as daemon:
        uri = daemon.register(Dispatcher, objectId="example.dispatcher")
        threading.Thread(target=daemon.requestLoop, daemon=True).start()

        stop = threading.Event()
        workers = [threading.Thread(target=worker, args=("worker-%d" % i, uri, stop)) for i in range(3)]
        for thread in workers:
            thread.start()

        numbers = [2 ** 31 - 1, 600851475143, 9999991 * 7, 1234567890, 97 * 89 * 83, 3 ** 7 * 11, 4294967297, 360]
        with Pyro4.Proxy(uri) as dispatcher:
            for number in numbers:
                dispatcher.put_work({"number": number})
            results = [dispatcher.get_result() for _ in numbers]
        stop.set()
        for thread in workers:
            thread.join(5)

        for result in sorted(results, key=lambda r: r["number"]):
            print("%15d = %-28s (by %s)" % (result["number"], " x ".join(map(str, result["factors"])),
                                             result["worker"]))
        for result in results:
            product = 1
            for factor in result["factors"]:
                product *= factor
            assert product == result["number"]
        assert sorted(r["number"] for r in results) == sorted(numbers)
        print("items per worker:", dict(sorted(collections.Counter(r["worker"] for r in results).items())))
        daemon.shutdown()
    print("distributed computing example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
