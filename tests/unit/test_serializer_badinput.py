"""Untrusted bytes: every failure to deserialize is a PyroError, never a raw exception or a crash."""

from __future__ import annotations

import datetime
import marshal
import pickle
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyro4compat import errors
from pyro4compat import _serializers as S
from pyro4compat._serializers import marshal_serializer, msgpack_serializer
from pyro4compat._uri import URI

ALL = ("serpent", "json", "marshal", "pickle", "dill", "msgpack", "cloudpickle")

GARBAGE = {
    "serpent": [b"", b"(((", b"import os", b"\x00\x01", b"\xff\xfe", b"[" * 10000, b"1+", b"{'a':[}",
                b"__import__('os')", b"f(1)"],
    "json": [b"", b"{", b"\xff", b"[" * 100000, b"nul", b'{"a":}'],
    "marshal": [b"", b"\x00", b"(" + struct.pack("<i", 2 ** 31 - 1), b"[" + struct.pack("<i", 10 ** 9),
                b"c" + b"\x00" * 40, b"{i\x01\x00\x00\x00", b"r\x05\x00\x00\x00", b"\xda\x05ab"],
    "pickle": [b"", b"\x80\x05garbage", b"cos\nsystem\n.", b"\x80\x04N", b"(.", b"I1\n"],
    "msgpack": [b"", b"\xc1", b"\x91", b"\xdd\xff\xff\xff\xff", b"\xd4\x99\x00", b"\xd7\x32abc", b"\x81\x01\x02"],
}
GARBAGE["dill"] = GARBAGE["pickle"]
GARBAGE["cloudpickle"] = GARBAGE["pickle"]


def _garbage_params():
    for name, items in GARBAGE.items():
        for item in items:
            yield pytest.param(name, item, id="%s-%r" % (name, item[:12]))


@pytest.mark.parametrize("name, data", list(_garbage_params()))
def test_garbage_gives_pyro_errors(name, data):
    ser = S.get_serializer(name)
    for load in (ser.loads, ser.loadsCall):
        try:
            load(data)
        except errors.PyroError as x:
            assert str(x)
        # some garbage is valid data (e.g. b"I1\n" is the pickle of 1): loads may succeed


@pytest.mark.parametrize("name, data", [("serpent", b"[1,2]"), ("json", b"[1,2]")])
def test_serializeerror_is_a_protocolerror(name, data):
    with pytest.raises(errors.ProtocolError):
        S.get_serializer(name).loadsCall(data)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("bad_call", [
    [1, 2, 3], ("obj", "m", (), {}, "extra"), (1, "m", (), {}), ("obj", None, (), {}),
    ("obj", "m", "notalist", {}), ("obj", "m", (), [1]), 42,
], ids=repr)
def test_malformed_call_structures(name, bad_call):
    ser = S.get_serializer(name)
    data = ser.dumps(bad_call) if name != "json" else b"[1, 2]"
    with pytest.raises(errors.SerializeError, match="invalid call data"):
        ser.loadsCall(data)


def test_json_call_must_be_an_object():
    with pytest.raises(errors.SerializeError, match="invalid call data"):
        S.get_serializer("json").loadsCall(b'{"object": "o", "method": "m", "params": 5, "kwargs": {}}')


def test_serpent_refuses_code_like_text():
    with pytest.raises(errors.SerializeError, match="invalid serpent data"):
        S.get_serializer("serpent").loads(b"__import__('os').system('true')")


def test_pickle_refuses_unknown_pyro4_globals():
    data = b"\x80\x02cPyro4.core\nSomethingElse\nq\x00."
    with pytest.raises(errors.SerializeError, match="unsupported serialized class: Pyro4.core.SomethingElse"):
        S.get_serializer("pickle").loads(data)
    module_ref = pickle.dumps((getattr_via_import("Pyro4.nothing"), "X"))
    with pytest.raises(errors.SerializeError, match="unsupported serialized module: Pyro4.nothing"):
        S.get_serializer("pickle").loads(module_ref)


class getattr_via_import:
    """Pickles as importlib.import_module(name), as our Pickler's module references do."""

    def __init__(self, name):
        self.name = name

    def __reduce__(self):
        import importlib
        return importlib.import_module, (self.name,)


# --- marshal guard ------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [
    None, True, False, 0, -5, 2 ** 100, -(2 ** 100), 1.5, 1j, "abc", "\u00fc" * 3, "a" * 300, b"x",
    (), (1,), tuple(range(300)), [1, [2, [3]]], {"a": {1: 2}}, {1, 2}, frozenset({3}), ..., StopIteration,
    {}, [[]], [{}], ("obj", "m", [1, "a"], None),
], ids=repr)
def test_marshal_guard_accepts_every_version(value):
    for version in range(marshal.version + 1):
        marshal_serializer.check_marshal_data(marshal.dumps(value, version))


_BIG = "x" * 20000  # past the quick check: these payloads take the walk


@pytest.mark.parametrize("value, expected", [
    (("obj", "m", [_BIG], {}), False),
    ({"a": _BIG, "b": [b"__class__x", "__clas"]}, False),
    ({"__class__": "X", "v": _BIG}, True),
    ([{"k": 1, "__class__": "X"}, {"__class__": "Y"}, _BIG], True),  # the second key is a back-reference
    ([b"__class__", _BIG], True),  # conservative: any such string counts
    (["\u00fc" * 3, "__class__", _BIG], True),
], ids=repr)
def test_marshal_walk_notes_class_markers(value, expected):
    for version in range(marshal.version + 1):
        data = marshal.dumps(value, version)
        assert marshal_serializer.check_marshal_data(data) is expected
        assert marshal_serializer.loads_with_class_hint(data) == (value, expected)


