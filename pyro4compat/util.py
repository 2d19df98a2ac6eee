"""``Pyro4.util``: serializers, traceback helpers and exposure inspection.

A facade over :mod:`pyro4compat._serializers`, :mod:`pyro4compat._tracebacks` and
:mod:`pyro4compat._server.exposure`, holding the names Pyro4 users import from
``Pyro4.util``.
"""

from ._serializers import (CloudpickleSerializer, DillSerializer, JsonSerializer, MarshalSerializer,
                           MsgpackSerializer, PickleSerializer, SerializerBase, SerpentSerializer,
                           _serializers, _serializers_by_id, all_exceptions, get_serializer,
                           get_serializer_by_id)
from ._serializers.json_serializer import json
from ._server.exposure import (_private_dunder_methods, get_exposed_members, get_exposed_property_value,
                               getAttribute, is_private_attribute, reset_exposed_members,
                               set_exposed_property_value)
from ._tracebacks import excepthook, fixIronPythonExceptionForPickle, formatTraceback, getPyroTraceback

__all__ = [
    "SerializerBase", "SerpentSerializer", "JsonSerializer", "MarshalSerializer", "PickleSerializer",
    "DillSerializer", "MsgpackSerializer", "CloudpickleSerializer", "get_serializer",
    "get_serializer_by_id", "all_exceptions", "getPyroTraceback", "formatTraceback", "excepthook",
    "fixIronPythonExceptionForPickle", "getAttribute", "get_exposed_members", "reset_exposed_members",
    "get_exposed_property_value", "set_exposed_property_value", "is_private_attribute", "json",
]
