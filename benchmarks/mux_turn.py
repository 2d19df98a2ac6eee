"""The multiplex server's own CPU per small call, in one process, without the scheduler's noise.

    python benchmarks/mux_turn.py [--library pyro4compat|Pyro4] [--serializer S] [--connections K]
                                  [--rounds N] [--reps R] [--profile FILE]

``many_clients`` (``run.py``) measures the server among client processes on a shared machine:
the figure that counts, but noisy, and it needs minutes. This is the quick look used while
working on the loop (issue 19): K socket pairs are handshaken with a multiplex daemon serving
``echo``; each round every client sends one pre-encoded ``echo(1)`` request, the server does one
turn of its loop (select, then every ready connection), and the replies are drained. Only the
server's turn is timed (``time.thread_time``: user + system CPU of this thread, the receive and
send system calls included). The figure is the best of R repetitions of N rounds, per call.

Run it for both libraries (``--library Pyro4`` needs no PYTHONPATH; ours needs the repository
on it). ``--profile FILE`` writes a cProfile of one more repetition.
"""

from __future__ import annotations

import argparse
import cProfile
import selectors
import socket
import time
import warnings
from typing import Any, Callable, List


def serve(library: str, serializer_name: str, count: int) -> Any:
    """The daemon, its K connected client sockets and one server turn, for either library."""
    warnings.simplefilter("ignore")   # Pyro4 4.82 is not warning-clean on new Pythons
    if library == "Pyro4":
        import Pyro4 as pyro
        from Pyro4 import message, socketutil, util
        get_serializer = util.get_serializer
    else:
        import pyro4compat as pyro
        from pyro4compat import message, socketutil
        from pyro4compat._serializers import get_serializer
    pyro.config.SERVERTYPE = "multiplex"
    pyro.config.SERIALIZERS_ACCEPTED = {"serpent", "marshal", "json", "pickle"}

    @pyro.expose
    class Bench(object):
        def echo(self, value: Any) -> Any:
            return value

    daemon = pyro.Daemon(host="127.0.0.1", port=0)
    daemon.register(Bench(), "bench")
    server = daemon.transportServer
    serializer = get_serializer(serializer_name)
    hello, _ = serializer.serializeData({"handshake": "hello", "object": "bench"})
    connect = message.Message(message.MSG_CONNECT, hello, serializer.serializer_id, 0, 0).to_bytes()
    payload, _ = serializer.serializeCall("bench", "echo", (1,), {})
    request = message.Message(message.MSG_INVOKE, payload, serializer.serializer_id, 0, 1).to_bytes()
    clients: List[socket.socket] = []
    for index in range(count):
        ours, theirs = socket.socketpair()
        ours.sendall(connect)
        if library == "Pyro4":   # Pyro4's loop handshakes in accept(): do what it does there
            conn = socketutil.SocketConnection(theirs)
            assert daemon._handshake(conn)
            server.selector.register(conn, selectors.EVENT_READ, server)
        else:
            server._adopt(theirs, ("127.0.0.1", index))
        clients.append(ours)
    if library == "Pyro4":
        def turn() -> None:
            server.events([key.fileobj for key, _ in server.selector.select(0)])
    else:
        turn = server._run_once
        for _ in range(3):
            turn()      # the handshakes
    for client in clients:
        client.recv(65536)
    return daemon, clients, request, turn


def measure(clients: List[socket.socket], request: bytes, turn: Callable[[], None], rounds: int) -> float:
    """Server CPU seconds of ``rounds`` turns, each with one request per client."""
    spent = 0.0
    clock = time.thread_time
    for _ in range(rounds):
        for client in clients:
            client.sendall(request)
        started = clock()
        turn()
        spent += clock() - started
        for client in clients:
            client.recv(65536)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--library", default="pyro4compat", choices=("pyro4compat", "Pyro4"))
    parser.add_argument("--serializer", default="marshal")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--profile", help="write a cProfile of one more repetition here")
    args = parser.parse_args()
    daemon, clients, request, turn = serve(args.library, args.serializer, args.connections)
    measure(clients, request, turn, 50)     # warm up
    calls = args.rounds * len(clients)
    best = min(measure(clients, request, turn, args.rounds) for _ in range(args.reps))
    print("%s %s: %.2f us server CPU per call (%d connections, best of %d x %d calls)"
          % (args.library, args.serializer, best * 1e6 / calls, len(clients), args.reps, calls))
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        measure(clients, request, turn, args.rounds)
        profile.disable()
        profile.dump_stats(args.profile)


if __name__ == "__main__":
    main()
