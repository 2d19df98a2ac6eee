"""``SerializedBlob``: a call argument that passes through a dispatcher still serialized."""

from __future__ import annotations

from typing import Any

from .._serializers import get_serializer_by_id
from ..errors import SerializeError
from ..message import FLAGS_COMPRESSED

__all__ = ["SerializedBlob"]


class SerializedBlob:
    """Wraps call data so intermediaries can forward it without (de)serializing it.

    ``info`` is small marshal-able metadata (an id or a name); ``data`` is what the final
    receiver wants. It must be the only argument of the remote call. On the receiving side the
    blob holds the raw protocol message until :meth:`deserialized` is called.
    """

    def __init__(self, info: Any, data: Any, is_blob: bool = False) -> None:
        self.info = info
        self._data = data
        self._contains_blob = is_blob

    def deserialized(self) -> Any:
        """The wrapped data, deserializing the carried message when needed."""
        if not self._contains_blob:
            return self._data
        msg = self._data
        serializer = get_serializer_by_id(msg.serializer_id)
        # The sender put the blob's data where a call's arguments go: it can be any value, so
        # this reads the call loosely rather than through deserializeCall's argument checks.
        call = serializer.deserializeData(msg.data, msg.flags & FLAGS_COMPRESSED)
        try:
            return call["params"] if isinstance(call, dict) else call[2]  # json's call form is a dict
        except (KeyError, IndexError, TypeError):
            raise SerializeError("invalid blob data: not a serialized call") from None
