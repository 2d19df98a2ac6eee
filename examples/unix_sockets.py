"""Unix domain sockets: serve on a socket file (or a Linux abstract name) instead of TCP.

Run it with ``python examples/unix_sockets.py``. ``Pyro4.Daemon(unixsocket=path)`` listens on
a Unix domain socket: only processes on this machine that may open the file can connect, and
no TCP port is used. The URI's location becomes ``./u:<path>``, e.g.
``PYRO:example.clock@./u:/tmp/xyz/clock.sock``, and proxies connect with it as usual. The
daemon removes the socket file when it closes.

On Linux, a name that starts with a NUL character (``"\\0name"``) lives in the *abstract
namespace*: no file at all, it vanishes with the daemon. That part is skipped elsewhere.
Exits 0 when every step worked.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import uuid

import pyro4compat as Pyro4


@Pyro4.expose
class Clock:
    def now(self) -> str:
        return "it is tea time"

    def peer(self) -> str:
        return repr(Pyro4.current_context.client_sock_addr)  # Unix peers have no (host, port)


def demo(unixsocket: str, label: str) -> None:
    with Pyro4.Daemon(unixsocket=unixsocket) as daemon:
        uri = daemon.register(Clock(), objectId="example.clock")
        loop = threading.Thread(target=daemon.requestLoop)
        loop.start()
        print("%s: serving %r" % (label, str(uri)))
        assert str(uri).startswith("PYRO:example.clock@./u:")
        with Pyro4.Proxy(uri) as clock:
            answer = clock.now()
            print("%s: %s (client address seen by the server: %s)" % (label, answer, clock.peer()))
            assert answer == "it is tea time"
        daemon.shutdown()
        loop.join(5)


def main() -> int:
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "clock.sock")
        demo(path, "socket file")
        print("socket file removed after the daemon closed:", not os.path.exists(path))
        assert not os.path.exists(path)

    if sys.platform.startswith("linux"):
        demo("\0example-clock-%s" % uuid.uuid4().hex[:8], "abstract namespace")
    else:
        print("abstract namespace: Linux only, skipped on", sys.platform)
    print("unix sockets example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
