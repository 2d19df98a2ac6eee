"""Custom serialization hooks: send your own classes with serpent, json, marshal or msgpack.

Run it with ``python examples/serialization_hooks.py``. The safe serializers only carry plain
data (numbers, strings, lists, dicts, ...). To send an instance of your own class, register two
converters, the same way on both sides:

* ``SerializerBase.register_class_to_dict(cls, to_dict)``: sending; ``to_dict(obj)`` returns a
  dict with a ``"__class__"`` key naming the class;
* ``SerializerBase.register_dict_to_class(name, from_dict)``: receiving; ``from_dict(name, d)``
  rebuilds the object. Without it the receiver refuses the unknown class (``SerializeError``).

A ``Money`` value object makes a round trip with serpent, json and marshal. A daemon in a thread on
127.0.0.1. Exits 0 when every step worked.
"""

from __future__ import annotations

import decimal
import threading

import pyro4compat as Pyro4
from pyro4compat.util import SerializerBase


class Money:
    __module__ = "finance"  # the name it travels under: "finance.Money"

    def __init__(self, amount: str, currency: str) -> None:
        self.amount = decimal.Decimal(amount)
        self.currency = currency

    def __repr__(self) -> str:
        return "Money(%s %s)" % (self.amount, self.currency)


def money_to_dict(money: Money) -> dict:
    return {"__class__": "finance.Money", "amount": str(money.amount), "currency": money.currency}


def dict_to_money(classname: str, data: dict) -> Money:
    return Money(data["amount"], data["currency"])


@Pyro4.expose
class Exchange:
    RATES = {("EUR", "USD"): decimal.Decimal("1.10")}

    def convert(self, money: Money, currency: str) -> Money:
        assert isinstance(money, Money), type(money)  # the server works with real Money objects
        rate = self.RATES[(money.currency, currency)]
        return Money(str((money.amount * rate).quantize(decimal.Decimal("0.01"))), currency)


def main() -> int:
    with Pyro4.Daemon(host="127.0.0.1") as daemon:
        uri = daemon.register(Exchange())
        threading.Thread(target=daemon.requestLoop, daemon=True).start()

        SerializerBase.register_class_to_dict(Money, money_to_dict)
        with Pyro4.Proxy(uri) as exchange:
            try:
                exchange.convert(Money("10.00", "EUR"), "USD")
            except Pyro4.errors.SerializeError as exc:
                print("only class_to_dict registered, the server answers:", exc)
            else:
                raise AssertionError("the server should not know finance.Money yet")

            SerializerBase.register_dict_to_class("finance.Money", dict_to_money)
            for serializer in ("serpent", "json", "marshal"):  # the ones a daemon accepts by default
                exchange._pyroSerializer = serializer
                result = exchange.convert(Money("10.00", "EUR"), "USD")
                print("%-8s 10.00 EUR -> %r" % (serializer + ":", result))
                assert isinstance(result, Money) and result.amount == decimal.Decimal("11.00")
        SerializerBase.unregister_class_to_dict(Money)
        SerializerBase.unregister_dict_to_class("finance.Money")
        daemon.shutdown()
    print("serialization hooks example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
