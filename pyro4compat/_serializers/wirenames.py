"""The one table between our classes and the class names Pyro4 4.82 puts on the wire.

Pyro4 peers name classes by *their* module paths (``"Pyro4.core.URI"``, ``"Pyro4.errors.NamingError"``,
``"Pyro4.futures._ExceptionWrapper"``, ``"Pyro4.util.JsonSerializer"``); ours live elsewhere. Every
serializer asks this module, in both directions, so the wire never shows a ``pyro4compat`` name.

Each wire class also declares its *dict form* for the dict-based serializers (serpent, json, marshal,
msgpack): ``state_key`` is the key holding ``obj.__getstate_for_dict__()`` next to ``"__class__"``
(``"state"`` for URI/Proxy/Daemon, ``"exception"`` for ``_ExceptionWrapper``, ``None`` for objects
without state such as serializers). Exceptions have their own fixed dict form and need no key.

Upper layers add their classes with :func:`register_wire_class` (``Proxy``, ``Daemon``, ...);
listeners (serpent's class hooks) hear about every registration, past and future.

Built-in exceptions travel as ``builtins.<Name>`` and need no registration; lookups of exception
names from the wire (:func:`exception_class_for`) follow Pyro4's rules, including the bare
short names of its ``all_exceptions`` table, in which Pyro4's own ``TimeoutError`` wins.
"""

from __future__ import annotations

import builtins
import importlib
import threading
import types
from typing import Callable, Dict, List, Optional, Tuple, Type

from .. import errors
from .._uri import URI

__all__ = [
    "register_wire_class", "unregister_wire_class", "wire_name_for", "class_for_wire_name",
    "state_key_for", "exception_wire_name", "exception_class_for", "split_wire_name",
    "module_namespace", "add_registration_listener", "all_exceptions", "STATE",
]

STATE = "state"

_lock = threading.Lock()
_class_by_name: Dict[str, type] = {}
_name_by_class: Dict[type, str] = {}
_state_key_by_class: Dict[type, Optional[str]] = {}
_listeners: List[Callable[[type, str], None]] = []


def register_wire_class(wire_name: str, cls: type, state_key: Optional[str] = STATE) -> None:
    """Declare that ``cls`` travels as ``wire_name``; its dict form keeps its state under ``state_key``."""
    if not isinstance(cls, type) or not wire_name or "." not in wire_name:
        raise ValueError("a wire class needs a class and a dotted wire name")
    with _lock:
        old = _class_by_name.get(wire_name)
        if old is not None and old is not cls:
            _name_by_class.pop(old, None)
            _state_key_by_class.pop(old, None)
        _class_by_name[wire_name] = cls
        _name_by_class[cls] = wire_name
        if not issubclass(cls, BaseException):
            _state_key_by_class[cls] = state_key
        listeners = list(_listeners)
    for listener in listeners:
        listener(cls, wire_name)


def unregister_wire_class(wire_name: str) -> None:
    """Forget a wire name (tests use this to clean up after themselves)."""
    with _lock:
        cls = _class_by_name.pop(wire_name, None)
        if cls is not None:
            _name_by_class.pop(cls, None)
            _state_key_by_class.pop(cls, None)


def add_registration_listener(listener: Callable[[type, str], None]) -> None:
    """Call ``listener(cls, wire_name)`` for every wire class, now and when one is registered later."""
    with _lock:
        _listeners.append(listener)
        current = list(_name_by_class.items())
    for cls, name in current:
        listener(cls, name)


def wire_name_for(cls: type) -> Optional[str]:
    """The wire name registered for exactly this class, or None."""
    return _name_by_class.get(cls)


def class_for_wire_name(wire_name: str) -> Optional[type]:
    """Our class for a registered wire name, or None."""
    return _class_by_name.get(wire_name)


def state_key_for(cls: type) -> Tuple[Optional[type], Optional[str]]:
    """(registered class, its state key) for a non-exception class or its nearest registered base.

    A subclass of Proxy still travels as ``Pyro4.core.Proxy`` (Pyro4 would send a name nobody
    can read). Returns ``(None, None)`` for classes that have no dict form here.
    """
    state_keys = _state_key_by_class
    for klass in cls.__mro__:
        if klass in state_keys:
            return klass, state_keys[klass]
    return None, None


def exception_wire_name(cls: type) -> str:
    """``"Pyro4.errors.X"`` for our errors, ``"module.Name"`` for every other exception class."""
    name = _name_by_class.get(cls)
    if name is not None:
        return name
    return cls.__module__ + "." + cls.__name__


def split_wire_name(wire_name: str) -> Tuple[str, str]:
    """``"Pyro4.core.URI"`` -> ``("Pyro4.core", "URI")``: the global a pickle stream names."""
    module, _, name = wire_name.rpartition(".")
    return module, name


def module_namespace(module: str) -> Optional[types.SimpleNamespace]:
    """The registered classes whose wire names live in ``module``, as attributes; None if there are none."""
    prefix = module + "."
    with _lock:
        members = {name[len(prefix):]: cls for name, cls in _class_by_name.items()
                   if name.startswith(prefix) and "." not in name[len(prefix):]}
    if not members:
        return None
    return types.SimpleNamespace(**members)


def _is_exception_class(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, BaseException)


def _builtin_exception(short_name: str) -> Optional[type]:
    value = getattr(builtins, short_name, None)
    return value if _is_exception_class(value) else None


def _sqlite3_exception(short_name: str) -> Optional[type]:
    if not short_name.endswith("Error"):
        return None
    try:
        sqlite3 = importlib.import_module("sqlite3")  # optional stdlib module; only imported when named
    except ImportError:
        return None
    value = getattr(sqlite3, short_name, None)
    return value if _is_exception_class(value) else None


# namespace of a wire exception name -> how to find the class in it (Pyro4's rules)
_EXCEPTION_NAMESPACES: Dict[str, Callable[[str], Optional[type]]] = {
    "builtins": _builtin_exception,
    "exceptions": _builtin_exception,  # Python 2 peers
    "sqlite3": _sqlite3_exception,
}


def exception_class_for(wire_name: str) -> Optional[Type[BaseException]]:
    """The exception class a wire name denotes under Pyro4's rules, or None when it isn't allowed."""
    found = all_exceptions.get(wire_name)
    if found is not None:
        return found
    namespace, dot, short_name = wire_name.partition(".")
    finder = _EXCEPTION_NAMESPACES.get(namespace)
    if not dot or finder is None or "." in short_name:
        return None
    return finder(short_name)


def _build_all_exceptions() -> Dict[str, Type[BaseException]]:
    """Pyro4's ``util.all_exceptions``: every builtin exception, then every Pyro error, by short name."""
    table: Dict[str, Type[BaseException]] = {}
    for name, value in vars(builtins).items():
        if _is_exception_class(value):
            table[name] = value
    for name in errors.__all__:
        table[name] = getattr(errors, name)
    return table


all_exceptions: Dict[str, Type[BaseException]] = _build_all_exceptions()

for _name in errors.__all__:
    register_wire_class("Pyro4.errors." + _name, getattr(errors, _name))
register_wire_class("Pyro4.core.URI", URI)
del _name
