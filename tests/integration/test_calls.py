"""What happens to a call on the server, on both server types: oneway, exposure, instance modes,
autoproxy, the call context, resource tracking and SerializedBlob dispatch."""

from __future__ import annotations

import gc
import threading
import uuid
import weakref
from typing import Any, Dict, List

import pytest

from pyro4compat import core, errors
from pyro4compat._context import current_context
from pyro4compat._serializers import get_serializer
from pyro4compat.configuration import config

from remote_helpers import HOST, WAIT, Recorder, make_daemon, served, wait_until

pytestmark = pytest.mark.timeout(30)


# --- oneway -----------------------------------------------------------------------------------------

def test_oneway_threaded(servertype, serve):
    config.ONEWAY_THREADED = True
    with served(serve) as (daemon, uri, thing):
        with core.Proxy(uri) as proxy:
            try:
                assert proxy.fire_and_block() is None  # returns at once: no reply is sent
                assert thing.fired_event.wait(WAIT)
                assert proxy.echo("meanwhile") == "meanwhile"  # the blocked oneway runs in its own thread
            finally:
                thing.release.set()
            thing.fired_event.clear()
            proxy.fire("x")
            assert thing.fired_event.wait(WAIT)
            assert thing.fired == [("x", "oneway-call")]


def test_oneway_not_threaded(servertype, serve):
    config.ONEWAY_THREADED = False
    with served(serve) as (daemon, uri, thing):
        with core.Proxy(uri) as proxy:
            proxy.fire("y")
            assert thing.fired_event.wait(WAIT)
            assert thing.fired[0][0] == "y" and thing.fired[0][1] != "oneway-call"
            thing.fired_event.clear()
            done = threading.Event()
            try:
                proxy.fire_and_block()
                assert thing.fired_event.wait(WAIT)
                follower = threading.Thread(target=lambda: (proxy.echo(1), done.set()), daemon=True)
                follower.start()
                assert not done.wait(0.2)  # runs in the serving thread: the connection waits for it
            finally:
                thing.release.set()
            assert done.wait(WAIT)
            follower.join(WAIT)


def test_oneway_errors_do_not_come_back(servertype, serve, monkeypatch):
    escaped: List[Any] = []  # a threaded oneway's error ends its thread, as in Pyro4
    monkeypatch.setattr(threading, "excepthook", lambda args: escaped.append((args.exc_type, args.thread.name)))

    @core.expose
    class Failing:
        def __init__(self) -> None:
            self.reached = threading.Event()

        @core.oneway
        def explode(self) -> None:
            self.reached.set()
            raise ValueError("nobody hears this")

        def ok(self) -> str:
            return "ok"

    for threaded in (True, False):
        config.ONEWAY_THREADED = threaded
        obj = Failing()
        with served(serve, obj=obj) as (daemon, uri, _):
            with core.Proxy(uri) as proxy:
                assert proxy.explode() is None
                assert obj.reached.wait(WAIT)
                assert proxy.ok() == "ok"
        if threaded:
            gone = [t for t in threading.enumerate() if t.name == "oneway-call"]
            for thread in gone:
                thread.join(WAIT)
            assert escaped == [(ValueError, "oneway-call")]


def test_oneway_flag_from_metadata_only(servertype, serve):
    """With METADATA off the proxy can't know a method is oneway: it waits for the (None) reply."""
    config.METADATA = False
    with served(serve) as (daemon, uri, thing):
        with core.Proxy(uri) as proxy:
            assert proxy.fire("z") is None
            assert thing.fired and thing.fired[0][1] != "oneway-call"


# --- exposure -------------------------------------------------------------------------------------------

class Base:
    @core.expose
    def inherited_exposed(self) -> str:
        return "base-exposed"

    def inherited_plain(self) -> str:
        return "base-plain"


class Mixed(Base):
    @core.expose
    def exposed(self) -> str:
        return "exposed"

    def hidden(self) -> str:
        return "hidden"

    def _private(self) -> str:
        return "private"

    @core.expose
    def __len__(self) -> int:
        return 5

    @core.expose
    @property
    def prop(self) -> str:
        return "prop"

    @property
    def hidden_prop(self) -> str:
        return "hidden prop"

    @classmethod
    @core.expose
    def klass(cls) -> str:
        return cls.__name__

    @staticmethod
    @core.expose
    def static(x: int) -> int:
        return x * 2


