"""Serializer ids 4 (pickle), 5 (dill) and 7 (cloudpickle): the unsafe, any-object family.

Wire names in a pickle stream. Real Pyro4 refers to its classes as globals such as
``Pyro4.core URI``; ours live in ``pyro4compat`` modules, and a pickler only writes a global
after importing its module and finding the very object there, which for ``Pyro4.core`` it can't
(Pyro4 is not ours to import). So:

* **pickle and dill write Pyro4's bytes.** Their Python-level pickler (``pickle._Pickler``, which
  dill's Pickler already is) gets a ``save_global`` that writes a registered wire class's
  global itself: the same GLOBAL or STACK_GLOBAL opcodes, memo entries and framing real Pyro4's
  pickler writes. The C pickler stays the fast path: its ``reducer_override`` stops the stream
  at the first wire class (:class:`_WireClassMet`), and only such a stream (an exception reply,
  a URI, a proxy) is written again by the Python pickler. Both write the same bytes for
  everything else.
* **cloudpickle** has no Python-level pickler to hand the stream to, so it writes a wire class
  as ``getattr(importlib.import_module("Pyro4.core"), "URI")``, which plain ``pickle.loads`` in a
  real Pyro4 process resolves to its own class (the object's state follows as usual).

Our Unpicklers' ``find_class`` maps both forms back to our classes through :mod:`wirenames`,
without importing Pyro4 or touching ``sys.modules``; any other module is found the normal way.

Type replacements (autoproxy) go in a ``dispatch_table`` of our Picklers, shared by all of them
(as Pyro4's global ``copyreg`` registration was), instead of the process-wide ``copyreg`` table.
Protocol versions are read from the config on every call.
"""

from __future__ import annotations

import collections
import copyreg
import importlib
import importlib.util
import io
import logging
import pickle
import sys
from collections.abc import Mapping
from typing import Any, Callable, Dict, Tuple

from .. import errors
from ..configuration import config
from . import wirenames
from .base import DeserializeGuard, SerializerBase

log = logging.getLogger("Pyro4.util")

try:
    import dill
except ImportError:
    dill = None  # type: ignore[assignment]
try:
    import cloudpickle
except ImportError:
    cloudpickle = None  # type: ignore[assignment]

__all__ = ["PickleSerializer", "DillSerializer", "CloudpickleSerializer", "dill_available",
           "cloudpickle_available"]

dill_available = dill is not None
cloudpickle_available = cloudpickle is not None

_WIRE_ROOT = "Pyro4"
_replacements: Dict[type, Callable[[Any], Any]] = {}


class _ModuleRef:
    """Stands for a wire module in a pickle; reduces to ``importlib.import_module(name)``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


_module_refs: Dict[str, _ModuleRef] = {}  # one per module, so a stream's memo shares it


def _module_ref(name: str) -> _ModuleRef:
    ref = _module_refs.get(name)
    if ref is None:
        ref = _module_refs.setdefault(name, _ModuleRef(name))
    return ref


def _wire_reduce(obj: Any) -> Any:
    """The reduction for a wire class object or a module reference, else NotImplemented."""
    if isinstance(obj, type):
        wire_name = wirenames.wire_name_for(obj)
        if wire_name is not None:
            module, name = wirenames.split_wire_name(wire_name)
            return getattr, (_module_ref(module), name)
    elif type(obj) is _ModuleRef:
        return importlib.import_module, (obj.name,)
    return NotImplemented


def _replacement_reducer(replacement_function: Callable[[Any], Any]) -> Callable[[Any], Any]:
    # __reduce__ (not __reduce_ex__(2)): its copyreg._reconstructor form may stand in for
    # an object of another class, which NEWOBJ forbids. Pyro4 does the same.
    def reduce_replaced(obj: Any) -> Any:
        return replacement_function(obj).__reduce__()
    return reduce_replaced


def _is_pyro4_module(name: Any) -> bool:
    return isinstance(name, str) and (name == _WIRE_ROOT or name.startswith(_WIRE_ROOT + "."))


def _import_module_for_unpickle(name: str) -> Any:
    """``importlib.import_module`` as seen from a pickle: wire modules are namespaces of our classes."""
    namespace = wirenames.module_namespace(name)
    if namespace is not None:
        return namespace
    if _is_pyro4_module(name):
        raise errors.SerializeError("unsupported serialized module: " + name)
    return importlib.import_module(name)


def _find_wire_class(module: str, name: str) -> Any:
    """Our class for a registered wire name; None to let the normal lookup run."""
    wire_name = module + "." + name
    cls = wirenames.class_for_wire_name(wire_name)
    if cls is None and _is_pyro4_module(module):
        raise errors.SerializeError("unsupported serialized class: " + wire_name)
    return cls


class _WireClassMet(Exception):
    """The C pickler met a wire class: the stream is written again by the Python-level pickler."""


def _stop_at_wire_class(obj: Any) -> Any:
    if isinstance(obj, type) and wirenames.wire_name_for(obj) is not None:
        raise _WireClassMet
    return NotImplemented


def _wire_global_name(obj: Any) -> Any:
    """For the Python-level pickler: a wire class's name (pickle then calls save_global), else NotImplemented."""
    if isinstance(obj, type):
        wire_name = wirenames.wire_name_for(obj)
        if wire_name is not None:
            return wire_name
    return NotImplemented


