"""Which members of a Pyro object the network may reach, and the decorators that say so.

Theory of operation
-------------------
*Marks.* Exposure is a flag on a function object: ``@expose`` sets ``_pyroExposed = True`` on
a method's function, on a property's getter/setter/deleter, or on every public member a class
defines itself (members inherited from base classes keep their own marks, Pyro4 issue #212).
``@oneway`` and ``@callback`` set ``_pyroOneway`` / ``_pyroCallback`` the same way and
``@behavior`` stores ``_pyroInstancing = (mode, creator)`` on a class. Names that
:func:`is_private_attribute` calls private can never be exposed.

*Judging a name.* Every name that arrives from the network is judged by reading the
dictionaries of the object's class (its MRO), never by fetching it from the instance: no
descriptor ``__get__``, property getter, ``__getattr__`` or ``__getattribute__`` runs for a
name that is refused. Only a name that passes is then fetched the ordinary way. (Pyro4 4.82
fetched first and judged afterwards, so a refused property's getter had already run; that is
the one deliberate difference, together with refusing private names for remote attributes.)
A name that no dictionary holds is refused unless the class has no dynamic lookup hook, in
which case Python itself produces the usual "has no attribute" error, exactly as in Pyro4.

*Cache.* :func:`get_exposed_members` results are kept per class in a weak-keyed table so that
dynamically created classes can still be collected. ``_cache_lock`` guards every read and
write of that table; the scan itself runs outside the lock (two threads may both compute the
same answer; the later store wins, which is harmless because both are equal).

*Lookup cache.* Judging a name statically costs a dozen small steps, on every call. What the
class contributes is kept per (class, name) in ``_lookup_cache`` (weak-keyed too): the raw class
entry, the object whose mark decides, and whether an instance attribute may override it. Only
names some class in the MRO defines are kept, so names from the network cannot grow the table.
Each use re-reads the class entry and uses the cached verdict only when it is still the very same
object, and the mark itself is read on every call, so a class patched at run time is judged
afresh (an unexposed property swapped in is never evaluated). :func:`reset_exposed_members`,
``Daemon.resetMetadataCache`` and ``Daemon.register`` drop a class's entries as well.
"""

from __future__ import annotations

import inspect
import logging
import threading
import types
import weakref
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple, TypeVar, Union

from ..configuration import config

__all__ = [
    "expose", "oneway", "callback", "behavior",
    "is_private_attribute", "get_exposed_members", "reset_exposed_members",
    "get_exposed_property_value", "set_exposed_property_value", "getAttribute",
    "lookup_exposed_attribute", "INSTANCE_MODES", "forget_class_lookups",
]

log = logging.getLogger("Pyro4.core")

EXPOSED_MARK = "_pyroExposed"
ONEWAY_MARK = "_pyroOneway"
CALLBACK_MARK = "_pyroCallback"
INSTANCING_ATTR = "_pyroInstancing"
INSTANCE_MODES = ("single", "session", "percall")

T = TypeVar("T")
Members = Dict[str, Union[Set[str], List[str]]]

# Dunder names that look public (``__x__``) but must never be reachable remotely.
_private_dunder_methods = frozenset({
    # construction, destruction and identity
    "__init__", "__init_subclass__", "__new__", "__del__", "__class__", "__module__",
    "__weakref__", "__call__", "__subclasshook__", "__instancecheck__", "__subclasscheck__",
    # text forms and truth
    "__repr__", "__str__", "__unicode__", "__format__", "__nonzero__", "__bool__",
    # comparison and hashing
    "__coerce__", "__cmp__", "__eq__", "__ne__", "__hash__", "__ge__", "__gt__", "__le__", "__lt__",
    # attribute machinery
    "__dir__", "__getattr__", "__setattr__", "__hasattr__", "__getattribute__", "__delattr__",
    # context managers, copying, sizing
    "__enter__", "__exit__", "__copy__", "__deepcopy__", "__sizeof__",
    # pickling and Pyro's own state hooks
    "__getinitargs__", "__getnewargs__", "__getstate__", "__setstate__", "__reduce__",
    "__reduce_ex__", "__getstate_for_dict__", "__setstate_from_dict__",
})