@core.expose
class WholeClass(Base):
    def one(self) -> int:
        return 1

    @property
    def attr(self) -> int:
        return 2

    def _private(self) -> None:
        pass


def _metadata(uri: Any) -> tuple:
    with core.Proxy(uri) as proxy:
        proxy._pyroBind()
        return proxy._pyroMethods, proxy._pyroAttrs


def test_exposed_members_and_calls(servertype, serve):
    with served(serve, obj=Mixed()) as (daemon, uri, _):
        methods, attrs = _metadata(uri)
        assert methods == {"exposed", "__len__", "klass", "static", "inherited_exposed"}
        assert attrs == {"prop"}
        with core.Proxy(uri) as proxy:
            assert (proxy.exposed(), proxy.__len__(), proxy.klass(), proxy.static(4), proxy.prop) == \
                   ("exposed", 5, "Mixed", 8, "prop")
            assert proxy.inherited_exposed() == "base-exposed"


def test_whole_class_exposure(servertype, serve):
    with served(serve, obj=WholeClass()) as (daemon, uri, _):
        methods, attrs = _metadata(uri)
        assert methods == {"one", "inherited_exposed"}  # base classes are not exposed by the class decorator
        assert attrs == {"attr"}


SERVER_REFUSALS = [
    ("hidden", "attempt to access unexposed attribute 'hidden'"),
    ("inherited_plain", "attempt to access unexposed attribute 'inherited_plain'"),
    ("_private", "attempt to access private attribute '_private'"),
    ("__init__", "attempt to access private attribute '__init__'"),
    ("exposed.__func__", "'Mixed' object has no attribute 'exposed.__func__'"),
    ("missing", "'Mixed' object has no attribute 'missing'"),
]


@pytest.mark.parametrize("name,text", SERVER_REFUSALS)
def test_server_refuses_unexposed_private_and_dotted_names(servertype, serve, name, text):
    config.METADATA = False  # the proxy would refuse first; make the server decide
    with served(serve, obj=Mixed()) as (daemon, uri, _):
        with core.Proxy(uri) as proxy:
            with pytest.raises(AttributeError) as info:
                proxy._pyroInvoke(name, (), {})
            assert str(info.value) == text
            assert proxy.exposed() == "exposed"  # the connection survives


@pytest.mark.parametrize("action,name", [("get", "hidden_prop"), ("set", "hidden_prop"), ("get", "nothing"),
                                         ("set", "prop")])
def test_server_refuses_unexposed_attributes(servertype, serve, action, name):
    config.METADATA = False
    with served(serve, obj=Mixed()) as (daemon, uri, _):
        with core.Proxy(uri) as proxy:
            with pytest.raises(AttributeError) as info:
                if action == "get":
                    proxy._pyroInvoke("__getattr__", (name,), None)
                else:
                    proxy._pyroInvoke("__setattr__", (name, 1), None)
            if name == "nothing":
                assert str(info.value) == "type object 'Mixed' has no attribute 'nothing'"
            else:
                assert str(info.value) == "attempt to access unexposed or unknown remote attribute '%s'" % name


def test_require_expose_off(servertype, serve):
    config.REQUIRE_EXPOSE = False
    with served(serve, obj=Mixed()) as (daemon, uri, _):
        methods, attrs = _metadata(uri)
        assert {"hidden", "inherited_plain", "exposed"} <= methods
        assert not any(name.startswith("_") and not name.startswith("__") for name in methods)
        assert {"prop", "hidden_prop"} <= attrs
        with core.Proxy(uri) as proxy:
            assert proxy.hidden() == "hidden"
            assert proxy.hidden_prop == "hidden prop"
        config.METADATA = False
        with core.Proxy(uri) as proxy:
            with pytest.raises(AttributeError) as info:
                proxy._private()
            assert str(info.value) == "attempt to access private attribute '_private'"


