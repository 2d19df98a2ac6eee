"""Every serializer against real Pyro4 4.82, both directions, in one child run.

For each (serializer, case) the child (real Pyro4) and we each serialize the same value or call;
then each side decodes both byte strings. Both sides describe what they decoded with the same
normaliser (plain marshal-able tuples), so we can assert:

* Pyro4 reads our bytes exactly as it reads its own, and we read its bytes as we read ours;
* both libraries give the same value (and fail on the same unsupported inputs);
* serpent, json and msgpack output is byte-for-byte Pyro4's.

Three Pyro4 bugs are fixed on our side; those cases assert the fix instead (see KNOWN_FIXES).
"""

from __future__ import annotations

import pytest

from pyro4compat import errors
from pyro4compat._serializers import JsonSerializer, _ExceptionWrapper, _serializers
from pyro4compat._serializers import wirenames
from pyro4compat._uri import URI

pytestmark = pytest.mark.interop

SERIALIZERS = ("serpent", "json", "marshal", "pickle", "dill", "cloudpickle", "msgpack")
BYTE_IDENTICAL = ("serpent", "json", "msgpack", "pickle", "dill")

CASES_SRC = r'''
import datetime, decimal, uuid

def make_exc(exc, **attrs):
    exc._pyroTraceback = ["Traceback (most recent call last):\n", "  File 'x.py', line 1\n", "Oops\n"]
    for name, value in attrs.items():
        setattr(exc, name, value)
    return exc

def build_values(URI, errors, Wrapper, JsonSer):
    return {
        "none": None, "bool": True, "int": 42, "neg": -7, "bigint": 2 ** 70, "float": 3.25,
        "inf": float("-inf"), "str": "h\u00e9llo \u2713", "list": [1, "a", None, [2.5]],
        "tuple": (1, "two"), "dict": {"a": 1, "b": [1, 2], "c": {"d": None}}, "intset": {1, 2, 3},
        "uri": URI("PYRO:obj@host.example:4444"), "uri_unix": URI("PYRO:o@./u:/tmp/sock"),
        "uri_name": URI("PYRONAME:some.name@nshost:9999"), "uri_meta": URI("PYROMETA:tag1"),
        "uri_nested": [URI("PYRO:a@h:1"), {"u": URI("PYRO:b@h:2")}],
        "pyro_error": make_exc(errors.NamingError("unknown name: x")),
        "pyro_timeout": make_exc(errors.TimeoutError("receiving: timeout")),
        "serialize_error": make_exc(errors.SerializeError("unsupported serialized class: X")),
        "builtin_error": make_exc(ValueError("bad", 3), extra=5),
        "builtin_timeout": make_exc(TimeoutError("builtin one")),
        "stop_iteration": make_exc(StopIteration()),
        "wrapper": Wrapper(make_exc(errors.DaemonError("unknown object"))),
        "wrapper_builtin": Wrapper(make_exc(KeyError("k"))),
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "decimal": decimal.Decimal("1.50"), "datetime": datetime.datetime(2024, 5, 6, 7, 8, 9),
        "date": datetime.date(2024, 5, 6), "complex": 1.5 - 2j, "bytes": b"\x00\xffdata",
        "serializer": JsonSer(), "long_text": "x" * 500,
    }

def build_calls(URI, errors, Wrapper):
    return {
        "call_simple": ("obj", "method", (1, "a", [2, 3]), {"k": 2, "s": "t"}),
        "call_uri": ("obj", "m", (URI("PYRO:x@h:5"),), {"u": URI("PYRONAME:n")}),
        "call_getattr": ("obj", "__getattr__", ("name",), None),
        "call_setattr": ("obj", "__setattr__", ("name", 42), None),
        "call_batch": ("obj", "<batch>", [("m1", (1,), {}), ("m2", (), {"x": 1})], None),
        "call_ext": ("obj", "m", (1 + 2j, datetime.datetime(2024, 1, 2, 3, 4, 5),
                                  datetime.date(2020, 2, 29), 2 ** 80), {"when": datetime.date(2000, 1, 1)}),
        "call_daemon": ("Pyro.Daemon", "get_metadata", ("obj", False), {}),
    }
'''

