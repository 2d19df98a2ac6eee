"""What every serializer shares: compression, the dict forms of classes, and Pyro4's public hooks.

The dict-based serializers (serpent, json, marshal, msgpack) cannot carry classes, so objects
travel as dicts tagged with ``"__class__"``. :meth:`SerializerBase.class_to_dict` builds them and
:meth:`SerializerBase.dict_to_class` turns the few allowed ones back into objects, following
Pyro4 4.82's rules and texts (users match on ``"unsupported serialized class: X"``):

to a dict, first match wins:
    1. a registered wire class (or subclass, exceptions excepted) -> ``{"__class__": wire, key: state}``
    2. a ``register_class_to_dict`` converter (``isinstance`` match)
    3. set/dict/tuple/list -> ValueError (as Pyro4: these are never turned into dicts)
    4. an exception -> ``{"__class__", "__exception__": True, "args", "attributes"}``
    5. a class-defined ``__getstate__`` that returns a dict -> that dict (no ``"__class__"``, as Pyro4)
    6. ``vars(obj)`` or the ``__slots__`` values, plus ``"__class__": "module.Class"``
back to an object:
    1. a ``register_dict_to_class`` converter for the name
    2. names containing ``__`` -> SecurityError
    3. registered wire names: exceptions, serializer objects, state classes (URI, Proxy, ...)
    4. with ``"__exception__"``: builtin/sqlite3 exceptions and Pyro4's short names
    5. anything else -> SerializeError

Deviation from Pyro4 on Python >= 3.11 (a Pyro4 bug): the ``__getstate__`` that Python 3.11 gives
every object does not count in rule 5, so plain objects keep their ``"__class__"`` as on 3.10.
Serializer objects are shared between threads, so nothing here keeps per-call state.
"""

from __future__ import annotations

import inspect
import logging
import zlib
from typing import Any, Callable, Dict, Optional, Tuple

from .. import errors
from .._protocol import COMPRESSION_THRESHOLD, compress_payload
from . import wirenames

try:
    import serpent
except ImportError:  # serpent is a dependency, but a broken install must not break import
    serpent = None  # type: ignore[assignment]

__all__ = ["SerializerBase", "COMPRESSION_THRESHOLD", "DeserializeGuard"]

log = logging.getLogger("Pyro4.util")

_OBJECT_GETSTATE = getattr(object, "__getstate__", None)
_NEVER_DICT_TYPES = (set, dict, tuple, list)

# shared by every serializer class, as Pyro4's name-mangled class attributes are
_class_to_dict_registry: Dict[type, Callable[[Any], dict]] = {}
_dict_to_class_registry: Dict[str, Callable[[str, dict], Any]] = {}


class DeserializeGuard:
    """``with DeserializeGuard("json"):`` turns any failure to decode into a clear SerializeError.

    PyroErrors raised on purpose (SecurityError, "unsupported serialized class") pass unchanged.
    """

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc is None or isinstance(exc, errors.PyroError) or not isinstance(exc, Exception):
            return False
        raise self.converted(self.what, exc)

    @staticmethod
    def converted(what: str, exc: Exception) -> Exception:
        """What the guard raises for ``exc`` (``exc`` itself for a PyroError), chained to it.

        For an ``except Exception as exc: raise DeserializeGuard.converted(what, exc)`` in code
        that runs per call, where entering and leaving a context manager would cost more.
        """
        if isinstance(exc, errors.PyroError):
            return exc
        problem = errors.SerializeError("invalid %s data: %s: %s" % (what, type(exc).__name__, exc))
        problem.__cause__ = exc
        return problem


def _decompress(data: Any) -> bytes:
    try:
        return zlib.decompress(data)
    except (zlib.error, TypeError, ValueError) as x:
        raise errors.SerializeError("invalid compressed data: %s" % x) from x


def _has_own_getstate(obj: Any) -> bool:
    getstate = getattr(type(obj), "__getstate__", None)
    return getstate is not None and getstate is not _OBJECT_GETSTATE


