"""The name server's default storage: a ``dict`` of ``name -> (uri, frozenset_of_tags)``.

Re-exported as ``pyro4compat.naming.MemoryStorage``. Like Pyro4's, it is a ``dict`` subclass
whose ``optimized_*`` methods return None, telling the name server to filter by itself.

Thread safety
-------------
Every single call is atomic: each is one C-level dict operation (``dict.copy``, ``pop``,
item assignment, ...) with string keys, done under the GIL or, on free-threaded builds, under
the dict's own lock. Values are tuples holding a ``frozenset``, so a copy shares nothing
mutable. Iterating works on a snapshot, so a concurrent change cannot break a loop.

What the name server must hold its lock for: compound operations, i.e. check-then-set
(``register(safe=True)``), read-modify-write (``set_metadata``), and any lookup followed by
a use of the same entry that must see one consistent state (its fallback filters). A
``remove_items`` batch is not atomic as a whole: each name goes in its own step.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Dict, Optional, Tuple

__all__ = ["MemoryStorage"]

Entry = Tuple[str, frozenset]


def _entry(value: Tuple[str, Any]) -> Entry:
    uri, metadata = value
    return uri, frozenset(metadata) if metadata else frozenset()


class MemoryStorage(dict):
    """Volatile in-memory storage: everything is gone when the name server stops."""

    def __init__(self, **kwargs: Tuple[str, Any]) -> None:
        super().__init__()
        self.update(kwargs)

    def __setitem__(self, key: str, value: Tuple[str, Any]) -> None:
        super().__setitem__(key, _entry(value))

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """As ``dict.update``, but every value normalised like an assignment."""
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __iter__(self) -> Iterator[str]:
        return iter(dict.copy(self))

    def optimized_prefix_list(self, prefix: str, return_metadata: bool = False) -> None:
        return None

    def optimized_regex_list(self, regex: str, return_metadata: bool = False) -> None:
        return None

    def optimized_metadata_search(
        self,
        metadata_all: Optional[Iterable[str]] = None,
        metadata_any: Optional[Iterable[str]] = None,
        return_metadata: bool = False,
    ) -> None:
        return None

    def everything(self, return_metadata: bool = False) -> Dict[str, Any]:
        """A plain-dict snapshot: ``{name: (uri, tags)}``, or ``{name: uri}``."""
        snapshot = dict.copy(self)
        if return_metadata:
            return snapshot
        return {name: uri for name, (uri, _) in snapshot.items()}

    def remove_items(self, items: Iterable[str]) -> None:
        """Remove the names that are present; unknown names are skipped."""
        for item in items:
            self.pop(item, None)

    def close(self) -> None:
        """Nothing to release: the data lives only in this object."""
