"""The seven serializers: registry, round trips of every supported type, dict forms, compression."""

from __future__ import annotations

import array
import sys
import datetime
import decimal
import uuid
import zlib

import pytest

from pyro4compat import errors
from pyro4compat import _serializers as S
from pyro4compat._serializers import base
from pyro4compat._uri import URI

ALL = ("serpent", "json", "marshal", "pickle", "dill", "msgpack", "cloudpickle")
PICKLES = ("pickle", "dill", "cloudpickle")
IDS = {"serpent": 1, "json": 2, "marshal": 3, "pickle": 4, "dill": 5, "msgpack": 6, "cloudpickle": 7}
CLASSES = {"serpent": S.SerpentSerializer, "json": S.JsonSerializer, "marshal": S.MarshalSerializer,
           "pickle": S.PickleSerializer, "dill": S.DillSerializer, "msgpack": S.MsgpackSerializer,
           "cloudpickle": S.CloudpickleSerializer}


def traced(exc, **attrs):
    exc._pyroTraceback = ["Traceback (most recent call last):\n", "ValueError: x\n"]
    for name, value in attrs.items():
        setattr(exc, name, value)
    return exc


def same_exception(a, b):
    return type(a) is type(b) and a.args == b.args and vars(a) == vars(b)


# --- registry ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
def test_registry_by_name_and_id(name):
    ser = S.get_serializer(name)
    assert type(ser) is CLASSES[name]
    assert ser.serializer_id == IDS[name]
    assert S.get_serializer_by_id(IDS[name]) is ser
    assert S._serializers[name] is ser and S._serializers_by_id[IDS[name]] is ser


@pytest.mark.parametrize("call, message", [
    (lambda: S.get_serializer("nope"), "serializer 'nope' is unknown or not available"),
    (lambda: S.get_serializer_by_id(99), "no serializer available for id 99"),
    (lambda: S.get_serializer_by_id(0), "no serializer available for id 0"),
])
def test_registry_errors_use_pyro4_texts(call, message):
    with pytest.raises(errors.SerializeError) as info:
        call()
    assert str(info.value) == message


def test_all_exceptions_is_pyro4s_table():
    assert S.all_exceptions["ValueError"] is ValueError
    assert S.all_exceptions["NamingError"] is errors.NamingError
    assert S.all_exceptions["TimeoutError"] is errors.TimeoutError  # Pyro's wins, as in Pyro4
    assert S.all_exceptions["SerializeError"] is errors.SerializeError


def test_equality_is_pyro4s():
    assert S.SerpentSerializer() == S.get_serializer("serpent")
    assert S.JsonSerializer() == S.SerpentSerializer()  # Pyro4 compares only vars()
    assert S.JsonSerializer() != "json"
    assert hash(S.get_serializer("json")) == hash(S.get_serializer("json"))


# --- round trips -------------------------------------------------------------------------------------
UUID = uuid.UUID("12345678-1234-5678-1234-567812345678")
DT = datetime.datetime(2024, 5, 6, 7, 8, 9)
D = datetime.date(2024, 5, 6)

# value, then the expected result per serializer where it isn't the value itself
# Python 3.13 deprecated the "u" array type code in favour of "w".
UNICODE_CODE = "w" if sys.version_info >= (3, 13) else "u"

ROUND_TRIPS = [
    (None, {}), (True, {}), (42, {}), (-(2 ** 70), {}), (3.25, {}), (float("inf"), {}),
    ("h\u00e9llo \u2713", {}), ([1, "a", None], {}), ({"a": {"b": [1, 2]}}, {}),
    ((1, "two"), {"json": [1, "two"], "msgpack": [1, "two"]}),
    ({1, 2, 3}, {"json": [1, 2, 3], "msgpack": [1, 2, 3]}),
    (frozenset({4}), {"json": errors.SerializeError, "msgpack": errors.SerializeError, "serpent": {4}}),
    (b"\x00\xffbin", {"serpent": {"data": "AP9iaW4=", "encoding": "base64"}, "json": errors.SerializeError}),
    (bytearray(b"ba"), {"serpent": {"data": "YmE=", "encoding": "base64"}, "json": errors.SerializeError,
                        "msgpack": b"ba", "marshal": b"ba"}),
    (1.5 - 2j, {"json": errors.SerializeError}),
    (UUID, {"serpent": str(UUID), "json": str(UUID), "marshal": str(UUID), "msgpack": str(UUID)}),
    (decimal.Decimal("1.50"), {"serpent": "1.50", "json": "1.50", "msgpack": "1.50",
                               "marshal": errors.SerializeError}),
    (DT, {"serpent": DT.isoformat(), "json": DT.isoformat(), "marshal": errors.SerializeError}),
    (D, {"serpent": D.isoformat(), "json": D.isoformat(), "marshal": errors.SerializeError}),
    (array.array("i", [1, 2]), {name: [1, 2] for name in ("serpent", "json", "marshal", "msgpack")}),
    # serpent itself (like Pyro4 with it) knows "u" arrays as text, "w" ones only as a sequence
    (array.array(UNICODE_CODE, "ab"), {"serpent": "ab" if UNICODE_CODE == "u" else ["a", "b"],
                                       "json": "ab", "marshal": "ab", "msgpack": "ab"}),
]


