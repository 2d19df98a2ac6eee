"""Serializer id 3: the standard library's marshal (fast, builtin types only, no type hooks).

Wire form as Pyro4: a call is the tuple ``(object, method, vargs as a list, kwargs)``; objects that
marshal can't carry become their ``class_to_dict`` dicts, UUIDs become str, arrays lists/str.

Fixed Pyro4 bugs (the wire is unchanged):

* ``kwargs=None`` (remote attributes, batch calls) is sent as None instead of crashing dumpsCall;
* an unmarshallable object *nested* in a container is converted too (Pyro4 only converted the
  top level and raised ValueError), so a URI inside a list works.

Untrusted input: CPython's marshal allocates a tuple/list for the element count a payload
*declares* before reading the elements, so 5 bytes could demand 16 GB. :func:`check_marshal_data`
walks the payload first (no objects built) and refuses counts larger than the bytes that remain,
unknown type codes, and code objects (which no Pyro peer sends).

That walk is Python, a loop per element, so :func:`safe_loads` first tries to prove a payload
(up to 8 KB) harmless at C speed. Only tuple and list counts make marshal allocate before it
reads: a set or frozenset grows as its elements arrive, and a long's digit count is checked
against the bytes that remain (a 5-byte set, frozenset or long claiming 2**31 elements fails at
once, using no memory, on CPython 3.9 to 3.13). So each count that matters follows one of four
byte values. Summing the int32 after *every* occurrence of those bytes (real type codes or bytes
inside strings alike) bounds the sum of the real counts; when it is no larger than the payload,
marshal can allocate at most a small multiple of the payload, however the counts nest. The walk
still checks every count, sets and longs included. Anything not proven gets the walk, and so does
any payload marshal then refuses, so errors keep the walk's precise texts. Code objects must never
be built (a crafted one can crash the interpreter): from Python 3.13 marshal refuses them itself
(``allow_code=False``); before, a payload is walked when some ``c`` byte could start one, i.e. is
followed, where a code object's bytecode would start, by a bytes object or a back-reference.
Slices (marshal 5, Python 3.14), which the walk refuses too, are looked for in the decoded value.
A ``"__class__"`` dict needs the text ``__class__`` in the payload, so without that text the
decoded value goes out without the ``recreate_classes`` walk.
"""

from __future__ import annotations

import array
import functools
import marshal
import re
import struct
import sys
import uuid
from typing import Any, Callable, Dict, Optional, Tuple

from .. import errors
from . import wirenames
from .base import DeserializeGuard, SerializerBase, array_value

__all__ = ["MarshalSerializer", "available", "check_marshal_data", "safe_loads"]

available = True
_MARSHALABLE_TYPES = (str, int, float, type(None), bool, complex, bytes, bytearray,
                      tuple, set, frozenset, list, dict)
_EXACT_SCALARS = frozenset({str, int, float, type(None), bool, complex, bytes, bytearray})

# --- the pre-scan of untrusted marshal data ------------------------------------------------------
# How to skip each type code's body: a fixed size (>= 0), or one of the negative kinds below.
_LEN1, _LEN4, _LONG, _SEQ1, _SEQ4, _DICT, _COMPLEX_TEXT = -1, -2, -3, -4, -5, -6, -7
_DICT_KEY, _DICT_VALUE = -1, -2  # markers on the scan stack (positive entries count items left)
_FLAG_REF = 0x80
_CODES: Dict[int, int] = {ord(code): rule for code, rule in {
    "N": 0, "F": 0, "T": 0, "S": 0, ".": 0, "i": 4, "r": 4, "g": 8, "y": 16,
    "z": _LEN1, "Z": _LEN1, "f": _LEN1, "x": _COMPLEX_TEXT,
    "s": _LEN4, "t": _LEN4, "u": _LEN4, "a": _LEN4, "A": _LEN4, "l": _LONG,
    ")": _SEQ1, "(": _SEQ4, "[": _SEQ4, "<": _SEQ4, ">": _SEQ4, "{": _DICT,
}.items()}
_NULL = ord("0")
_INT32 = struct.Struct("<i").unpack_from


