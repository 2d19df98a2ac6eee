"""A self-contained tour of pyro4compat: a name server, a daemon serving an object, a client.

Run it with ``python examples/quickstart.py``. Everything runs in this one process on
127.0.0.1 with random free ports; the name server and the daemon each serve from a thread,
the client is the main thread, exactly as if they were three machines. Exits 0 when every
step worked.
"""

from __future__ import annotations

import threading

import pyro4compat as Pyro4
import pyro4compat.naming


@Pyro4.expose
class Warehouse:
    """A tiny remote object: a list of items you can take from and store into."""

    def __init__(self) -> None:
        self.contents = ["chair", "bike", "flashlight", "laptop", "couch"]
        self.delivered = threading.Event()

    def list_contents(self):
        return self.contents

    def take(self, name: str, item: str) -> str:
        self.contents.remove(item)  # raises ValueError for items that aren't there
        return "%s took the %s." % (name, item)

    def store(self, name: str, item: str) -> str:
        self.contents.append(item)
        return "%s stored the %s." % (name, item)

    def inventory(self):
        """A generator: the client receives the items one by one (a remote iterator)."""
        for item in self.contents:
            yield item.upper()

    @Pyro4.oneway
    def deliver(self, item: str) -> None:
        self.contents.append(item)
        self.delivered.set()

    @property
    def size(self) -> int:
        return len(self.contents)


def serve_in_thread(daemon) -> threading.Thread:
    thread = threading.Thread(target=daemon.requestLoop, daemon=True)
    thread.start()
    return thread


def client(ns_host: str, ns_port: int, warehouse: Warehouse) -> None:
    name = "PYRONAME:example.warehouse@%s:%d" % (ns_host, ns_port)
    with Pyro4.Proxy(name) as proxy:
        print("client: looked up", name)
        print("client: contents:", proxy.list_contents())
        print("client:", proxy.take("Alice", "bike"))
        print("client: remote attribute size =", proxy.size)

        proxy.deliver("piano")  # oneway: returns at once while the server works on
        warehouse.delivered.wait(5)
        print("client: after a oneway delivery, size =", proxy.size)

        with Pyro4.batch(proxy) as batch:
            batch.store("Carol", "rug")
            batch.take("Carol", "couch")
            print("client: one batched round trip:", list(batch()))

        print("client: streamed item by item:", list(proxy.inventory()))

        with Pyro4.Proxy(proxy._pyroUri) as async_proxy:
            Pyro4.asyncproxy(async_proxy)
            future = async_proxy.store("Dave", "kite").then(str.upper)
            print("client: asynchronous call, chained result:", future.value)

        try:
            proxy.take("Erin", "unicorn")
        except ValueError:
            last_lines = "".join(Pyro4.util.getPyroTraceback()).strip().splitlines()
            print("client: the server raised ValueError; its remote traceback ends with:")
            print("   ", last_lines[-2].strip())


def main() -> int:
    ns_uri, ns_daemon, _ = pyro4compat.naming.startNS(host="127.0.0.1", port=0, enableBroadcast=False)
    ns_thread = serve_in_thread(ns_daemon)
    print("name server: running at", ns_uri)

    warehouse = Warehouse()
    daemon = Pyro4.Daemon(host="127.0.0.1")
    uri = daemon.register(warehouse)
    server_thread = serve_in_thread(daemon)
    with Pyro4.locateNS(ns_uri.host, ns_uri.port) as ns:
        ns.register("example.warehouse", uri)
    print("server: serving the warehouse at", uri, "as example.warehouse")

    client(ns_uri.host, ns_uri.port, warehouse)

    for stopping, thread in ((daemon, server_thread), (ns_daemon, ns_thread)):
        stopping.shutdown()
        thread.join(5)
    print("done: every call went over protocol 48 with the", Pyro4.config.SERIALIZER, "serializer")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
