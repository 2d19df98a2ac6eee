"""pyro4compat.aio against real Pyro4 4.82 in a child process, both ways, every serializer."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Iterator, List

import pytest

import service
from daemons import serving
from pyro4compat import aio, core, errors
from pyro4compat._serializers import _serializers
from pyro4compat.configuration import config
from test_naming_interop import pyro4_name_server
from test_pyro4_proxy_to_our_daemon import CLIENT_SCRIPT, HMAC_SCRIPT

pytestmark = [pytest.mark.interop, pytest.mark.timeout(90)]

ALL_SERIALIZERS = ["serpent", "json", "marshal", "msgpack", "pickle", "dill", "cloudpickle"]
SERIALIZERS = [name for name in ALL_SERIALIZERS if name in _serializers]


def run(coro_fn: Any) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro_fn(), 60)
    return asyncio.run(bounded())


# --- an aio.Proxy calling a Pyro4 daemon ----------------------------------------------------------

@pytest.mark.parametrize("servertype", ["thread", "multiplex"])
@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_aio_proxy_against_pyro4_daemon(pyro4_server, servertype, serializer):
    server = pyro4_server(servertype=servertype, serializers=[serializer])
    config.SERIALIZER = serializer

    async def main() -> None:
        async with aio.Proxy(server.uri("interop.service")) as proxy:
            assert await proxy.echo("hello") == "hello"
            assert await proxy.add(2, b=3) == 5
            assert proxy._pyroOneway == {"note"} and proxy._pyroAttrs == {"value"}
            if serializer != "marshal":   # Pyro4's own marshal serializer can't take kwargs=None
                assert await proxy.value == 42
                await proxy._pyroSetAttr("value", 7)
                assert await proxy._pyroGetAttr("value") == 7
            assert await proxy.note("n1") is None
            assert await proxy.notes_taken() == ["n1"]
            with pytest.raises(ValueError, match="boom") as caught:
                await proxy.fail("boom")
            assert "ValueError: boom" in "".join(caught.value._pyroTraceback)
            assert await asyncio.gather(*[proxy.echo(n) for n in range(50)]) == list(range(50))
            stream = await proxy.numbers(4)
            assert [n async for n in stream] == [0, 1, 2, 3]
            batch = proxy._pyroBatch()
            batch.echo(1)
            batch.add(1, 2)
            assert list(await batch()) == [1, 3]
            # cancelled mid-flight: the stale reply is dropped, the next call gets its own
            slow = asyncio.ensure_future(proxy.slow(0.2))
            await asyncio.sleep(0.05)
            slow.cancel()
            assert await proxy.echo("after cancel") == "after cancel"
    run(main)


def test_aio_proxy_hmac_and_compression_against_pyro4(pyro4_server):
    server = pyro4_server(servertype="thread", serializers=["serpent"], hmac="secret", compression=True)
    config.COMPRESSION = True

    async def main() -> None:
        async with aio.Proxy(server.uri("interop.service")) as proxy:
            proxy._pyroHmacKey = b"secret"
            assert await proxy.echo("z" * 10000) == "z" * 10000
        async with aio.Proxy(server.uri("interop.service")) as proxy:
            proxy._pyroHmacKey = b"wrong"
            with pytest.raises(errors.CommunicationError):
                await proxy.echo(1)
    run(main)


@pytest.mark.parametrize("serializer", ["serpent", "json", "marshal"])
def test_aio_proxy_and_locate_ns_against_pyro4_name_server(pyro4_server, serializer):
    server = pyro4_server(servertype="thread", serializers=[serializer])
    config.SERIALIZER = serializer
    with pyro4_name_server([serializer]) as (host, port):
        async def main() -> None:
            async with await aio.locateNS(host, port) as ns:
                await ns.register("interop.aio", server.uri("interop.service"), metadata={"aio"})
                assert str(await ns.lookup("interop.aio")) == server.uri("interop.service")
                assert "interop.aio" in await ns.list(prefix="interop.")
            async with aio.Proxy("PYRONAME:interop.aio@%s:%d" % (host, port)) as proxy:
                assert await proxy.echo("named") == "named"
            async with aio.Proxy("PYROMETA:aio@%s:%d" % (host, port)) as proxy:
                assert await proxy.echo("meta") == "meta"
            config.NS_HOST, config.NS_PORT = host, port
            async with aio.Proxy("PYRONAME:interop.aio") as proxy:
                assert await proxy.add(1, 1) == 2
        run(main)


# --- a Pyro4 proxy calling an aio.Daemon ------------------------------------------------------------

@core.expose
class AsyncService:
    def __init__(self) -> None:
        self.logged: List[Any] = []

    async def wait_and_echo(self, seconds: float, value: Any) -> Any:
        await asyncio.sleep(seconds)
        return value

    async def log(self, seconds: float, value: Any) -> Any:
        await asyncio.sleep(seconds)
        self.logged.append(value)
        return value

    def log_so_far(self) -> List[Any]:
        return self.logged

    async def countdown(self, count: int) -> Any:
        for n in range(count, 0, -1):
            yield n

    async def fail(self) -> None:
        raise KeyError("async boom")


@contextlib.contextmanager
def aio_daemon(serializers: Any, hmac: Any = None) -> Iterator[Any]:
    config.SERIALIZERS_ACCEPTED = set(serializers)
    daemon = aio.Daemon(host="127.0.0.1")
    if hmac:
        daemon._pyroHmacKey = hmac
    service.register_all(core, daemon)
    daemon.register(AsyncService(), "interop.async")
    with serving(daemon):
        yield daemon


ASYNC_SCRIPT = r"""
import threading, time
import Pyro4
Pyro4.config.SERIALIZER = INPUT["serializer"]
uri = "PYRO:interop.async@" + INPUT["location"]
out = {}
with Pyro4.Proxy(uri) as p:
    out["echo"] = p.wait_and_echo(0, "x")
    out["countdown"] = list(p.countdown(3))
    try:
        p.fail()
    except KeyError as e:
        out["fail"] = str(e)
