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
"""

from __future__ import annotations

import array
import marshal
import struct
import uuid
from typing import Any, Callable, Dict, Tuple

from .. import errors
from . import wirenames
from .base import DeserializeGuard, SerializerBase, array_value

__all__ = ["MarshalSerializer", "available", "check_marshal_data"]

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


def _skip_complex_text(data: bytes, pos: int) -> int:
    for _ in range(2):
        if pos >= len(data):
            raise _bad("truncated")
        pos += 1 + data[pos]
    return pos


def check_marshal_data(data: bytes) -> None:
    """Refuse marshal data that would make ``marshal.loads`` allocate far more than it carries.

    Walks the type codes without building objects; one pass, no recursion. The common codes are
    handled inline because this runs on every marshal payload received.
    """
    end = len(data)
    pos = 0
    stack = [1]
    codes = _CODES
    unpack_int = _INT32
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
            pos += 1 + data[pos]
        elif rule == _DICT:
            stack.append(_DICT_KEY)
        elif rule == _COMPLEX_TEXT:
            pos = _skip_complex_text(data, pos)
        else:
            if rule == _SEQ1:
                if pos >= end:
                    raise _bad("truncated")
                count = data[pos]
                pos += 1
            else:
                if pos + 4 > end:
                    raise _bad("truncated")
                count = unpack_int(data, pos)[0]
                pos += 4
            if rule == _LONG:
                pos += 2 * abs(count)  # the sign of the digit count is the number's sign
            elif count < 0:
                raise _bad("negative size")
            elif rule == _LEN4:
                pos += count
            elif count > end - pos:
                raise _bad("declared element count %d exceeds the payload" % count)
            elif count:
                stack.append(count)
        if pos > end:
            raise _bad("truncated")


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
        vargs = [convert(value) for value in vargs]
        if kwargs is not None:
            kwargs = {key: convert(value) for key, value in kwargs.items()}
        return self._marshal((obj, method, vargs, kwargs))

    def dumps(self, data: Any) -> bytes:
        return self._marshal(self.convert_obj_into_marshallable(data))

    def _marshal(self, value: Any) -> bytes:
        try:
            return marshal.dumps(value)
        except ValueError:
            # something inside a container isn't marshal-able; convert all the way down
            return marshal.dumps(self._convert_deep(value))

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
        with DeserializeGuard("marshal"):
            obj, method, vargs, kwargs = self._check_call(self._unmarshal(data))
            return obj, method, self.recreate_classes(vargs), self.recreate_classes(kwargs)

    def loads(self, data: Any) -> Any:
        with DeserializeGuard("marshal"):
            return self.recreate_classes(self._unmarshal(data))

    def _unmarshal(self, data: Any) -> Any:
        data = self._convertToBytes(data)
        if not isinstance(data, bytes):
            raise errors.SerializeError("invalid marshal data: expected bytes, not " + type(data).__name__)
        check_marshal_data(data)
        return marshal.loads(data)

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