# Error texts users match on (Pyro4 4.82's wording).
PRIVATE_EXPOSE_TEXT = "exposing private names (starting with _) is not allowed"
DECORATOR_ORDER_TEXT = ("using @expose on a classmethod/staticmethod must be done "
                        "after @classmethod/@staticmethod. Method: ")
UNKNOWN_THING_TEXT = "@expose cannot determine what this is: "
BEHAVIOR_ARGS_TEXT = "behavior decorator is missing argument(s)"
BEHAVIOR_CLASS_TEXT = "behavior decorator can only be used on a class"
BAD_MODE_TEXT = "invalid instance mode: "
BAD_CREATOR_TEXT = "instance_creator must be a callable"
PRIVATE_ACCESS_TEXT = "attempt to access private attribute '%s'"
UNEXPOSED_ACCESS_TEXT = "attempt to access unexposed attribute '%s'"
REMOTE_ATTRIBUTE_TEXT = "attempt to access unexposed or unknown remote attribute '%s'"


def is_private_attribute(attr_name: str) -> bool:
    """Whether ``attr_name`` is private: ``_x``/``__x`` are, ``__x__`` are not unless deny-listed."""
    if attr_name in _private_dunder_methods:
        return True
    if not attr_name.startswith("_"):
        return False
    is_dunder = len(attr_name) > 4 and attr_name.startswith("__") and attr_name.endswith("__")
    return not is_dunder


# ---------------------------------------------------------------------------------------------
# Static class inspection: reads dictionaries only, never runs a descriptor or lookup hook.

_MISSING: Any = object()
_mro_of: Callable[[type], Tuple[type, ...]] = type.__dict__["__mro__"].__get__
_dict_of: Callable[[type], Any] = type.__dict__["__dict__"].__get__
_BuiltinClassMethodType = type(dict.__dict__["fromkeys"])
_STANDARD_DICT_DESCRIPTORS = (types.GetSetDescriptorType, types.MemberDescriptorType)


def _class_entry(cls: type, name: str) -> Any:
    """The raw value ``name`` has in the first class of ``cls``'s MRO that defines it."""
    for base in _mro_of(cls):
        entry = _dict_of(base).get(name, _MISSING)
        if entry is not _MISSING:
            return entry
    return _MISSING


def _class_names(cls: type) -> Set[str]:
    """Every name any class in the MRO defines (what ``dir(cls)`` lists, without calling it)."""
    names: Set[str] = set()
    for base in _mro_of(cls):
        names.update(name for name in _dict_of(base) if isinstance(name, str))
    return names


def _is_data_descriptor(entry: Any) -> bool:
    kind = type(entry)
    return _class_entry(kind, "__set__") is not _MISSING or _class_entry(kind, "__delete__") is not _MISSING


def _plain_view(value: Any) -> Tuple[str, Any]:
    """Classify as Pyro4 does: ("method", marked obj), ("attr", marked func) or ("other", value)."""
    if inspect.ismethod(value) or inspect.isfunction(value) or inspect.ismethoddescriptor(value):
        return "method", value
    if inspect.isdatadescriptor(value):
        return "attr", _first_property_function(value)
    return "other", value


def _first_property_function(descriptor: Any) -> Any:
    return (getattr(descriptor, "fget", None) or getattr(descriptor, "fset", None)
            or getattr(descriptor, "fdel", None))


# How a raw class-dictionary entry looks when read off the class (``getattr(cls, name)``),
# emulated without calling its ``__get__``. Anything not listed reads as itself.
_CLASS_VIEWS: Dict[type, Callable[[Any], Tuple[str, Any]]] = {
    classmethod: lambda entry: ("method", entry.__func__),   # a bound method; marks live on __func__
    staticmethod: lambda entry: _plain_view(entry.__func__),  # the wrapped object itself
    _BuiltinClassMethodType: lambda entry: ("other", entry),  # a builtin bound method: never exposable
}


