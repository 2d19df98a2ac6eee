"""Custom exceptions: make your own exception classes survive the trip back to the client.

Run it with ``python examples/custom_exceptions.py``. Built-in exceptions (``ValueError``, ...)
and Pyro's own errors travel with every serializer. An exception class of your own is only
rebuilt by pickle-like serializers; with serpent, json, marshal and msgpack the client
refuses an unknown class (``SerializeError``) unless you teach it the class:

* ``SerializerBase.register_dict_to_class(name, converter)`` on the side that *receives* it
  (the client) turns the dict back into your exception;
* ``register_class_to_dict(cls, converter)`` on the side that *sends* it is optional: the
  default already sends ``args`` and the instance's attributes.

Look at ``exc.balance`` surviving the trip, and at the remote traceback Pyro attaches.
A daemon in a thread on 127.0.0.1. Exits 0 when every step worked.
"""

from __future__ import annotations

import threading

import pyro4compat as Pyro4
from pyro4compat.util import SerializerBase


class InsufficientFunds(Exception):
    """Lives in a module both sides have; we pretend it's ``bank.InsufficientFunds``."""
    __module__ = "bank"

    def __init__(self, message: str, balance: int = 0) -> None:
        super().__init__(message, balance)
        self.balance = balance


@Pyro4.expose
class Account:
    def __init__(self) -> None:
        self.balance = 40

    def withdraw(self, amount: int) -> int:
        if amount > self.balance:
            raise InsufficientFunds("cannot withdraw %d" % amount, self.balance)
        self.balance -= amount
        return self.balance

    def deposit(self, amount: int) -> int:
        if amount <= 0:
            raise ValueError("deposit must be positive")  # a built-in: works out of the box
        self.balance += amount
        return self.balance


def rebuild_insufficient_funds(classname: str, data: dict) -> InsufficientFunds:
    """``data`` is what the server sent: __class__, __exception__, args and attributes."""
    message, balance = data["args"]
    exc = InsufficientFunds(message, balance)
    exc.__dict__.update(data["attributes"])
    return exc


def main() -> int:
    with Pyro4.Daemon(host="127.0.0.1") as daemon:
        uri = daemon.register(Account())
        threading.Thread(target=daemon.requestLoop, daemon=True).start()

        with Pyro4.Proxy(uri) as account:
            try:
                account.deposit(-5)
            except ValueError as exc:
                print("built-in exception arrives as itself:", repr(exc))

            try:
                account.withdraw(100)
            except Pyro4.errors.SerializeError as exc:
                print("unknown exception class without a hook:", exc)
            else:
                raise AssertionError("serpent should refuse an unregistered exception class")

            SerializerBase.register_dict_to_class("bank.InsufficientFunds", rebuild_insufficient_funds)
            try:
                account.withdraw(100)
            except InsufficientFunds as exc:
                print("with register_dict_to_class: %r, balance attribute = %d" % (exc, exc.balance))
                remote_tb = "".join(Pyro4.util.getPyroTraceback())
                assert exc.balance == 40 and "raise InsufficientFunds" in remote_tb
                print("remote traceback says:", remote_tb.strip().splitlines()[-2].strip())
            else:
                raise AssertionError("withdrawing 100 from 40 should fail")
            SerializerBase.unregister_dict_to_class("bank.InsufficientFunds")
        daemon.shutdown()
    print("custom exceptions example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
