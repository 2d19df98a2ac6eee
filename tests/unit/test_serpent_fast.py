"""The serpent fast path against serpent 1.43 itself: same bytes out, same values in.

``dumps_fast`` must write exactly what ``serpent.dumps(..., module_in_classname=True)`` writes
(or decline with None); ``loads_fast`` must return what ``serpent.loads`` returns, with the same
types (tuple vs list, int vs float, -0.0, NaN dicts), or raise ``Unsupported`` so the caller
uses serpent. It must never accept text serpent refuses.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from typing import Any

import pytest
import serpent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyro4compat._serializers import serpent_fast as F
from pyro4compat._serializers.serpent_fast import (Unsupported, dumps_call_fast, dumps_fast, loads_fast,
                                                   loads_fast_tagged)

BOUNDED = settings(max_examples=300, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
HEADER = b"# serpent utf-8 python3.2\n"


def serpent_dumps(value: Any) -> bytes:
    return serpent.dumps(value, module_in_classname=True)


def shape(value: Any) -> Any:
    """A comparable picture of a value that keeps types, dict order, -0.0 and NaN apart."""
    kind = type(value)
    if kind is float:
        return ("float", repr(value))
    if kind in (list, tuple):
        return (kind.__name__, [shape(item) for item in value])
    if kind is dict:
        return ("dict", [(shape(k), shape(v)) for k, v in value.items()])
    if kind in (set, frozenset):
        return (kind.__name__, sorted(repr(shape(item)) for item in value))
    return (kind.__name__, value)


def has_class_dict(value: Any) -> bool:
    kind = type(value)
    if kind is dict:
        return "__class__" in value or any(has_class_dict(v) for v in value.values())
    if kind in (list, tuple):
        return any(has_class_dict(v) for v in value)
    return False


def serpent_result(data: bytes) -> Any:
    """("ok", shape) or ("error", exception class) of serpent.loads, warnings ignored."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ("ok", shape(serpent.loads(data)))
    except Exception as exc:  # whatever serpent raises, the fast path must not accept the text
        return ("error", type(exc))


def assert_consistent(data: bytes) -> bool:
    """The fast path gives serpent's value or declines; True when it gave a value."""
    expected = serpent_result(data)
    try:
        got = loads_fast(data)
    except Unsupported:
        return False
    assert expected == ("ok", shape(got)), (data[:200], expected)
    return True


# --- strategies -------------------------------------------------------------------------------

any_text = st.text(st.characters(exclude_categories=()), max_size=12)  # surrogates and NUL too
keys = st.one_of(any_text, st.integers(-10 ** 20, 10 ** 20), st.booleans(),
                 st.floats(allow_nan=False))
hashables = st.one_of(keys, st.tuples(st.integers(), any_text))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 80, 10 ** 80), st.floats(), any_text,
                    st.binary(max_size=24), st.binary(max_size=8).map(bytearray),
                    st.binary(max_size=8).map(memoryview))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.lists(inner, max_size=3).map(tuple),
                            st.dictionaries(keys, inner, max_size=4),
                            st.sets(hashables, max_size=4), st.frozensets(hashables, max_size=3)),
    max_leaves=20)

SYNTAX = "'\"\\()[]{},:.-+ 0123456789eExuUnNTrueFalsNonj#_\n\r\t\x00\x7fé\u2028\ud800"
noise_text = st.text(st.sampled_from(SYNTAX), max_size=30)


# --- encoding -----------------------------------------------------------------------------------

@BOUNDED
@given(values)
def test_dumps_fast_writes_serpents_bytes(value: Any) -> None:
    result = dumps_fast(value)
    assert result is not None  # every value of the subset takes the fast path
    assert result == serpent_dumps(value)


@BOUNDED
@given(st.one_of(any_text, scalars), st.one_of(any_text, scalars), values, values)
def test_dumps_call_fast_writes_serpents_bytes(obj: Any, method: Any, vargs: Any, kwargs: Any) -> None:
    assert dumps_call_fast(obj, method, vargs, kwargs) == serpent_dumps((obj, method, vargs, kwargs))


def test_dumps_call_fast_declines_like_dumps_fast() -> None:
    assert dumps_call_fast("obj", "m", (Custom(),), {}) is None
    assert dumps_call_fast(StrSub("obj"), "m", (), {}) is None
    assert dumps_call_fast("obj", "m", _nested(F.MAX_DEPTH), {}) is None
    big = os.urandom(BIG)
    assert dumps_call_fast("o" * BIG, "m", (big,), {"k": big}) == serpent_dumps(("o" * BIG, "m", (big,), {"k": big}))