def _bad(why: str) -> errors.SerializeError:
    return errors.SerializeError("invalid marshal data: " + why)


# tuple and list: the counts marshal allocates for before reading (see the module doc). Text such
# as "hello" or "<b>" no longer sends a payload to the walk.
_COUNTED = b"([" + bytes(code | _FLAG_REF for code in b"([")
_COUNT_FIELDS = re.compile(b"[" + re.escape(_COUNTED) + b"](?=(....))", re.DOTALL)
_QUICK_MAX_SIZE = 8192  # larger payloads get the walk (strings and blobs make it cheap there)
_CLASS_KEY = b"__class__"
# "__class__" as marshal writes it after a short-string code, and after a long-string code
_SHORT_CLASS_KEY = bytes([len(_CLASS_KEY)]) + _CLASS_KEY
_LONG_CLASS_KEY = struct.pack("<i", len(_CLASS_KEY)) + _CLASS_KEY


def _quick_check(data: bytes) -> bool:
    """True when all counts ``data`` might hold together stay within its size (see the module doc).

    Every real count field follows one of the ``_COUNTED`` bytes, so the sum over all such bytes
    bounds what marshal can allocate ahead of reading (8 bytes per element) by a
    small multiple of the payload. False means "not proven", never "bad": the caller then walks.
    """
    size = len(data)
    if size > _QUICK_MAX_SIZE:
        return False
    fields = _COUNT_FIELDS.findall(data)
    if len(fields) == 1:  # the usual call: just its vargs list
        return abs(_INT32(fields[0])[0]) <= size
    if not fields:
        return True
    counts = struct.unpack("<%di" % len(fields), b"".join(fields))
    return sum(map(abs, counts)) <= size


def _bytecode_offset() -> Optional[int]:
    """Where a code object's bytecode starts after its type code: 5 or 6 int32 fields in between."""
    sample = marshal.dumps(compile("1", "<probe>", "eval"))
    offset = 1 + 4 * (6 if sys.version_info < (3, 11) else 5)
    if sample[0] & 0x7F == ord("c") and sample[offset] & 0x7F == ord("s"):
        return offset
    return None


def _code_pattern() -> Any:
    """A ``c`` byte followed, where a code object's bytecode would start, by bytes or a back-reference."""
    offset = _bytecode_offset()
    if offset is None:  # an unknown layout: every "c" byte counts as a possible code object
        return re.compile(b"[c\xe3]")
    return re.compile(b"[c\xe3](?=.{%d}[sr\xf3\xf2])" % (offset - 1), re.DOTALL)


# ``_code_search(data)`` finds a ``c`` byte that could start a code object (see the module doc);
# None where marshal itself can be told never to build one. Both are C callables: no Python
# frame per message.
_load: Callable[[bytes], Any]
_code_search: Optional[Callable[[bytes], Any]]
if sys.version_info >= (3, 13):
    _load = functools.partial(marshal.loads, allow_code=False)
    _code_search = None
else:
    _load = marshal.loads
    _code_search = _code_pattern().search

# Python 3.14's marshal 5 builds slices (harmlessly); the walk refuses them, so we do too.
_SLICE_POSSIBLE = re.compile(b"[:\xba]").search if sys.version_info >= (3, 14) else None


def _holds_slice(value: Any) -> bool:
    """Whether a decoded marshal value contains a slice anywhere."""
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is dict:
            pending.extend(item.keys())
            pending.extend(item.values())
        elif kind in (list, tuple, set, frozenset):
            pending.extend(item)
        elif kind is slice:
            return True
    return False


def safe_loads(data: bytes) -> Any:
    """``marshal.loads`` of untrusted bytes: no allocation bomb, no code object (module doc)."""
    return loads_with_class_hint(data)[0]


