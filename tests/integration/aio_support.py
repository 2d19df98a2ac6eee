"""Shared pieces of the asyncio tests: a daemon of any server type served for a test, and a runner."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Awaitable, Callable, Iterator

from pyro4compat import aio, core
from pyro4compat.configuration import config

from daemons import serving
from remote_helpers import HOST

SERVER_KINDS = ["thread", "multiplex", "asyncio"]


def make_any_daemon(kind: str, **kwargs: Any) -> Any:
    """A daemon on loopback port 0: ``core.Daemon`` with that SERVERTYPE, or an ``aio.Daemon``."""
    kwargs.setdefault("host", HOST)
    if kind == "asyncio":
        return aio.Daemon(**kwargs)
    config.SERVERTYPE = kind
    return core.Daemon(**kwargs)


@contextlib.contextmanager
def served_any(kind: str, objects: dict, **kwargs: Any) -> Iterator[Any]:
    """``objects`` ({id: obj}) registered in a daemon of ``kind``, its loop in a thread."""
    daemon = make_any_daemon(kind, **kwargs)
    for object_id, obj in objects.items():
        daemon.register(obj, object_id)
    with serving(daemon):
        yield daemon


def run(coro_fn: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> Any:
    """``asyncio.run`` with an overall bound (a hung await fails the test, not the run)."""
    async def bounded() -> Any:
        return await asyncio.wait_for(coro_fn(), timeout)
    return asyncio.run(bounded())
