"""Resource tracking: the daemon closes what a client opened when that client goes away.

Run it with ``python examples/resource_tracking.py``. A client opens a log file on the server
and writes to it over several calls. If the client disappears without calling ``close_log()``
(it crashes, its network drops, or it forgets), the file would stay open forever. Calling
``Pyro4.current_context.track_resource(resource)`` ties the resource to the client's
connection: when that connection ends, the daemon calls the resource's ``close()``.
``untrack_resource`` undoes it when the client closes properly. The daemon keeps only a weak
reference, so something else (here the per-session object) must hold the resource.

A daemon in a thread on 127.0.0.1, files in a temporary directory. Exits 0 when every step worked.
"""

from __future__ import annotations

import os
import tempfile
import threading

import pyro4compat as Pyro4


class TrackedFile:
    """A file plus an event, so the example can wait for the daemon to close it."""

    def __init__(self, path: str) -> None:
        self.file = open(path, "w")
        self.closed = threading.Event()

    def close(self) -> None:
        self.file.close()
        self.closed.set()


@Pyro4.expose
@Pyro4.behavior(instance_mode="session")
class LogService:
    directory = ""
    opened = []  # every TrackedFile ever opened, so the example can check on it

    def __init__(self) -> None:
        self.log = None

    def open_log(self, name: str) -> None:
        self.log = TrackedFile(os.path.join(self.directory, name))
        type(self).opened.append(self.log)
        Pyro4.current_context.track_resource(self.log)

    def write(self, line: str) -> None:
        self.log.file.write(line + "\n")

    def close_log(self) -> None:
        Pyro4.current_context.untrack_resource(self.log)
        self.log.close()


def main() -> int:
    with tempfile.TemporaryDirectory() as directory, Pyro4.Daemon(host="127.0.0.1") as daemon:
        LogService.directory = directory
        uri = daemon.register(LogService)
        threading.Thread(target=daemon.requestLoop, daemon=True).start()

        careless = Pyro4.Proxy(uri)
        careless.open_log("careless.txt")
        careless.write("first line")
        careless.write("second line")
        print("server: careless.txt open:", not LogService.opened[0].file.closed)
        careless._pyroRelease()  # the client goes away without close_log()
        assert LogService.opened[0].closed.wait(5)
        print("server: after the client disconnected, careless.txt open:", not LogService.opened[0].file.closed)
        with open(os.path.join(directory, "careless.txt")) as f:
            lines = f.read().splitlines()
        print("its contents were flushed by close():", lines)
        assert lines == ["first line", "second line"]

        with Pyro4.Proxy(uri) as tidy:
            tidy.open_log("tidy.txt")
            tidy.write("all good")
            tidy.close_log()  # closes and untracks: nothing left for the daemon to do
        assert LogService.opened[1].closed.is_set()
        print("server: tidy.txt was closed by the client itself")
        daemon.shutdown()
    print("resource tracking example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
