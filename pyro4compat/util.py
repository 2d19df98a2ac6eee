"""``Pyro4.util``: serializers, traceback helpers and exposure inspection.

A facade over :mod:`pyro4compat._serializers`, :mod:`pyro4compat._tracebacks` and
:mod:`pyro4compat._server.exposure`, holding the names Pyro4 users import from
``Pyro4.util``.
"""

import array
import builtins
import copyreg
import datetime
import decimal
import importlib
import inspect
import linecache
import logging
import marshal
import numbers
import pickle
import struct
import sys
import traceback
import uuid
import zlib

from . import errors
from ._serializers import (CloudpickleSerializer, DillSerializer, JsonSerializer, MarshalSerializer,
                           MsgpackSerializer, PickleSerializer, SerializerBase, SerpentSerializer,
                           _serializers, _serializers_by_id, all_exceptions, get_serializer,
                           get_serializer_by_id)
from ._serializers.json_serializer import json
from ._serializers.msgpack_serializer import msgpack
from ._serializers.pickle_serializers import cloudpickle, dill
from ._serializers.serpent_serializer import serpent
from ._server.exposure import (_private_dunder_methods, get_exposed_members, get_exposed_property_value,
                               getAttribute, is_private_attribute, reset_exposed_members,
                               set_exposed_property_value)
from ._tracebacks import excepthook, fixIronPythonExceptionForPickle, formatTraceback, getPyroTraceback
from .configuration import config

__all__ = [
    "SerializerBase", "SerpentSerializer", "JsonSerializer", "MarshalSerializer", "PickleSerializer",
    "DillSerializer", "MsgpackSerializer", "CloudpickleSerializer", "get_serializer",
    "get_serializer_by_id", "all_exceptions", "getPyroTraceback", "formatTraceback", "excepthook",
    "fixIronPythonExceptionForPickle", "getAttribute", "get_exposed_members", "reset_exposed_members",
    "get_exposed_property_value", "set_exposed_property_value", "is_private_attribute", "json",
]
# Pyro4's module has no __all__, so its star-import also yields what it imported, the serializer
# libraries among them when installed, and three leftovers of its Python 2 and registration code.
__all__ += ["array", "builtins", "config", "copyreg", "datetime", "decimal", "errors", "importlib", "inspect",
            "linecache", "log", "logging", "marshal", "numbers", "pickle", "struct", "sys", "traceback", "uuid",
            "zlib", "buffer", "name", "t"]
for _library in ("serpent", "msgpack", "dill", "cloudpickle"):  # as in Pyro4: a name only when installed
    if globals()[_library] is None:
        del globals()[_library]
    else:
        __all__.append(_library)

log = logging.getLogger("Pyro4.util")
buffer = bytearray
t = errors.SerializeError  # the last class of Pyro4's loop that registers its exception classes
name = t.__name__
