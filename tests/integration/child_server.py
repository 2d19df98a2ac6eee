"""A daemon or name server in its own process, for tests that kill it or measure its memory.

Run as ``python child_server.py daemon|ns PORT [STORAGE]``; configure it with ``PYRO_*``
environment variables (``PYRO_SERVERTYPE``, ``PYRO_MAX_MESSAGE_SIZE``, ...). It prints
``URI <uri>`` once it listens, ``ENTERED`` whenever a ``slow`` call starts (so the parent can
act mid-call without sleeping), and serves until its stdin closes or it is killed.
Not a test module: pytest collects only ``test_*.py``.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Dict, Iterator

import pyro4compat as Pyro4
from pyro4compat import naming

OBJECT_ID = "target"


@Pyro4.expose
class Target(object):
    """What the tests call in the child: plain, slow, counting and streaming methods."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def echo(self, value: Any) -> Any:
        return value

    def slow(self, seconds: float) -> str:
        print("ENTERED", flush=True)
        time.sleep(seconds)     # the parent kills us during this: nothing to synchronise with
        return "finished"

    def count(self) -> int:
        with self.lock:
            self.calls += 1
            return self.calls

    def numbers(self, count: int) -> Iterator[int]:
        return iter(range(count))

    def status(self) -> Dict[str, int]:
        """VmHWM / VmRSS in kB, read by the process itself (for platforms where the parent can't)."""
        return read_status("self")


def read_status(pid: Any) -> Dict[str, int]:
    values = {}
    with open("/proc/%s/status" % pid) as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                values[key] = int(rest.split()[0])
    return values


def main(argv: list) -> int:
    kind, port = argv[1], int(argv[2])
    storage = argv[3] if len(argv) > 3 else None
    ns_class, daemon_class = naming.NameServerDaemon, Pyro4.Daemon
    if Pyro4.config.SERVERTYPE == "asyncio":    # pyro4compat.aio's daemons, served by requestLoop
        from pyro4compat import aio
        ns_class, daemon_class = aio.NameServerDaemon, aio.Daemon
    if kind == "ns":
        daemon: Any = ns_class(host="127.0.0.1", port=port, storage=storage)
        uri = daemon.uriFor(daemon.nameserver)
        daemon.register(Target(), OBJECT_ID)
    else:
        daemon = daemon_class(host="127.0.0.1", port=port)
        uri = daemon.register(Target(), OBJECT_ID)
    loop = threading.Thread(target=daemon.requestLoop, daemon=True)
    loop.start()
    print("URI %s" % uri, flush=True)
    sys.stdin.read()            # returns when the parent closes the pipe
    daemon.shutdown()
    loop.join(10)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
