"""Issue 20's last gaps: async def methods in batches on an aio.Daemon."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, List

import pytest

from pyro4compat import aio, core

from aio_support import run, served_any
from remote_helpers import WAIT

pytestmark = pytest.mark.timeout(60)


# --- 1. async def methods inside a batch, on an aio.Daemon ---------------------------------------

@core.expose
class Mixed:
    """Plain and ``async def`` methods that log the order they ran in."""

    def __init__(self) -> None:
        self.ran: List[Any] = []
        self.done = threading.Event()

    def plain(self, value: Any) -> Any:
        self.ran.append(("plain", value))
        return value

    async def later(self, value: Any) -> Any:
        await asyncio.sleep(0.05)    # a later call must wait for this one
        self.ran.append(("later", value))
        return value * 2

    async def fail(self, text: str) -> None:
        await asyncio.sleep(0)
        self.ran.append(("fail", text))
        raise ValueError(text)

    async def last(self, value: Any) -> None:
        self.ran.append(("last", value))
        self.done.set()

    async def current_seq(self) -> int:
        return aio.current_context.seq


@pytest.fixture
def mixed():
    obj = Mixed()
    with served_any("asyncio", {"mixed": obj}) as daemon:
        yield daemon, obj


def test_batch_of_async_methods_from_a_core_proxy(mixed):
    daemon, obj = mixed
    with core.Proxy(daemon.uriFor("mixed")) as proxy:
        batch = core.batch(proxy)
        batch.later(1)
        batch.plain(2)
        batch.later(3)
        batch.current_seq()
        results = list(batch())
    assert results[:3] == [2, 2, 6]
    assert isinstance(results[3], int)
    assert obj.ran == [("later", 1), ("plain", 2), ("later", 3)]   # awaited one after another


def test_failing_async_method_ends_the_batch_with_its_exception(mixed):
    daemon, obj = mixed

    async def main() -> None:
        async with aio.Proxy(daemon.uriFor("mixed")) as proxy:
            batch = proxy._pyroBatch()
            batch.plain("a")
            batch.later(5)
            batch.fail("stop here")
            batch.plain("never")
            results = await batch()
            assert next(results) == "a"
            assert next(results) == 10
            with pytest.raises(ValueError, match="stop here") as caught:
                next(results)
            assert "ValueError: stop here" in "".join(caught.value._pyroTraceback)
            with pytest.raises(StopIteration):
                next(results)
    run(main)
    assert obj.ran == [("plain", "a"), ("later", 5), ("fail", "stop here")]


def test_oneway_batch_runs_async_methods_on_the_loop(mixed):
    daemon, obj = mixed

    async def main() -> None:
        async with aio.Proxy(daemon.uriFor("mixed")) as proxy:
            batch = proxy._pyroBatch()
            batch.later(1)
            batch.last("end")
            assert await batch(oneway=True) is None
    run(main)
    assert obj.done.wait(WAIT)
    assert obj.ran == [("later", 1), ("last", "end")]
