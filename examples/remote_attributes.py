"""Remote attributes: read and write exposed properties through a proxy as if they were local.

Run it with ``python examples/remote_attributes.py``. A daemon serves a ``Thermostat`` from a
thread on 127.0.0.1 (random free port). Look at how ``proxy.target = 21`` calls the property
setter on the server, how a read-only property refuses writes, and how attributes that are
not exposed properties stay invisible. Exits 0 when every step worked.
"""

from __future__ import annotations

import threading

import pyro4compat as Pyro4


@Pyro4.expose  # exposing the class exposes its public methods *and* its properties
class Thermostat:
    def __init__(self) -> None:
        self._target = 19.5
        self.secret_offset = 0.3  # a plain instance attribute: never reachable remotely

    @property
    def target(self) -> float:
        return self._target

    @target.setter
    def target(self, value: float) -> None:
        if not 5 <= value <= 30:
            raise ValueError("target out of range: %r" % value)
        self._target = value

    @property
    def reading(self) -> float:  # no setter: read-only for remote clients too
        return self._target - self.secret_offset

    def describe(self) -> str:
        return "target %.1f, reading %.1f" % (self._target, self.reading)


def main() -> int:
    with Pyro4.Daemon(host="127.0.0.1") as daemon:
        uri = daemon.register(Thermostat())
        threading.Thread(target=daemon.requestLoop, daemon=True).start()

        with Pyro4.Proxy(uri) as thermostat:
            # The first attribute access fetches the object's metadata: which names are
            # methods, which are oneway, which are attributes (properties).
            print("remote attribute target =", thermostat.target)
            thermostat.target = 21  # a remote call of the property setter
            print("after setting it to 21:", thermostat.describe())
            assert thermostat.target == 21
            assert sorted(thermostat._pyroAttrs) == ["reading", "target"]
            print("attributes the proxy knows about:", sorted(thermostat._pyroAttrs))

            try:
                thermostat.target = 99  # the setter's own exception travels back
            except ValueError as exc:
                print("setter refused:", exc)
            else:
                raise AssertionError("the setter should have refused 99")

            try:
                thermostat.reading = 1.0
            except AttributeError as exc:
                print("read-only property:", exc)
            else:
                raise AssertionError("a property without setter must not be writable")

            try:
                thermostat.secret_offset
            except AttributeError as exc:
                print("plain instance attributes are not remote attributes:", exc)
            else:
                raise AssertionError("secret_offset must stay hidden")
        daemon.shutdown()
    print("remote attributes example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
