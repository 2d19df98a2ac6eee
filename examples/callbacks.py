"""Callbacks: the client runs its own daemon so the server can call it back.

Run it with ``python examples/callbacks.py``. Two daemons run in this one process on
127.0.0.1 (random free ports): the "server" and the "client's" daemon. Exits 0 when every
step worked.
"""

from __future__ import annotations

import logging
import threading

import pyro4compat as Pyro4


@Pyro4.expose
class Server:
    def work(self, listener, items):
        """Process items, telling the client's listener about each one."""
        for item in items:
            listener.progress(item)
        try:
            listener.finished(len(items))
        except Exception as exc:
            return "listener failed: %r" % exc
        return "done"


class Listener:
    """Lives in the client; the server receives a proxy to it (AUTOPROXY) and calls it."""

    def __init__(self) -> None:
        self.items = []

    @Pyro4.expose
    def progress(self, item) -> None:
        print("client: server reports progress on", item)
        self.items.append(item)

    @Pyro4.expose
    @Pyro4.callback  # its exceptions are also logged here, where the callback ran
    def finished(self, count) -> None:
        raise ValueError("client refuses to finish after %d items" % count)


def serve(daemon) -> threading.Thread:
    thread = threading.Thread(target=daemon.requestLoop, daemon=True)
    thread.start()
    return thread


class Seen(logging.Handler):
    """Notes that a log record arrived: the callback error is logged by the client daemon's
    thread right after it replied, so the example waits for it before shutting down."""

    def __init__(self) -> None:
        super().__init__()
        self.logged = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.logged.set()


def main() -> int:
    # Show the callback's exception being logged on the client side.
    logging.basicConfig(format="client log: %(levelname)s %(name)s: %(message).60s")
    logging.getLogger("Pyro4").setLevel(logging.WARNING)
    seen = Seen()
    logging.getLogger("Pyro4").addHandler(seen)

    with Pyro4.Daemon(host="127.0.0.1") as server_daemon, Pyro4.Daemon(host="127.0.0.1") as client_daemon:
        server_uri = server_daemon.register(Server())
        listener = Listener()
        client_daemon.register(listener)  # registered: it travels as a proxy, not a copy
        serve(server_daemon)
        serve(client_daemon)

        with Pyro4.Proxy(server_uri) as server:
            answer = server.work(listener, ["a", "b", "c"])
            print("client: server answered:", answer)
        assert listener.items == ["a", "b", "c"]
        assert "client refuses to finish" in answer
        assert seen.logged.wait(5), "the callback's error was not logged"
        client_daemon.shutdown()
        server_daemon.shutdown()
    print("callbacks example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
