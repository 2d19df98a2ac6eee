"""Exposure over the wire (issue 8, item 3), on both server types.

* An unexposed or private attribute, property or dynamic lookup is never evaluated: not its
  getter, not its setter, not ``__getattr__`` (Pyro4 4.82 ran the getter before refusing).
* A pickle, dill or cloudpickle payload sent to a daemon (or name server) that does not accept
  it is never unpickled, on either side: the payload's ``__reduce__`` would set a flag.
  The refusal is encoded with marshal, never with the serializer the daemon refused.
"""

from __future__ import annotations

from typing import Any, List

import pytest

from pyro4compat import _protocol as proto
from pyro4compat import core, errors
from pyro4compat._serializers import get_serializer
from pyro4compat.configuration import config
from pyro4compat.message import Message

from hostile_support import TARGETS, RawClient, served_target
from remote_helpers import served

pytestmark = [pytest.mark.timeout(30), pytest.mark.filterwarnings("ignore:Pyro protocol error occurred")]

EVALUATED: List[str] = []       # what ran on the server that must not have


def unpickled_marker(name: str) -> str:
    EVALUATED.append("unpickled " + name)
    return name


class Trigger(object):
    """Unpickling this calls ``unpickled_marker``: proof that somebody unpickled it."""

    def __init__(self, name: str = "trigger") -> None:
        self.name = name

    def __reduce__(self) -> Any:
        return unpickled_marker, (self.name,)


@pytest.fixture(autouse=True)
def clean_marks():
    EVALUATED.clear()
    yield
    EVALUATED.clear()


@core.expose
class Public(object):
    """Exposed as a class: its public methods and properties are reachable."""

    def ok(self) -> str:
        return "ok"

    @property
    def shown(self) -> str:
        return "shown"

    @property
    def _private_prop(self) -> str:
        EVALUATED.append("_private_prop getter")
        return "leak"


class Partial(object):
    """Only ``ok`` is exposed; the rest must stay untouched by remote requests."""

    def __init__(self) -> None:
        self.plain = "instance attribute"

    @core.expose
    def ok(self) -> str:
        return "ok"

    @property
    def secret(self) -> str:
        EVALUATED.append("secret getter")
        return "leak"

    @secret.setter
    def secret(self, value: Any) -> None:
        EVALUATED.append("secret setter")

    def unexposed_method(self) -> str:
        EVALUATED.append("unexposed_method")
        return "leak"

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("_pyro"):    # the daemon's own local look-ups (register) are fine
            EVALUATED.append("__getattr__ %s" % name)
        raise AttributeError(name)


# (target class, remote operation, name, value): every one must fail with AttributeError
REFUSED = [
    (Partial, "get", "secret", None),
    (Partial, "set", "secret", 1),
    (Partial, "call", "secret", None),
    (Partial, "call", "unexposed_method", None),
    (Partial, "get", "unexposed_method", None),
    (Partial, "get", "plain", None),
    (Partial, "call", "not_there", None),        # would reach __getattr__
    (Partial, "get", "not_there", None),
    (Partial, "call", "__getattribute__", None),
    (Public, "get", "_private_prop", None),
    (Public, "call", "_private_prop", None),
    (Public, "set", "_private_prop", 1),
    (Public, "get", "__dict__", None),
    (Public, "get", "__class__", None),
]


@pytest.mark.parametrize("cls, operation, name, value", REFUSED,
                         ids=["%s-%s-%s" % (c.__name__, o, n) for c, o, n, _ in REFUSED])
def test_refused_names_are_never_evaluated(servertype, serve, cls, operation, name, value):
    with served(serve, obj=cls()) as (daemon, uri, obj):
        with core.Proxy(uri) as proxy:
            proxy._pyroBind()
            invoke = {"get": lambda: proxy._pyroInvoke("__getattr__", (name,), None),
                      "set": lambda: proxy._pyroInvoke("__setattr__", (name, value), None),
                      "call": lambda: proxy._pyroInvoke(name, (), None)}[operation]
            with pytest.raises(AttributeError) as info:
                invoke()
            assert name in str(info.value)
            assert proxy.ok() == "ok"
    assert EVALUATED == []


def test_exposed_members_still_work(servertype, serve):
    with served(serve, obj=Public()) as (daemon, uri, obj):
        with core.Proxy(uri) as proxy:
            assert (proxy.ok(), proxy.shown) == ("ok", "shown")


