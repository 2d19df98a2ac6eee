"""Serializer id 2: JSON as UTF-8 text, through the module named by ``config.JSON_MODULE``.

Like Pyro4, the module is imported once, when the serializers load; if it can't be imported the
json serializer is simply unavailable. A call travels as
``{"object": id, "method": name, "params": [...], "kwargs": {...}}``.
Types JSON lacks: sets -> lists, UUID/Decimal -> str, date/datetime -> ISO text, array -> list/str,
registered type replacements first, everything else via ``class_to_dict``.
"""

from __future__ import annotations

import array
import datetime
import decimal
import importlib
import uuid
from types import ModuleType
from typing import Any, Callable, Dict, Optional, Tuple

from .. import errors
from ..configuration import config
from . import wirenames
from .base import DeserializeGuard, SerializerBase, array_value

__all__ = ["JsonSerializer", "available", "json"]


def _import_json_module(name: str) -> Optional[ModuleType]:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


json: Optional[ModuleType] = _import_json_module(config.JSON_MODULE)
available = json is not None

_type_replacements: Dict[type, Callable[[Any], Any]] = {}


def _iso(obj: Any) -> str:
    return obj.isoformat()


# type -> conversion JSON can carry; checked with isinstance, in this order (as Pyro4 does)
_CONVERSIONS: Tuple[Tuple[type, Callable[[Any], Any]], ...] = (
    (set, tuple),
    (uuid.UUID, str),
    (datetime.date, _iso),  # datetime.datetime is a date subclass: same conversion
    (decimal.Decimal, str),
    (array.array, array_value),
)


class JsonSerializer(SerializerBase):
    """(De)serializer wrapping the configured JSON module."""

    serializer_id = 2

    def dumpsCall(self, obj: Any, method: str, vargs: Any, kwargs: Any) -> bytes:
        call = {"object": obj, "method": method, "params": vargs, "kwargs": kwargs}
        return json.dumps(call, ensure_ascii=False, default=self.default).encode("utf-8")

    def dumps(self, data: Any) -> bytes:
        return json.dumps(data, ensure_ascii=False, default=self.default).encode("utf-8")

    def loadsCall(self, data: Any) -> Tuple[Any, Any, Any, Any]:
        with DeserializeGuard("json"):
            call = json.loads(self._convertToBytes(data).decode("utf-8"))
            if not isinstance(call, dict):
                raise errors.SerializeError("invalid call data: expected a json object")
            obj, method, vargs, kwargs = self._check_call(
                (call.get("object"), call.get("method"), call.get("params"), call.get("kwargs")))
            return obj, method, self.recreate_classes(vargs), self.recreate_classes(kwargs)

    def loads(self, data: Any) -> Any:
        with DeserializeGuard("json"):
            return self.recreate_classes(json.loads(self._convertToBytes(data).decode("utf-8")))

    def default(self, obj: Any) -> Any:
        """JSON's fallback for types it can't encode."""
        return self.encodable(obj, _type_replacements, _CONVERSIONS)

    @classmethod
    def register_type_replacement(cls, object_type: type, replacement_function: Callable[[Any], Any]) -> None:
        """Objects of exactly ``object_type`` are sent as ``replacement_function(obj)`` (autoproxy)."""
        cls._check_replacement_type(object_type)
        _type_replacements[object_type] = replacement_function


wirenames.register_wire_class("Pyro4.util.JsonSerializer", JsonSerializer, state_key=None)
