"""The daemon's per-request shortcuts: caches must follow the changes they cache, guards must still refuse."""

from __future__ import annotations

import marshal
import os
import struct
import uuid
import warnings
from typing import Any

import pytest

from pyro4compat import errors
from pyro4compat import _serializers as S
from pyro4compat._context import _CallContext
from pyro4compat._serializers import marshal_serializer as M
from pyro4compat._server import dispatch, exposure
from pyro4compat._server.exposure import expose, lookup_exposed_attribute, reset_exposed_members
from pyro4compat.socketutil import SocketConnection


# --- marshal guard: the quick proof and its fall back to the walk ------------------------------------

def _count(code: bytes, n: int) -> bytes:
    return code + struct.pack("<i", n)


@pytest.mark.parametrize("value", [
    ("bench", "add", [1, 2], {}), ("obj", "m", [], None), [[1, [2, (3,)]], {"k": {1, 2}}], 2 ** 100,
    "abc" * 50, ["item"] * 300, [None] * 30,
    # text holding set/frozenset/long type codes: those counts never make marshal allocate ahead
    {"handshake": "hello", "meta": {"methods": ["close", "<b>"]}}, b"l\xff\xff\xff\x7f", {"<": ">"},
], ids=lambda v: repr(v)[:30])
def test_quick_check_proves_ordinary_payloads(value: Any) -> None:
    data = marshal.dumps(value)
    assert M._quick_check(data)
    assert M.safe_loads(data) == value


@pytest.mark.parametrize("value", [
    [None] * 40,  # the count 40 is the byte "(", followed by "NNN": a false alarm
    tuple(range(300)), ["(((([[[[", b"[\xff\xff\xff\x7f"], b"(\x00\x00\x01\x00",
], ids=lambda v: repr(v)[:30])
def test_false_alarms_are_walked_and_loaded(value: Any) -> None:
    data = marshal.dumps(value)
    assert not M._quick_check(data)
    assert M.safe_loads(data) == value


@pytest.mark.parametrize("data", [
    _count(b"(", 2 ** 31 - 1), _count(b"[", 10 ** 9) + b"N" * 10, _count(b"\xdb", 10 ** 6),
    # every count fits the bytes after it, but together (nested) they don't: still unproven
    _count(b"(", 900) + _count(b"(", 900) + _count(b"(", 900) + b"N" * 900,
    b"x" * (M._QUICK_MAX_SIZE + 1),  # too large to prove quickly
], ids=lambda d: repr(d[:12]))
def test_quick_check_leaves_bombs_to_the_walk(data: bytes) -> None:
    assert not M._quick_check(data)


@pytest.mark.parametrize("data, message", [
    (_count(b"(", 2 ** 31 - 1), "exceeds the payload"),
    (_count(b"(", 900) + _count(b"(", 900) + b"N" * 800, "exceeds the payload|truncated"),
    (b"[\x02\x00\x00\x00N", "exceeds the payload"),  # quick check passes, marshal fails: the walk's text
    (b"s\x05\x00\x00\x00ab", "truncated"),
    (marshal.dumps(["see", compile("1", "x", "eval")]), "unsupported type code 'c'"),
])
def test_safe_loads_refuses_with_the_walks_text(data: bytes, message: str) -> None:
    with pytest.raises(errors.SerializeError, match=message):
        M.safe_loads(data)


@pytest.mark.parametrize("code", [b"<", b">", b"l", b"\xbc", b"\xbe", b"\xec"])
def test_huge_set_and_long_counts_pass_the_quick_check_and_marshal_refuses_them(code: bytes) -> None:
    """A set, frozenset or long claiming 2**31 - 1 elements: marshal fails before allocating."""
    data = _count(code, 2 ** 31 - 1) + b"N" * 8
    assert M._quick_check(data)
    with pytest.raises(errors.SerializeError, match="exceeds the payload|truncated"):
        M.safe_loads(data)


