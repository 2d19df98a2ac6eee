"""Oneway calls: fire and forget. The client doesn't wait for the method, nor for a result.

Run it with ``python examples/oneway.py``. Look at:

* ``@Pyro4.oneway`` on a server method: every call of it returns at once, with ``None``;
  the server runs it in a thread of its own (config ``ONEWAY_THREADED``, on by default), so
  the *same* client can go on calling other methods while it runs;
* ``proxy._pyroOneway.add("name")``: the client decides to make a normal method oneway;
* errors in a oneway method never reach the client (there is no reply to carry them); in the
  server they end the oneway call's thread, so they show up through ``threading.excepthook``.

A daemon in a thread on 127.0.0.1. Exits 0 when every step worked.
"""

from __future__ import annotations

import threading
import time

import pyro4compat as Pyro4


@Pyro4.expose
class Mailer:
    def __init__(self) -> None:
        self.sent = []
        self.all_sent = threading.Event()

    @Pyro4.oneway
    def send_newsletter(self, recipients: list) -> None:
        for recipient in recipients:
            time.sleep(0.1)  # slow work the client doesn't want to wait for
            self.sent.append(recipient)
        self.all_sent.set()

    def status(self) -> str:
        return "%d sent" % len(self.sent)

    def log(self, line: str) -> str:
        time.sleep(0.3)
        return "logged " + line

    @Pyro4.oneway
    def broken(self) -> None:
        raise RuntimeError("nobody will hear about this")


def main() -> int:
    server_errors = []
    failed = threading.Event()

    def thread_failed(args) -> None:  # where the server sees a failing oneway call
        server_errors.append(args.exc_value)
        failed.set()

    threading.excepthook = thread_failed
    mailer = Mailer()
    with Pyro4.Daemon(host="127.0.0.1") as daemon:
        uri = daemon.register(mailer)
        threading.Thread(target=daemon.requestLoop, daemon=True).start()

        with Pyro4.Proxy(uri) as proxy:
            proxy._pyroBind()  # connect (and fetch metadata) first, so only the call is timed
            started = time.monotonic()
            result = proxy.send_newsletter(["ann", "bob", "cyd", "dan", "eve"])
            took = time.monotonic() - started
            print("oneway call returned %r after %.3f s (the work takes 0.5 s)" % (result, took))
            assert result is None and took < 0.4
            print("meanwhile, on the same connection:", proxy.status())

            assert mailer.all_sent.wait(5)
            print("later:", proxy.status())
            assert proxy.status() == "5 sent"

            proxy._pyroOneway.add("log")  # client-side choice
            started = time.monotonic()
            assert proxy.log("hello") is None
            print("log() made oneway by the client: returned after %.3f s" % (time.monotonic() - started))
            proxy._pyroOneway.discard("log")
            print("and normal again:", proxy.log("bye"))

            assert proxy.broken() is None
            print("a failing oneway call: the client got None and no exception")
            assert failed.wait(5)
            print("the server's thread hook saw:", repr(server_errors[0]))
        daemon.shutdown()
    print("oneway example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