NORM_SRC = r'''
def norm(v, URI, Wrapper, exc_name):
    t = type(v)
    if v is None or t in (bool, int, str, bytes):
        return (t.__name__, v)
    if t is float:
        return ("float", repr(v))
    if t in (list, tuple):
        return (t.__name__, [norm(x, URI, Wrapper, exc_name) for x in v])
    if t in (set, frozenset):
        return (t.__name__, sorted(repr(norm(x, URI, Wrapper, exc_name)) for x in v))
    if t is dict:
        return ("dict", sorted((repr(norm(k, URI, Wrapper, exc_name)), norm(x, URI, Wrapper, exc_name))
                               for k, x in v.items()))
    if isinstance(v, BaseException):
        attrs = {k: x for k, x in vars(v).items() if k not in ("__notes__",)}
        return ("exception", exc_name(t), norm(list(v.args), URI, Wrapper, exc_name),
                norm(attrs, URI, Wrapper, exc_name))
    if t is URI:
        obj = v.object if isinstance(v.object, str) else sorted(v.object)
        return ("URI", v.protocol, obj, v.sockname, v.host, v.port)
    if t is Wrapper:
        return ("wrapper", norm(v.exception, URI, Wrapper, exc_name))
    if t.__name__.endswith("Serializer"):
        return ("serializer", t.__name__)
    return ("other", t.__name__, str(v))
'''

CHILD = r'''
import Pyro4.util, Pyro4.futures, Pyro4.core, Pyro4.errors
exec(INPUT["cases"])
exec(INPUT["norm"])
URI, Wrapper = Pyro4.core.URI, Pyro4.futures._ExceptionWrapper
values = build_values(URI, Pyro4.errors, Wrapper, Pyro4.util.JsonSerializer)
calls = build_calls(URI, Pyro4.errors, Wrapper)
exc_name = lambda t: t.__module__ + "." + t.__name__

def describe(thunk):
    try:
        return ("ok", norm(thunk(), URI, Wrapper, exc_name))
    except Exception as x:
        return ("error", type(x).__name__, str(x)[:200])

result = []
for ser_name, case, ours in INPUT["work"]:
    ser = Pyro4.util.get_serializer(ser_name)
    is_call = case in calls
    load = ser.loadsCall if is_call else ser.loads
    try:
        theirs = ser.dumpsCall(*calls[case]) if is_call else ser.dumps(values[case])
    except Exception as x:
        theirs = ("error", type(x).__name__)
    their_rt = describe(lambda: load(theirs)) if isinstance(theirs, bytes) else None
    from_ours = describe(lambda: load(ours)) if isinstance(ours, bytes) else None
    result.append((ser_name, case, theirs, their_rt, from_ours))
OUTPUT = result
'''

# (serializer, case) -> what our fix changes
KNOWN_FIXES = {
    ("marshal", "call_getattr"): "pyro4 dumpsCall fails on kwargs=None",
    ("marshal", "call_setattr"): "pyro4 dumpsCall fails on kwargs=None",
    ("marshal", "call_batch"): "pyro4 dumpsCall fails on kwargs=None",
    ("marshal", "uri_nested"): "pyro4 marshal only converts the top level",
    ("msgpack", "call_ext"): "pyro4 loadsCall leaves ext types raw",
}


def _namespace() -> dict:
    namespace: dict = {}
    exec(CASES_SRC, namespace)
    exec(NORM_SRC, namespace)
    return namespace


def _describe(norm, thunk):
    try:
        return ("ok", norm(thunk(), URI, _ExceptionWrapper, wirenames.exception_wire_name))
    except errors.PyroError as x:
        return ("error", type(x).__name__, str(x)[:200])


@pytest.fixture(scope="module")
def exchange(pyro4):
    """Run every case once in real Pyro4; return {(serializer, case): (ours, pyro4's results, ours decoded)}."""
    ns = _namespace()
    values = ns["build_values"](URI, errors, _ExceptionWrapper, JsonSerializer)
    calls = ns["build_calls"](URI, errors, _ExceptionWrapper)
    work = []
    ours_by_key = {}
    for ser_name in SERIALIZERS:
        ser = _serializers[ser_name]
        for case in list(values) + list(calls):
            try:
                ours = ser.dumpsCall(*calls[case]) if case in calls else ser.dumps(values[case])
            except Exception as x:  # compared with Pyro4's failure below
                ours = ("error", type(x).__name__)
            ours_by_key[(ser_name, case)] = ours
            work.append((ser_name, case, ours if isinstance(ours, bytes) else None))
    child = pyro4(CHILD, {"cases": CASES_SRC, "norm": NORM_SRC, "work": work})
    table = {}
    for ser_name, case, theirs, their_rt, from_ours in child:
        ser = _serializers[ser_name]
        load = ser.loadsCall if case in calls else ser.loads
        ours = ours_by_key[(ser_name, case)]
        our_rt = _describe(ns["norm"], lambda: load(ours)) if isinstance(ours, bytes) else None
        from_theirs = _describe(ns["norm"], lambda: load(theirs)) if isinstance(theirs, bytes) else None
        table[(ser_name, case)] = dict(ours=ours, theirs=theirs, their_rt=their_rt, from_ours=from_ours,
                                       our_rt=our_rt, from_theirs=from_theirs)
    return table


