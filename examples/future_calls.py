"""Futures: run any callable in the background with ``Pyro4.Future``, chain, delay or cancel it.

Run it with ``python examples/future_calls.py``. ``Pyro4.Future(f)`` wraps a callable (here:
remote methods, but any function works); calling the Future starts it in the background and
returns a ``FutureResult`` at once. Look at:

* ``then(g, *args)``: g(previous result, *args) runs after f, on the same background worker;
* ``iferror(handler)``: the handler gets the exception; ``result.value`` raises it too;
* ``delay(seconds)``: start later; ``cancel()``: don't start at all (only before it started);
* ``FutureResult.then``: chain more work onto a result that is already on its way.

A daemon in a thread on 127.0.0.1. Exits 0 when every step worked.
"""

from __future__ import annotations

import threading
import time

import pyro4compat as Pyro4


@Pyro4.expose
class Weather:
    def temperature(self, city: str) -> float:
        time.sleep(0.2)  # a slow lookup
        return {"Amsterdam": 11.5, "Lisbon": 19.0}[city]  # unknown cities raise KeyError


def main() -> int:
    with Pyro4.Daemon(host="127.0.0.1") as daemon:
        uri = daemon.register(Weather())
        threading.Thread(target=daemon.requestLoop, daemon=True).start()

        with Pyro4.Proxy(uri) as weather:
            to_fahrenheit = Pyro4.Future(weather.temperature)
            to_fahrenheit.then(lambda celsius: celsius * 9 / 5 + 32).then(round, 1)
            started = time.monotonic()
            result = to_fahrenheit("Lisbon")
            print("future started; returned after %.2f s, ready: %s" % (time.monotonic() - started, result.ready))
            print("Lisbon in Fahrenheit:", result.value)
            assert result.value == 66.2

            errors = []
            failing = Pyro4.Future(weather.temperature).iferror(errors.append)
            bad = failing("Atlantis")
            bad.wait(5)
            print("iferror handler got:", repr(errors[0]))
            try:
                bad.value
            except KeyError:
                print("and reading value raised KeyError too")
            else:
                raise AssertionError("value should raise the remote KeyError")

            with Pyro4.Proxy(uri) as other:  # a second proxy: the two can run at the same time
                later = Pyro4.Future(other.temperature)
                later.delay(0.3)
                started = time.monotonic()
                delayed = later("Amsterdam")
                assert delayed.value == 11.5
                took = time.monotonic() - started
                print("delayed by 0.3 s, then a 0.2 s call: value after %.2f s" % took)
                assert took >= 0.5

            never = Pyro4.Future(weather.temperature)
            never.delay(10)
            pending = never("Amsterdam")
            print("cancel a pending future:", never.cancel())
            try:
                pending.value
            except RuntimeError as exc:
                print("its result says:", exc)
            else:
                raise AssertionError("a cancelled future should not produce a value")

            chained = Pyro4.Future(weather.temperature)("Amsterdam").then(lambda t: "%.1f degrees" % t)
            print("FutureResult.then:", chained.value)
            assert chained.value == "11.5 degrees"
        daemon.shutdown()
    print("futures example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
