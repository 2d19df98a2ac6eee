"""The per-thread call context (``Pyro4.current_context``), shared by client and server code.

Server side, the daemon fills it in before it calls a method, so the method can see who
called (``client``, ``client_sock_addr``), with which message (``seq``, ``msg_flags``,
``serializer_id``, ``annotations``), and can set ``response_annotations`` for the reply.
Client side, code sets ``annotations`` / ``correlation_id`` before a call and reads
``response_annotations`` after it.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any, Dict, Optional

from . import errors

__all__ = ["_CallContext", "current_context"]

_FIELDS = ("client", "client_sock_addr", "seq", "msg_flags", "serializer_id",
           "annotations", "response_annotations", "correlation_id")


class _CallContext(threading.local):
    """Thread-local information about the remote call being made or served."""

    def __init__(self) -> None:
        self.client: Any = None
        self.client_sock_addr: Any = None
        self.seq = 0
        self.msg_flags = 0
        self.serializer_id = 0
        self.annotations: Dict[str, bytes] = {}
        self.response_annotations: Dict[str, bytes] = {}
        self.correlation_id: Optional[uuid.UUID] = None

    def to_global(self) -> Dict[str, Any]:
        """A plain dict of this thread's values, to carry the context into another thread."""
        return {name: getattr(self, name) for name in _FIELDS}

    def from_global(self, values: Dict[str, Any]) -> None:
        """Adopt values produced by :meth:`to_global` in another thread."""
        for name in _FIELDS:
            setattr(self, name, values[name])

    def track_resource(self, resource: Any) -> None:
        """Close ``resource`` (weakly referenced) when the calling client's connection ends."""
        if not self.client:
            raise errors.PyroError("cannot track resource on a connectionless call")
        self.client.tracked_resources.add(resource)

    def untrack_resource(self, resource: Any) -> None:
        """Stop tracking ``resource`` for the calling client's connection."""
        if not self.client:
            raise errors.PyroError("cannot untrack resource on a connectionless call")
        self.client.tracked_resources.discard(resource)


current_context = _CallContext()
