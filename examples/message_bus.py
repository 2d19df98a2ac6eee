"""Chat / message bus: publish-subscribe over Pyro, with oneway deliveries.

Run it with ``python examples/message_bus.py``. A ``MessageBus`` object (one shared instance)
keeps topic subscriptions; each chat participant runs its own small daemon with a
``Subscriber`` object and subscribes to a topic by handing the bus a proxy to it. Publishing
fans the message out with *oneway* calls, so a slow or dead subscriber never blocks the
publisher; a subscriber that can't be reached is dropped. All daemons run in threads of this
process on 127.0.0.1. Exits 0 when every step worked.
"""

from __future__ import annotations

import threading

import pyro4compat as Pyro4


@Pyro4.expose
@Pyro4.behavior(instance_mode="single")  # every client talks to the same bus
class MessageBus:
    def __init__(self) -> None:
        self.topics = {}
        self.lock = threading.Lock()

    def subscribe(self, topic: str, subscriber) -> None:
        with self.lock:
            self.topics.setdefault(topic, []).append(subscriber._pyroUri)

    def publish(self, topic: str, sender: str, text: str) -> int:
        with self.lock:
            uris = list(self.topics.get(topic, []))
        delivered = 0
        for uri in uris:
            with Pyro4.Proxy(uri) as subscriber:
                subscriber._pyroTimeout = 1
                try:
                    subscriber.receive(topic, sender, text)  # oneway: doesn't wait for the subscriber
                    delivered += 1
                except Pyro4.errors.CommunicationError:
                    with self.lock:
                        self.topics[topic].remove(uri)  # gone: stop sending to it
        return delivered


class Subscriber:
    def __init__(self, name: str, expected: int) -> None:
        self.name = name
        self.inbox = []
        self.expected = expected
        self.complete = threading.Event()

    @Pyro4.expose
    @Pyro4.oneway
    def receive(self, topic: str, sender: str, text: str) -> None:
        self.inbox.append("[%s] %s: %s" % (topic, sender, text))
        print("%s's screen: [%s] %s: %s" % (self.name, topic, sender, text))
        if len(self.inbox) == self.expected:
            self.complete.set()


def serve(daemon) -> None:
    threading.Thread(target=daemon.requestLoop, daemon=True).start()


def main() -> int:
    bus_daemon = Pyro4.Daemon(host="127.0.0.1")
    bus_uri = bus_daemon.register(MessageBus, objectId="example.bus")
    serve(bus_daemon)

    people = {"alice": Subscriber("alice", expected=3), "bob": Subscriber("bob", expected=1),
              "carol": Subscriber("carol", expected=1)}
    daemons = {}
    for name, subscriber in people.items():
        daemons[name] = Pyro4.Daemon(host="127.0.0.1")
        daemons[name].register(subscriber)
        serve(daemons[name])

    with Pyro4.Proxy(bus_uri) as bus:
        bus.subscribe("python", people["alice"])
        bus.subscribe("python", people["bob"])
        bus.subscribe("music", people["alice"])
        bus.subscribe("music", people["carol"])
        bus.subscribe("music", people["bob"])

        assert bus.publish("python", "alice", "anyone tried pyro4compat?") == 2
        assert people["bob"].complete.wait(5)
        daemons["bob"].shutdown()  # bob leaves without unsubscribing
        daemons["bob"].close()
        delivered = bus.publish("music", "carol", "concert tonight!")
        print("bus: 'music' message delivered to %d subscribers (bob is gone)" % delivered)
        assert delivered == 2
        assert bus.publish("python", "carol", "yes, it's a drop-in") == 1

    for name in ("alice", "carol"):
        assert people[name].complete.wait(5), name
    # Oneway deliveries run in their own threads: compare without relying on their order.
    assert sorted(people["alice"].inbox) == sorted(["[python] alice: anyone tried pyro4compat?",
                                     "[music] carol: concert tonight!",
                                     "[python] carol: yes, it's a drop-in"])
    assert people["bob"].inbox == ["[python] alice: anyone tried pyro4compat?"]
    for daemon in (bus_daemon, daemons["alice"], daemons["carol"]):
        daemon.shutdown()
        daemon.close()
    print("message bus example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