def test_expose_decorator_misuse():
    with pytest.raises(AttributeError) as info:
        class Wrong:
            @core.expose
            @classmethod
            def cm(cls) -> None:
                pass
    assert str(info.value) == ("using @expose on a classmethod/staticmethod must be done after "
                               "@classmethod/@staticmethod. Method: cm")
    with pytest.raises(AttributeError) as info:
        core.expose(Mixed._private)
    assert str(info.value) == "exposing private names (starting with _) is not allowed"


# --- instance modes -------------------------------------------------------------------------------------

def _instance_class(mode: str, created: List[Any], creator: Any = None) -> type:
    @core.behavior(instance_mode=mode, instance_creator=creator)
    @core.expose
    class Served:
        def __init__(self, tag: str = "default") -> None:
            self.tag = tag
            created.append(self)

        def identity(self) -> int:
            return id(self)

        def get_tag(self) -> str:
            return self.tag

    return Served


@pytest.mark.parametrize("mode,distinct", [("single", 1), ("session", 2), ("percall", 4)])
def test_instance_modes(servertype, serve, mode, distinct):
    created: List[Any] = []
    cls = _instance_class(mode, created)
    daemon = make_daemon()
    with served(serve, obj=cls, daemon=daemon) as (daemon, uri, _):
        ids = []
        for _ in range(2):
            with core.Proxy(uri) as proxy:
                ids += [proxy.identity(), proxy.identity()]
        assert len(set(ids)) == distinct
        assert len(created) == distinct
        if mode == "session":
            assert ids[0] == ids[1] and ids[2] == ids[3]


def test_registered_class_without_behavior_is_session(servertype, serve):
    @core.expose
    class Counter:
        def __init__(self) -> None:
            self.count = 0

        def bump(self) -> int:
            self.count += 1
            return self.count

    with served(serve, obj=Counter) as (daemon, uri, _):
        with core.Proxy(uri) as a, core.Proxy(uri) as b:
            assert [a.bump(), a.bump(), b.bump(), a.bump()] == [1, 2, 1, 3]


def test_instance_creator(servertype, serve):
    created: List[Any] = []
    calls: List[type] = []

    def creator(cls: type) -> Any:
        calls.append(cls)
        return cls("made-by-creator")

    cls = _instance_class("single", created, creator)
    with served(serve, obj=cls) as (daemon, uri, _):
        with core.Proxy(uri) as proxy:
            assert proxy.get_tag() == "made-by-creator"
            assert proxy.get_tag() == "made-by-creator"
    assert calls == [cls]


def test_instance_creator_of_wrong_type(servertype, serve):
    cls = _instance_class("percall", [], lambda cls: object())
    with served(serve, obj=cls) as (daemon, uri, _):
        with core.Proxy(uri) as proxy:
            with pytest.raises(TypeError) as info:
                proxy.get_tag()
            assert str(info.value) == "instance creator returned object of different type"


def test_session_instance_dropped_with_its_connection(servertype, serve):
    created: List[Any] = []
    cls = _instance_class("session", created)
    gone = Recorder()

    class Watching(core.Daemon):
        def clientDisconnect(self, conn: Any) -> None:
            gone.add(conn)

    with served(serve, obj=cls, daemon=Watching(host=HOST)) as (daemon, uri, _):
        with core.Proxy(uri) as proxy:
            proxy.identity()
        assert gone.wait_count(1)
        ref = weakref.ref(created.pop())
        # clientDisconnect runs just before the connection (holding the instance) is closed
        assert wait_until(lambda: gc.collect() >= 0 and ref() is None)


