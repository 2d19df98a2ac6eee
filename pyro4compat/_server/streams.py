"""Remote iterators: the daemon's table of live item streams.

Theory of operation
-------------------
A call that returns an iterator or generator gets a stream id instead of a value; the client
then pulls items with ``Pyro.Daemon.get_next_stream_item(id)``. Each entry remembers the
client connection that owns it, when it was created and, once its client went away, when
that happened (``linger`` start), so housekeeping can drop streams past
``ITER_STREAM_LIFETIME`` or past ``ITER_STREAM_LINGER`` after a disconnect. A client that
reconnects within the linger time takes the stream over on its next pull.

One lock guards the table. ``next()`` on the user's iterator runs *outside* the lock, so a slow
generator never blocks other streams; a stream being advanced by two threads at once (one
client sharing a stream id across connections) is serialised by the iterator itself, as in
Pyro4.
"""

from __future__ import annotations

import collections.abc
import inspect
import threading
import time
import uuid
from typing import Any, Dict, List, NamedTuple, Optional

from .. import errors

__all__ = ["StreamRegistry", "is_stream_result", "LAZY_DICT_VIEWS"]

LAZY_DICT_VIEWS = (type({}.keys()), type({}.values()), type({}.items()))


def is_stream_result(value: Any) -> bool:
    """True for results Pyro streams item by item: iterators and generators."""
    return isinstance(value, collections.abc.Iterator) or inspect.isgenerator(value)


class _Entry(NamedTuple):
    client: Any
    created: float
    linger_since: float  # 0 while a client owns the stream
    iterator: Any


class StreamRegistry:
    """Thread-safe stream table with Pyro4's lifetime and linger rules."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.streams: Dict[str, _Entry] = {}

    def __len__(self) -> int:
        return len(self.streams)

    def add(self, client: Any, iterator: Any) -> str:
        """Register ``iterator`` for ``client``; returns the new stream id."""
        if type(iterator) in LAZY_DICT_VIEWS:
            raise errors.PyroError("won't serialize or stream lazy dict iterators, convert to list yourself")
        stream_id = str(uuid.uuid4())
        with self._lock:
            self.streams[stream_id] = _Entry(client, time.time(), 0.0, iterator)
        return stream_id

    def next_item(self, stream_id: str, client: Any) -> Any:
        """Advance a stream; StopIteration or any error from the iterator removes it."""
        with self._lock:
            entry = self.streams.get(stream_id)
            if entry is None:
                raise errors.PyroError("item stream terminated")
            if entry.client is None:  # adopted by a reconnected client
                self.streams[stream_id] = entry._replace(client=client, linger_since=0.0)
        try:
            return next(entry.iterator)
        except BaseException:
            self.close(stream_id)
            raise

    def close(self, stream_id: str) -> None:
        with self._lock:
            self.streams.pop(stream_id, None)

    def clear(self) -> None:
        with self._lock:
            self.streams.clear()

    def client_disconnected(self, client: Any, linger: float) -> None:
        """Let the client's streams linger (``linger`` > 0) or drop them right away."""
        now = time.time()
        with self._lock:
            for stream_id, entry in list(self.streams.items()):
                if entry.client is client:
                    if linger > 0:
                        self.streams[stream_id] = entry._replace(client=None, linger_since=now)
                    else:
                        del self.streams[stream_id]

    def expire(self, lifetime: float, linger: float, now: Optional[float] = None) -> List[str]:
        """Drop streams older than ``lifetime`` or lingering longer than ``linger`` seconds."""
        now = time.time() if now is None else now
        expired = []
        with self._lock:
            for stream_id, entry in list(self.streams.items()):
                too_old = 0 < lifetime < now - entry.created
                lingered = linger > 0 and entry.linger_since and now - entry.linger_since > linger
                if too_old or lingered:
                    del self.streams[stream_id]
                    expired.append(stream_id)
        return expired