def _classname_of(obj: Any) -> str:
    return obj.__class__.__module__ + "." + obj.__class__.__name__


def _exception_dict(exc: BaseException) -> dict:
    return {
        "__class__": wirenames.exception_wire_name(type(exc)),
        "__exception__": True,
        "args": exc.args,
        "attributes": vars(exc),
    }


def _wire_class_dict(obj: Any, wire_class: type, state_key: Optional[str]) -> dict:
    result = {"__class__": wirenames.wire_name_for(wire_class)}
    if state_key is not None:
        result[state_key] = obj.__getstate_for_dict__()
    return result


def _revive_exception(cls: type, data: dict, name: str) -> Any:
    return SerializerBase.make_exception(cls, data)


def _revive_serializer(cls: type, data: dict, name: str) -> Any:
    return cls()


def _revive_state(cls: type, data: dict, name: str) -> Any:
    _, state_key = wirenames.state_key_for(cls)
    obj = cls.__new__(cls)
    if state_key is None:
        return obj
    state = data[state_key]
    if isinstance(state, dict) and "__class__" in state:
        state = SerializerBase.dict_to_class(state)
    obj.__setstate_from_dict__(state)
    return obj


_SEQUENCE_TYPES = (tuple, list)


class SerializerBase:
    """Base of the seven serializers; subclasses provide dumps/loads/dumpsCall/loadsCall."""

    serializer_id = 0

    # --- framing helpers -------------------------------------------------------------------
    def serializeData(self, data: Any, compress: bool = False) -> Tuple[bytes, bool]:
        """Serialize ``data``; compress it when asked and worth it. Returns (bytes, compressed)."""
        data = self.dumps(data)
        return compress_payload(data, compress) if compress else (data, False)

    def deserializeData(self, data: Any, compressed: bool = False) -> Any:
        """Deserialize ``data`` (bytes), decompressing it first when ``compressed``."""
        if compressed:
            data = _decompress(data)
        return self.loads(data)

    def serializeCall(self, obj: Any, method: str, vargs: Any, kwargs: Any,
                      compress: bool = False) -> Tuple[bytes, bool]:
        """Serialize a call; returns (bytes, compressed)."""
        data = self.dumpsCall(obj, method, vargs, kwargs)
        return compress_payload(data, compress) if compress else (data, False)

    def deserializeCall(self, data: Any, compressed: bool = False) -> Tuple[Any, Any, Any, Any]:
        """Bytes back to (object id, method, vargs, kwargs)."""
        if compressed:
            data = _decompress(data)
        return self.loadsCall(data)

    def loads(self, data: Any) -> Any:
        raise NotImplementedError("implement in subclass")

    def loadsCall(self, data: Any) -> Tuple[Any, Any, Any, Any]:
        raise NotImplementedError("implement in subclass")

    def dumps(self, data: Any) -> bytes:
        raise NotImplementedError("implement in subclass")

    def dumpsCall(self, obj: Any, method: str, vargs: Any, kwargs: Any) -> bytes:
        raise NotImplementedError("implement in subclass")

    def _convertToBytes(self, data: Any) -> Any:
        """bytearray/memoryview -> bytes, for libraries that want exactly bytes."""
        kind = type(data)
        if kind is bytearray:
            return bytes(data)
        if kind is memoryview:
            return data.tobytes()
        return data

    @staticmethod
    def _check_call(call: Any) -> Tuple[Any, Any, Any, Any]:
        """Validate a decoded call tuple; a malformed one is a SerializeError, not a crash later."""
        if type(call) is tuple and len(call) == 4:   # the usual decoded call, checked by exact types
            obj, method, vargs, kwargs = call
            if (type(obj) is str and type(method) is str and type(vargs) in _SEQUENCE_TYPES
                    and (kwargs is None or type(kwargs) is dict)):
                return call
        if not isinstance(call, (tuple, list)) or len(call) != 4:
            raise errors.SerializeError("invalid call data: expected (object, method, vargs, kwargs)")
        obj, method, vargs, kwargs = call
        if not isinstance(obj, str) or not isinstance(method, str):
            raise errors.SerializeError("invalid call data: object id and method must be strings")
        if not isinstance(vargs, (tuple, list)) or not (kwargs is None or isinstance(kwargs, dict)):
            raise errors.SerializeError("invalid call data: bad vargs or kwargs")
        return obj, method, vargs, kwargs

    # --- hooks users register ----------------------------------------------------------------
    @classmethod
    def register_type_replacement(cls, object_type: type, replacement_function: Callable[[Any], Any]) -> None:
        raise NotImplementedError("implement in subclass")

    @staticmethod
    def _check_replacement_type(object_type: Any) -> None:
        if object_type is type or not inspect.isclass(object_type):
            raise ValueError("refusing to register replacement for a non-type or the type 'type' itself")

    @classmethod
    def register_class_to_dict(cls, clazz: type, converter: Callable[[Any], dict], serpent_too: bool = True) -> None:
        """Objects of ``clazz`` become ``converter(obj)`` in the dict-based serializers (serpent too, unless told)."""
        _class_to_dict_registry[clazz] = converter
        if serpent_too and serpent is not None:
            def serpent_converter(obj: Any, serializer: Any, stream: Any, level: int) -> None:
                serializer.ser_builtins_dict(converter(obj), stream, level)

            serpent.register_class(clazz, serpent_converter)

    @classmethod
    def unregister_class_to_dict(cls, clazz: type) -> None:
        """Undo :meth:`register_class_to_dict`; serialization goes back to the default rules."""
        _class_to_dict_registry.pop(clazz, None)
        if serpent is not None:
            serpent.unregister_class(clazz)

    @classmethod
    def register_dict_to_class(cls, classname: str, converter: Callable[[str, dict], Any]) -> None:
        """Dicts tagged ``classname`` become ``converter(classname, dict)`` (not used by pickle)."""
        _dict_to_class_registry[classname] = converter

    @classmethod
    def unregister_dict_to_class(cls, classname: str) -> None:
        """Undo :meth:`register_dict_to_class`."""
        _dict_to_class_registry.pop(classname, None)

    # --- dict forms ----------------------------------------------------------------------------
    @classmethod
    def encodable(cls, obj: Any, replacements: Dict[type, Callable[[Any], Any]],
                  conversions: Any) -> Any:
        """What an encoder's fallback hook hands back for ``obj``: its type replacement first,
        then the first matching ``(type, convert)`` of ``conversions``, else its class dict."""
        replacer = replacements.get(type(obj))
        if replacer is not None:
            obj = replacer(obj)
        for kind, convert in conversions:
            if isinstance(obj, kind):
                return convert(obj)
        return cls.class_to_dict(obj)

    @classmethod
    def class_to_dict(cls, obj: Any) -> dict:
        """A non-serializable object as a dict (see the module docstring for the rules)."""
        if not isinstance(obj, BaseException):
            wire_class, state_key = wirenames.state_key_for(type(obj))
            if wire_class is not None:
                return _wire_class_dict(obj, wire_class, state_key)
        for clazz, converter in _class_to_dict_registry.items():
            if isinstance(obj, clazz):
                return converter(obj)
        if type(obj) in _NEVER_DICT_TYPES:
            raise ValueError("can't serialize type " + str(obj.__class__) + " into a dict")
        if hasattr(obj, "_pyroDaemon"):
            obj._pyroDaemon = None  # Pyro4 does this too: a daemon never travels
        if isinstance(obj, BaseException):
            return _exception_dict(obj)
        if _has_own_getstate(obj):
            value = obj.__getstate__()
            if isinstance(value, dict):
                return value
        return cls._vars_dict(obj)

    @classmethod
    def _vars_dict(cls, obj: Any) -> dict:
        try:
            value = dict(vars(obj))
        except TypeError:
            slots = getattr(obj, "__slots__", None)
            if slots is None:
                raise errors.SerializeError(
                    "don't know how to serialize class " + str(obj.__class__) + " using serializer " +
                    str(cls.__name__) + ". Give it vars() or an appropriate __getstate__") from None
            if isinstance(slots, str):
                slots = (slots,)
            value = {slot: getattr(obj, slot) for slot in slots}
        value["__class__"] = _classname_of(obj)
        return value

    @classmethod
    def dict_to_class(cls, data: dict) -> Any:
        """Recreate an object from its dict form; only a fixed set of classes is allowed."""
        classname = data.get("__class__", "<unknown>")
        if isinstance(classname, bytes):
            classname = classname.decode("utf-8", "replace")
        if not isinstance(classname, str):
            classname = repr(classname)
        converter = _dict_to_class_registry.get(classname)
        if converter is not None:
            return converter(classname, data)
        if "__" in classname:
            raise errors.SecurityError(
                "refused to deserialize types with double underscores in their name: " + classname)
        target = wirenames.class_for_wire_name(classname)
        if target is not None:
            return _revive(target, data, classname)
        if data.get("__exception__", False):
            exctype = wirenames.exception_class_for(classname)
            if exctype is not None:
                return _revive(exctype, data, classname)
        log.warning("unsupported serialized class: " + classname)
        raise errors.SerializeError("unsupported serialized class: " + classname)

    @staticmethod
    def make_exception(exceptiontype: type, data: dict) -> BaseException:
        """``exceptiontype(*data["args"])`` with ``data["attributes"]`` set on it (``_pyroTraceback``...)."""
        ex = exceptiontype(*data["args"])
        if "attributes" in data:
            for attr, value in data["attributes"].items():
                setattr(ex, attr, value)
        return ex

    def recreate_classes(self, literal: Any) -> Any:
        """Walk a decoded structure and turn every ``"__class__"`` dict into its object."""
        kind = type(literal)
        if kind is list:
            return [self.recreate_classes(x) for x in literal]
        if kind is dict:
            if "__class__" in literal:
                return self.dict_to_class(literal)
            return {key: self.recreate_classes(value) for key, value in literal.items()}
        if kind is tuple:
            return tuple(self.recreate_classes(x) for x in literal)
        if kind is set:
            return {self.recreate_classes(x) for x in literal}
        return literal

    def __eq__(self, other: object) -> bool:
        """Pyro4's equality: any two serializers with equal instance dicts compare equal."""
        return isinstance(other, SerializerBase) and vars(self) == vars(other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = object.__hash__


# what a registered wire class turns back into, by kind (first base class that matches)
_REVIVERS: Tuple[Tuple[type, Callable[[type, dict, str], Any]], ...] = (
    (BaseException, _revive_exception),
    (SerializerBase, _revive_serializer),
    (object, _revive_state),
)


def _revive(target: type, data: dict, classname: str) -> Any:
    for kind, reviver in _REVIVERS:
        if issubclass(target, kind):
            try:
                return reviver(target, data, classname)
            except errors.PyroError:
                raise
            except Exception as x:
                raise errors.SerializeError("cannot recreate %s: %s: %s" % (classname, type(x).__name__, x)) from x
    raise errors.SerializeError("unsupported serialized class: " + classname)  # pragma: no cover


UNICODE_ARRAY_CODES = frozenset({"u", "w"})  # "w" is Python 3.13's replacement for "u"


def array_value(obj: Any) -> Any:
    """An ``array.array`` as a serializer without array support sends it: text or a list."""
    return obj.tounicode() if obj.typecode in UNICODE_ARRAY_CODES else obj.tolist()


def serialize_core_object_to_dict(obj: Any) -> Dict[str, Any]:
    """A URI, Proxy or Daemon in the dict form the non-pickle serializers send (Pyro4's name)."""
    return SerializerBase.class_to_dict(obj)
