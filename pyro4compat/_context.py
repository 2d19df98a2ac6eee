"""The per-thread call context (``Pyro4.current_context``), shared by client and server code.

Server side, the daemon fills it in before it calls a method, so the method can see who
called (``client``, ``client_sock_addr``), with which message (``seq``, ``msg_flags``,
``serializer_id``, ``annotations``), and can set ``response_annotations`` for the reply.
Client side, code sets ``annotations`` / ``correlation_id`` before a call and reads
``response_annotations`` after it.

``correlation_id`` is stored as it arrives: the daemon hands over the 16 raw bytes of a request's
CORR annotation (or of a fresh random id) and the ``uuid.UUID`` is only built when something
reads the attribute, since most calls never do. The reply's CORR comes from the same bytes.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any, Dict, Optional, Tuple

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
        self._corr_value: Optional[uuid.UUID] = None
        self._corr_raw: Optional[bytes] = None  # 16 bytes not yet turned into _corr_value

    @property
    def correlation_id(self) -> Optional[uuid.UUID]:
        raw = self._corr_raw
        if raw is not None:
            self._corr_value = uuid.UUID(bytes=raw)
            self._corr_raw = None
        return self._corr_value

    @correlation_id.setter
    def correlation_id(self, value: Optional[uuid.UUID]) -> None:
        self._corr_raw = None
        self._corr_value = value

    def _set_correlation_bytes(self, raw: bytes) -> None:
        """Adopt a correlation id given as 16 bytes (checked by the caller), built lazily."""
        self._corr_raw = raw
        self._corr_value = None

    def _correlation_bytes(self) -> Optional[bytes]:
        """The correlation id as the CORR annotation carries it, or None when there is none."""
        raw = self._corr_raw
        if raw is not None:
            return raw
        value = self._corr_value
        return value.bytes if value else None

    def _snapshot(self) -> Tuple[Any, ...]:
        """Cheaper :meth:`to_global` for handing a call context to a pool worker."""
        return (self.client, self.client_sock_addr, self.seq, self.msg_flags, self.serializer_id,
                self.annotations, self.response_annotations, self._corr_value, self._corr_raw)

    def _restore(self, snapshot: Tuple[Any, ...]) -> None:
        """Adopt a :meth:`_snapshot` taken in another thread."""
        (self.client, self.client_sock_addr, self.seq, self.msg_flags, self.serializer_id,
         self.annotations, self.response_annotations, self._corr_value, self._corr_raw) = snapshot

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
