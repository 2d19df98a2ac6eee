"""Let glibc keep freed multi-megabyte buffers for reuse once large messages show up.

Why: glibc hands out a block above ``M_MMAP_THRESHOLD`` (128 KiB at process start) as a fresh
``mmap`` and unmaps it on free, and it gives the top of the heap back to the kernel once more
than ``M_TRIM_THRESHOLD`` is free there. Memory that comes back from the kernel costs a page
fault per 4 KiB on first touch: about 2,400 faults and several milliseconds for each 10 MB
buffer on the machines we measure on, more than copying the data. A 10 MB echo makes four to
six such buffers per call on each side (received bytes, the decoded value, the encoded reply,
marshal's growing output), so without reuse most of its time goes to page faults.

glibc tunes itself when a block that came from ``mmap`` is freed: ``M_MMAP_THRESHOLD`` rises to
that block's size (up to 32 MiB on 64-bit) and ``M_TRIM_THRESHOLD`` to twice that (mallopt(3),
"dynamic mmap threshold"). How far it rises depends on which block happens to be freed first,
and in practice it often stays too low for a process that moves 10 MB messages. So the first
time a message of ``LARGE`` bytes or more is sent or received, :func:`expect` allocates and frees
one block of about twice the message size (``calloc`` of a fresh mapping: no page is touched),
which sets the thresholds as if such a block had been freed by the application. Later buffers
of that size are then carved from the heap and reused warm. The cost: the process may keep up
to twice that block size of freed memory instead of returning it (at most 62 MiB).

Nothing here changes what is sent or received. Other C libraries (musl, macOS, Windows) are left
alone, as is every process while ``config.KEEP_LARGE_BUFFERS`` is false (``PYRO_KEEP_LARGE_BUFFERS``).
The item is read at each new high-water mark (see :mod:`._tunings`), so it can be switched at run
time; thresholds glibc already raised stay raised.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

from ._tunings import keep_large_buffers, reader

__all__ = ["LARGE", "Keeper", "expect"]

LARGE = 1 << 20                    # messages from this size on make glibc's thresholds matter
_MIB = 1 << 20
_CAP = 31 * _MIB                   # glibc only follows freed blocks of up to 32 MiB


def glibc() -> bool:
    """Whether this process runs on glibc (the only allocator whose thresholds we know)."""
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (AttributeError, ValueError, OSError):
        return False


def block_size(message_size: int) -> int:
    """The block to free for a message of ``message_size``: room for twice it, whole MiB, capped."""
    wanted = 2 * message_size + _MIB
    return min(_CAP, -(-wanted // _MIB) * _MIB)


def _free_fresh_block(size: int) -> None:
    bytes(size)   # calloc of a fresh mapping (no page touched), freed at once


_wanted = reader("KEEP_LARGE_BUFFERS", keep_large_buffers, False)   # config.KEEP_LARGE_BUFFERS now


class Keeper(object):
    """Frees one block per new high-water mark of message sizes, never the same size twice.

    ``applies`` is false where the allocator isn't glibc: then nothing is ever freed.
    """

    def __init__(self, applies: bool, release: Callable[[int], None] = _free_fresh_block) -> None:
        self.raised_to = 0 if applies else _CAP   # the largest block freed so far
        self._release = release
        self._lock = threading.Lock()

    def expect(self, message_size: int) -> None:
        """A message of ``message_size`` bytes (``LARGE`` or more) is being sent or received."""
        size = block_size(message_size)
        if size <= self.raised_to or not _wanted():
            return                       # the common case: done already for this size
        with self._lock:
            if size > self.raised_to:
                self.raised_to = size
                self._release(size)


_keeper = Keeper(glibc())
expect = _keeper.expect
