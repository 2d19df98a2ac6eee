"""The serializer registry: Pyro4's seven serializers by name and by wire id.

| name        | id | needs               |
|-------------|----|---------------------|
| serpent     | 1  | serpent (required)  |
| json        | 2  | ``config.JSON_MODULE`` |
| marshal     | 3  | stdlib              |
| pickle      | 4  | stdlib              |
| dill        | 5  | dill (optional)     |
| msgpack     | 6  | msgpack (optional)  |
| cloudpickle | 7  | cloudpickle (optional) |

A missing optional package only leaves its serializer out of the registry: ``get_serializer``
then raises Pyro4's ``SerializeError``, and importing this package never fails or warns.
"""

from __future__ import annotations

from typing import Dict, Tuple

from .. import errors
from .base import SerializerBase
from .exception_wrapper import _ExceptionWrapper
from .json_serializer import JsonSerializer
from .json_serializer import available as _json_available
from .marshal_serializer import MarshalSerializer
from .msgpack_serializer import MsgpackSerializer
from .msgpack_serializer import available as _msgpack_available
from .pickle_serializers import (CloudpickleSerializer, DillSerializer, PickleSerializer,
                                 cloudpickle_available, dill_available)
from .serpent_serializer import SerpentSerializer
from .serpent_serializer import available as _serpent_available
from .wirenames import all_exceptions, register_wire_class

__all__ = [
    "SerializerBase", "SerpentSerializer", "JsonSerializer", "MarshalSerializer", "PickleSerializer",
    "DillSerializer", "MsgpackSerializer", "CloudpickleSerializer", "_ExceptionWrapper",
    "get_serializer", "get_serializer_by_id", "_serializers", "_serializers_by_id", "all_exceptions",
    "register_wire_class",
]

# (name, class, available?) in Pyro4's registration order
_CANDIDATES: Tuple[Tuple[str, type, bool], ...] = (
    ("pickle", PickleSerializer, True),
    ("marshal", MarshalSerializer, True),
    ("cloudpickle", CloudpickleSerializer, cloudpickle_available),
    ("dill", DillSerializer, dill_available),
    ("json", JsonSerializer, _json_available),
    ("serpent", SerpentSerializer, _serpent_available),
    ("msgpack", MsgpackSerializer, _msgpack_available),
)

_serializers: Dict[str, SerializerBase] = {}
_serializers_by_id: Dict[int, SerializerBase] = {}
for _name, _cls, _available in _CANDIDATES:
    if _available:
        _instance = _cls()
        _serializers[_name] = _instance
        _serializers_by_id[_instance.serializer_id] = _instance
del _name, _cls, _available, _instance


def get_serializer(name: str) -> SerializerBase:
    """The shared serializer instance called ``name``."""
    try:
        return _serializers[name]
    except (KeyError, TypeError):
        raise errors.SerializeError("serializer '%s' is unknown or not available" % name) from None


def get_serializer_by_id(sid: int) -> SerializerBase:
    """The shared serializer instance for wire id ``sid``."""
    try:
        return _serializers_by_id[sid]
    except (KeyError, TypeError):
        shown = "%d" % sid if isinstance(sid, int) else repr(sid)
        raise errors.SerializeError("no serializer available for id " + shown) from None
