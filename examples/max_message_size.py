"""Max message size: refuse messages above ``config.MAX_MESSAGE_SIZE`` bytes (0 = no limit).

Run it with ``python examples/max_message_size.py``. Every Pyro message is checked against the
limit by whoever sends or receives it:

* the **client** won't send a request that is too large: ``MessageTooLargeError`` (a
  ``ProtocolError``), and the connection stays usable;
* a **server** with a limit refuses a too-large request. Pyro4 4.82 drops that client's
  connection (``ConnectionClosedError``); pyro4compat reads the request off and answers with
  ``MessageTooLargeError``, keeping the connection. When the server's own *reply* would be
  too large, the client gets no result either (an error, or a dropped connection); either
  way the next call works again.

To give the server a different limit than the client, this script starts a copy of itself as
the server in a child process (``--serve``, with ``PYRO_MAX_MESSAGE_SIZE=20000`` in its
environment), reads the URI it prints, and stops it at the end. Exits 0 when every step worked.
"""

from __future__ import annotations

import os
import threading
import subprocess
import sys

import pyro4compat as Pyro4


@Pyro4.expose
class Echo:
    def echo(self, text: str) -> int:
        return len(text)

    def produce(self, size: int) -> str:
        return "x" * size


def serve() -> int:
    """The child: serve until the parent closes our stdin."""
    with Pyro4.Daemon(host="127.0.0.1") as daemon:
        print(daemon.register(Echo()), flush=True)
        threading.Thread(target=daemon.requestLoop, daemon=True).start()
        sys.stdin.read()  # returns when the parent closes the pipe
        daemon.shutdown()
    return 0


def attempt(label: str, call) -> str:
    try:
        outcome = "ok, %r" % (call(),)
    except Pyro4.errors.PyroError as exc:
        outcome = "%s: %s" % (type(exc).__name__, exc)
    print("%-40s -> %s" % (label, outcome))
    return outcome


def main() -> int:
    env = dict(os.environ, PYRO_MAX_MESSAGE_SIZE="20000")
    command = [sys.executable] + ["-W" + option for option in sys.warnoptions]
    command += [os.path.abspath(__file__), "--serve"]
    with subprocess.Popen(command, env=env,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as child:
        uri = child.stdout.readline().strip()
        Pyro4.config.MAX_MESSAGE_SIZE = 50000  # the client's own limit
        with Pyro4.Proxy(uri) as server:
            outcomes = [
                attempt("client sends 10 KB", lambda: server.echo("a" * 10000)),
                attempt("client tries to send 60 KB", lambda: server.echo("a" * 60000)),
                attempt("client sends 30 KB (over server limit)", lambda: server.echo("a" * 30000)),
                attempt("server replies 30 KB (over its limit)", lambda: server.produce(30000)),
                attempt("client sends 10 KB again", lambda: server.echo("a" * 10000)),
            ]
        assert outcomes[0] == outcomes[4] == "ok, 10000"
        assert outcomes[1].startswith("MessageTooLargeError: max message size exceeded")
        assert outcomes[2].startswith("MessageTooLargeError"), outcomes[2]  # the server answers
        assert outcomes[3].startswith(("MessageTooLargeError", "ConnectionClosedError")), outcomes[3]
        child.stdin.close()  # tells the server to stop
        child.wait(10)
    assert child.returncode == 0
    print("max message size example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(serve() if sys.argv[1:] == ["--serve"] else main())
