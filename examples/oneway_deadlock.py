"""Deadlock avoidance with oneway: a single-threaded server calls a client that calls it back.

Run it with ``python examples/oneway_deadlock.py``. The ``Bell`` runs on a *multiplex* daemon:
one thread serves all requests, one at a time. ``ring()`` notifies a listener, and the listener
reacts by asking the bell for its status. With a normal notification the bell's only thread is
stuck in ``ring()`` waiting for the listener, while the listener waits for the bell: a deadlock
(here the listener's proxy timeout breaks it after 0.5 s). With a *oneway* notification
``ring()`` doesn't wait for the listener, finishes, and the bell's thread is free to answer.
Everything runs in threads of this process on 127.0.0.1. Exits 0 when every step worked.
"""

from __future__ import annotations

import threading

import pyro4compat as Pyro4


@Pyro4.expose
class Bell:
    def __init__(self) -> None:
        self.rings = 0

    def ring(self, listener) -> str:
        self.rings += 1
        listener.notify(self.rings)  # a normal call waits for the listener, a oneway call doesn't
        return "rang"

    def status(self) -> str:
        return "rang %d times" % self.rings


class Listener:
    """Reacts to a notification by calling the bell again."""

    def __init__(self, bell_uri) -> None:
        self.bell_uri = bell_uri
        self.heard = []
        self.done = threading.Event()

    def react(self, rings: int) -> None:
        with Pyro4.Proxy(self.bell_uri) as bell:
            bell._pyroTimeout = 0.5  # so the deadlock shows up as an error instead of a hang
            try:
                self.heard.append(bell.status())
            except Pyro4.errors.TimeoutError as exc:
                # Handled here: a CommunicationError escaping a remote method makes the daemon
                # drop that caller's connection instead of returning the error.
                self.heard.append("no answer (%s)" % exc)
        self.done.set()


class BlockingListener(Listener):
    @Pyro4.expose
    def notify(self, rings: int) -> None:
        self.react(rings)


class OnewayListener(Listener):
    @Pyro4.expose
    @Pyro4.oneway
    def notify(self, rings: int) -> None:
        self.react(rings)


def serve(daemon) -> None:
    threading.Thread(target=daemon.requestLoop, daemon=True).start()


def main() -> int:
    Pyro4.config.SERVERTYPE = "multiplex"  # read when a daemon is created
    bell_daemon = Pyro4.Daemon(host="127.0.0.1")
    Pyro4.config.SERVERTYPE = "thread"
    listener_daemon = Pyro4.Daemon(host="127.0.0.1")
    bell_uri = bell_daemon.register(Bell())
    serve(bell_daemon)
    serve(listener_daemon)

    with Pyro4.Proxy(bell_uri) as bell:
        blocking = BlockingListener(bell_uri)
        listener_daemon.register(blocking)
        answer = bell.ring(blocking)
        print("normal callback: bell says %r, listener got %s" % (answer, blocking.heard[0]))
        assert answer == "rang" and blocking.heard == ["no answer (receiving: timeout)"]

        oneway = OnewayListener(bell_uri)
        listener_daemon.register(oneway)
        answer = bell.ring(oneway)
        print("oneway callback:", answer)
        assert oneway.done.wait(5)
        print("the listener got its answer:", oneway.heard[0])
        assert answer == "rang" and oneway.heard == ["rang 2 times"]
        assert bell.status() == "rang 2 times"

    for daemon in (bell_daemon, listener_daemon):
        daemon.shutdown()
        daemon.close()
    print("oneway deadlock example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
