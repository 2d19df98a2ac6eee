"""User sessions: know which user is calling, and keep per-user state on the server.

Run it with ``python examples/user_sessions.py``. Two ways to carry a user's identity:

1. **Per connection, checked once.** The proxy sends credentials in its handshake
   (``proxy._pyroHandshake``); the daemon's ``validateHandshake`` checks them and stores the
   user on the connection object. The ``ShoppingCart`` class is registered with
   ``instance_mode="session"``: one instance per connection, which picks up its user from
   ``Pyro4.current_context.client`` when it is created. Two users, two carts, no mix-ups.
2. **Per call.** A front end that calls on behalf of many users over one connection adds
   the user to every request as an annotation (``Proxy._pyroAnnotations``); the server reads
   ``current_context.annotations``.

A daemon in a thread on 127.0.0.1. Exits 0 when every step worked.
"""

from __future__ import annotations

import threading

import pyro4compat as Pyro4

PASSWORDS = {"alice": "wonderland", "bob": "builder", "webshop": "service account"}


class LoginDaemon(Pyro4.Daemon):
    def validateHandshake(self, conn, data):
        user = data.get("user") if isinstance(data, dict) else None
        if user is None or PASSWORDS.get(user) != data.get("password"):
            raise Pyro4.errors.SecurityError("unknown user or wrong password")
        conn.pyro_user = user  # everything this connection does is on behalf of `user`
        return "logged in as " + user


@Pyro4.expose
@Pyro4.behavior(instance_mode="session")
class ShoppingCart:
    def __init__(self) -> None:
        self.user = Pyro4.current_context.client.pyro_user  # created while serving this user's first call
        self.items = []

    def add(self, item: str) -> None:
        self.items.append(item)

    def contents(self) -> str:
        return "%s's cart: %s" % (self.user, ", ".join(self.items))


@Pyro4.expose
class Orders:
    def place(self, what: str) -> str:
        user = Pyro4.current_context.annotations["USER"].decode()
        return "order for %s placed by %s" % (what, user)


class FrontEndProxy(Pyro4.Proxy):
    """Adds the user the front end is currently serving to every request."""
    acting_for = threading.local()

    def _pyroAnnotations(self):
        return {"USER": self.acting_for.name.encode()}


def main() -> int:
    with LoginDaemon(host="127.0.0.1") as daemon:
        cart_uri = daemon.register(ShoppingCart)
        orders_uri = daemon.register(Orders())
        threading.Thread(target=daemon.requestLoop, daemon=True).start()

        alice, bob = Pyro4.Proxy(cart_uri), Pyro4.Proxy(cart_uri)
        alice._pyroHandshake = {"user": "alice", "password": "wonderland"}
        bob._pyroHandshake = {"user": "bob", "password": "builder"}
        alice.add("tea")
        bob.add("hammer")
        alice.add("cake")
        print(alice.contents())
        print(bob.contents())
        assert alice.contents() == "alice's cart: tea, cake" and bob.contents() == "bob's cart: hammer"

        with Pyro4.Proxy(cart_uri) as mallory:
            mallory._pyroHandshake = {"user": "mallory", "password": "letmein"}
            try:
                mallory.contents()
            except Pyro4.errors.CommunicationError as exc:
                print("mallory:", exc)
            else:
                raise AssertionError("mallory must not get a session")
        alice._pyroRelease()
        bob._pyroRelease()

        with FrontEndProxy(orders_uri) as orders:
            orders._pyroHandshake = {"user": "webshop", "password": "service account"}  # it logs in too
            answers = []
            for user, item in (("alice", "teapot"), ("bob", "ladder")):
                FrontEndProxy.acting_for.name = user  # the web request being served, say
                answers.append(orders.place(item))
            for answer in answers:
                print("one connection, per-call user:", answer)
            assert answers == ["order for teapot placed by alice", "order for ladder placed by bob"]
        daemon.shutdown()
    print("user sessions example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
