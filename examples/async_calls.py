"""Asynchronous proxies: calls return FutureResults at once; chain follow-up work with then().

Run it with ``python examples/async_calls.py``. Everything runs in this process on 127.0.0.1
with a random free port. Exits 0 when every step worked.
"""

from __future__ import annotations

import threading
import time

import pyro4compat as Pyro4


@Pyro4.expose
class Oven:
    def bake(self, what: str, seconds: float) -> str:
        time.sleep(seconds)  # the slow work the client doesn't want to wait for
        return "baked " + what

    def burn(self, what: str) -> None:
        raise RuntimeError("the %s caught fire" % what)


def main() -> int:
    with Pyro4.Daemon(host="127.0.0.1") as daemon:
        uri = daemon.register(Oven())
        threading.Thread(target=daemon.requestLoop, daemon=True).start()

        with Pyro4.Proxy(uri) as oven:
            Pyro4.asyncproxy(oven)  # or oven._pyroAsync(); only this proxy becomes asynchronous

            # Each call returns at once; each runs on its own connection in the background.
            started = time.monotonic()
            cakes = [oven.bake("cake %d" % i, 0.3) for i in range(5)]
            print("5 calls started in %.3f s; first ready? %s" % (time.monotonic() - started, cakes[0].ready))

            # wait(timeout) tells whether the result arrived in time; value blocks until it is there.
            print("ready within 0.01 s?", cakes[0].wait(0.01))
            print([cake.value for cake in cakes])
            print("all 5 took %.2f s together (not 1.5 s)" % (time.monotonic() - started))

            # then() chains more work on the result, in the background too.
            label = oven.bake("bread", 0.1).then(str.upper).then(lambda text, suffix: text + suffix, "!")
            print("chained:", label.value)

            # iferror() gets the exception; reading value raises it.
            problems = []
            burnt = oven.burn("pizza").iferror(problems.append)
            burnt.wait(5)
            print("error handler got:", repr(problems[0]))
            try:
                burnt.value
            except RuntimeError as exc:
                print("value raised:", exc)

            oven._pyroAsync(False)  # back to normal calls
            print("synchronous again:", oven.bake("cookie", 0))
        daemon.shutdown()
    print("async example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
