"""The remote objects interop tests serve, written once for either library.

``build(pyro)`` takes the imported library (real ``Pyro4`` in a child process, or
``pyro4compat``) and returns the classes, so both sides serve identical objects.
"""

import threading
import time


def build(pyro):
    class InteropError(Exception):
        """Not known to the other side: it must arrive as an error, not crash anything."""

    @pyro.expose
    class Service(object):
        def __init__(self):
            self.notes = []
            self.noted = threading.Event()
            self._value = 42

        def echo(self, value):
            return value

        def add(self, a, b=0):
            return a + b

        def kwargs(self, **kw):
            return sorted(kw.items())

        def fail(self, text):
            raise ValueError(text)

        def fail_custom(self):
            raise InteropError("custom")

        def numbers(self, count):
            for i in range(count):
                yield i

        def slow(self, seconds):
            time.sleep(seconds)
            return "slow done"

        def context(self):
            ctx = pyro.current_context
            return {"annotations": sorted(ctx.annotations), "seq": ctx.seq,
                    "correlation": str(ctx.correlation_id)}

        @pyro.oneway
        def note(self, value):
            self.notes.append(value)
            self.noted.set()

        def notes_taken(self):
            self.noted.wait(5)
            return list(self.notes)

        @property
        def value(self):
            return self._value

        @value.setter
        def value(self, new):
            self._value = new

        def hidden(self):  # exposed through the class decorator
            return "hidden is exposed"

        def _private(self):
            return "never"

    def counter_class(mode):
        # Separate classes (not subclasses): a registered class carries its Pyro id.
        @pyro.expose
        @pyro.behavior(instance_mode=mode)
        class Counter(object):
            def __init__(self):
                self.count = 0

            def increment(self):
                self.count += 1
                return self.count

        return Counter

    SessionCounter = counter_class("session")
    SingleCounter = counter_class("single")
    PercallCounter = counter_class("percall")

    @pyro.expose
    class Factory(object):
        """Hands out a registered object: with AUTOPROXY the caller gets a proxy to it."""

        def __init__(self, daemon):
            self.daemon = daemon
            self.children = []

        def make(self, name):
            child = Child(name)
            self.daemon.register(child)
            self.children.append(child)
            return child

    @pyro.expose
    class Child(object):
        def __init__(self, name):
            self._name = name

        def name(self):
            return self._name

    @pyro.expose
    class Journal(object):
        """Records the calls it ran, so a test can see where a batch stopped."""

        def __init__(self):
            self.entries = []

        def record(self, value):
            self.entries.append(value)
            return value

        def fail(self, text):
            self.entries.append("fail:" + text)
            raise ValueError(text)

        def read(self):
            entries, self.entries = self.entries, []
            return entries

    @pyro.expose
    class Callbacker(object):
        """Calls back into an object the client serves from its own daemon."""

        def call_back(self, listener, method, *args):
            try:
                return getattr(listener, method)(*args)
            except Exception as exc:
                return "%s: %s" % (type(exc).__name__, exc)

    @pyro.expose
    class Inspector(object):
        """Reports what the serving daemon saw: open streams, request flags, TLS peer."""

        def __init__(self, daemon):
            self.daemon = daemon

        def open_streams(self):
            return len(self.daemon.streaming_responses)

        def request_compressed(self, payload=None):
            return bool(pyro.current_context.msg_flags & 2)  # FLAGS_COMPRESSED

        def peer_common_name(self):
            cert = pyro.current_context.client.getpeercert()
            if not cert:
                return None
            return dict(item[0] for item in cert["subject"]).get("commonName")

    return {
        "Service": Service, "SessionCounter": SessionCounter, "SingleCounter": SingleCounter,
        "PercallCounter": PercallCounter, "Factory": Factory, "InteropError": InteropError,
        "Journal": Journal, "Callbacker": Callbacker, "Inspector": Inspector,
    }


def register_all(pyro, daemon):
    """Register the standard objects under fixed ids; returns the classes."""
    classes = build(pyro)
    daemon.register(classes["Service"](), "interop.service")
    daemon.register(classes["SessionCounter"], "interop.session")
    daemon.register(classes["SingleCounter"], "interop.single")
    daemon.register(classes["PercallCounter"], "interop.percall")
    daemon.register(classes["Factory"](daemon), "interop.factory")
    daemon.register(classes["Journal"](), "interop.journal")
    daemon.register(classes["Callbacker"](), "interop.callbacker")
    daemon.register(classes["Inspector"](daemon), "interop.inspector")
    return classes