def test_require_expose_off_still_refuses_private(servertype, serve):
    config.REQUIRE_EXPOSE = False
    with served(serve, obj=Public()) as (daemon, uri, obj):
        with core.Proxy(uri) as proxy:
            proxy._pyroBind()
            with pytest.raises(AttributeError):
                proxy._pyroInvoke("__getattr__", ("_private_prop",), None)
    assert EVALUATED == []


# --- pickle never unpickled by a daemon that does not accept it ------------------------------------------

PICKLERS = {"pickle": 4, "dill": 5, "cloudpickle": 7}


def _pickled_call(name: str, object_id: str) -> bytes:
    ser = get_serializer(name)
    return ser.dumpsCall(object_id, "echo", (Trigger(name),), {"k": Trigger(name + " kwarg")})


@pytest.fixture(params=[(kind, st) for kind in TARGETS for st in ("thread", "multiplex")],
                ids=lambda p: "%s-%s" % p)
def target(request):
    kind, servertype = request.param
    config.SERVERTYPE = servertype
    with served_target(kind) as tgt:
        yield tgt


def test_the_trigger_works():
    """The proof object really does run code when unpickled (else the tests below prove nothing)."""
    for name in PICKLERS:
        get_serializer(name).loads(get_serializer(name).dumps(Trigger(name)))
    assert EVALUATED == ["unpickled pickle", "unpickled dill", "unpickled cloudpickle"]


@pytest.mark.parametrize("name", sorted(PICKLERS))
def test_pickled_handshake_is_refused_unread(target, name):
    with RawClient(target.port) as client:
        payload = get_serializer(name).dumps({"handshake": Trigger(name), "object": "x"})
        client.send(Message(proto.MSG_CONNECT, payload, PICKLERS[name], 0, 0).to_bytes())
        reply = client.reply()
        assert (reply.type, reply.serializer_id) == (proto.MSG_CONNECTFAIL, 3)    # marshal
        assert get_serializer("marshal").loads(reply.data) == (
            "message used serializer that is not accepted: %d" % PICKLERS[name])
        assert client.closed()
    target.well_behaved_call()
    assert EVALUATED == []


@pytest.mark.parametrize("name", sorted(PICKLERS))
@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "compressed"])
def test_pickled_call_is_refused_unread(target, name, compressed):
    payload = _pickled_call(name, target.object_id)
    flags = 0
    if compressed:
        payload, flags = proto.compress_payload(payload + b"\0" * 300, True)[0], proto.FLAGS_COMPRESSED
    with RawClient(target.port) as client:
        client.handshake()
        client.send(Message(proto.MSG_INVOKE, payload, PICKLERS[name], flags, 9).to_bytes())
        reply = client.reply()
        assert (reply.seq, reply.serializer_id, reply.flags & proto.FLAGS_EXCEPTION) == (9, 3, proto.FLAGS_EXCEPTION)
        error = get_serializer("marshal").loads(reply.data)
        assert isinstance(error, errors.SerializeError)
        assert str(error) == "message used serializer that is not accepted: %d" % PICKLERS[name]
    target.well_behaved_call()
    assert EVALUATED == []


@pytest.mark.parametrize("name", sorted(PICKLERS))
def test_proxy_using_pickle_is_refused_and_unpickles_nothing(target, name):
    """The client side: the refusal arrives as marshal, so the proxy never unpickles either."""
    config.SERIALIZER = name
    with core.Proxy(target.uri) as proxy:
        with pytest.raises(errors.CommunicationError) as info:
            proxy._pyroInvoke("echo", (Trigger(name),), None)
        assert "message used serializer that is not accepted: %d" % PICKLERS[name] in str(info.value)
    assert EVALUATED == []


def test_pickle_accepted_does_unpickle(servertype, serve):
    """Control: with pickle accepted, the same call is unpickled (server side, then the echo client side)."""
    config.SERIALIZERS_ACCEPTED = {"pickle"}
    config.SERIALIZER = "pickle"
    with served(serve) as (daemon, uri, thing):
        with core.Proxy(uri) as proxy:
            assert proxy.echo(Trigger("accepted")) == "accepted"
    assert EVALUATED == ["unpickled accepted"]


def test_safe_serializers_only_by_default():
    config.reset(useenvironment=False)
    assert config.SERIALIZERS_ACCEPTED == {"serpent", "marshal", "json"}
    assert config.SERIALIZER == "serpent"
    assert not config.FLAME_ENABLED