def _save_wire_global(self: Any, obj: Any, name: Any = None) -> None:
    """``save_global`` writing a wire class as Pyro4's pickler writes its own class."""
    wire_name = wirenames.wire_name_for(obj) if isinstance(obj, type) else None
    if wire_name is None:
        return self._parent_save_global(obj, name)
    module, name = (sys.intern(part) for part in wirenames.split_wire_name(wire_name))
    if self.proto >= 4:
        self.save(module)
        self.save(name)
        self.write(pickle.STACK_GLOBAL)
    else:
        encoding = "utf-8" if self.proto >= 3 else "ascii"
        self.write(pickle.GLOBAL + module.encode(encoding) + b"\n" + name.encode(encoding) + b"\n")
    self.memoize(obj)
    return None


def _make_pickler_class(parent: type, wire_reduce: Callable[[Any], Any]) -> type:
    parent_override = getattr(parent, "reducer_override", None)
    parent_table = getattr(parent, "dispatch_table", None)
    if not isinstance(parent_table, Mapping):  # the C Pickler exposes a slot descriptor here
        parent_table = copyreg.dispatch_table

    def reducer_override(self: Any, obj: Any) -> Any:
        result = wire_reduce(obj)
        if result is NotImplemented and parent_override is not None:
            return parent_override(self, obj)
        return result

    namespace = {
        "__doc__": "%s that writes Pyro4's wire names for our classes." % parent.__name__,
        "reducer_override": reducer_override,
        "dispatch_table": collections.ChainMap(_replacements, parent_table),
    }
    if wire_reduce is _wire_global_name:
        namespace["save_global"] = _save_wire_global
        namespace["_parent_save_global"] = parent.save_global
    return type("_Wire" + parent.__name__, (parent,), namespace)


def _make_unpickler_class(parent: type) -> type:
    def find_class(self: Any, module: str, name: str) -> Any:
        if module == "importlib" and name == "import_module":
            return _import_module_for_unpickle
        cls = _find_wire_class(module, name)
        if cls is not None:
            return cls
        return parent.find_class(self, module, name)

    namespace = {"__doc__": "%s that maps Pyro4's wire names to our classes." % parent.__name__,
                 "find_class": find_class}
    return type("_Wire" + parent.__name__, (parent,), namespace)


_Pickler = _make_pickler_class(pickle.Pickler, _stop_at_wire_class)
_Unpickler = _make_unpickler_class(pickle.Unpickler)
_DillPickler = _make_pickler_class(dill.Pickler, _wire_global_name) if dill is not None else None
_DillUnpickler = _make_unpickler_class(dill.Unpickler) if dill is not None else None
_CloudPickler = _make_pickler_class(cloudpickle.CloudPickler, _wire_reduce) if cloudpickle is not None else None


class _Pieces(list):
    """A pickler's output file that keeps what it is given: large bytes values arrive as
    themselves (protocol 4+ writes them past the frame buffer), and one exact-size join at the
    end copies them once, where a growing BytesIO would copy and reallocate on the way."""

    write = list.append


_python_pickler: Any = None


