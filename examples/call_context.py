"""Call context and annotations: per-call metadata that travels beside the arguments.

Run it with ``python examples/call_context.py``. Look at:

* ``Pyro4.current_context`` on the server: who is calling (``client_sock_addr``), the message
  sequence number, the serializer id, and the request's ``annotations``;
* annotations: small named byte strings (4-letter keys) added to a message. A client adds them
  with ``current_context.annotations`` (next call only) or by overriding
  ``Proxy._pyroAnnotations`` (every call); the server answers with
  ``current_context.response_annotations`` or ``Daemon.annotations()``; the client sees them in
  ``Proxy._pyroResponseAnnotations``;
* a correlation id: set ``current_context.correlation_id`` in the client and it reaches the
  server, and from there every call the server makes on behalf of it (here: to an auditor).

Two daemons in threads on 127.0.0.1. Exits 0 when every step worked.
"""

from __future__ import annotations

import threading
import uuid

import pyro4compat as Pyro4


class TimestampingDaemon(Pyro4.Daemon):
    """Adds a "SRVR" annotation to every response this daemon sends."""

    def annotations(self):
        return {"SRVR": b"server-1"}


class TracingProxy(Pyro4.Proxy):
    """Sends an "APPV" annotation with every call and remembers the response annotations."""

    # A Proxy only accepts its own _pyro* attributes on instances (any other name is taken as
    # a remote attribute), so a subclass keeps extra state in a class-level container.
    last_response = {}

    def _pyroAnnotations(self):
        return {"APPV": b"client 1.0"}

    def _pyroResponseAnnotations(self, annotations, msgtype):
        TracingProxy.last_response = dict(annotations)


@Pyro4.expose
class Auditor:
    def __init__(self) -> None:
        self.log = []

    def record(self, what: str) -> None:
        self.log.append((what, Pyro4.current_context.correlation_id))


@Pyro4.expose
class Bank:
    def __init__(self, auditor_uri) -> None:
        self.auditor_uri = auditor_uri

    def withdraw(self, amount: int) -> dict:
        ctx = Pyro4.current_context
        request = dict(ctx.annotations)  # what the client sent
        with Pyro4.Proxy(self.auditor_uri) as auditor:
            auditor.record("withdraw %d" % amount)  # carries ctx.correlation_id along
        # Set response annotations after any call this method makes itself: a proxy call
        # resets current_context.response_annotations (it receives that call's annotations).
        ctx.response_annotations["BALN"] = str(100 - amount).encode()
        return {
            "client address is a (host, port)": isinstance(ctx.client_sock_addr, tuple),
            "seq": ctx.seq,
            "serializer id": ctx.serializer_id,
            "annotations sent by the client": sorted(request),
            "app version": request["APPV"].decode(),
            "note": request.get("NOTE", b"").decode(),
        }


def main() -> int:
    with TimestampingDaemon(host="127.0.0.1") as daemon, Pyro4.Daemon(host="127.0.0.1") as audit_daemon:
        auditor = Auditor()
        bank_uri = daemon.register(Bank(audit_daemon.register(auditor)))
        for serving in (daemon, audit_daemon):
            threading.Thread(target=serving.requestLoop, daemon=True).start()

        with TracingProxy(bank_uri) as bank:
            Pyro4.current_context.correlation_id = uuid.uuid4()
            Pyro4.current_context.annotations = {"NOTE": b"rent"}  # only for the next call
            seen = bank.withdraw(30)
            for key, value in seen.items():
                print("server saw: %s = %s" % (key, value))
            response = TracingProxy.last_response
            print("client got response annotations:", {k: v for k, v in response.items() if k != "CORR"})
            assert seen["note"] == "rent" and seen["app version"] == "client 1.0"
            assert response["BALN"] == b"70" and response["SRVR"] == b"server-1"

            again = bank.withdraw(5)
            print("second call: note =", repr(again["note"]), "(current_context.annotations was used up)")
            assert again["note"] == ""

        print("auditor log with correlation ids:", [(what, str(cid)[:8]) for what, cid in auditor.log])
        assert all(cid == Pyro4.current_context.correlation_id for _, cid in auditor.log)
        daemon.shutdown()
        audit_daemon.shutdown()
    print("call context example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