@pytest.mark.parametrize("data, message", [
    (b"(" + struct.pack("<i", 2 ** 31 - 1), "declared element count 2147483647 exceeds the payload"),
    (b"[" + struct.pack("<i", 10 ** 9) + b"N" * 10, "exceeds the payload"),
    (b"<" + struct.pack("<i", 10 ** 6), "exceeds the payload"),
    (b"c" + b"\x00" * 40, "unsupported type code 'c'"),
    (b"s" + struct.pack("<i", -1), "negative size"),
    (b"", "truncated"), (b"(", "truncated"), (b"[\x02\x00\x00\x00N", "exceeds the payload"),
    (b"s\x05\x00\x00\x00ab", "truncated"),
])
def test_marshal_guard_refuses(data, message):
    with pytest.raises(errors.SerializeError, match=message):
        S.get_serializer("marshal").loads(data)


def test_marshal_refuses_code_objects():
    with pytest.raises(errors.SerializeError, match="unsupported type code"):
        S.get_serializer("marshal").loads(marshal.dumps(compile("1", "x", "eval")))


# --- fixed Pyro4 bugs -----------------------------------------------------------------------------------
@pytest.mark.parametrize("method, vargs", [("__getattr__", ("attr",)), ("__setattr__", ("attr", 5)),
                                           ("<batch>", [("m", (1,), {}), ("n", (), {"k": URI("PYRO:o@h:1")})])])
def test_marshal_kwargs_none_fix(method, vargs):
    ser = S.get_serializer("marshal")
    obj, got_method, got_vargs, kwargs = ser.loadsCall(ser.dumpsCall("obj", method, vargs, None))
    assert (obj, got_method, kwargs) == ("obj", method, None)
    assert len(got_vargs) == len(vargs)


def test_marshal_converts_nested_objects():
    ser = S.get_serializer("marshal")
    value = [URI("PYRO:o@h:1"), {"k": (URI("PYRO:p@h:2"),)}]
    assert ser.loads(ser.dumps(value)) == [URI("PYRO:o@h:1"), {"k": (URI("PYRO:p@h:2"),)}]


def test_msgpack_loadscall_decodes_ext_types():
    ser = S.get_serializer("msgpack")
    when = datetime.datetime(2024, 1, 2, 3, 4, 5)
    vargs = (1 + 2j, when, datetime.date(2020, 2, 29), 2 ** 80)
    _, _, got, kwargs = ser.loadsCall(ser.dumpsCall("o", "m", vargs, {"d": datetime.date(2000, 1, 1)}))
    assert got == list(vargs) and kwargs == {"d": datetime.date(2000, 1, 1)}


@pytest.mark.parametrize("payload, expected", [
    (struct.pack("=i", 737000), datetime.date.fromordinal(737000)),  # a Windows peer's 4-byte long
    (struct.pack("=q", 737000), datetime.date.fromordinal(737000)),
])
def test_msgpack_date_widths(payload, expected):
    assert msgpack_serializer.MsgpackSerializer().ext_hook(0x33, payload) == expected


@pytest.mark.parametrize("code, payload, message", [
    (0x99, b"", "invalid ext code for msgpack: 153"), (0x30, b"short", "invalid msgpack ext 0x30"),
    (0x31, b"1/3", "invalid msgpack ext 0x31"), (0x33, b"abc", "invalid msgpack date"),
    (0x32, struct.pack("d", 1e300), "invalid msgpack ext 0x32"),
])
def test_msgpack_bad_ext(code, payload, message):
    with pytest.raises(errors.SerializeError, match=message):
        msgpack_serializer.MsgpackSerializer().ext_hook(code, payload)


def test_msgpack_refuses_aware_datetime():
    aware = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    with pytest.raises(errors.SerializeError, match="msgpack cannot serialize datetime with timezone info"):
        S.get_serializer("msgpack").dumps(aware)


# --- property tests: random bytes only ever raise PyroErrors ------------------------------------------
def _only_pyro_errors(name, data):
    ser = S.get_serializer(name)
    for load in (ser.loads, ser.loadsCall):
        try:
            load(data)
        except errors.PyroError:
            pass


def _prefixed(name):
    """Random bytes, half of them behind the start of a valid payload so the parsers get further."""
    valid = S.get_serializer(name).dumps(["text", 1, {"k": 2.5}])
    return st.one_of(st.binary(max_size=200), st.binary(max_size=200).map(lambda tail: valid[:4] + tail),
                     st.binary(max_size=60).map(lambda tail: valid + tail))


@pytest.mark.parametrize("name", ["serpent", "json", "marshal", "msgpack"])
def test_fuzz_safe_deserializers(name):
    @settings(max_examples=200, deadline=None)
    @given(_prefixed(name))
    def check(data):
        _only_pyro_errors(name, data)

    check()


@pytest.mark.parametrize("name", ["pickle", "dill", "cloudpickle"])
def test_fuzz_pickle_family(name):
    # pickle is unsafe by design; random bytes must still only produce PyroErrors. Opcodes that
    # would import and call arbitrary globals (c, i, \x93 STACK_GLOBAL, R REDUCE, o OBJ, \x81 NEWOBJ,
    # b BUILD) are left out: executing them with random arguments is exactly what pickle allows.
    forbidden = set(b"ci\x93Ro\x81\x92b")

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=120).map(lambda b: bytes(x for x in b if x not in forbidden)))
    def check(data):
        _only_pyro_errors(name, b"\x80\x04" + data)

    check()
