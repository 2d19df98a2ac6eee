"""Batched calls: record many calls, send them in one message, get the results in order.

Run it with ``python examples/batch.py``. A daemon thread serves a calculator on 127.0.0.1
(random free port); the main thread is the client. Exits 0 when every step worked.
"""

from __future__ import annotations

import threading

import pyro4compat as Pyro4


@Pyro4.expose
class Calculator:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.log = []

    def multiply(self, a: float, b: float) -> float:
        self.log.append(("multiply", a, b))
        return a * b

    def divide(self, a: float, b: float) -> float:
        self.log.append(("divide", a, b))
        return a / b  # dividing by zero raises: the batch stops there

    def remember(self, text: str) -> None:
        self.log.append(("remember", text))
        self.done.set()


def main() -> int:
    calculator = Calculator()
    with Pyro4.Daemon(host="127.0.0.1") as daemon:
        uri = daemon.register(calculator)
        threading.Thread(target=daemon.requestLoop, daemon=True).start()

        with Pyro4.Proxy(uri) as proxy:
            # 1. Record calls on the batch adapter; nothing is sent yet.
            batch = Pyro4.batch(proxy)
            for i in range(1, 6):
                batch.multiply(i, 10)
            # 2. Calling the adapter sends them all in one message; results come back in order.
            results = list(batch())
            print("batch results:", results)
            assert results == [10, 20, 30, 40, 50]

            # 3. An exception stops the batch on the server; the generator re-raises it when reached.
            batch.divide(1, 4)
            batch.divide(1, 0)
            batch.multiply(2, 2)  # never runs
            calculator.log.clear()
            results = batch()
            print("first result:", next(results))
            try:
                next(results)
            except ZeroDivisionError as exc:
                print("the batch stopped at:", repr(exc))
            assert [entry[0] for entry in calculator.log] == ["divide", "divide"]

            # 4. oneway=True: fire and forget, no results at all.
            batch.remember("sent as a oneway batch")
            assert batch(oneway=True) is None
            calculator.done.wait(5)
            print("server got:", calculator.log[-1])

            # 5. asynchronous=True: a FutureResult whose value is the results generator.
            batch.multiply(6, 7)
            future = batch(asynchronous=True)
            print("asynchronous batch results:", list(future.value))
        daemon.shutdown()
    print("batch example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