def test_code_objects_are_never_built(monkeypatch: pytest.MonkeyPatch) -> None:
    built = []

    def spy(real: Any) -> Any:
        def spying_loads(data: bytes, *args: Any, **kwargs: Any) -> Any:
            value = real(data, *args, **kwargs)   # on 3.13+ _load passes allow_code=False here
            built.append(value)
            return value
        return spying_loads

    monkeypatch.setattr(M, "_load", spy(M._load))
    monkeypatch.setattr(M.marshal, "loads", spy(marshal.loads))
    with pytest.raises(errors.SerializeError):
        M.safe_loads(marshal.dumps(("x", compile("1", "x", "eval"))))
    assert built == []


def test_class_dicts_still_recreated_and_skipped_without_them(monkeypatch: pytest.MonkeyPatch) -> None:
    ser = S.get_serializer("marshal")
    exc = ser.loads(ser.dumps(ValueError("boom")))
    assert isinstance(exc, ValueError) and exc.args == ("boom",)
    walked = []
    monkeypatch.setattr(type(ser), "recreate_classes", lambda self, value: walked.append(value) or value)
    assert ser.loadsCall(ser.dumpsCall("o", "m", [1, "x"], {"k": 2})) == ("o", "m", [1, "x"], {"k": 2})
    assert walked == []
    ser.loadsCall(ser.dumpsCall("o", "m", [{"__class__": "x"}], {}))
    assert walked  # the text __class__ is there: the walk runs


# --- exposure lookup cache -----------------------------------------------------------------------------

def _fresh_class() -> type:
    class Thing:
        def __init__(self) -> None:
            self.getter_runs = 0

        @expose
        def hello(self) -> str:
            return "hi"

        def hidden(self) -> str:
            return "no"

    return Thing


def test_lookup_cache_keeps_verdicts_and_never_network_names() -> None:
    cls = _fresh_class()
    obj = cls()
    assert lookup_exposed_attribute(obj, "hello", True)() == "hi"
    assert "hello" in exposure._lookup_cache[cls]
    for name in ("hidden", "nonexistent_name_%d" % id(obj)):
        with pytest.raises(AttributeError):
            lookup_exposed_attribute(obj, name, True)
    assert "nonexistent_name_%d" % id(obj) not in exposure._lookup_cache[cls]


def test_lookup_cache_follows_a_patched_class_and_never_runs_an_unexposed_getter() -> None:
    cls = _fresh_class()
    obj = cls()
    assert lookup_exposed_attribute(obj, "hello", True)() == "hi"

    def counting_getter(self: Any) -> str:
        self.getter_runs += 1
        return "evaluated"

    cls.hello = property(counting_getter)  # no reset: the cache must notice by itself
    with pytest.raises(AttributeError, match="unexposed"):
        lookup_exposed_attribute(obj, "hello", True)
    assert obj.getter_runs == 0
    cls.hidden = expose(lambda self: "now exposed")
    assert lookup_exposed_attribute(obj, "hidden", True)() == "now exposed"


def test_lookup_cache_reads_marks_on_every_call() -> None:
    cls = _fresh_class()
    obj = cls()
    with pytest.raises(AttributeError):
        lookup_exposed_attribute(obj, "hidden", True)
    expose(cls.__dict__["hidden"])
    assert lookup_exposed_attribute(obj, "hidden", True)() == "no"


def test_instance_attribute_overrides_cached_class_verdict() -> None:
    cls = _fresh_class()
    obj = cls()
    assert lookup_exposed_attribute(obj, "hello", True)() == "hi"
    obj.hello = lambda: "unmarked instance function"
    with pytest.raises(AttributeError, match="unexposed"):
        lookup_exposed_attribute(obj, "hello", True)
    assert lookup_exposed_attribute(cls(), "hello", True)() == "hi"


