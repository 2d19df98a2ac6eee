"""``Pyro4.core``: URIs, proxies, the daemon, decorators and the call context.

A facade: the code lives in :mod:`pyro4compat._client`, :mod:`pyro4compat._server` and
friends; this module gathers the names Pyro4 users import from ``Pyro4.core``.
"""

from ._client.blob import SerializedBlob
from ._client.calls import (_AsyncRemoteMethod, _BatchedRemoteMethod, _BatchProxyAdapter, _RemoteMethod,
                            _StreamResultIterator, asyncproxy, batch)
from ._client.proxy import Proxy
from ._client.resolve import _locateNS, _resolve
from ._context import _CallContext, current_context
from ._server.autoproxy import pyroObjectToAutoProxy
from ._server.daemon import Daemon
from ._server.daemon_object import DaemonObject
from ._server.dispatch import _OnewayCallThread
from ._serializers.base import serialize_core_object_to_dict
from ._serializers.serpent_serializer import pyro_class_serpent_serializer
from ._server.exposure import behavior, callback, expose, oneway
from ._uri import URI

__all__ = ["URI", "Proxy", "Daemon", "current_context", "callback", "batch", "asyncproxy", "expose",
           "behavior", "oneway", "SerializedBlob", "_resolve", "_locateNS"]

# Module attributes Pyro4's core has, which user code sometimes reaches through it.
from . import configuration, constants, errors, futures, message, socketutil, util  # noqa: E402,F401
from .configuration import config  # noqa: E402,F401
from .message import log_wiredata as _log_wiredata  # noqa: E402,F401