def _normal_keys():
    ns = _namespace()
    cases = list(ns["build_values"](URI, errors, _ExceptionWrapper, JsonSerializer))
    cases += list(ns["build_calls"](URI, errors, _ExceptionWrapper))
    return [(s, c) for s in SERIALIZERS for c in cases if (s, c) not in KNOWN_FIXES]


@pytest.mark.parametrize("key", _normal_keys(), ids=lambda k: "%s-%s" % k)
def test_same_as_pyro4(exchange, key):
    row = exchange[key]
    ours_ok, theirs_ok = isinstance(row["ours"], bytes), isinstance(row["theirs"], bytes)
    assert ours_ok == theirs_ok, "one side could not serialize: ours=%r theirs=%r" % (
        row["ours"] if not ours_ok else "ok", row["theirs"] if not theirs_ok else "ok")
    if not ours_ok:
        return  # both refuse this type, as they should
    assert row["their_rt"][0] == "ok", row["their_rt"]
    assert row["from_ours"] == row["their_rt"], "Pyro4 reads our bytes differently from its own"
    assert row["from_theirs"] == row["our_rt"], "we read Pyro4's bytes differently from ours"
    assert row["our_rt"] == row["their_rt"], "we and Pyro4 disagree on the value"
    if key[0] in BYTE_IDENTICAL:
        assert row["ours"] == row["theirs"]


@pytest.mark.parametrize("key", sorted(k for k in KNOWN_FIXES if k[1] != "call_ext"), ids=lambda k: "%s-%s" % k)
def test_marshal_fixes_stay_readable_by_pyro4(exchange, key):
    row = exchange[key]
    assert not isinstance(row["theirs"], bytes), "Pyro4 bug no longer present?"
    assert row["our_rt"][0] == "ok"
    assert row["from_ours"] == row["our_rt"], "Pyro4 must read what our fixed marshal sends"


def test_msgpack_call_ext_fix(exchange):
    row = exchange[("msgpack", "call_ext")]
    assert row["ours"] == row["theirs"]  # same wire bytes
    kinds = [item[1] for item in row["their_rt"][1][1][2][1]]
    assert kinds == ["ExtType"] * 4  # Pyro4 4.82's loadsCall leaves them raw
    assert row["from_theirs"] == row["our_rt"]
    items = row["our_rt"][1][1][2][1]
    assert [item[1] for item in items[:3]] == ["complex", "datetime", "date"]
    assert items[3] == ("int", 2 ** 80)


PROTOCOLS_CHILD = r'''
import Pyro4.util, Pyro4.core, Pyro4.errors, Pyro4.futures
exec(INPUT["cases"])
values = build_values(Pyro4.core.URI, Pyro4.errors, Pyro4.futures._ExceptionWrapper, Pyro4.util.JsonSerializer)
result = []
for protocol in (2, 3, 4):
    Pyro4.config.PICKLE_PROTOCOL_VERSION = Pyro4.config.DILL_PROTOCOL_VERSION = protocol
    for ser_name in ("pickle", "dill"):
        for case in INPUT["cases_wanted"]:
            result.append((protocol, ser_name, case, Pyro4.util.get_serializer(ser_name).dumps(values[case])))
OUTPUT = result
'''
PROTOCOL_CASES = ["uri", "uri_unix", "uri_nested", "pyro_error", "builtin_error", "wrapper", "dict", "long_text"]


def test_pickle_and_dill_are_pyro4s_bytes_at_older_protocols(pyro4, monkeypatch):
    from pyro4compat.configuration import config
    values = _namespace()["build_values"](URI, errors, _ExceptionWrapper, JsonSerializer)
    child = pyro4(PROTOCOLS_CHILD, {"cases": CASES_SRC, "cases_wanted": PROTOCOL_CASES})
    assert len(child) == 3 * 2 * len(PROTOCOL_CASES)
    for protocol, ser_name, case, theirs in child:
        monkeypatch.setattr(config, "PICKLE_PROTOCOL_VERSION", protocol)
        monkeypatch.setattr(config, "DILL_PROTOCOL_VERSION", protocol)
        assert _serializers[ser_name].dumps(values[case]) == theirs, (protocol, ser_name, case)
