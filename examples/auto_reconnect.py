"""Auto-reconnect: the server process dies and is restarted; the client reconnects and carries on.

Run it with ``python examples/auto_reconnect.py``. The server is a child process (this script
run with ``--serve``) listening on 127.0.0.1. It registers its object under a fixed id and the
restarted server listens on the same port, so the URI stays valid. The client notices the lost
connection (a ``CommunicationError``, usually ``ConnectionClosedError``) and reconnects with
``proxy._pyroReconnect()``. Without arguments that retries every 2 seconds until the server is
back; here we call it with ``tries=1`` in our own loop to poll faster. The parent kills and
restarts the server itself. Exits 0 when every step worked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pyro4compat as Pyro4


@Pyro4.expose
class Clock:
    def __init__(self, generation: int) -> None:
        self.generation = generation

    def tick(self) -> str:
        return "tick from server generation %d (pid %d)" % (self.generation, os.getpid())


def serve(port: int, generation: int) -> int:
    """The child: serve on `port` (0: any) and print the URI for the parent."""
    with Pyro4.Daemon(host="127.0.0.1", port=port) as daemon:
        print(daemon.register(Clock(generation), objectId="example.clock"), flush=True)
        daemon.requestLoop()
    return 0


def start_server(port: int, generation: int):
    """Start the child; it prints its URI when it is ready."""
    command = [sys.executable] + ["-W" + option for option in sys.warnoptions]
    command += [os.path.abspath(__file__), "--serve", str(port), str(generation)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def stop_server(child) -> None:
    child.kill()  # as abrupt as a crash
    child.wait(10)
    child.stdout.close()


def main() -> int:
    server = start_server(0, generation=1)
    uri = Pyro4.URI(server.stdout.readline().strip())
    print("server started at", uri)
    with Pyro4.Proxy(uri) as clock:
        print("client:", clock.tick())

        stop_server(server)
        print("server killed")
        try:
            clock.tick()
        except Pyro4.errors.CommunicationError as exc:
            print("client: lost the server (%s)" % type(exc).__name__)
        else:
            raise AssertionError("the call should have failed while the server was down")

        server = start_server(uri.port, generation=2)  # same port, same object id
        print("server restarting on port", uri.port)
        attempts = 0
        while True:
            attempts += 1
            try:
                clock._pyroReconnect(tries=1)
                break
            except Pyro4.errors.CommunicationError:
                assert attempts < 200, "the server did not come back"
                time.sleep(0.05)
        print("client: reconnected (attempts: %d)" % attempts)
        assert server.stdout.readline().strip() == str(uri)
        answer = clock.tick()
        print("client:", answer)
        assert answer.startswith("tick from server generation 2")
    stop_server(server)
    print("auto-reconnect example done")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        raise SystemExit(serve(int(sys.argv[2]), int(sys.argv[3])))
    raise SystemExit(main())
