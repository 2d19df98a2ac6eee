"""Serializer id 1: serpent, Python literal text (the default, and Pyro4's safest).

Output is ``serpent.dumps(..., module_in_classname=True)``, byte for byte what Pyro4 sends,
because serpent's class hooks (process-global, as in Pyro4) give our classes their wire form:

* every wire class (URI, Proxy, Daemon, ``_ExceptionWrapper``, serializer objects, and whatever
  upper layers register later) -> its ``class_to_dict`` dict;
* our Pyro errors -> serpent's exception dict, but named ``Pyro4.errors.X``.

Decoding applies Pyro4's ``dict_to_class`` rules plus serpent's NaN dict. Bytes arrive as
serpent's ``{"data": <base64>, "encoding": "base64"}`` dict, as in Pyro4 (``serpent.tobytes``).
"""

from __future__ import annotations

from typing import Any, Callable, Tuple

from .. import errors
from . import wirenames
from .base import DeserializeGuard, SerializerBase

try:
    import serpent
except ImportError:
    serpent = None  # type: ignore[assignment]

__all__ = ["SerpentSerializer", "available"]

available = serpent is not None


class SerpentSerializer(SerializerBase):
    """(De)serializer wrapping serpent."""

    serializer_id = 1

    def dumpsCall(self, obj: Any, method: str, vargs: Any, kwargs: Any) -> bytes:
        return serpent.dumps((obj, method, vargs, kwargs), module_in_classname=True)

    def dumps(self, data: Any) -> bytes:
        return serpent.dumps(data, module_in_classname=True)

    def loadsCall(self, data: Any) -> Tuple[Any, Any, Any, Any]:
        with DeserializeGuard("serpent"):
            obj, method, vargs, kwargs = self._check_call(serpent.loads(data))
            return obj, method, self.recreate_classes(vargs), self.recreate_classes(kwargs)

    def loads(self, data: Any) -> Any:
        with DeserializeGuard("serpent"):
            return self.recreate_classes(serpent.loads(data))

    @classmethod
    def register_type_replacement(cls, object_type: type, replacement_function: Callable[[Any], Any]) -> None:
        """Objects of ``object_type`` are serialized as ``replacement_function(obj)`` (autoproxy)."""
        def custom_serializer(obj: Any, serializer: Any, stream: Any, level: int) -> None:
            replaced = replacement_function(obj)
            if replaced is obj:
                serializer.ser_default_class(replaced, stream, level)
            else:
                serializer._serialize(replaced, stream, level)

        cls._check_replacement_type(object_type)
        serpent.register_class(object_type, custom_serializer)

    @classmethod
    def dict_to_class(cls, data: dict) -> Any:
        if data.get("__class__") == "float":
            return float(data["value"])  # serpent's form of NaN
        return super().dict_to_class(data)


def pyro_class_serpent_serializer(obj: Any, serializer: Any, stream: Any, level: int) -> None:
    """Serpent hook writing a Pyro class (URI, Proxy, ...) in its dict form, as Pyro4 names it."""
    serializer.ser_builtins_dict(SerializerBase.class_to_dict(obj), stream, level)


_wire_class_hook = pyro_class_serpent_serializer


def _pyro_error_hook(obj: BaseException, serializer: Any, stream: Any, level: int) -> None:
    # serpent's own exception dict, with the wire name in place of our module path
    serializer._serialize({
        "__class__": wirenames.exception_wire_name(type(obj)),
        "__exception__": True,
        "args": obj.args,
        "attributes": vars(obj),
    }, stream, level)


def _on_wire_class(cls: type, wire_name: str) -> None:
    if not issubclass(cls, BaseException):
        serpent.register_class(cls, _wire_class_hook)


if serpent is not None:
    serpent.register_class(errors.PyroError, _pyro_error_hook)
    wirenames.add_registration_listener(_on_wire_class)

wirenames.register_wire_class("Pyro4.util.SerpentSerializer", SerpentSerializer, state_key=None)
