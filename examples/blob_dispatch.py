"""Blob dispatch: a dispatcher routes messages it never deserializes (``SerializedBlob``).

Run it with ``python examples/blob_dispatch.py``. A client wraps its payload in
``Pyro4.core.SerializedBlob(info, data)`` and sends it as the *only* argument. The dispatcher
sees the small ``info`` (here: a topic) and forwards the blob to the right handler, still
serialized: it needs neither the payload's classes nor the time to unpack and repack it. Only
the handler calls ``blob.deserialized()``. Dispatcher and handlers are daemons in threads on
127.0.0.1. Exits 0 when every step worked.
"""

from __future__ import annotations

import threading

import pyro4compat as Pyro4
from pyro4compat.util import SerializerBase


class Order:
    """The payload class: known to the client and the handler, not to the dispatcher."""
    __module__ = "shop"

    def __init__(self, item: str, quantity: int) -> None:
        self.item = item
        self.quantity = quantity


def order_to_dict(order: Order) -> dict:
    return {"__class__": "shop.Order", "item": order.item, "quantity": order.quantity}


def dict_to_order(classname: str, data: dict) -> Order:
    return Order(data["item"], data["quantity"])


@Pyro4.expose
class Dispatcher:
    def __init__(self) -> None:
        self.handlers = {}

    def add_handler(self, topic: str, handler) -> None:
        self.handlers[topic] = handler

    def dispatch(self, blob) -> str:
        # Only blob.info is readable here; the payload stays a bag of serialized bytes.
        topic = blob.info
        print("dispatcher: routing a %s to the %r handler" % (type(blob).__name__, topic))
        with Pyro4.Proxy(self.handlers[topic]) as handler:
            return handler.handle(blob)  # passed on unchanged, again as the only argument


@Pyro4.expose
class OrderHandler:
    def __init__(self) -> None:
        self.received = []

    def handle(self, blob) -> str:
        order, note = blob.deserialized()  # only now does the payload become objects again
        self.received.append(order)
        return "handled %d x %s (%s, %s)" % (order.quantity, order.item, type(order).__name__, note)


def serve(daemon) -> None:
    threading.Thread(target=daemon.requestLoop, daemon=True).start()


def main() -> int:
    # Client and handler know how to turn an Order into a dict and back (see
    # serialization_hooks.py); the dispatcher wouldn't need to.
    SerializerBase.register_class_to_dict(Order, order_to_dict)
    SerializerBase.register_dict_to_class("shop.Order", dict_to_order)

    with Pyro4.Daemon(host="127.0.0.1") as dispatch_daemon, Pyro4.Daemon(host="127.0.0.1") as handler_daemon:
        handler = OrderHandler()
        handler_uri = handler_daemon.register(handler)
        dispatcher_uri = dispatch_daemon.register(Dispatcher())
        serve(dispatch_daemon)
        serve(handler_daemon)

        with Pyro4.Proxy(dispatcher_uri) as dispatcher:
            dispatcher.add_handler("orders", handler_uri)
            blob = Pyro4.core.SerializedBlob("orders", (Order("teapot", 3), "gift wrapped"))
            answer = dispatcher.dispatch(blob)
            print("client:", answer)
            assert answer == "handled 3 x teapot (Order, gift wrapped)"
            assert isinstance(handler.received[0], Order)

            try:
                dispatcher.dispatch(blob, "extra")
            except Pyro4.errors.SerializeError as exc:
                print("client: a blob must be the only argument:", exc)
            else:
                raise AssertionError("a blob with another argument must be refused")
        dispatch_daemon.shutdown()
        handler_daemon.shutdown()
    print("blob dispatch example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