def test_an_inherited_verdict_follows_an_override_added_to_the_subclass_later() -> None:
    """The verdict of a base class's method is found by the MRO walk; a subclass that later
    defines the name itself (unexposed) is judged afresh, not by the base's cached verdict."""
    base = _fresh_class()
    derived = type("Derived", (base,), {})
    obj = derived()
    assert lookup_exposed_attribute(obj, "hello", True)() == "hi"
    assert lookup_exposed_attribute(obj, "hello", True)() == "hi"    # (now from the cache)
    derived.hello = lambda self: "unexposed override"
    with pytest.raises(AttributeError, match="unexposed"):
        lookup_exposed_attribute(obj, "hello", True)
    del derived.hello
    assert lookup_exposed_attribute(obj, "hello", True)() == "hi"
    base.hello = lambda self: "unexposed replacement"
    with pytest.raises(AttributeError, match="unexposed"):
        lookup_exposed_attribute(obj, "hello", True)


@pytest.mark.parametrize("name", [["hello"], 3, None])
def test_a_name_that_is_no_string_is_refused_before_and_after_caching(name: Any) -> None:
    cls = _fresh_class()
    obj = cls()
    lookup_exposed_attribute(obj, "hello", True)
    with pytest.raises(AttributeError, match="private"):
        lookup_exposed_attribute(obj, name, True)


def test_private_names_are_never_judged_by_a_cached_verdict() -> None:
    cls = _fresh_class()
    cls._secret = expose(lambda self: "private")
    obj = cls()
    for _ in range(2):
        with pytest.raises(AttributeError, match="private"):
            lookup_exposed_attribute(obj, "_secret", True)
    assert "_secret" not in exposure._lookup_cache.get(cls, {})


@pytest.mark.parametrize("forget", [
    lambda cls: reset_exposed_members(cls, True, True),
    lambda cls: exposure.forget_class_lookups(cls()),
])
def test_lookup_cache_invalidation(forget: Any) -> None:
    cls = _fresh_class()
    lookup_exposed_attribute(cls(), "hello", True)
    assert cls in exposure._lookup_cache
    forget(cls)
    assert cls not in exposure._lookup_cache


# --- correlation ids and the peer address -----------------------------------------------------------

def test_fresh_correlation_ids_are_version_4_uuids_each_handed_out_once() -> None:
    """They come from os.urandom a batch at a time (one syscall, one GIL release, per 256 calls)."""
    ids = [dispatch._random_correlation_bytes() for _ in range(3 * dispatch._ID_BATCH + 7)]
    assert len(set(ids)) == len(ids)
    for raw in ids:
        made = uuid.UUID(bytes=raw)
        assert made.version == 4 and made.variant == uuid.RFC_4122


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_repeat_the_parents_correlation_ids() -> None:
    dispatch._fresh_ids.clear()
    dispatch._random_correlation_bytes()        # the parent now holds a batch
    reader, writer = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # 3.12+: forking with threads about
        pid = os.fork()
    if pid == 0:
        try:
            os.write(writer, dispatch._random_correlation_bytes())
        finally:
            os._exit(0)
    os.close(writer)
    child = os.read(reader, 16)
    os.close(reader)
    os.waitpid(pid, 0)
    assert len(child) == 16 and child != dispatch._random_correlation_bytes()
    assert child not in list(dispatch._fresh_ids)

def test_correlation_id_is_built_lazily_from_the_request_bytes() -> None:
    context = _CallContext()
    raw = uuid.uuid4().bytes
    context._set_correlation_bytes(raw)
    assert context._correlation_bytes() == raw
    assert context.correlation_id == uuid.UUID(bytes=raw)
    context.correlation_id = None
    assert context._correlation_bytes() is None
    marker = uuid.uuid4()
    context.correlation_id = marker
    assert context._correlation_bytes() == marker.bytes
    assert context.to_global()["correlation_id"] is marker


