"""The object the benchmark server exposes, written once for either library.

``build(pyro)`` takes the imported library (real ``Pyro4`` or ``pyro4compat``) so both
servers run the very same methods and only the library underneath differs.
"""

from __future__ import annotations

import marshal
from typing import Any, Dict, Iterator, List


def build(pyro: Any) -> type:
    @pyro.expose
    class Bench(object):
        def __init__(self) -> None:
            self.notes = 0

        def add(self, a: int, b: int) -> int:
            return a + b

        def echo(self, value: Any) -> Any:
            return value

        @pyro.oneway
        def note(self, value: Any) -> None:
            self.notes += 1

        def notes_seen(self) -> int:
            return self.notes

        def numbers(self) -> Iterator[int]:
            number = 0
            while True:
                yield number
                number += 1

    return Bench


def nested_payload(target: int = 1 << 20) -> List[Dict[str, Any]]:
    """A ~``target``-byte (marshal size) structure of the shapes RPC payloads usually have.

    Only dicts, lists, str, int, float and bool: every serializer round-trips them unchanged.
    """
    records: List[Dict[str, Any]] = []
    size, index = 0, 0
    while size < target:
        chunk = [{"id": index + i, "name": "record-%06d" % (index + i), "active": (index + i) % 3 == 0,
                  "score": (index + i) * 0.25, "tags": ["alpha", "beta", "gamma"][: 1 + (index + i) % 3],
                  "point": {"x": index + i, "y": -(index + i), "label": "p%d" % (index + i)}}
                 for i in range(256)]
        records.extend(chunk)
        index += len(chunk)
        size = len(marshal.dumps(records))
    return records
