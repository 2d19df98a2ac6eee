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
from . import serpent_fast, wirenames
from .base import DeserializeGuard, SerializerBase

try:
    import serpent
except ImportError:
    serpent = None  # type: ignore[assignment]

__all__ = ["SerpentSerializer", "available"]

available = serpent is not None


def _literal(data: Any) -> Tuple[Any, bool]:
    """The decoded value, and whether it may hold class dicts that ``recreate_classes`` must see."""
    try:
        return serpent_fast.loads_fast_tagged(data)
    except serpent_fast.Unsupported:
        return serpent.loads(data), True


class SerpentSerializer(SerializerBase):
    """(De)serializer wrapping serpent."""

    serializer_id = 1

    # The fast codec (serpent_fast) writes exactly serpent's bytes for plain builtin values and
    # reads the literal subset serpent writes; anything else goes through serpent itself.

    def dumpsCall(self, obj: Any, method: str, vargs: Any, kwargs: Any) -> bytes:
        return (serpent_fast.dumps_call_fast(obj, method, vargs, kwargs)
                or serpent.dumps((obj, method, vargs, kwargs), module_in_classname=True))

    def dumps(self, data: Any) -> bytes:
        return serpent_fast.dumps_fast(data) or serpent.dumps(data, module_in_classname=True)

    def loadsCall(self, data: Any) -> Tuple[Any, Any, Any, Any]:
        with DeserializeGuard("serpent"):
            value, may_have_classes = _literal(data)
            obj, method, vargs, kwargs = self._check_call(value)
            if may_have_classes:
                vargs, kwargs = self.recreate_classes(vargs), self.recreate_classes(kwargs)
            return obj, method, vargs, kwargs

    def loads(self, data: Any) -> Any:
        with DeserializeGuard("serpent"):
            value, may_have_classes = _literal(data)
            return self.recreate_classes(value) if may_have_classes else value

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
