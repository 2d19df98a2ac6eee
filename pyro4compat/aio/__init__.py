"""asyncio for Pyro4's protocol 48: awaitable proxies and a daemon that serves ``async def`` methods.

``Proxy`` and ``locateNS`` are the awaitable counterparts of ``core.Proxy`` and
``naming.locateNS``; ``Daemon`` is a ``core.Daemon`` whose transport is an asyncio server. Both
speak the same wire as Pyro4 4.82, so either side may be real Pyro4. See ``docs/asyncio.rst``.
"""

from .daemon import Daemon, current_context
from .naming import locateNS, resolve
from .nameserver import BroadcastServer, NameServerDaemon, startNS
from .proxy import BatchProxy, Proxy, RemoteIterator

__all__ = ["Daemon", "current_context", "Proxy", "BatchProxy", "RemoteIterator", "locateNS", "resolve", "NameServerDaemon", "BroadcastServer", "startNS"]