@pytest.mark.parametrize("value", [
    "", "'", '"', "'\"", "\\", "\x00", "\ud800", "\U0001f600", "é\n\t\r\x7f", "\u2028",
    0, -1, 10 ** 4000, True, False, None,
    0.0, -0.0, 1e16, 1.5e-7, 5e-324, float("inf"), float("-inf"), float("nan"),
    b"", bytearray(b"\x00\xff"), memoryview(b"abc"),
    (), (1,), ((),), [], {}, set(), frozenset(), {1}, {(1, "a")}, {"b": 1, "a": 2}, {2: "x", 1: "y"},
    {True: 1, 1.5: 2, (1, 2): 3}, [b"x", {"k": bytearray(b"y")}], {"data": b"z" * 10},
    os.urandom(70000), [os.urandom(70000), "x" * 70000, "é" * 70000, "'" * 70000, "\t" * 70000],
], ids=repr)
def test_dumps_fast_table(value: Any) -> None:
    assert dumps_fast(value) == serpent_dumps(value)


class Custom:
    pass


class StrSub(str):
    pass


def _cycle() -> list:
    items: list = []
    items.append(items)
    return items


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("value", [
    Custom(), StrSub("x"), ValueError("x"), {None: 1}, {b"k": 1}, {frozenset(): 1}, [1, Custom()],
    {frozenset([1])}, {None}, 1j, _cycle(), _nested(F.MAX_DEPTH + 5), 10 ** 5000,
    {"k": StrSub("v")},
], ids=lambda v: type(v).__name__)
def test_dumps_fast_declines_what_it_does_not_own(value: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert dumps_fast(value) is None


def test_dumps_fast_respects_serpents_level_limit() -> None:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(200)  # serpent then refuses levels above 40
    try:
        assert dumps_fast(_nested(45)) is None
        with pytest.raises(ValueError):
            serpent_dumps(_nested(45))
        assert dumps_fast(_nested(30)) == serpent_dumps(_nested(30))
    finally:
        sys.setrecursionlimit(old)


# --- decoding -----------------------------------------------------------------------------------

@BOUNDED
@given(values)
def test_loads_fast_reads_what_serpent_reads(value: Any) -> None:
    data = serpent_dumps(value)
    expected = serpent_result(data)
    if expected[0] == "ok":
        assert ("ok", shape(loads_fast(data))) == expected
    else:  # a NaN key or set element: serpent writes a dict there and cannot read it back
        with pytest.raises(Unsupported):
            loads_fast(data)


@BOUNDED
@given(values)
def test_class_flag_is_false_only_without_class_dicts(value: Any) -> None:
    data = serpent_dumps(value)
    try:
        result, flagged = loads_fast_tagged(data)
    except Unsupported:
        return
    if has_class_dict(result):
        assert flagged


@BOUNDED
@given(st.binary(max_size=40))
def test_random_bytes_after_the_header(tail: bytes) -> None:
    assert_consistent(HEADER + tail)
    assert_consistent(tail)


@BOUNDED
@given(noise_text)
def test_random_literal_like_text(tail: str) -> None:
    assert_consistent(HEADER + tail.encode("utf-8", "surrogatepass"))


@BOUNDED
@given(values, st.lists(st.tuples(st.integers(0, 10 ** 6), st.sampled_from(["del", "ins", "sub"]),
                                  st.sampled_from(SYNTAX)), min_size=1, max_size=3))
def test_mutated_serpent_text(value: Any, edits: list) -> None:
    text = bytearray(serpent_dumps(value))
    for where, how, char in edits:
        pos = len(HEADER) + where % (len(text) - len(HEADER) + 1)
        raw = char.encode("utf-8", "surrogatepass")
        if how == "del":
            del text[pos:pos + 1]
        elif how == "ins":
            text[pos:pos] = raw
        else:
            text[pos:pos + 1] = raw
    assert_consistent(bytes(text))


ACCEPTED = [  # text after the header the fast path must take, with serpent's value
    "('obj_1234','add',(1,2),{})", "(1)", "(1,)", "()", "((),)", "[1,]", "[]", "{}", "{1,}", "{1:2,}",
    "-0", "-0.0", "1e30000", "-1e30000", "1.5E-7", "{'__class__':'float','value':'nan'}",
    "{'data': 'eHl6', 'encoding': 'base64'}", "[1,\n 2]", "'\\x00\\ud800\\U0001f600\\'\\\\\\n'",
    '"it\'s"', "'\\a\\b\\f\\v\\t\\r'", "{1:'a',True:'b',1.0:'c'}", "{'a':1,'a':2}", "True", "None",
    "'\u2028\x0c\x1c'", "[[[[[]]]]]", "1" * 4000,
]

DECLINED = [  # legal Python or not, outside the subset: serpent decides
    "", " 1", "\n1", "0123", "00", "1_000", "0x10", "1j", "1+2j", "'a' 'b'", "'''a'''", "b'x'", "u'x'",
    "set()", "- 1", "--1", "+1", "1.", ".5", "'\\N{EM DASH}'", "'\\d'", "'\\0'", "'\\U00110000'",
    "'\\\n'", "'a\nb'", "'a\rb'", "#c\n1", "1 2", "[1 2]", "(,)", "[,]", "{1:2,3}", "{1,2:3}",
    "{[1]:2}", "{[]}", "[1]]", "'x", "\x00", "1\x00", "Truex", "Nonesuch", "x", "1" * 5000,
    "[" * 10000, "(" * 150 + ")" * 150, "{'a':1}" + "\t", "0\n ", "1\n", "1 ",
]


@pytest.mark.parametrize("tail", ACCEPTED, ids=repr)
def test_loads_fast_accepts(tail: str) -> None:
    assert assert_consistent(HEADER + tail.encode("utf-8"))


@pytest.mark.parametrize("tail", DECLINED, ids=repr)
def test_loads_fast_declines(tail: str) -> None:
    data = HEADER + tail.encode("utf-8", "surrogatepass")
    with pytest.raises(Unsupported):
        loads_fast(data)
    assert_consistent(data)


@pytest.mark.parametrize("data", [b"", b"1", b"# serpent utf-8 python3.1\n1", HEADER + b"\xff", HEADER[:-1],
                                  "# serpent utf-8 python3.2\n1", None, 5, HEADER + b"\xed\xa0\x80"],
                         ids=repr)
def test_not_serpent_bytes_are_declined(data: Any) -> None:
    with pytest.raises(Unsupported):
        loads_fast(data)


def test_memoryview_and_bytearray_input() -> None:
    data = serpent_dumps(("obj", "m", (1, 2.5, "x"), {"k": [None]}))
    for form in (bytearray(data), memoryview(data)):
        assert shape(loads_fast(form)) == shape(serpent.loads(data))


BIG = 1 << 17


@pytest.mark.parametrize("value", [
    os.urandom(BIG), ("obj", "echo", (os.urandom(BIG),), {}), [os.urandom(BIG), os.urandom(10)],
    {"a": "x" * BIG, "b": 'q"' * 10, "c": 1.5}, {"text": "line\n" * BIG}, ["é" * BIG, "'" * 5],
    list(range(BIG // 4)), ["s%d" % i for i in range(BIG // 8)], "x" * BIG + "__class__",
    {"__class__": "Pyro4.core.URI", "state": ("PYRO", "obj", None, "localhost", 9090)},
], ids=lambda v: type(v).__name__)
def test_large_texts(value: Any) -> None:
    data = serpent_dumps(value)
    assert dumps_fast(value) == data
    result, flagged = loads_fast_tagged(data)
    assert shape(result) == shape(serpent.loads(data))
    assert flagged or not has_class_dict(result)
    assert flagged == has_class_dict(result) or b"\\" in data


@pytest.mark.parametrize("tail", [
    b"{'data': '" + b"A" * BIG + b"', 'encoding': 'base64'}x",  # text after the value
    b"['" + b"A" * BIG,  # unterminated string
    b"['" + b"A" * BIG + b"' 1]",  # missing comma
    b"['" + b"A" * BIG + b"',\x00]",
    b"['" + b"A" * BIG + b"\xff']",  # bad UTF-8 inside the big string
    b"['" + b"A" * BIG + b"'," + b"[" * 300 + b"]" * 300 + b"]",
], ids=["trailing", "unterminated", "comma", "nul", "utf8", "deep"])
def test_large_bad_texts_are_declined(tail: bytes) -> None:
    with pytest.raises(Unsupported):
        loads_fast(HEADER + tail)
    assert serpent_result(HEADER + tail)[0] == "error"


def test_class_flag() -> None:
    assert loads_fast_tagged(serpent_dumps({"a": [1, {"b": 2}]})) == ({"a": [1, {"b": 2}]}, False)
    assert loads_fast_tagged(serpent_dumps([{"__class__": "x"}]))[1] is True
    assert loads_fast_tagged(HEADER + b"{'\\x5f_class__':1}") == ({"__class__": 1}, True)
    nan = loads_fast_tagged(serpent_dumps(float("nan")))
    assert nan == ({"__class__": "float", "value": "nan"}, True)


def test_float_edge_values_round_trip() -> None:
    for value in (0.1, -0.0, 1e308, 2.2250738585072014e-308, float("inf"), float("-inf")):
        back = loads_fast(dumps_fast(value))
        assert type(back) is float and repr(back) == repr(value)
    assert math.isnan(float(loads_fast(dumps_fast(float("nan")))["value"]))
