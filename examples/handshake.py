"""Handshake: check a client when it connects, before it can make any call.

Run it with ``python examples/handshake.py``. When a proxy connects, it sends
``proxy._pyroHandshake`` (any serializable data) to the daemon, whose ``validateHandshake(conn,
data)`` decides: return a reply (sent back to the proxy) or raise to refuse the connection. The
proxy checks that reply in ``_pyroValidateHandshake(response)`` and may refuse in turn. The
connection object (``conn``) is per client, so the daemon can remember who connected for later
calls (``Pyro4.current_context.client``). A daemon in a thread on 127.0.0.1. Exits 0 when every
step worked.
"""

from __future__ import annotations

import threading

import pyro4compat as Pyro4

SECRET = "open sesame"


class GuardedDaemon(Pyro4.Daemon):
    def validateHandshake(self, conn, data):
        if not isinstance(data, dict) or data.get("password") != SECRET:
            raise ValueError("wrong password")  # the client gets CommunicationError with this reason
        conn.username = data["user"]  # remembered for this connection's calls
        return {"greeting": "welcome, %s" % data["user"], "server": "vault-1"}


class CheckingProxy(Pyro4.Proxy):
    """Refuses to talk to a server that doesn't introduce itself as the vault."""

    def _pyroValidateHandshake(self, response):
        if response.get("server") != "vault-1":
            raise Pyro4.errors.CommunicationError("this is not the vault")
        print("client: the server said:", response["greeting"])


@Pyro4.expose
class Vault:
    def whoami(self) -> str:
        return "you are " + Pyro4.current_context.client.username


def main() -> int:
    with GuardedDaemon(host="127.0.0.1") as daemon:
        uri = daemon.register(Vault())
        threading.Thread(target=daemon.requestLoop, daemon=True).start()

        with CheckingProxy(uri) as vault:
            vault._pyroHandshake = {"user": "alice", "password": SECRET}
            answer = vault.whoami()
            print("client:", answer)
            assert answer == "you are alice"

        with CheckingProxy(uri) as intruder:
            intruder._pyroHandshake = {"user": "mallory", "password": "guess"}
            try:
                intruder.whoami()
            except Pyro4.errors.CommunicationError as exc:
                print("client with the wrong password:", exc)
                assert "wrong password" in str(exc)
            else:
                raise AssertionError("the daemon should have refused the connection")
        daemon.shutdown()
    print("handshake example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
