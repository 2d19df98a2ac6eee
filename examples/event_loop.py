"""Event-loop integration: serve Pyro from your own select loop, or merge daemons into one loop.

Run it with ``python examples/event_loop.py``. Two ways to avoid giving Pyro a thread of its own:

1. **Your loop drives the daemon.** The main thread runs a ``selectors`` loop that watches a UDP
   socket of the application *and* ``daemon.sockets``; when some of the daemon's sockets are
   ready it calls ``daemon.events(ready_sockets)``. The set of sockets changes as clients
   connect and leave, so it is read again on every turn.
2. **One daemon's loop serves others.** ``daemon.combine(other)`` adds another daemon's sockets
   (here: a name server's) to a multiplex daemon, and one ``requestLoop`` serves both.

A client thread talks to both. Everything on 127.0.0.1 with random ports. Exits 0 when every
step worked.
"""

from __future__ import annotations

import selectors
import socket
import threading

import pyro4compat as Pyro4
import pyro4compat.naming


@Pyro4.expose
class Station:
    """Collects readings that arrive over plain UDP; Pyro clients ask for them."""

    def __init__(self) -> None:
        self.readings = []

    def readings_so_far(self) -> list:
        return list(self.readings)


def own_loop(daemon, station: Station, udp: socket.socket, stop: socket.socket) -> int:
    """The application's event loop: UDP datagrams, a stop signal, and the Pyro daemon's sockets."""
    turns = 0
    with selectors.DefaultSelector() as selector:
        selector.register(udp, selectors.EVENT_READ, "udp")
        selector.register(stop, selectors.EVENT_READ, "stop")
        while True:
            watched = set(daemon.sockets)  # the listening socket plus one per connected client
            for sock in watched:
                selector.register(sock, selectors.EVENT_READ, "pyro")
            events = selector.select(timeout=5)
            for sock in watched:
                selector.unregister(sock)
            kinds = {key.data for key, _ in events}
            if "stop" in kinds:
                return turns
            if "udp" in kinds:
                station.readings.append(udp.recv(100).decode())
            ready = [key.fileobj for key, _ in events if key.data == "pyro"]
            if ready:
                daemon.events(ready)  # Pyro accepts connections / handles requests, then returns
                turns += 1


def part_one() -> None:
    Pyro4.config.SERVERTYPE = "multiplex"  # all work happens inside events(), in our thread
    daemon = Pyro4.Daemon(host="127.0.0.1")
    station = Station()
    uri = daemon.register(station)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    stop_reader, stop_writer = socket.socketpair()
    seen = []

    def client() -> None:
        with Pyro4.Proxy(uri) as proxy, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for value in ("12.5", "13.0", "12.8"):
                sender.sendto(value.encode(), udp.getsockname())
                while value not in proxy.readings_so_far():  # each call is one turn of our loop
                    pass
            seen.extend(proxy.readings_so_far())
        stop_writer.send(b"x")

    thread = threading.Thread(target=client)
    thread.start()
    turns = own_loop(daemon, station, udp, stop_reader)
    thread.join(5)
    print("own loop: client saw readings %s; the loop handed Pyro %d batches of events" % (seen, turns))
    assert seen == ["12.5", "13.0", "12.8"] and turns >= 4
    for closing in (udp, stop_reader, stop_writer, daemon):
        closing.close()


def part_two() -> None:
    Pyro4.config.SERVERTYPE = "multiplex"
    ns_uri, ns_daemon, _ = pyro4compat.naming.startNS(host="127.0.0.1", port=0, enableBroadcast=False)
    daemon = Pyro4.Daemon(host="127.0.0.1")
    uri = daemon.register(Station())
    daemon.combine(ns_daemon)  # the name server's sockets now ride along in this daemon's loop
    thread = threading.Thread(target=daemon.requestLoop)
    thread.start()
    with Pyro4.locateNS(ns_uri.host, ns_uri.port) as ns:
        ns.register("example.station", uri)
    with Pyro4.Proxy("PYRONAME:example.station@%s:%d" % (ns_uri.host, ns_uri.port)) as station:
        answer = station.readings_so_far()
    print("combined loop: name server lookup and the call both answered by one requestLoop:", answer)
    assert answer == []
    daemon.shutdown()
    thread.join(5)
    ns_daemon.close()
    daemon.close()


def main() -> int:
    part_one()
    part_two()
    print("event loop example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
