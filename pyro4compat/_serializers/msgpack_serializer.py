"""Serializer id 6: msgpack (optional package), ``use_bin_type=True``.

Extension types, encoded exactly as Pyro4 4.82 encodes them:

    0x30 complex   struct "dd" (real, imag)
    0x31 number    ASCII digits (ints too big for msgpack, other numbers.Number)
    0x32 datetime  struct "d", local-time timestamp; timezone-aware datetimes are refused
    0x33 date      struct "l" (native long: 8 bytes on Linux/macOS, 4 on Windows) proleptic ordinal

Decoding accepts both widths of 0x33, so Windows and Unix peers can read each other's dates.
Fixed Pyro4 bug: ``loadsCall`` decodes the extension types in call arguments too (Pyro4's left
them as raw ``ExtType`` values). Tuples and sets arrive as lists, as with Pyro4.
"""

from __future__ import annotations

import array
import datetime
import decimal
import numbers
import struct
import uuid
from typing import Any, Callable, Dict, Tuple

from .. import errors
from . import wirenames
from .base import DeserializeGuard, SerializerBase, array_value

try:
    import msgpack
except ImportError:
    msgpack = None  # type: ignore[assignment]

__all__ = ["MsgpackSerializer", "available"]

available = msgpack is not None

EXT_COMPLEX, EXT_BIGNUMBER, EXT_DATETIME, EXT_DATE = 0x30, 0x31, 0x32, 0x33
_DATE_WIDTHS = {4: struct.Struct("=i"), 8: struct.Struct("=q")}
_type_replacements: Dict[type, Callable[[Any], Any]] = {}


def _ext(code: int, payload: bytes) -> Any:
    return msgpack.ExtType(code, payload)


def _pack_datetime(obj: datetime.datetime) -> Any:
    if obj.tzinfo:
        raise errors.SerializeError("msgpack cannot serialize datetime with timezone info")
    return _ext(EXT_DATETIME, struct.pack("d", obj.timestamp()))


# type -> conversion msgpack can carry; isinstance, first match wins (Pyro4's order)
_CONVERSIONS: Tuple[Tuple[type, Callable[[Any], Any]], ...] = (
    (set, tuple),
    (uuid.UUID, str),
    (bytearray, bytes),
    (complex, lambda obj: _ext(EXT_COMPLEX, struct.pack("dd", obj.real, obj.imag))),
    (datetime.datetime, _pack_datetime),
    (datetime.date, lambda obj: _ext(EXT_DATE, struct.pack("l", obj.toordinal()))),
    (decimal.Decimal, str),
    (numbers.Number, lambda obj: _ext(EXT_BIGNUMBER, str(obj).encode("ascii"))),
    (array.array, array_value),
)


def _unpack_date(data: bytes) -> datetime.date:
    layout = _DATE_WIDTHS.get(len(data))
    if layout is None:
        raise errors.SerializeError("invalid msgpack date extension of %d bytes" % len(data))
    return datetime.date.fromordinal(layout.unpack(data)[0])


# ext code -> decoder
_EXT_DECODERS: Dict[int, Callable[[bytes], Any]] = {
    EXT_COMPLEX: lambda data: complex(*struct.unpack("dd", data)),
    EXT_BIGNUMBER: lambda data: int(data),
    EXT_DATETIME: lambda data: datetime.datetime.fromtimestamp(struct.unpack("d", data)[0]),
    EXT_DATE: _unpack_date,
}


class MsgpackSerializer(SerializerBase):
    """(De)serializer wrapping msgpack."""

    serializer_id = 6

    def dumpsCall(self, obj: Any, method: str, vargs: Any, kwargs: Any) -> bytes:
        return msgpack.packb((obj, method, vargs, kwargs), use_bin_type=True, default=self.default)

    def dumps(self, data: Any) -> bytes:
        return msgpack.packb(data, use_bin_type=True, default=self.default)

    def loadsCall(self, data: Any) -> Tuple[Any, Any, Any, Any]:
        with DeserializeGuard("msgpack"):
            return self._check_call(self._unpack(data))

    def loads(self, data: Any) -> Any:
        with DeserializeGuard("msgpack"):
            return self._unpack(data)

    def _unpack(self, data: Any) -> Any:
        return msgpack.unpackb(self._convertToBytes(data), raw=False,
                               object_hook=self.object_hook, ext_hook=self.ext_hook)

    def default(self, obj: Any) -> Any:
        """msgpack's fallback for types it can't encode."""
        return self.encodable(obj, _type_replacements, _CONVERSIONS)

    def object_hook(self, obj: dict) -> Any:
        """Every decoded map passes here, innermost first: tagged ones become objects."""
        if "__class__" in obj:
            return self.dict_to_class(obj)
        return obj

    def ext_hook(self, code: int, data: bytes) -> Any:
        """Decode Pyro4's extension types."""
        decoder = _EXT_DECODERS.get(code)
        if decoder is None:
            raise errors.SerializeError("invalid ext code for msgpack: " + str(code))
        try:
            return decoder(data)
        except (ValueError, struct.error, OverflowError, OSError) as x:
            raise errors.SerializeError("invalid msgpack ext 0x%02x data: %s" % (code, x)) from x

    @classmethod
    def register_type_replacement(cls, object_type: type, replacement_function: Callable[[Any], Any]) -> None:
        """Objects of exactly ``object_type`` are sent as ``replacement_function(obj)`` (autoproxy)."""
        cls._check_replacement_type(object_type)
        _type_replacements[object_type] = replacement_function


wirenames.register_wire_class("Pyro4.util.MsgpackSerializer", MsgpackSerializer, state_key=None)
