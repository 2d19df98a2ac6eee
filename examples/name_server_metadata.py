"""Name server metadata: tag registrations, then find objects by tag instead of by name.

Run it with ``python examples/name_server_metadata.py``. Each registration in the name server
can carry a set of strings (``metadata=``). Look at:

* ``ns.list(metadata_all=...)`` (has every tag) and ``ns.list(metadata_any=...)`` (has one of them);
* ``ns.lookup(name, return_metadata=True)`` and ``ns.set_metadata(name, tags)``;
* ``PYROMETA:tag1,tag2@host:port`` URIs: a proxy connects to *some* object that has all the tags;
* ``Pyro4.naming.type_meta(obj)``: tags describing an object's classes, for "find me any printer".

A name server and a daemon in threads on 127.0.0.1. Exits 0 when every step worked.
"""

from __future__ import annotations

import threading

import pyro4compat as Pyro4
import pyro4compat.naming


@Pyro4.expose
class Printer:
    def __init__(self, name: str) -> None:
        self.name = name

    def print_page(self, text: str) -> str:
        return "%s printed %r" % (self.name, text)


def main() -> int:
    ns_uri, ns_daemon, _ = pyro4compat.naming.startNS(host="127.0.0.1", port=0, enableBroadcast=False)
    daemon = Pyro4.Daemon(host="127.0.0.1")
    for serving in (ns_daemon, daemon):
        threading.Thread(target=serving.requestLoop, daemon=True).start()

    printers = {
        "office.laser": ({"floor:1", "color:no", "duplex"}, Printer("laser")),
        "office.inkjet": ({"floor:1", "color:yes"}, Printer("inkjet")),
        "lab.plotter": ({"floor:2", "color:yes", "large"}, Printer("plotter")),
    }
    with Pyro4.locateNS(ns_uri.host, ns_uri.port) as ns:
        for name, (tags, printer) in printers.items():
            uri = daemon.register(printer)
            ns.register(name, uri, metadata=tags | Pyro4.naming.type_meta(printer))

        color = sorted(ns.list(metadata_all={"color:yes"}))
        first_floor_or_large = sorted(ns.list(metadata_any={"floor:1", "large"}))
        print("printers with color:", color)
        print("on floor 1 or large:", first_floor_or_large)
        assert color == ["lab.plotter", "office.inkjet"]
        assert first_floor_or_large == ["lab.plotter", "office.inkjet", "office.laser"]

        every_printer = ns.list(metadata_all={"class:__main__.Printer"}, return_metadata=True)
        print("found by type_meta tag: %d printers" % len(every_printer))
        assert sorted(every_printer) == sorted(printers)

        ns.set_metadata("office.laser", {"floor:1", "color:no", "duplex", "out-of-paper"})
        uri, tags = ns.lookup("office.laser", return_metadata=True)
        print("laser's tags now:", sorted(tag for tag in tags if not tag.startswith("class:")))
        assert "out-of-paper" in tags

    # A PYROMETA URI: "any object with all these tags", resolved through the name server.
    with Pyro4.Proxy("PYROMETA:floor:2,large@%s:%d" % (ns_uri.host, ns_uri.port)) as big_printer:
        answer = big_printer.print_page("poster")
    print("PYROMETA:floor:2,large ->", answer)
    assert answer == "plotter printed 'poster'"

    for serving in (daemon, ns_daemon):
        serving.shutdown()
        serving.close()
    print("name server metadata example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
