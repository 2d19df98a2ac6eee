"""An asyncio server: ``async def`` methods awaited on the event loop, plain ones on worker threads.

Run it with ``python examples/asyncio_server.py`` (a self-contained demo: server and client in one
event loop, exits 0 when every step worked), or ``python examples/asyncio_server.py --serve`` to
keep serving and print the URI for other clients (Pyro4 4.82 proxies included). Look at:

* ``aio.Daemon``: the same constructor and ``register``/``uriFor`` as ``Pyro4.Daemon``, served by
  ``await daemon.serve()`` on your loop until ``daemon.shutdown()``;
* ``Lab.run``, an ``async def`` method that starts a real subprocess with
  ``asyncio.create_subprocess_exec`` and awaits its output: many clients' runs overlap on the
  loop, and no thread waits for a process;
* ``Lab.checksum``, a plain (blocking, CPU-bound) method: it runs on a worker thread, so the loop
  keeps answering other clients meanwhile;
* ``Lab.ticks``, an async generator: clients iterate over it remotely (``async for``);
* ``aio.current_context``: the calling client as seen from inside an ``async def`` method, correct
  across ``await`` (``Pyro4.current_context`` is per thread, and every task shares the loop's).
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time
from typing import Any, AsyncIterator, List

import pyro4compat as Pyro4
from pyro4compat import aio


@Pyro4.expose
class Lab:
    async def run(self, *args: str) -> str:
        """Run a Python snippet in a child process and return what it printed."""
        client = aio.current_context.client_sock_addr
        process = await asyncio.create_subprocess_exec(sys.executable, "-c", *args,
                                                       stdout=asyncio.subprocess.PIPE)
        output, _ = await process.communicate()
        assert aio.current_context.client_sock_addr == client   # still this caller's context
        return output.decode().strip()

    def checksum(self, text: str, rounds: int) -> str:
        """Blocking work: runs on a worker thread, never on the event loop."""
        digest = text.encode()
        for _ in range(rounds):
            digest = hashlib.sha256(digest).digest()
        return digest.hex()[:16]

    async def ticks(self, count: int) -> AsyncIterator[int]:
        for tick in range(count):
            await asyncio.sleep(0.01)
            yield tick


async def demo(daemon: aio.Daemon, uri: Any) -> None:
    proxies = [aio.Proxy(uri) for _ in range(5)]
    start = time.monotonic()
    outputs: List[str] = await asyncio.gather(*[
        proxy.run("import time; time.sleep(0.3); print('child %d done')" % n) for n, proxy in enumerate(proxies)])
    elapsed = time.monotonic() - start
    print("five subprocess runs:", outputs)
    print("they overlapped on the loop: %s" % ("yes" if elapsed < 1.2 else "no (%.2f s)" % elapsed))
    blocking = asyncio.ensure_future(proxies[0].checksum("x", 400000))
    quick = await proxies[1].run("print('answered while a worker hashes')")
    print("meanwhile:", quick, "| checksum done yet:", blocking.done())
    print("checksum:", await blocking)
    print("ticks:", [tick async for tick in await proxies[2].ticks(5)])
    for proxy in proxies:
        await proxy._pyroReleaseAndWait()


async def main(serve_forever: bool) -> int:
    async with aio.Daemon(host="127.0.0.1") as daemon:
        uri = daemon.register(Lab(), "example.lab")
        print("serving", uri)
        server = asyncio.ensure_future(daemon.serve())
        if not serve_forever:
            await demo(daemon, uri)
            daemon.shutdown()
        await server
    print("asyncio server example done")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main("--serve" in sys.argv)))