def _round_trip_params():
    for value, special in ROUND_TRIPS:
        for name in ALL:
            yield pytest.param(name, value, special.get(name, value), id="%s-%r" % (name, value))


@pytest.mark.parametrize("name, value, expected", list(_round_trip_params()))
def test_round_trip(name, value, expected):
    ser = S.get_serializer(name)
    if isinstance(expected, type) and issubclass(expected, Exception):
        with pytest.raises(expected):
            ser.dumps(value)
        return
    result = ser.loads(ser.dumps(value))
    if isinstance(expected, array.array):
        assert type(result) is array.array and result == expected
    else:
        assert result == expected
        assert type(result) is type(expected)


def test_nan_round_trips_everywhere():
    for name in ALL:
        ser = S.get_serializer(name)
        result = ser.loads(ser.dumps(float("nan")))
        assert result != result, name


def test_serpent_nan_dict_form():
    data = S.get_serializer("serpent").dumps([float("nan")])
    assert data.endswith(b"[{'__class__':'float','value':'nan'}]")


@pytest.mark.parametrize("name", ALL)
def test_uri_round_trip(name):
    ser = S.get_serializer(name)
    for text in ("PYRO:obj@host:4444", "PYRO:o@./u:/tmp/sock", "PYRONAME:a.name@ns:9999", "PYROMETA:t1,t2"):
        uri = URI(text)
        result = ser.loads(ser.dumps([uri]))[0]
        assert type(result) is URI
        assert (result.protocol, result.host, result.port, result.sockname) == \
            (uri.protocol, uri.host, uri.port, uri.sockname)
        if isinstance(uri.object, set):  # PYROMETA tags: json/msgpack carry the set as a list, as in Pyro4
            assert set(result.object) == uri.object
        else:
            assert result == uri


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("exc", [
    traced(errors.NamingError("unknown name: x")), traced(errors.TimeoutError("t")),
    traced(ValueError("bad", 3), extra=5), traced(TimeoutError("builtin")), traced(StopIteration()),
    traced(KeyError("k")),
], ids=repr)
def test_exception_round_trip(name, exc):
    ser = S.get_serializer(name)
    result = ser.loads(ser.dumps(exc))
    assert same_exception(result, exc)
    assert result._pyroTraceback == exc._pyroTraceback


@pytest.mark.parametrize("name", ALL)
def test_exception_wrapper_round_trip(name):
    ser = S.get_serializer(name)
    wrapper = S._ExceptionWrapper(traced(errors.DaemonError("unknown object")))
    result = ser.loads(ser.dumps([wrapper]))[0]
    assert type(result) is S._ExceptionWrapper
    assert same_exception(result.exception, wrapper.exception)
    with pytest.raises(errors.DaemonError, match="unknown object"):
        result.raiseIt()


@pytest.mark.parametrize("name", ALL)
def test_serializer_objects_round_trip(name):
    ser = S.get_serializer(name)
    result = ser.loads(ser.dumps(S.MarshalSerializer()))
    assert type(result) is S.MarshalSerializer


# --- calls ------------------------------------------------------------------------------------------
CALL_VARGS_TYPE = {"json": list, "marshal": list, "msgpack": list}


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("call", [
    ("obj", "method", (1, "a", [2.5]), {"k": URI("PYRO:x@h:1")}),
    ("obj", "__getattr__", ("name",), None),
    ("obj", "__setattr__", ("name", 42), None),
    ("obj", "<batch>", [("m1", (1,), {}), ("m2", (), {"x": 1})], None),
    ("Pyro.Daemon", "ping", (), {}),
], ids=lambda c: c[1])
def test_call_round_trip(name, call):
    ser = S.get_serializer(name)
    obj, method, vargs, kwargs = ser.loadsCall(ser.dumpsCall(*call))
    assert (obj, method, kwargs) == (call[0], call[1], call[3])
    assert type(vargs) is CALL_VARGS_TYPE.get(name, type(call[2]))
    if method != "<batch>" or name in PICKLES + ("serpent",):
        assert list(vargs) == list(call[2])


def test_json_call_form():
    data = S.get_serializer("json").dumpsCall("obj", "m", (1,), {"a": 2})
    assert data == b'{"object": "obj", "method": "m", "params": [1], "kwargs": {"a": 2}}'


def test_marshal_sends_vargs_as_list_and_kwargs_none():
    import marshal
    data = S.get_serializer("marshal").dumpsCall("obj", "__getattr__", ("name",), None)
    assert marshal.loads(data) == ("obj", "__getattr__", ["name"], None)


def _nested(depth: int) -> list:
    value: list = [1]
    for _ in range(depth):
        value = [value]
    return value


class _Thing:
    """A plain class instance: marshal can't take it, so the serializer converts it to a dict."""


