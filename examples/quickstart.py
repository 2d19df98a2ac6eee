"""A self-contained tour of pyro4compat: a daemon serving an object, and a proxy calling it.

Run it with ``python examples/quickstart.py``. Everything runs in this one process on
127.0.0.1 with a random free port; the server is a daemon thread, the client is the main
thread, exactly as if they were on two machines. Exits 0 when every step worked.
"""

from __future__ import annotations

import threading

import pyro4compat as Pyro4


@Pyro4.expose
class Warehouse:
    """A tiny remote object: a list of items you can take from and store into."""

    def __init__(self) -> None:
        self.contents = ["chair", "bike", "flashlight", "laptop", "couch"]
        self.deliveries = threading.Event()

    def list_contents(self):
        return self.contents

    def take(self, name: str, item: str) -> str:
        self.contents.remove(item)  # raises ValueError for items that aren't there
        return "%s took the %s." % (name, item)

    def store(self, name: str, item: str) -> str:
        self.contents.append(item)
        return "%s stored the %s." % (name, item)

    @Pyro4.oneway
    def deliver(self, item: str) -> None:
        self.contents.append(item)
        self.deliveries.set()

    @property
    def size(self) -> int:
        return len(self.contents)


def main() -> int:
    warehouse = Warehouse()
    with Pyro4.Daemon(host="127.0.0.1") as daemon:
        uri = daemon.register(warehouse, "example.warehouse")
        server = threading.Thread(target=daemon.requestLoop, daemon=True)
        server.start()
        print("server: serving the warehouse at", uri)

        with Pyro4.Proxy(uri) as proxy:
            print("client: contents:", proxy.list_contents())
            print("client:", proxy.take("Alice", "bike"))
            print("client:", proxy.store("Bob", "lamp"))
            print("client: remote attribute size =", proxy.size)

            proxy.deliver("piano")  # oneway: returns at once, the server works on
            warehouse.deliveries.wait(5)
            print("client: after a oneway delivery, size =", proxy.size)

            with Pyro4.batch(proxy) as batch:
                batch.store("Carol", "rug")
                batch.take("Carol", "couch")
                results = list(batch())
            print("client: one batched round trip:", results)

            try:
                proxy.take("Dave", "unicorn")
            except ValueError:
                print("client: the server raised ValueError; its remote traceback ends with:")
                print("   ", "".join(Pyro4.util.getPyroTraceback()).strip().splitlines()[-2].strip())
        daemon.shutdown()
        server.join(5)
    print("done: all calls went over protocol 48, serializer", Pyro4.config.SERIALIZER)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
