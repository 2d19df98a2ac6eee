"""Instance modes: when you register a *class*, Pyro decides when to create its instances.

Run it with ``python examples/instance_modes.py``. ``@Pyro4.behavior(instance_mode=...)``:

* ``"session"`` (the default): one instance per client connection (per proxy);
* ``"single"``: one instance for everybody, created on first use;
* ``"percall"``: a fresh instance for every single call;
* ``instance_creator=f``: Pyro calls ``f(cls)`` instead of ``cls()`` to make one.

Each class counts how many times it was instantiated and the calls its instance has seen. Two
proxies make three calls each. A daemon in a thread on 127.0.0.1. Exits 0 when every step worked.
"""

from __future__ import annotations

import itertools
import threading

import pyro4compat as Pyro4


class Counting:
    created = None  # each subclass gets its own counter

    def __init__(self) -> None:
        self.instance_number = next(type(self).created)
        self.calls = 0

    @Pyro4.expose
    def visit(self) -> str:
        self.calls += 1
        return "instance %d, call %d" % (self.instance_number, self.calls)


@Pyro4.behavior(instance_mode="session")
class PerSession(Counting):
    created = itertools.count(1)


@Pyro4.behavior(instance_mode="single")
class Shared(Counting):
    created = itertools.count(1)


@Pyro4.behavior(instance_mode="percall")
class PerCall(Counting):
    created = itertools.count(1)


def make_configured(cls):
    """An instance creator: build the instance the way your application needs."""
    instance = cls()
    instance.calls = 100  # e.g. restore state, inject a database handle, ...
    return instance


@Pyro4.behavior(instance_mode="single", instance_creator=make_configured)
class Created(Counting):
    created = itertools.count(1)


def main() -> int:
    expected = {
        PerSession: ["instance 1, call 1", "instance 1, call 2", "instance 1, call 3",
                     "instance 2, call 1", "instance 2, call 2", "instance 2, call 3"],
        Shared: ["instance 1, call 1", "instance 1, call 2", "instance 1, call 3",
                 "instance 1, call 4", "instance 1, call 5", "instance 1, call 6"],
        PerCall: ["instance 1, call 1", "instance 2, call 1", "instance 3, call 1",
                  "instance 4, call 1", "instance 5, call 1", "instance 6, call 1"],
        Created: ["instance 1, call 101", "instance 1, call 102", "instance 1, call 103",
                  "instance 1, call 104", "instance 1, call 105", "instance 1, call 106"],
    }
    with Pyro4.Daemon(host="127.0.0.1") as daemon:
        uris = {cls: daemon.register(cls) for cls in expected}  # classes, not instances
        threading.Thread(target=daemon.requestLoop, daemon=True).start()

        for cls, wanted in expected.items():
            answers = []
            for _client in range(2):
                with Pyro4.Proxy(uris[cls]) as proxy:  # a new proxy: a new connection, a new session
                    answers.extend(proxy.visit() for _ in range(3))
            print("%-10s %s" % (cls.__name__ + ":", "; ".join(answers)))
            assert answers == wanted, answers
        daemon.shutdown()
    print("instance modes example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