def _class_view(entry: Any) -> Tuple[str, Any]:
    for kind, view in _CLASS_VIEWS.items():
        if isinstance(entry, kind):
            return view(entry)
    return _plain_view(entry)


def _is_marked(thing: Any, mark: str, default: bool = False) -> bool:
    return bool(getattr(thing, mark, default))


# ---------------------------------------------------------------------------------------------
# Decorators

def callback(method: T) -> T:
    """Mark ``method`` as a callback: its errors are also raised on the side that serves it."""
    method._pyroCallback = True  # type: ignore[attr-defined]
    return method


def oneway(method: T) -> T:
    """Mark ``method`` as one-way: the client does not wait for (or get) a result."""
    method._pyroOneway = True  # type: ignore[attr-defined]
    return method


def expose(method_or_class: T) -> T:
    """Make a method, property or whole class reachable remotely (needed when REQUIRE_EXPOSE)."""
    if inspect.isdatadescriptor(method_or_class):
        return _expose_property(method_or_class)
    name = getattr(method_or_class, "__name__", None)
    if isinstance(method_or_class, (classmethod, staticmethod)):
        wrapped_name = getattr(method_or_class.__func__, "__name__", repr(method_or_class.__func__))
        raise AttributeError(DECORATOR_ORDER_TEXT + wrapped_name)
    if not name:
        raise AttributeError(UNKNOWN_THING_TEXT + repr(method_or_class))
    if is_private_attribute(name):
        raise AttributeError(PRIVATE_EXPOSE_TEXT)
    if inspect.isclass(method_or_class):
        return _expose_class(method_or_class)
    setattr(method_or_class, EXPOSED_MARK, True)
    return method_or_class


def _expose_property(descriptor: T) -> T:
    func = _first_property_function(descriptor)
    if func is None:
        raise AttributeError(UNKNOWN_THING_TEXT + repr(descriptor))
    if is_private_attribute(func.__name__):
        raise AttributeError(PRIVATE_EXPOSE_TEXT)
    setattr(func, EXPOSED_MARK, True)
    return descriptor


def _expose_class(clazz: T) -> T:
    log.debug("exposing all members of %r", clazz)
    for name, entry in list(_dict_of(clazz).items()):  # type: ignore[arg-type]
        if isinstance(name, str) and not is_private_attribute(name):
            for target in _mark_targets(entry):
                _try_mark(target, name)
    setattr(clazz, EXPOSED_MARK, True)
    return clazz


def _mark_targets(entry: Any) -> Iterable[Any]:
    kind, marked = _class_view(entry)
    if kind == "method":
        return (marked,)
    if kind == "attr":
        parts = (getattr(entry, "fset", None), getattr(entry, "fget", None), getattr(entry, "fdel", None))
        return tuple(part for part in parts if part is not None)
    return ()


def _try_mark(target: Any, name: str) -> None:
    # Builtin method descriptors (``upper = str.upper``) cannot carry a mark; Pyro4 crashed on
    # them. They stay unexposed, which is all a mark-less member can be.
    try:
        setattr(target, EXPOSED_MARK, True)
    except (AttributeError, TypeError):
        log.debug("cannot expose member %r: it does not accept attributes", name)


