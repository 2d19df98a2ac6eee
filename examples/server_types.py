"""Server types: a thread pool (the default) or one thread multiplexing all connections.

Run it with ``python examples/server_types.py``. ``config.SERVERTYPE`` is read when a daemon is
created:

* ``"thread"``: calls run on a pool of worker threads (``THREADPOOL_SIZE_MIN`` ..
  ``THREADPOOL_SIZE``): slow calls of different clients overlap. Unlike Pyro4, an idle
  connected client holds no worker; the pool bounds concurrent calls, not clients;
* ``"multiplex"``: one thread and a selector serve every connection, one request at a time:
  no locking needed in your objects, but one slow call holds everybody up.

Three clients each make a 0.2 s call at the same moment, against both kinds of daemon; each
call reports the name of the server thread that ran it. Everything on 127.0.0.1.
Exits 0 when every step worked.
"""

from __future__ import annotations

import threading
import time

import pyro4compat as Pyro4


@Pyro4.expose
class Slow:
    def work(self) -> str:
        time.sleep(0.2)
        return threading.current_thread().name


def three_clients_at_once(uri) -> tuple:
    names = []
    barrier = threading.Barrier(3)

    def client() -> None:
        with Pyro4.Proxy(uri) as proxy:
            proxy._pyroBind()  # connect first, so only the calls themselves are timed
            barrier.wait()
            names.append(proxy.work())

    threads = [threading.Thread(target=client) for _ in range(3)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return time.monotonic() - started, set(names)


def main() -> int:
    timings = {}
    for servertype in ("thread", "multiplex"):
        Pyro4.config.SERVERTYPE = servertype
        with Pyro4.Daemon(host="127.0.0.1") as daemon:
            uri = daemon.register(Slow())
            loop = threading.Thread(target=daemon.requestLoop, name="requestLoop-" + servertype)
            loop.start()
            took, threads = three_clients_at_once(uri)
            timings[servertype] = took
            print("%-9s server: 3 x 0.2 s calls took %.2f s, served by %d thread(s)"
                  % (servertype, took, len(threads)))
            daemon.shutdown()
            loop.join(5)
            if servertype == "multiplex":
                assert threads == {"requestLoop-multiplex"}
            else:
                assert len(threads) == 3
    assert timings["multiplex"] >= 0.55 and timings["thread"] < timings["multiplex"]
    print("server types example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
