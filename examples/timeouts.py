"""Timeouts: don't wait forever for a slow or unreachable server.

Run it with ``python examples/timeouts.py``. Look at:

* ``proxy._pyroTimeout = seconds`` (or ``config.COMMTIMEOUT`` before creating proxies): a call
  whose answer takes longer raises ``Pyro4.errors.TimeoutError``. The proxy then drops its
  connection (the late answer must not be mistaken for the next call's), and the next call
  simply connects again;
* the same timeout bounds connecting: a server that accepts TCP connections but never answers
  the Pyro handshake (simulated with a plain listening socket) also gives ``TimeoutError``;
* ``None`` or ``0`` means no timeout at all (the default).

A daemon in a thread on 127.0.0.1. Exits 0 when every step worked.
"""

from __future__ import annotations

import socket
import threading
import time

import pyro4compat as Pyro4


@Pyro4.expose
class Slow:
    def sleep(self, seconds: float) -> str:
        time.sleep(seconds)
        return "slept %.1f s" % seconds


def main() -> int:
    with Pyro4.Daemon(host="127.0.0.1") as daemon:
        uri = daemon.register(Slow())
        threading.Thread(target=daemon.requestLoop, daemon=True).start()

        with Pyro4.Proxy(uri) as slow:
            print("default timeout:", slow._pyroTimeout)
            slow._pyroTimeout = 0.3
            print("with a 0.3 s timeout, a quick call:", slow.sleep(0.1))
            started = time.monotonic()
            try:
                slow.sleep(1.0)
            except Pyro4.errors.TimeoutError as exc:
                print("a 1 s call: TimeoutError (%s) after %.1f s" % (exc, time.monotonic() - started))
            else:
                raise AssertionError("the call should have timed out")
            answer = slow.sleep(0)
            print("the next call reconnects and works:", answer)
            assert answer == "slept 0.0 s"

        mute = socket.create_server(("127.0.0.1", 0))  # accepts connections, never says a word
        host, port = mute.getsockname()
        Pyro4.config.COMMTIMEOUT = 0.3  # the default for proxies created from now on
        with Pyro4.Proxy("PYRO:anything@%s:%d" % (host, port)) as unresponsive:
            started = time.monotonic()
            try:
                unresponsive._pyroBind()
            except Pyro4.errors.CommunicationError as exc:
                print("connecting to a mute server: %s: %s after %.1f s"
                      % (type(exc).__name__, exc, time.monotonic() - started))
            else:
                raise AssertionError("the handshake should have timed out")
        mute.close()
        daemon.shutdown()
    print("timeouts example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