def behavior(instance_mode: str = "session",
             instance_creator: Optional[Callable[[type], Any]] = None) -> Callable[[T], T]:
    """Class decorator choosing how the daemon instantiates a registered class."""
    if not isinstance(instance_mode, str):
        # ``@behavior`` without parentheses hands us the class itself.
        raise SyntaxError(BEHAVIOR_ARGS_TEXT)

    def apply_behavior(clazz: T) -> T:
        if not inspect.isclass(clazz):
            raise TypeError(BEHAVIOR_CLASS_TEXT)
        if instance_mode not in INSTANCE_MODES:
            raise ValueError(BAD_MODE_TEXT + instance_mode)
        if instance_creator and not callable(instance_creator):
            raise TypeError(BAD_CREATOR_TEXT)
        setattr(clazz, INSTANCING_ATTR, (instance_mode, instance_creator))
        return clazz

    return apply_behavior


# ---------------------------------------------------------------------------------------------
# Exposed member listing (the metadata a proxy asks for), cached per class.

_CacheKey = Tuple[Any, Any]  # (only_exposed, as_lists)
_exposed_member_cache: weakref.WeakKeyDictionary[type, Dict[_CacheKey, Members]] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def _class_of(obj: Any) -> type:
    return obj if inspect.isclass(obj) else obj.__class__


def get_exposed_members(obj: Any, only_exposed: bool = True, as_lists: bool = False,
                        use_cache: bool = True) -> Members:
    """Public exposed members of ``obj``'s class: {"methods", "oneway", "attrs"} name sets.

    Only ``@property``-style members count as attributes; plain class attributes never do.
    ``as_lists`` gives sorted lists instead of sets. ``use_cache=False`` recomputes and
    refreshes the cached answer.
    """
    cls = _class_of(obj)
    key = (only_exposed, as_lists)
    if use_cache:
        with _cache_lock:
            cached = _exposed_member_cache.get(cls, {}).get(key)
        if cached is not None:
            return cached
    methods, oneways, attrs = _scan_members(cls, only_exposed)
    result: Members
    if as_lists:
        result = {"methods": sorted(methods), "oneway": sorted(oneways), "attrs": sorted(attrs)}
    else:
        result = {"methods": methods, "oneway": oneways, "attrs": attrs}
    with _cache_lock:
        _exposed_member_cache.setdefault(cls, {})[key] = result
    return result


def _scan_members(cls: type, only_exposed: bool) -> Tuple[Set[str], Set[str], Set[str]]:
    methods: Set[str] = set()
    oneways: Set[str] = set()
    attrs: Set[str] = set()
    for name in _class_names(cls):
        if is_private_attribute(name):
            continue
        kind, marked = _class_view(_class_entry(cls, name))
        if kind == "method" and _is_marked(marked, EXPOSED_MARK, not only_exposed):
            methods.add(name)
            if _is_marked(marked, ONEWAY_MARK):
                oneways.add(name)
        elif kind == "attr" and marked is not None and _is_marked(marked, EXPOSED_MARK, not only_exposed):
            attrs.add(name)
    return methods, oneways, attrs


def reset_exposed_members(obj: Any, only_exposed: bool = True, as_lists: bool = False) -> None:
    """Forget the cached :func:`get_exposed_members` answer for this class and these options.

    The class's cached attribute lookups go too.
    """
    cls = _class_of(obj)
    with _cache_lock:
        per_class = _exposed_member_cache.get(cls)
        if per_class is not None:
            per_class.pop((only_exposed, as_lists), None)
        _lookup_cache.pop(cls, None)


def forget_class_lookups(obj: Any) -> None:
    """Drop the cached attribute lookups of ``obj``'s class (an object or a class)."""
    with _cache_lock:
        _lookup_cache.pop(_class_of(obj), None)


# ---------------------------------------------------------------------------------------------
# Remote attribute access (``proxy.attr`` reads/writes) and method lookup.

def _has_dynamic_lookup(cls: type) -> bool:
    """Whether attribute lookup on instances of ``cls`` may run user code for unknown names."""
    if _class_entry(cls, "__getattr__") is not _MISSING:
        return True
    return not isinstance(_class_entry(cls, "__getattribute__"), types.WrapperDescriptorType)