def _stock_python_pickler() -> type:
    """``pickle._Pickler`` as the standard library defines it, from a private copy of ``pickle``.

    Importing dill adds dill's reductions to ``pickle._Pickler.dispatch`` for the whole process,
    and those would change the bytes; the copy's table is untouched. Its exception names are
    rebound to ``_pickle``'s when it loads, as in ``pickle`` itself.
    """
    source = getattr(pickle, "__file__", None)
    spec = importlib.util.spec_from_file_location("pyro4compat._stock_pickle", source) if source else None
    if spec is None or spec.loader is None:
        raise ImportError("the pickle module has no source file to load a private copy from")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._Pickler  # type: ignore[no-any-return]


def _wire_class_pickler() -> type:
    """The pickler for a stream that holds one of Pyro4's classes: Pyro4's own bytes where we can.

    Where the standard library's source can't be loaded again (zipped, frozen, stripped), such
    a stream is written in the form cloudpickle streams use (a ``getattr`` of the imported
    ``Pyro4`` module, which Pyro4 reads too): other bytes than Pyro4's, never a failed reply.
    """
    try:
        return _make_pickler_class(_stock_python_pickler(), _wire_global_name)
    except Exception as exc:
        log.warning("pickle: no private copy of the pickle module (%s); Pyro4 classes are pickled "
                    "as getattr(import_module(...)) instead of Pyro4's own global", exc)
        return _make_pickler_class(pickle.Pickler, _wire_reduce)


def _dump(pickler_class: Any, data: Any, protocol: int) -> bytes:
    global _python_pickler
    pieces = _Pieces()
    try:
        pickler_class(pieces, protocol).dump(data)
    except _WireClassMet:
        if _python_pickler is None:
            _python_pickler = _wire_class_pickler()
        pieces = _Pieces()
        _python_pickler(pieces, protocol).dump(data)
    return b"".join(pieces)


def _load(unpickler_class: Any, data: Any, what: str) -> Any:
    with DeserializeGuard(what):
        if isinstance(data, memoryview):
            data = data.tobytes()
        return unpickler_class(io.BytesIO(data)).load()


def _load_call(unpickler_class: Any, data: Any, what: str) -> Tuple[Any, Any, Any, Any]:
    return SerializerBase._check_call(_load(unpickler_class, data, what))


class _PickleFamily(SerializerBase):
    """dumps/loads through one Pickler/Unpickler pair; subclasses pick the pair and the protocol."""

    _pickler: Any = None
    _unpickler: Any = None
    _what = "pickle"

    def _protocol(self) -> int:
        return config.PICKLE_PROTOCOL_VERSION

    def dumpsCall(self, obj: Any, method: str, vargs: Any, kwargs: Any) -> bytes:
        return _dump(self._pickler, (obj, method, vargs, kwargs), self._protocol())

    def dumps(self, data: Any) -> bytes:
        return _dump(self._pickler, data, self._protocol())

    def loadsCall(self, data: Any) -> Tuple[Any, Any, Any, Any]:
        return _load_call(self._unpickler, data, self._what)

    def loads(self, data: Any) -> Any:
        return _load(self._unpickler, data, self._what)

    @classmethod
    def register_type_replacement(cls, object_type: type, replacement_function: Callable[[Any], Any]) -> None:
        """Objects of exactly ``object_type`` are pickled as ``replacement_function(obj)`` (autoproxy)."""
        cls._check_replacement_type(object_type)
        _replacements[object_type] = _replacement_reducer(replacement_function)


class PickleSerializer(_PickleFamily):
    """(De)serializer wrapping pickle (``PICKLE_PROTOCOL_VERSION``)."""

    serializer_id = 4
    _pickler = _Pickler
    _unpickler = _Unpickler


class DillSerializer(_PickleFamily):
    """(De)serializer wrapping dill (``DILL_PROTOCOL_VERSION``)."""

    serializer_id = 5
    _pickler = _DillPickler
    _unpickler = _DillUnpickler
    _what = "dill"

    def _protocol(self) -> int:
        return config.DILL_PROTOCOL_VERSION


class CloudpickleSerializer(_PickleFamily):
    """(De)serializer wrapping cloudpickle (``PICKLE_PROTOCOL_VERSION``); it loads with plain pickle."""

    serializer_id = 7
    _pickler = _CloudPickler
    _unpickler = _Unpickler
    _what = "cloudpickle"


for _cls in (PickleSerializer, DillSerializer, CloudpickleSerializer):
    wirenames.register_wire_class("Pyro4.util." + _cls.__name__, _cls, state_key=None)
del _cls
