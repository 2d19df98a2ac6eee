"""Socketpair and existing connections: run Pyro over a socket that is already connected.

Run it with ``python examples/socketpair.py``. Pyro usually makes its own connections, but a
daemon can also serve exactly one connection you hand it (``Daemon(connected_socket=sock)``)
and a proxy can use one (``Proxy("objectid", connected_socket=sock)``; the first argument is
just the object id). Useful when the connection comes from elsewhere: a ``socket.socketpair()``
between two threads or a parent and a child process, or a TCP connection on which your own
protocol ran first. Look at the custom greeting in part 2, exchanged before Pyro takes over.
When the peer goes away, the daemon's request loop ends by itself. Exits 0 when every step worked.
"""

from __future__ import annotations

import socket
import threading

import pyro4compat as Pyro4


@Pyro4.expose
class Calculator:
    def add(self, a: int, b: int) -> int:
        return a + b


def serve_connection(sock: socket.socket) -> threading.Thread:
    """A daemon for this one connection; its requestLoop returns when the peer disconnects."""
    daemon = Pyro4.Daemon(connected_socket=sock)
    daemon.register(Calculator(), objectId="calculator")

    def loop() -> None:
        daemon.requestLoop()
        daemon.close()

    thread = threading.Thread(target=loop)
    thread.start()
    return thread


def part_one_socketpair() -> None:
    mine, theirs = socket.socketpair()
    server = serve_connection(theirs)
    with Pyro4.Proxy("calculator", connected_socket=mine) as calculator:
        answer = calculator.add(2, 3)
        print("over a socketpair: add(2, 3) =", answer, "via", calculator._pyroUri)
        assert answer == 5
    mine.close()  # the proxy never closes a socket it was given
    server.join(5)
    assert not server.is_alive()
    print("the daemon's request loop ended when the other end closed")
    theirs.close()


def part_two_own_protocol_first() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = {}

    def accept() -> None:
        conn, _ = listener.accept()
        greeting = conn.recv(64)  # our own protocol, before any Pyro message
        conn.sendall(b"WELCOME " + greeting.split()[1] + b"\n")
        accepted["server"] = serve_connection(conn)
        accepted["conn"] = conn

    acceptor = threading.Thread(target=accept)
    acceptor.start()
    client = socket.create_connection(listener.getsockname())
    client.sendall(b"HELLO alice\n")
    reply = client.recv(64)
    print("own protocol first: server replied", reply.strip())
    assert reply == b"WELCOME alice\n"
    acceptor.join(5)
    with Pyro4.Proxy("calculator", connected_socket=client) as calculator:
        answer = calculator.add(40, 2)
    print("then Pyro on the same TCP connection: add(40, 2) =", answer)
    assert answer == 42
    client.close()
    accepted["server"].join(5)
    for sock in (accepted["conn"], listener):
        sock.close()


def main() -> int:
    part_one_socketpair()
    part_two_own_protocol_first()
    print("socketpair example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