def _remote_property(obj: Any, propname: Any) -> Any:
    """The class-level data descriptor named ``propname``, judged without evaluating anything."""
    if not isinstance(propname, str):
        raise AttributeError(REMOTE_ATTRIBUTE_TEXT % (propname,))
    cls = obj.__class__
    entry = _class_entry(cls, propname)
    if entry is _MISSING:
        metaclass = type(cls)
        if _class_entry(metaclass, propname) is _MISSING and not _has_dynamic_lookup(metaclass):
            getattr(cls, propname)  # nothing can run here: raises Python's own "has no attribute"
        raise AttributeError(REMOTE_ATTRIBUTE_TEXT % propname)
    kind, _ = _class_view(entry)
    # Private properties stay private even when REQUIRE_EXPOSE is off (Pyro4 served them then).
    if kind != "attr" or is_private_attribute(propname):
        raise AttributeError(REMOTE_ATTRIBUTE_TEXT % propname)
    return entry


def get_exposed_property_value(obj: Any, propname: str, only_exposed: bool = True) -> Any:
    """Value of the exposed property ``propname`` of ``obj``; AttributeError for anything else."""
    prop = _remote_property(obj, propname)
    getter = getattr(prop, "fget", None)
    if getter is not None and _is_marked(getter, EXPOSED_MARK, not only_exposed):
        return getter(obj)
    raise AttributeError(REMOTE_ATTRIBUTE_TEXT % propname)


def set_exposed_property_value(obj: Any, propname: str, value: Any, only_exposed: bool = True) -> Any:
    """Set the exposed, writable property ``propname`` of ``obj``; AttributeError for anything else."""
    prop = _remote_property(obj, propname)
    setter = getattr(prop, "fset", None)
    if setter is not None and _is_marked(_first_property_function(prop), EXPOSED_MARK, not only_exposed):
        return setter(obj, value)
    raise AttributeError(REMOTE_ATTRIBUTE_TEXT % propname)


def _instance_dict(obj: Any) -> Optional[Dict[str, Any]]:
    """``obj.__dict__`` if the class uses the standard slot for it, else None (nothing is run)."""
    slot = _class_entry(type(obj), "__dict__")
    if not isinstance(slot, _STANDARD_DICT_DESCRIPTORS):
        return None
    try:
        found = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        return None
    return found if isinstance(found, dict) else None


def _static_member(obj: Any, name: str) -> Tuple[Any, bool]:
    """(raw entry, came from the class) following Python's precedence, without running it."""
    cls = type(obj)
    entry = _class_entry(cls, name)
    if entry is not _MISSING and _is_data_descriptor(entry):
        return entry, True
    own = _instance_dict(obj)
    if own is not None:
        value = dict.get(own, name, _MISSING)
        if value is not _MISSING:
            return value, False
    return entry, True


def _entry_exposed(entry: Any, from_class: bool) -> bool:
    if not from_class:
        return _is_marked(entry, EXPOSED_MARK)
    kind, marked = _class_view(entry)
    if kind == "attr" and marked is None:
        return False  # slots and other builtin data descriptors carry no marks
    return _is_marked(marked, EXPOSED_MARK)


def _has_dynamic_instance_lookup(obj: Any) -> bool:
    if _has_dynamic_lookup(type(obj)):
        return True
    if not isinstance(obj, types.ModuleType):
        return False
    own = _instance_dict(obj)  # a module-level __getattr__ (PEP 562) is a lookup hook too
    return own is not None and "__getattr__" in own


# (raw class entry, the object whose mark decides or None, an instance attribute may override it)
_Verdict = Tuple[Any, Any, bool]
_lookup_cache: weakref.WeakKeyDictionary[type, Dict[str, _Verdict]] = weakref.WeakKeyDictionary()


