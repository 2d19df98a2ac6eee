"""``Pyro.Daemon``: the object every daemon registers under its own name.

Clients reach it for metadata (``get_metadata``), liveness (``ping``) and remote iterators
(``get_next_stream_item``, ``close_stream``). Users may replace it through
``Daemon(interface=...)``, so it only talks to the daemon through public-ish attributes.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from typing import Any, Dict, List

from .. import constants, errors
from ..configuration import config
from .._context import current_context
from .exposure import expose, get_exposed_members

__all__ = ["DaemonObject"]

log = logging.getLogger("Pyro4.core")


@expose
class DaemonObject:
    """The remotely callable face of a :class:`~pyro4compat.core.Daemon`."""

    def __init__(self, daemon: Any) -> None:
        self.daemon = daemon

    def registered(self) -> List[str]:
        """Ids of every object registered in this daemon, ``Pyro.Daemon`` included."""
        return list(self.daemon.objectsById.keys())

    def ping(self) -> None:
        """Do nothing; a successful call proves the daemon is alive."""

    def info(self) -> str:
        """A one-line description of the daemon and its transport server."""
        daemon = self.daemon
        return "%s bound on %s, NAT %s, %d objects registered. Servertype: %s" % (
            constants.DAEMON_NAME, daemon.locationStr, daemon.natLocationStr,
            len(daemon.objectsById), daemon.transportServer)

    def get_metadata(self, objectId: str, as_lists: bool = False) -> Dict[str, Any]:
        """The exposed methods, oneway methods and attributes of a registered object."""
        obj = self.daemon.objectsById.get(objectId)
        if obj is None:
            log.debug("unknown object requested: %s", objectId)
            raise errors.DaemonError("unknown object")
        metadata = get_exposed_members(obj, only_exposed=config.REQUIRE_EXPOSE, as_lists=as_lists)
        if config.REQUIRE_EXPOSE and not metadata["methods"] and not metadata["attrs"]:
            cls = obj if inspect.isclass(obj) else type(obj)
            warnings.warn("Class %r doesn't expose any methods or attributes. "
                          "Did you forget setting @expose on them?" % cls, stacklevel=2)
        return metadata

    def get_next_stream_item(self, streamId: str) -> Any:
        """The next item of a remote iterator; its exhaustion or failure ends the stream."""
        return self.daemon._streams.next_item(streamId, current_context.client)

    def close_stream(self, streamId: str) -> None:
        """Forget a remote iterator the client no longer wants."""
        self.daemon._streams.close(streamId)
