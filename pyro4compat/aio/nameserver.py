"""A Pyro name server served from an asyncio loop (no second process needed, e.g. in tests).

Theory of operation
-------------------
:class:`NameServerDaemon` is ``naming.NameServerDaemon`` (storage, registration of the
``NameServer`` object, its protocol-error handling) on ``aio.Daemon``'s transport: by the
method resolution order the asyncio ``serve``/``shutdown`` come from :class:`~.daemon.Daemon`
and everything else from the name server daemon. The name server's methods are plain, so they
run on the daemon's worker threads; the storage backends are used exactly as on the thread
server. Broadcast discovery is not offered here: the UDP responder is a blocking
``BroadcastServer`` of its own (use ``naming.startNS`` for it).
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

from .. import naming
from .._uri import URI
from .daemon import Daemon

__all__ = ["NameServerDaemon", "startNS"]


class NameServerDaemon(Daemon, naming.NameServerDaemon):
    """``naming.NameServerDaemon`` served by ``await daemon.serve()``; same constructor arguments."""


def startNS(host: Optional[str] = None, port: Optional[int] = None, unixsocket: Optional[str] = None,
            nathost: Optional[str] = None, natport: Optional[int] = None, storage: Any = None,
            hmac: Any = None) -> Tuple[URI, NameServerDaemon]:
    """A name server daemon for your loop: ``(nsUri, daemon)``; then ``await daemon.serve()``."""
    daemon = NameServerDaemon(host, port, unixsocket, nathost=nathost, natport=natport, storage=storage)
    daemon._pyroHmacKey = hmac
    return daemon.uriFor(daemon.nameserver), daemon