def _class_verdict(cls: type, name: str) -> Optional[_Verdict]:
    """The cached (or now computed) verdict for a name ``cls`` defines; None when it doesn't."""
    entry = _class_entry(cls, name)
    if entry is _MISSING:
        return None
    per_class = _lookup_cache.get(cls)
    if per_class is not None:
        verdict = per_class.get(name)
        if verdict is not None and verdict[0] is entry:
            return verdict
    if _is_data_descriptor(entry):
        kind, marked = _class_view(entry)
        verdict = (entry, None if kind == "attr" and marked is None else marked, False)
    else:
        slot = _class_entry(cls, "__dict__")
        verdict = (entry, _class_view(entry)[1], isinstance(slot, _STANDARD_DICT_DESCRIPTORS))
    with _cache_lock:
        _lookup_cache.setdefault(cls, {})[name] = verdict
    return verdict


def _judged_by_class(obj: Any, attr: str, verdict: _Verdict) -> Any:
    """The member ``verdict`` describes (or an instance attribute over it), fetched; raises unless exposed."""
    _, marked, overridable = verdict
    if overridable:  # the class's __dict__ slot is the standard one: reading it runs nothing
        try:
            own = object.__getattribute__(obj, "__dict__")
        except AttributeError:
            own = None
        if isinstance(own, dict):
            value = dict.get(own, attr, _MISSING)
            if value is not _MISSING:
                marked = value
    if marked is None or not getattr(marked, EXPOSED_MARK, False):   # _is_marked, inlined (every call)
        raise AttributeError(UNEXPOSED_ACCESS_TEXT % attr)
    value = getattr(obj, attr)
    if getattr(value, EXPOSED_MARK, False):
        return value
    raise AttributeError(UNEXPOSED_ACCESS_TEXT % attr)


_ref = weakref.ref
# _lookup_cache's own dict (keyed by weak references to the classes): read inline on every call,
# a WeakKeyDictionary.get call less (its public methods still do all the writing and dropping)
_verdicts_by_class_ref: Dict[Any, Dict[str, _Verdict]] = _lookup_cache.data


def lookup_exposed_attribute(obj: Any, attr: str, require_expose: bool) -> Any:
    """:func:`getAttribute` with the REQUIRE_EXPOSE setting passed in (for the dispatcher).

    The usual call names a method judged before: a verdict is cached for its class, and only
    for public names, so finding one spares the name check; it still counts only while the
    class's entry is the very object it was made for (an entry in the class's own dictionary
    comes first in the MRO, so it needs no walk).
    """
    if require_expose and type(attr) is str:
        cls = type(obj)
        per_class = _verdicts_by_class_ref.get(_ref(cls))
        if per_class is not None:
            verdict = per_class.get(attr)
            if verdict is not None:
                entry = _dict_of(cls).get(attr, _MISSING)
                if (entry if entry is not _MISSING else _class_entry(cls, attr)) is verdict[0]:
                    return _judged_by_class(obj, attr, verdict)
    if not isinstance(attr, str) or is_private_attribute(attr):
        raise AttributeError(PRIVATE_ACCESS_TEXT % (attr,))
    if not require_expose:
        return getattr(obj, attr)
    verdict = _class_verdict(type(obj), attr)
    if verdict is not None:
        return _judged_by_class(obj, attr, verdict)
    entry, from_class = _static_member(obj, attr)
    if entry is _MISSING:
        if _has_dynamic_instance_lookup(obj):
            raise AttributeError(UNEXPOSED_ACCESS_TEXT % attr)
    elif not _entry_exposed(entry, from_class):
        raise AttributeError(UNEXPOSED_ACCESS_TEXT % attr)
    value = getattr(obj, attr)  # a missing name raises Python's own "has no attribute" error here
    if _is_marked(value, EXPOSED_MARK):
        return value
    raise AttributeError(UNEXPOSED_ACCESS_TEXT % attr)


def getAttribute(obj: Any, attr: str) -> Any:
    """Fetch the exposed, non-private member ``attr`` of ``obj``; dotted names are not resolved."""
    return lookup_exposed_attribute(obj, attr, config.REQUIRE_EXPOSE)