def _cycle_with(item: object) -> list:
    value = [42, item]
    value.append(value)
    return value


@pytest.mark.parametrize("value", [_nested(20000), _cycle_with(_Thing()),
                                   {"k": _cycle_with(UUID)}],
                         ids=["too deep", "cycle around a class instance", "cycle under a dict"])
def test_marshal_refuses_cycles_and_deep_nesting_with_marshals_value_error(value):
    with pytest.raises(ValueError, match="too deeply nested to marshal"):
        S.get_serializer("marshal").serializeData(value)


# --- dict forms on the wire ----------------------------------------------------------------------------
URI_DICT = {"__class__": "Pyro4.core.URI", "state": ["PYRO", "obj", None, "h", 5]}


@pytest.mark.parametrize("name, expected", [
    ("serpent", b"# serpent utf-8 python3.2\n{'__class__':'Pyro4.core.URI','state':('PYRO','obj',None,'h',5)}"),
    ("json", b'{"__class__": "Pyro4.core.URI", "state": ["PYRO", "obj", null, "h", 5]}'),
    ("msgpack", b"\x82\xa9__class__\xaePyro4.core.URI\xa5state\x95\xa4PYRO\xa3obj\xc0\xa1h\x05"),
])
def test_uri_wire_bytes(name, expected):
    assert S.get_serializer(name).dumps(URI("PYRO:obj@h:5")) == expected


def test_exception_dict_form():
    exc = traced(errors.NamingError("x"))
    assert S.SerializerBase.class_to_dict(exc) == {
        "__class__": "Pyro4.errors.NamingError", "__exception__": True, "args": ("x",),
        "attributes": {"_pyroTraceback": exc._pyroTraceback}}
    assert S.SerializerBase.class_to_dict(ValueError(1))["__class__"] == "builtins.ValueError"


def test_exception_wrapper_dict_form():
    wrapper = S._ExceptionWrapper(KeyError("k"))
    expected = {"__class__": "Pyro4.futures._ExceptionWrapper",
                "exception": {"__class__": "builtins.KeyError", "__exception__": True, "args": ("k",),
                              "attributes": {}}}
    assert wrapper.__serialized_dict__() == expected
    assert S.SerializerBase.class_to_dict(wrapper) == expected


def test_serializer_object_dict_form():
    assert S.SerializerBase.class_to_dict(S.JsonSerializer()) == {"__class__": "Pyro4.util.JsonSerializer"}


@pytest.mark.parametrize("name", ["json", "marshal", "msgpack", "serpent"])
def test_no_pyro4compat_names_on_the_wire(name):
    ser = S.get_serializer(name)
    payload = [URI("PYRO:o@h:1"), traced(errors.SecurityError("s")), S._ExceptionWrapper(errors.PyroError()),
               S.PickleSerializer()]
    assert b"pyro4compat" not in ser.dumps(payload)


@pytest.mark.parametrize("name", PICKLES)
def test_no_pyro4compat_names_in_pickles(name):
    ser = S.get_serializer(name)
    payload = [URI("PYRO:o@h:1"), traced(errors.SecurityError("s")), S._ExceptionWrapper(errors.PyroError())]
    data = ser.dumps(payload)
    assert b"pyro4compat" not in data and b"Pyro4.core" in data and b"Pyro4.errors" in data


# --- compression ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
def test_compression(name):
    ser = S.get_serializer(name)
    big = "x" * 1000
    data, compressed = ser.serializeData(big, compress=True)
    assert compressed and zlib.decompress(data) == ser.dumps(big)
    assert ser.deserializeData(data, compressed=True) == big
    small, compressed = ser.serializeData("x", compress=True)
    assert not compressed and small == ser.dumps("x")
    plain, compressed = ser.serializeData(big, compress=False)
    assert not compressed and plain == ser.dumps(big)
    call, compressed = ser.serializeCall("obj", "m", (big,), {}, compress=True)
    assert compressed and ser.deserializeCall(call, compressed=True)[2][0] == big


def test_compression_only_when_smaller():
    import os
    noise = os.urandom(400)
    data, compressed = S.get_serializer("pickle").serializeData(noise, compress=True)
    assert not compressed and S.get_serializer("pickle").loads(data) == noise


def test_threshold_is_pyro4s():
    assert base.COMPRESSION_THRESHOLD == 200


@pytest.mark.parametrize("name", ALL)
def test_bad_compressed_data(name):
    with pytest.raises(errors.SerializeError, match="invalid compressed data"):
        S.get_serializer(name).deserializeData(b"not zlib", compressed=True)
    with pytest.raises(errors.SerializeError, match="invalid compressed data"):
        S.get_serializer(name).deserializeCall(b"not zlib", compressed=True)


@pytest.mark.parametrize("name", ALL)
def test_accepts_bytearray_and_memoryview(name):
    ser = S.get_serializer(name)
    data = ser.dumps([1, "a"])
    expected = ser.loads(data)
    assert ser.loads(bytearray(data)) == expected
    assert ser.loads(memoryview(data)) == expected