def loads_with_class_hint(data: bytes) -> Tuple[Any, bool]:
    """:func:`safe_loads`, plus whether the value may hold ``__class__`` dicts to recreate.

    Small payloads answer that with a substring search; large ones are walked anyway, and the
    walk notes any ``__class__`` string, which spares a scan of megabytes of bytes or text.
    """
    if not _quick_check(data) or (_code_search is not None and _code_search(data) is not None):
        class_key = check_marshal_data(data)
        return marshal.loads(data), class_key
    try:
        value = _load(data)
    except Exception:
        check_marshal_data(data)  # the walk's precise SerializeError for what marshal refused
        raise
    if _SLICE_POSSIBLE is not None and _SLICE_POSSIBLE(data) is not None and _holds_slice(value):
        check_marshal_data(data)  # raises "unsupported type code ':'"
        raise _bad("unsupported value type slice")
    # find, not "in": bytes' "in" first tries the operand as an int, raising and dropping a TypeError
    return value, data.find(_CLASS_KEY) >= 0


def _skip_complex_text(data: bytes, pos: int) -> int:
    for _ in range(2):
        if pos >= len(data):
            raise _bad("truncated")
        pos += 1 + data[pos]
    return pos


def _read_count(data: bytes, pos: int, end: int, rule: int) -> Tuple[int, int]:
    """The element count at ``pos`` (one byte for short sequences, else an int32) and the new position."""
    if rule == _SEQ1:
        if pos >= end:
            raise _bad("truncated")
        return data[pos], pos + 1
    if pos + 4 > end:
        raise _bad("truncated")
    return _INT32(data, pos)[0], pos + 4


def check_marshal_data(data: bytes) -> bool:
    """Refuse marshal data that would make ``marshal.loads`` allocate far more than it carries.

    One pass over the type codes, no objects built, no recursion; common codes inline (this runs
    on every marshal payload). Returns whether a ``__class__`` string appears (only then can a
    dict carry a class marker; a back-reference always follows a first, literal appearance).
    """
    end = len(data)
    pos = 0
    class_key = False
    stack = [1]
    codes = _CODES
    while stack:
        top = stack[-1]
        if top == 0:
            stack.pop()
            continue
        if pos >= end:
            raise _bad("truncated")
        code = data[pos] & 0x7F
        pos += 1
        if top > 0:
            stack[-1] = top - 1
        elif top == _DICT_KEY:
            if code == _NULL:
                stack.pop()
                continue
            stack[-1] = _DICT_VALUE
        else:
            stack[-1] = _DICT_KEY
        rule = codes.get(code)
        if rule is None:
            raise _bad("unsupported type code %r" % chr(code))
        if rule >= 0:
            pos += rule
        elif rule == _LEN1:
            if pos >= end:
                raise _bad("truncated")
            class_key = class_key or data.startswith(_SHORT_CLASS_KEY, pos)
            pos += 1 + data[pos]
        elif rule == _DICT:
            stack.append(_DICT_KEY)
        elif rule == _COMPLEX_TEXT:
            pos = _skip_complex_text(data, pos)
        else:
            count, pos = _read_count(data, pos, end, rule)
            if rule == _LONG:
                pos += 2 * abs(count)  # the sign of the digit count is the number's sign
            elif count < 0:
                raise _bad("negative size")
            elif rule == _LEN4:
                class_key = class_key or data.startswith(_LONG_CLASS_KEY, pos - 4)
                pos += count
            elif count > end - pos:
                raise _bad("declared element count %d exceeds the payload" % count)
            elif count:
                stack.append(count)
        if pos > end:
            raise _bad("truncated")
    return class_key


# --- conversion to marshal-able values -----------------------------------------------------------
# container type -> rebuild with converted items
_CONTAINERS: Dict[type, Callable[[Any, Callable[[Any], Any]], Any]] = {
    list: lambda obj, conv: [conv(x) for x in obj],
    tuple: lambda obj, conv: tuple(conv(x) for x in obj),
    set: lambda obj, conv: {conv(x) for x in obj},
    frozenset: lambda obj, conv: frozenset(conv(x) for x in obj),
    dict: lambda obj, conv: {conv(k): conv(v) for k, v in obj.items()},
}