def test_fresh_correlation_ids_look_like_uuid4() -> None:
    seen = {dispatch._random_correlation_bytes() for _ in range(200)}
    assert len(seen) == 200
    for raw in seen:
        value = uuid.UUID(bytes=raw)
        assert (len(raw), value.version, value.variant) == (16, 4, uuid.RFC_4122)


def test_bad_corr_annotation_still_refused() -> None:
    with pytest.raises(ValueError):
        dispatch._set_correlation_id({"CORR": b"short"})


class _FakeSocket:
    def __init__(self, address: Any) -> None:
        self.address = address
        self.asked = 0

    def getpeername(self) -> Any:
        self.asked += 1
        if self.address is None:
            raise OSError("not connected")
        return self.address


def test_peer_address_is_asked_once_per_socket() -> None:
    first = _FakeSocket(("127.0.0.1", 5000))
    conn = SocketConnection.__new__(SocketConnection)  # no real socket: nothing to close
    conn.sock = first
    assert [dispatch._peer_address(conn) for _ in range(3)] == [("127.0.0.1", 5000)] * 3
    assert first.asked == 1
    conn.sock = second = _FakeSocket(("127.0.0.1", 6000))
    assert dispatch._peer_address(conn) == ("127.0.0.1", 6000) and second.asked == 1
    conn.sock = broken = _FakeSocket(None)
    assert dispatch._peer_address(conn) is None and dispatch._peer_address(conn) is None
    assert broken.asked == 2  # failures are not cached
    conn.sock = None
    del conn.sock


def test_peer_address_remembered_from_accept_needs_no_getpeername() -> None:
    accepted = _FakeSocket(("127.0.0.1", 5000))
    conn = SocketConnection.__new__(SocketConnection)
    conn.sock = accepted
    conn._remember_peer(("127.0.0.1", 5000))
    assert dispatch._peer_address(conn) == ("127.0.0.1", 5000) and accepted.asked == 0
    conn.sock = wrapped = _FakeSocket(("127.0.0.1", 5000))  # e.g. wrapped for TLS: asked afresh
    assert dispatch._peer_address(conn) == ("127.0.0.1", 5000) and wrapped.asked == 1
    conn.sock = None
    del conn.sock


def test_peer_address_of_a_connection_without_the_cache() -> None:
    class Bare:
        sock = _FakeSocket(("::1", 7, 0, 0))
    assert dispatch._peer_address(Bare()) == ("::1", 7, 0, 0)


# --- accepted sockets: the configured timeout, with no syscall where it is already in place ---------

class _TimeoutSocket:
    """Records settimeout calls; gettimeout reports the mode the socket is in."""

    def __init__(self, timeout: Any) -> None:
        self.timeout = timeout
        self.set_calls: list = []

    def gettimeout(self) -> Any:
        return self.timeout

    def settimeout(self, value: Any) -> None:
        self.set_calls.append(value)
        self.timeout = value


@pytest.mark.parametrize("commtimeout, fresh, linux, expected_calls", [
    (0.0, None, True, []),          # Linux: accept() gave a blocking socket, as wanted
    (0.0, None, False, [None]),     # BSD/macOS may have passed on the listener's O_NONBLOCK
    (2.5, None, True, [2.5]),
    (0.0, 3.0, True, [None]),       # socket.setdefaulttimeout() was in force
    (2.5, 2.5, True, []),
])
def test_accepted_socket_gets_the_configured_timeout(monkeypatch: Any, commtimeout: float, fresh: Any,
                                                     linux: bool, expected_calls: list) -> None:
    from pyro4compat import socketserver
    from pyro4compat.configuration import config
    monkeypatch.setattr(socketserver, "_ACCEPTED_MODE_KNOWN", linux)
    monkeypatch.setattr(config, "COMMTIMEOUT", commtimeout)
    sock = _TimeoutSocket(fresh)
    socketserver._prepare_accepted(sock)  # type: ignore[arg-type]
    assert sock.set_calls == expected_calls
    assert sock.gettimeout() == (commtimeout or None)
