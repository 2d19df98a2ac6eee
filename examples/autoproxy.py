"""Autoproxy: a server method returns a *registered* object and the client gets a proxy to it.

Run it with ``python examples/autoproxy.py``. A ``Factory`` creates ``Car`` objects, registers
each one in its daemon and returns it. Because the car is registered, Pyro replaces it by a
proxy on the way out (config ``AUTOPROXY``, on by default): the client drives the very car that
lives in the server. An unregistered object would have to travel as a copy, which serpent only
does for classes it knows (see serialization_hooks.py): here the client gets a SerializeError.
Exits 0 when every step worked.
"""

from __future__ import annotations

import threading

import pyro4compat as Pyro4


@Pyro4.expose
class Car:
    __module__ = "garage"  # as if it lived in a module the client doesn't have

    def __init__(self, name: str) -> None:
        self.name = name
        self.odometer = 0

    def drive(self, km: int) -> str:
        self.odometer += km
        return "%s has driven %d km in total" % (self.name, self.odometer)


@Pyro4.expose
class Factory:
    def __init__(self) -> None:
        self.built = []

    def build(self, name: str) -> Car:
        car = Car(name)
        self._pyroDaemon.register(car)  # registered: it will leave this method as a proxy
        self.built.append(car)
        return car

    def brochure(self, name: str) -> Car:
        return Car(name)  # not registered: would have to travel as a copy

    def odometers(self):
        return {car.name: car.odometer for car in self.built}


def main() -> int:
    with Pyro4.Daemon(host="127.0.0.1") as daemon:
        uri = daemon.register(Factory())
        threading.Thread(target=daemon.requestLoop, daemon=True).start()

        with Pyro4.Proxy(uri) as factory:
            car = factory.build("beetle")
            print("client received:", type(car).__name__, car._pyroUri)
            assert isinstance(car, Pyro4.Proxy)
            print(car.drive(10))
            print(car.drive(32))
            # The server's own Car object changed: the calls went to it, not to a copy.
            odometers = factory.odometers()
            print("odometers on the server:", odometers)
            assert odometers == {"beetle": 42}

            try:
                factory.brochure("mini")
            except Pyro4.errors.SerializeError as exc:
                print("an unregistered Car can't come back as a proxy:", exc)
            else:
                raise AssertionError("serpent should not know how to rebuild a garage.Car")
            car._pyroRelease()
        daemon.shutdown()
    print("autoproxy example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
