"""No name server: connect with a URI you know or can build, instead of looking it up.

Run it with ``python examples/no_name_server.py``. A name server is optional. If the server
registers its object under a fixed id (``daemon.register(obj, objectId="...")``) and listens
on a known host and port, the client can write the URI itself: ``PYRO:<id>@<host>:<port>``.
Here the port is chosen by the OS and handed to the client, as a config file or command-line
argument would. Also shown: ``Pyro4.URI`` to take a URI apart, and the daemon's built-in
``Pyro.Daemon`` object that answers ``ping()`` and lists the registered ids. A daemon in a
thread on 127.0.0.1. Exits 0 when every step worked.
"""

from __future__ import annotations

import threading

import pyro4compat as Pyro4


@Pyro4.expose
class Greeter:
    def greet(self, name: str) -> str:
        return "hello, %s" % name


def main() -> int:
    with Pyro4.Daemon(host="127.0.0.1", port=0) as daemon:
        daemon.register(Greeter(), objectId="example.greeter")  # a fixed, readable id
        threading.Thread(target=daemon.requestLoop, daemon=True).start()
        host, port = daemon.sock.getsockname()[:2]  # what you'd put in the client's config

        uri_text = "PYRO:example.greeter@%s:%d" % (host, port)  # built by hand, no lookup
        with Pyro4.Proxy(uri_text) as greeter:
            answer = greeter.greet("world")
        print("client used", uri_text, "->", answer)
        assert answer == "hello, world"

        uri = Pyro4.URI(uri_text)
        print("the URI's parts: protocol=%s object=%s host=%s port=%d"
              % (uri.protocol, uri.object, uri.host, uri.port))
        assert (uri.object, uri.port) == ("example.greeter", port)

        with Pyro4.Proxy("PYRO:%s@%s:%d" % (Pyro4.constants.DAEMON_NAME, host, port)) as daemon_object:
            daemon_object.ping()
            registered = daemon_object.registered()
        print("the daemon's own object lists:", sorted(registered))
        assert sorted(registered) == ["Pyro.Daemon", "example.greeter"]
        daemon.shutdown()
    print("no name server example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