def test_single_instance_created_once_under_concurrency(serve):
    config.SERVERTYPE = "thread"
    created: List[Any] = []
    cls = _instance_class("single", created)
    with served(serve, obj=cls) as (daemon, uri, _):
        barrier = threading.Barrier(6, timeout=WAIT)
        ids: List[int] = []

        def call() -> None:
            with core.Proxy(uri) as proxy:
                proxy._pyroBind()
                barrier.wait()
                ids.append(proxy.identity())

        threads = [threading.Thread(target=call) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        assert len(ids) == 6 and len(set(ids)) == 1 and len(created) == 1


def test_behavior_decorator_rules():
    with pytest.raises(SyntaxError) as info:
        @core.behavior
        class Bare:
            pass
    assert str(info.value) == "behavior decorator is missing argument(s)"
    with pytest.raises(ValueError) as info:
        core.behavior(instance_mode="sometimes")(Child)
    assert str(info.value) == "invalid instance mode: sometimes"


# --- autoproxy ----------------------------------------------------------------------------------------------

@core.expose
class Child:
    def __init__(self, name: str = "child") -> None:
        self.name = name

    def hello(self) -> str:
        return "hello from " + self.name


@core.expose
class Parent:
    def __init__(self) -> None:
        self.child = Child()

    def get_child(self) -> Any:
        return self.child

    def call_back(self, listener: Any) -> Any:
        return type(listener).__name__, listener.hello()


# Not marshal: it turns unknown objects into dicts without asking the type replacements that
# autoproxy installs (Pyro4 4.82's marshal does the same).
@pytest.mark.parametrize("serializer", ["serpent", "json", "msgpack", "pickle"])
def test_autoproxy_on(servertype, serve, serializer):
    config.SERIALIZERS_ACCEPTED = {serializer}
    config.SERIALIZER = serializer
    parent = Parent()
    with served(serve, obj=parent) as (daemon, uri, _):
        child_uri = daemon.register(parent.child)
        with core.Proxy(uri) as proxy:
            child = proxy.get_child()
            assert isinstance(child, core.Proxy)
            assert child._pyroUri == child_uri
            assert child.hello() == "hello from child"
            child._pyroRelease()


@pytest.mark.parametrize("when", ["before registering", "after registering"])
def test_autoproxy_off(servertype, serve, when):
    config.SERIALIZER = "pickle"
    config.SERIALIZERS_ACCEPTED = {"pickle"}
    if when == "before registering":
        config.AUTOPROXY = False
    parent = Parent()
    with served(serve, obj=parent) as (daemon, uri, _):
        daemon.register(parent.child)
        config.AUTOPROXY = False
        with core.Proxy(uri) as proxy:
            child = proxy.get_child()
            assert type(child).__name__ == "Child" and child.name == "child"  # a copy, by value


def test_autoproxy_in_arguments_for_callbacks(servertype, serve):
    """A registered object passed as an argument arrives as a proxy the server can call back."""
    with served(serve, obj=Parent()) as (daemon, uri, _):
        client_daemon = make_daemon()
        listener = Child("listener")
        client_daemon.register(listener)
        with serve(client_daemon):
            with core.Proxy(uri) as proxy:
                kind, greeting = proxy.call_back(listener)
        assert (kind, greeting) == ("Proxy", "hello from listener")


# --- call context -------------------------------------------------------------------------------------------

def test_context_on_the_server(servertype, serve):
    with served(serve) as (daemon, uri, _):
        with core.Proxy(uri) as proxy:
            proxy._pyroBind()
            context = proxy.context()
            local = proxy._pyroConnection.sock.getsockname()
            assert tuple(context["addr"]) == local
            assert context["seq"] == proxy._pyroSeq
            assert context["serializer_id"] == get_serializer(config.SERIALIZER).serializer_id
            uuid.UUID(context["corr"])  # the daemon made one up
            assert context["flags"] == 0


def test_correlation_id_travels_and_propagates(servertype, serve):
    @core.expose
    class Relay:
        def __init__(self, target: Any) -> None:
            self.target = target

        def relay(self) -> Any:
            with core.Proxy(self.target) as onward:
                inner = onward.context()["corr"]
            return str(current_context.correlation_id), inner

    with served(serve) as (back_daemon, back_uri, _):
        with served(serve, obj=Relay(back_uri), daemon=make_daemon()) as (daemon, uri, _):
            corr = uuid.uuid4()
            current_context.correlation_id = corr
            try:
                with core.Proxy(uri) as proxy:
                    seen, inner = proxy.relay()
                    assert bytes(current_context.response_annotations["CORR"]) == corr.bytes
            finally:
                current_context.correlation_id = None
            assert seen == inner == str(corr)
            with core.Proxy(uri) as proxy:
                first, first_inner = proxy.relay()
                second, _ = proxy.relay()
            assert first == first_inner and first != second  # fresh per request, still propagated


def test_context_in_threaded_oneway_call(servertype, serve):
    config.ONEWAY_THREADED = True
    seen: Dict[str, Any] = {}
    done = threading.Event()

    @core.expose
    class Observer:
        @core.oneway
        def observe(self) -> None:
            seen.update(seq=current_context.seq, addr=current_context.client_sock_addr,
                        corr=current_context.correlation_id, thread=threading.current_thread().name)
            done.set()

    with served(serve, obj=Observer()) as (daemon, uri, _):
        corr = uuid.uuid4()
        current_context.correlation_id = corr
        try:
            with core.Proxy(uri) as proxy:
                proxy.observe()
                local = proxy._pyroConnection.sock.getsockname()
                assert done.wait(WAIT)
                assert seen == {"seq": proxy._pyroSeq, "addr": local, "corr": corr, "thread": "oneway-call"}
        finally:
            current_context.correlation_id = None


class Resource:
    def __init__(self, closed: Recorder) -> None:
        self.closed = closed

    def close(self) -> None:
        self.closed.add(self)


@core.expose
class ResourceUser:
    def __init__(self) -> None:
        self.closed = Recorder()
        self.keep: List[Resource] = []

    def open(self, tracked: bool = True) -> int:
        resource = Resource(self.closed)
        self.keep.append(resource)  # the tracking set is weak
        current_context.track_resource(resource)
        if not tracked:
            current_context.untrack_resource(resource)
        return len(self.keep)


def test_tracked_resources_close_when_the_client_goes(servertype, serve):
    user = ResourceUser()
    with served(serve, obj=user) as (daemon, uri, _):
        proxy = core.Proxy(uri)
        proxy.open()
        proxy.open()
        proxy.open(tracked=False)
        assert user.closed.items == []
        proxy._pyroRelease()
        assert user.closed.wait_count(2)
        assert set(map(id, user.closed.items)) == set(map(id, user.keep[:2]))


def test_tracked_resources_close_when_the_client_vanishes(servertype, serve):
    user = ResourceUser()
    with served(serve, obj=user) as (daemon, uri, _):
        proxy = core.Proxy(uri)
        proxy.open()
        proxy._pyroConnection.sock.close()  # no goodbye: the raw socket just goes away
        assert user.closed.wait_count(1)


def test_track_resource_needs_a_client():
    current_context.client = None
    with pytest.raises(errors.PyroError) as info:
        current_context.track_resource(Resource(Recorder()))
    assert str(info.value) == "cannot track resource on a connectionless call"


# --- SerializedBlob -----------------------------------------------------------------------------------------

@core.expose
class Dispatcher:
    def __init__(self, worker_uri: Any) -> None:
        self.worker_uri = worker_uri
        self.seen: List[Any] = []

    def dispatch(self, blob: Any) -> Any:
        self.seen.append((type(blob).__name__, blob.info, blob._contains_blob))
        with core.Proxy(self.worker_uri) as worker:
            return worker.process(blob)  # passed on without deserializing


@core.expose
class Worker:
    def process(self, blob: Any) -> Any:
        return ["processed", blob.info, list(blob.deserialized())]


@pytest.mark.parametrize("serializer", ["serpent", "json", "pickle", "msgpack"])
def test_serialized_blob_through_a_dispatcher(servertype, serve, serializer):
    config.SERIALIZER = serializer
    config.SERIALIZERS_ACCEPTED = {serializer}
    with served(serve, obj=Worker(), object_id="worker") as (_, worker_uri, _w):
        dispatcher = Dispatcher(worker_uri)
        with served(serve, obj=dispatcher, object_id="dispatcher", daemon=make_daemon()) as (_, uri, _d):
            with core.Proxy(uri) as proxy:
                blob = core.SerializedBlob("blob-info", ["payload", {"k": 1}])
                result = proxy.dispatch(blob)
    assert list(result) == ["processed", "blob-info", ["payload", {"k": 1}]]
    assert dispatcher.seen == [("SerializedBlob", "blob-info", True)]


def test_serialized_blob_must_be_the_only_argument(servertype, serve):
    with served(serve) as (daemon, uri, _):
        with core.Proxy(uri) as proxy:
            with pytest.raises(errors.SerializeError) as info:
                proxy.echo(core.SerializedBlob("i", [1]), 2)
            assert str(info.value) == "if SerializedBlob is used, it must be the only argument"
