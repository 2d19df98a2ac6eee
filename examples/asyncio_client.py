"""An asyncio client: awaitable calls on ``aio.Proxy``, many tasks sharing one proxy.

Run it with ``python examples/asyncio_client.py``. It starts an ordinary (threaded) Pyro daemon
and an ``aio`` name server itself, so it needs nothing else; it exits 0 when every step worked.
Point ``aio.Proxy`` at a Pyro4 4.82 daemon instead and nothing changes: same protocol. Look at:

* ``async with aio.Proxy(uri) as proxy: await proxy.method(...)``, and ``PYRONAME:`` URIs resolved
  by an awaitable name server lookup (``aio.locateNS``);
* 200 tasks awaiting calls on *one* proxy at once: they are pipelined on its single connection,
  each gets its own answer;
* cancelling a call (here: ``asyncio.wait_for`` running out) leaves the proxy usable: the late
  answer is recognised by its sequence number and dropped, never given to the next call;
* ``await proxy.attr`` / ``await proxy._pyroSetAttr(name, value)`` for remote attributes,
  ``await batch()`` for batches, ``async for`` over a remote generator, ``_pyroTimeout`` giving
  Pyro's ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from typing import Any, Iterator

import pyro4compat as Pyro4
from pyro4compat import aio


@Pyro4.expose
class Warehouse:
    def __init__(self) -> None:
        self._stock = {"apple": 10, "pear": 4}
        self.lock = threading.Lock()

    def take(self, item: str, count: int = 1) -> int:
        with self.lock:
            self._stock[item] -= count
            return self._stock[item]

    def slow_count(self, seconds: float) -> int:
        time.sleep(seconds)
        return sum(self._stock.values())

    def items(self) -> Iterator[str]:
        return iter(sorted(self._stock))

    @property
    def motto(self) -> str:
        return getattr(self, "_motto", "stock up")

    @motto.setter
    def motto(self, value: str) -> None:
        self._motto = value


async def main() -> int:
    warehouse = Warehouse()
    daemon = Pyro4.Daemon(host="127.0.0.1")          # a plain threaded daemon, as Pyro4 has
    uri = daemon.register(warehouse, "example.warehouse")
    threading.Thread(target=daemon.requestLoop, daemon=True).start()
    ns_uri, ns_daemon = aio.startNS(host="127.0.0.1", port=0)   # a name server on this loop
    ns_task = asyncio.ensure_future(ns_daemon.serve())
    host, port = ns_daemon.locationStr.rsplit(":", 1)
    async with await aio.locateNS(host, int(port)) as ns:
        await ns.register("example.warehouse", uri)

    async with aio.Proxy("PYRONAME:example.warehouse@%s" % ns_daemon.locationStr) as proxy:
        warehouse._stock["apple"] = 1000
        left = await asyncio.gather(*[proxy.take("apple") for _ in range(200)])
        print("200 concurrent takes on one proxy, last answer:", min(left), "| distinct answers:", len(set(left)))
        try:
            await asyncio.wait_for(proxy.slow_count(0.5), 0.1)
        except asyncio.TimeoutError:
            print("gave up waiting for slow_count")
        print("next call still gets its own answer:", await proxy.take("pear", 2))
        print("motto:", await proxy.motto)
        await proxy._pyroSetAttr("motto", "keep calm and take pears")
        print("motto now:", await proxy._pyroGetAttr("motto"))
        batch = proxy._pyroBatch()
        batch.take("pear")
        batch.take("apple", 100)
        print("batch results:", list(await batch()))
        print("items:", [item async for item in await proxy.items()])
        proxy._pyroTimeout = 0.1
        try:
            await proxy.slow_count(0.5)
        except Pyro4.errors.TimeoutError as exc:
            print("with _pyroTimeout:", type(exc).__name__, exc)
    ns_daemon.shutdown()
    await ns_task
    daemon.shutdown()
    print("asyncio client example done")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
