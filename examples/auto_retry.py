"""Auto-retry: with ``config.MAX_RETRIES`` a proxy silently retries a call when the connection drops.

Run it with ``python examples/auto_retry.py``. The server's ``flaky_increment`` drops the
client's connection after doing its work, once: the reply never arrives. A proxy with
``MAX_RETRIES = 0`` (the default) reports ``ConnectionClosedError``; a proxy built while
``MAX_RETRIES = 2`` reconnects and sends the call again, and the caller sees a normal result.

Look at the counter at the end: the retried call ran *twice* on the server. Pyro can't know
whether a lost call was executed, so only enable retries for calls that are safe to repeat
(idempotent ones). Exits 0 when every step worked.
"""

from __future__ import annotations

import threading

import pyro4compat as Pyro4


@Pyro4.expose
@Pyro4.behavior(instance_mode="single")
class Counter:
    def __init__(self) -> None:
        self.value = 0
        self.drop_next_reply = False

    def arm(self) -> None:
        """Make the next flaky_increment lose its reply."""
        self.drop_next_reply = True

    def flaky_increment(self) -> int:
        self.value += 1  # the work is done...
        if self.drop_next_reply:
            self.drop_next_reply = False
            Pyro4.current_context.client.close()  # ...but the connection dies before the reply
        return self.value

    def current(self) -> int:
        return self.value


def main() -> int:
    with Pyro4.Daemon(host="127.0.0.1") as daemon:
        uri = daemon.register(Counter, objectId="example.counter")
        threading.Thread(target=daemon.requestLoop, daemon=True).start()

        # MAX_RETRIES is read when a proxy is created.
        Pyro4.config.MAX_RETRIES = 0
        with Pyro4.Proxy(uri) as no_retry:
            no_retry.arm()
            try:
                no_retry.flaky_increment()
            except Pyro4.errors.ConnectionClosedError as exc:
                print("without retries the caller sees:", type(exc).__name__, "-", exc)
            else:
                raise AssertionError("the dropped reply should have been an error")
            print("counter on the server:", no_retry.current())  # a new connection is made
            assert no_retry.current() == 1

        Pyro4.config.MAX_RETRIES = 2
        with Pyro4.Proxy(uri) as retrying:
            retrying.arm()
            result = retrying.flaky_increment()  # first attempt lost, second one answers
            print("with MAX_RETRIES=2 the call returned:", result)
            total = retrying.current()
            print("counter on the server: %d (the retried call ran twice!)" % total)
            assert (result, total) == (3, 3)
        daemon.shutdown()
    print("auto-retry example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