results = []
def call(n):
    with Pyro4.Proxy(uri) as p:
        results.append(p.wait_and_echo(0.3, n))
threads = [threading.Thread(target=call, args=(n,)) for n in range(10)]
start = time.time()
for t in threads: t.start()
for t in threads: t.join()
out["parallel"] = sorted(results)
out["elapsed"] = time.time() - start
OUTPUT = out
"""


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_pyro4_proxy_against_aio_daemon(pyro4, serializer):
    with aio_daemon([serializer]) as daemon:
        out = pyro4(CLIENT_SCRIPT, {"location": daemon.locationStr, "serializer": serializer})
        async_out = pyro4(ASYNC_SCRIPT, {"location": daemon.locationStr, "serializer": serializer})
    assert out["echo"] == "hello" and out["add"] == 5
    assert out["oneway"] == ["note"] and out["attrs"] == ["value"]
    if serializer != "marshal":
        assert out["value"] == 42 and out["value2"] == 9
        assert out["batch_first"] == 1 and out["batch_error"] == "mid"
        assert out["autoproxy"] == ["Proxy", "kid"]
    assert out["notes"] == ["n1"]
    assert out["error"] == "boom" and out["remote_tb"]
    assert out["stream"] == [0, 1, 2, 3] and out["partial"] == [0, 1]
    assert out["interop.session"] == [1, 2, 1]
    assert out["interop.single"] == [1, 2, 3]
    assert out["interop.percall"] == [1, 1, 1]
    assert out["unknown"].endswith("rejected: unknown object")
    assert async_out["echo"] == "x"
    assert async_out["countdown"] == [3, 2, 1]
    assert "async boom" in async_out["fail"]
    assert async_out["parallel"] == list(range(10))
    assert async_out["elapsed"] < 2.5   # ten 0.3 s async calls overlapped on the loop


BATCH_SCRIPT = r"""
import Pyro4
Pyro4.config.SERIALIZER = INPUT["serializer"]
out = {}
with Pyro4.Proxy("PYRO:interop.async@" + INPUT["location"]) as p:
    batch = Pyro4.batch(p)
    batch.log(0.1, "slow first")
    batch.log(0, "then fast")
    batch.wait_and_echo(0, "plain result")
    batch.fail()
    batch.log(0, "never")
    results = batch()
    out["results"] = [next(results), next(results), next(results)]
    try:
        next(results)
    except KeyError as e:
        out["error"] = str(e)
    out["rest"] = list(results)
    out["logged"] = p.log_so_far()
OUTPUT = out
"""


# Pyro4's own marshal client can't send a batch (it sends kwargs=None): not a daemon matter.
@pytest.mark.parametrize("serializer", [name for name in SERIALIZERS if name != "marshal"])
def test_pyro4_batch_awaits_async_methods_on_aio_daemon(pyro4, serializer):
    with aio_daemon([serializer]) as daemon:
        out = pyro4(BATCH_SCRIPT, {"location": daemon.locationStr, "serializer": serializer})
    assert out["results"] == ["slow first", "then fast", "plain result"]
    assert "async boom" in out["error"] and out["rest"] == []
    assert out["logged"] == ["slow first", "then fast"]   # in order, and nothing after the failure


def test_pyro4_proxy_hmac_against_aio_daemon(pyro4):
    with aio_daemon(["serpent"], hmac=b"secret") as daemon:
        out = pyro4(HMAC_SCRIPT, {"location": daemon.locationStr, "keys": [b"secret", b"wrong", None]})
    assert out[0] == ["ok", 1]
    assert out[1][0] == "CommunicationError" and out[2][0] == "CommunicationError"