class MarshalSerializer(SerializerBase):
    """(De)serializer wrapping marshal."""

    serializer_id = 3
    marshalable_types = _MARSHALABLE_TYPES

    def dumpsCall(self, obj: Any, method: str, vargs: Any, kwargs: Any) -> bytes:
        convert = self.convert_obj_into_marshallable
        scalars = _EXACT_SCALARS
        vargs = [value if type(value) in scalars else convert(value) for value in vargs]
        if kwargs:
            kwargs = {key: value if type(value) in scalars else convert(value) for key, value in kwargs.items()}
        return self._marshal((obj, method, vargs, kwargs))

    def dumps(self, data: Any) -> bytes:
        if type(data) in _EXACT_SCALARS:    # nothing to convert, nothing marshal refuses
            return marshal.dumps(data)
        return self._marshal(self.convert_obj_into_marshallable(data))

    def _marshal(self, value: Any) -> bytes:
        try:
            return marshal.dumps(value)
        except ValueError:
            pass
        # something inside a container isn't marshal-able: convert all the way down. A cycle or
        # a nesting deeper than the interpreter allows gets marshal's own error, as in Pyro4.
        try:
            converted = self._convert_deep(value)
        except RecursionError:
            raise ValueError("object too deeply nested to marshal") from None
        return marshal.dumps(converted)

    def _convert_deep(self, obj: Any) -> Any:
        kind = type(obj)
        if kind in _EXACT_SCALARS:
            return obj
        rebuild = _CONTAINERS.get(kind)
        if rebuild is not None:
            return rebuild(obj, self._convert_deep)
        if isinstance(obj, array.array):
            return array_value(obj)
        return self._convert_deep(self.class_to_dict(obj))

    def loadsCall(self, data: Any) -> Tuple[Any, Any, Any, Any]:
        try:    # DeserializeGuard's conversion of errors, without a context manager per call
            if type(data) is not bytes:
                data = self._checked_bytes(data)
            call, classes = loads_with_class_hint(data)
            obj, method, vargs, kwargs = self._check_call(call)
            if classes:
                vargs, kwargs = self.recreate_classes(vargs), self.recreate_classes(kwargs)
            return obj, method, vargs, kwargs
        except Exception as exc:
            raise DeserializeGuard.converted("marshal", exc)

    def loads(self, data: Any) -> Any:
        try:    # as in loadsCall
            if type(data) is not bytes:
                data = self._checked_bytes(data)
            value, classes = loads_with_class_hint(data)
            return self.recreate_classes(value) if classes else value
        except Exception as exc:
            raise DeserializeGuard.converted("marshal", exc)

    def _checked_bytes(self, data: Any) -> bytes:
        data = self._convertToBytes(data)
        if not isinstance(data, bytes):
            raise errors.SerializeError("invalid marshal data: expected bytes, not " + type(data).__name__)
        return data

    def convert_obj_into_marshallable(self, obj: Any) -> Any:
        """Pyro4's top-level conversion of one value into something marshal accepts."""
        if isinstance(obj, _MARSHALABLE_TYPES):
            return obj
        if isinstance(obj, array.array):
            return array_value(obj)
        return self.class_to_dict(obj)

    @classmethod
    def class_to_dict(cls, obj: Any) -> dict:
        if isinstance(obj, uuid.UUID):
            return str(obj)  # type: ignore[return-value]  (Pyro4 sends UUIDs as text)
        return super().class_to_dict(obj)

    @classmethod
    def register_type_replacement(cls, object_type: type, replacement_function: Callable[[Any], Any]) -> None:
        """marshal has no per-type hook: accepted and ignored, as in Pyro4."""


wirenames.register_wire_class("Pyro4.util.MarshalSerializer", MarshalSerializer, state_key=None)
