"""pyro4compat's own process-wide tunings, read from ``config`` where they are used.

``config.BUSYPOLL_US`` (see :mod:`._busypoll`) and ``config.KEEP_LARGE_BUFFERS`` (see
:mod:`._large_buffers`) are ordinary config items: set in code at any time, or through
``PYRO_BUSYPOLL_US`` and ``PYRO_KEEP_LARGE_BUFFERS``. :mod:`.configuration` keeps a bad
environment value as text, so ``import`` never fails on it; this module is where such a value
is refused.

Theory of operation
-------------------
* **Refused at the edges.** :func:`check` raises a ``ValueError`` naming the item and its
  variable. A daemon calls it when it is created and a proxy each time it connects, both
  before any socket exists, so a bad value is an error at the line that uses it.
* **Read at use, cheaply.** The hot paths (every busy-poll wait, every large message) read
  their item through a :func:`reader`: one attribute read and an identity comparison while the
  value is unchanged, a new check only when it changed. So ``config.BUSYPOLL_US = 0`` takes
  effect at the next wait, and switching it back on works the same way.
* **Never a broken receive.** A bad value set while a daemon runs or a proxy is connected is
  met first in the middle of a receive or a send, where raising would break that connection
  (or spin the multiplex loop). There the reader treats it as "off" and logs one warning;
  the next daemon or connection refuses it.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, List, Tuple, TypeVar

from .configuration import config

__all__ = ["check", "busypoll_seconds", "keep_large_buffers", "reader"]

log = logging.getLogger("Pyro4.core")

T = TypeVar("T")
_MAX_BUSYPOLL_US = 1_000_000    # one second: far past any useful spin, and it refuses inf


def _refuse(item: str, wanted: str, value: Any) -> ValueError:
    return ValueError("config.%s (PYRO_%s) must be %s, not %r" % (item, item, wanted, value))


def busypoll_seconds(value: Any) -> float:
    """``config.BUSYPOLL_US`` in seconds (0.0 means off); anything but 0 to 10**6 microseconds is refused."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= _MAX_BUSYPOLL_US:
        return float(value) / 1e6
    raise _refuse("BUSYPOLL_US", "a number of microseconds from 0 to %d" % _MAX_BUSYPOLL_US, value)


def keep_large_buffers(value: Any) -> bool:
    """``config.KEEP_LARGE_BUFFERS``: True or False (1 and 0 pass too); anything else is refused."""
    if isinstance(value, int) and value in (0, 1):     # bool is an int
        return bool(value)
    raise _refuse("KEEP_LARGE_BUFFERS", "True or False", value)


def check() -> None:
    """Refuse a bad tuning now, naming it: a daemon being created, a proxy connecting."""
    busypoll_seconds(config.BUSYPOLL_US)
    keep_large_buffers(config.KEEP_LARGE_BUFFERS)


_UNSEEN = object()


def reader(item: str, meaning: Callable[[Any], T], off: T) -> Callable[[], T]:
    """A cheap reader of ``config.<item>`` for hot paths: its checked meaning, ``off`` for a bad value.

    The last value seen and its meaning are cached as one tuple (replaced whole, so threads
    never see half an update), keyed on the identity of the config value.
    """
    seen: List[Tuple[Any, T]] = [(_UNSEEN, off)]

    def current() -> T:
        value = getattr(config, item)
        known = seen[0]
        if value is known[0]:
            return known[1]
        try:
            result = meaning(value)
        except ValueError as exc:
            log.warning("%s; treated as off until it is fixed", exc)
            result = off
        seen[0] = (value, result)
        return result

    return current
