"""aio.Proxy against every server type: calls, attributes, oneway, batches, streams, timeouts,
cancellation, concurrency, hooks, HMAC, compression and every serializer."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any, List

import pytest

from pyro4compat import aio, core, errors
from pyro4compat._context import current_context
from pyro4compat._serializers import _serializers
from pyro4compat.configuration import config

from aio_support import SERVER_KINDS, run, served_any
from remote_helpers import WAIT, Thing, refused_port

pytestmark = pytest.mark.timeout(60)

SERIALIZERS = [name for name in ["serpent", "json", "marshal", "msgpack", "pickle", "dill", "cloudpickle"]
               if name in _serializers]


@core.expose
class Extra:
    """Streams, slow calls and a gate for the cancellation tests."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()

    def numbers(self, count: int) -> Any:
        return (n for n in range(count))

    def slow(self, seconds: float, value: Any) -> Any:
        threading.Event().wait(seconds)
        return value

    def wait_gate(self, value: Any) -> Any:
        self.started.set()
        self.gate.wait(WAIT)
        return value


@pytest.fixture(params=SERVER_KINDS)
def kind(request) -> str:
    return request.param


@pytest.fixture
def served(kind):
    config.SERIALIZERS_ACCEPTED = set(SERIALIZERS)
    thing, extra = Thing(), Extra()
    with served_any(kind, {"thing": thing, "extra": extra}) as daemon:
        daemon.thing, daemon.extra = thing, extra
        yield daemon


def uri(daemon: Any, name: str = "thing") -> str:
    return "PYRO:%s@%s" % (name, daemon.locationStr)


def test_calls_attributes_oneway_and_metadata(served):
    async def main() -> None:
        async with aio.Proxy(uri(served)) as proxy:
            assert await proxy.echo("hi") == "hi"
            assert await proxy.add(2, b=3) == 5
            assert {"echo", "add", "fire", "fail"} <= proxy._pyroMethods
            assert proxy._pyroOneway >= {"fire", "fire_and_block"}
            assert proxy._pyroAttrs >= {"value", "readonly"}
            assert await proxy.value == 1
            assert await proxy._pyroGetAttr("readonly") == "fixed"
            await proxy._pyroSetAttr("value", 9)
            assert await proxy.value == 9
            assert await proxy.fire(5) is None
            assert served.thing.fired_event.wait(WAIT)
            with pytest.raises(AttributeError, match="no exposed attribute or method 'nope'"):
                await proxy.nope()
            with pytest.raises(AttributeError, match="no exposed attribute 'nope'"):
                await proxy._pyroGetAttr("nope")
            with pytest.raises(ValueError, match="boom") as caught:
                await proxy.fail("boom")
            assert "ValueError: boom" in "".join(caught.value._pyroTraceback)
    run(main)


def test_oneway_returns_once_sent(served):
    """A oneway call that blocks on the server does not hold up the caller or the next call."""
    async def main() -> None:
        async with aio.Proxy(uri(served)) as proxy:
            await proxy.fire_and_block()
            assert served.thing.fired_event.wait(WAIT)
            assert await proxy.echo(1) == 1
            served.thing.release.set()
    run(main)


def test_many_tasks_on_one_proxy(served):
    async def main() -> None:
        async with aio.Proxy(uri(served)) as proxy:
            results = await asyncio.gather(*[proxy.echo(n) for n in range(300)])
            assert results == list(range(300))
            results = await asyncio.gather(*[proxy.add(n, b=n) for n in range(50)],
                                           *[proxy._pyroGetAttr("readonly") for _ in range(5)])
            assert results == [2 * n for n in range(50)] + ["fixed"] * 5
    run(main)


def test_batch(served):
    async def main() -> None:
        async with aio.Proxy(uri(served)) as proxy:
            batch = proxy._pyroBatch()
            batch.echo(1)
            batch.add(2, 3)
            batch.fail("stop here")
            batch.echo("never")
            results = await batch()
            assert next(results) == 1 and next(results) == 5
            with pytest.raises(ValueError, match="stop here"):
                next(results)
            batch.fire(1)
            assert await batch(oneway=True) is None
            assert served.thing.fired_event.wait(WAIT)
    run(main)


def test_remote_iterator(served):
    async def main() -> None:
        async with aio.Proxy(uri(served, "extra")) as proxy:
            stream = await proxy.numbers(5)
            assert [n async for n in stream] == [0, 1, 2, 3, 4]
            stream = await proxy.numbers(100)
            assert await stream.__anext__() == 0
            await stream.aclose()
            with pytest.raises(StopAsyncIteration):
                await stream.__anext__()
            assert await proxy.slow(0, "after") == "after"
    run(main)


def test_cancelled_call_leaves_proxy_usable(served):
    """Cancelled and timed-out (asyncio.wait_for) calls: their stale replies never reach a later call."""
    extra = served.extra

    async def main() -> None:
        async with aio.Proxy(uri(served, "extra")) as proxy:
            await proxy._pyroBind()
            task = asyncio.ensure_future(proxy.wait_gate("stale"))
            while not extra.started.is_set():
                await asyncio.sleep(0.005)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            extra.gate.set()
            assert await proxy.slow(0, "fresh") == "fresh"
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(proxy.slow(0.3, "late"), 0.05)
            assert await proxy.slow(0, "next") == "next"
            assert await asyncio.gather(*[proxy.slow(0, n) for n in range(10)]) == list(range(10))
    run(main)


def test_pyro_timeout(served):
    async def main() -> None:
        async with aio.Proxy(uri(served, "extra")) as proxy:
            proxy._pyroTimeout = 0.1
            with pytest.raises(errors.TimeoutError):
                await proxy.slow(1.0, "x")
            proxy._pyroTimeout = None
            assert await proxy.slow(0, "y") == "y"     # reconnected
    run(main)


def test_bind_release_reconnect_and_retries(served):
    async def main() -> None:
        proxy = aio.Proxy(uri(served))
        assert await proxy._pyroBind() is True
        assert await proxy._pyroBind() is False
        proxy._pyroRelease()
        assert await proxy.echo(2) == 2
        await proxy._pyroReconnect()
        assert await proxy.echo(3) == 3
        # a connection the daemon dropped: retried once with _pyroMaxRetries
        proxy._pyroConnection.transport.abort()
        await asyncio.sleep(0)
        proxy._pyroMaxRetries = 1
        assert await proxy.echo(4) == 4
        proxy._pyroRelease()
    run(main)


def test_connect_refused_and_reconnect_gives_up():
    async def main() -> None:
        proxy = aio.Proxy("PYRO:thing@127.0.0.1:%d" % refused_port())
        with pytest.raises(errors.CommunicationError, match="cannot connect"):
            await proxy.echo(1)
        proxy_module = __import__("pyro4compat.aio.proxy", fromlist=["RECONNECT_DELAY"])
        saved, proxy_module.RECONNECT_DELAY = proxy_module.RECONNECT_DELAY, 0.01
        try:
            with pytest.raises(errors.ConnectionClosedError, match="failed to reconnect"):
                await proxy._pyroReconnect(tries=2)
        finally:
            proxy_module.RECONNECT_DELAY = saved
    run(main)


class HookedProxy(aio.Proxy):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.seen: List[Any] = []

    def _pyroAnnotations(self) -> dict:
        return {"XTRA": b"extra"}

    def _pyroResponseAnnotations(self, annotations: dict, msgtype: int) -> None:
        self.seen.append((msgtype, dict(annotations)))

    def _pyroValidateHandshake(self, response: Any) -> None:
        self.seen.append(("handshake", response))


def test_hooks_annotations_and_correlation(served):
    async def main() -> None:
        async with HookedProxy(uri(served)) as proxy:
            proxy._pyroHandshake = {"who": "me"}
            corr = uuid.uuid4()
            current_context.correlation_id = corr
            current_context.annotations = {"ABCD": b"1234"}
            info = await proxy.context()
            current_context.correlation_id = None
            assert info["annotations"]["ABCD"] == "1234" and info["annotations"]["XTRA"] == "extra"
            assert info["corr"] == str(corr)
            assert ("handshake", "hello") in proxy.seen
            assert any(t == core.message.MSG_RESULT and a.get("RESP") == b"response-bytes" for t, a in proxy.seen
                       if t != "handshake")
    run(main)


def test_validate_handshake_refusal(served):
    class Refusing(aio.Proxy):
        def _pyroValidateHandshake(self, response: Any) -> None:
            raise errors.CommunicationError("not this one")

    async def main() -> None:
        proxy = Refusing(uri(served))
        with pytest.raises(errors.CommunicationError, match="not this one"):
            await proxy.echo(1)
        assert proxy._pyroConnection is None
    run(main)


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_every_serializer_with_compression(kind, serializer):
    config.SERIALIZERS_ACCEPTED = {serializer}
    config.COMPRESSION = True

    async def main(daemon: Any) -> None:
        config.SERIALIZER = serializer
        async with aio.Proxy(uri(daemon)) as proxy:
            big = "x" * 5000
            assert await proxy.echo(big) == big
            assert await proxy.echo([1, 2.5, "three"]) == [1, 2.5, "three"]
            with pytest.raises(ValueError):
                await proxy.fail("x")
    with served_any(kind, {"thing": Thing()}) as daemon:
        run(lambda: main(daemon))


def test_hmac(kind):
    async def main(daemon: Any) -> None:
        async with aio.Proxy(uri(daemon)) as proxy:
            proxy._pyroHmacKey = b"secret"
            assert await proxy.echo("signed") == "signed"
        async with aio.Proxy(uri(daemon)) as proxy:
            proxy._pyroHmacKey = b"wrong"
            with pytest.raises(errors.CommunicationError):
                await proxy.echo("x")
        async with aio.Proxy(uri(daemon)) as proxy:
            with pytest.raises(errors.CommunicationError):
                await proxy.echo("x")
    with served_any(kind, {"thing": Thing()}) as daemon:
        daemon._pyroHmacKey = b"secret"
        run(lambda: main(daemon))


def test_serializer_refused_by_daemon(kind):
    config.SERIALIZERS_ACCEPTED = {"serpent"}

    async def main(daemon: Any) -> None:
        config.SERIALIZER = "json"
        async with aio.Proxy(uri(daemon)) as proxy:
            with pytest.raises(errors.CommunicationError, match="serializer that is not accepted"):
                await proxy.echo(1)
    with served_any(kind, {"thing": Thing()}) as daemon:
        run(lambda: main(daemon))


def test_pyroname_and_pyrometa_through_name_server(kind):
    from pyro4compat import naming
    config.SERVERTYPE = "thread" if kind == "asyncio" else kind
    ns_uri, ns_daemon, _ = naming.startNS(host="127.0.0.1", port=0, enableBroadcast=False)
    from daemons import serving
    with serving(ns_daemon), served_any(kind, {"thing": Thing()}) as daemon:
        with core.Proxy(ns_uri) as ns:
            ns.register("test.thing", uri(daemon), metadata={"kind:thing"})

        async def main() -> None:
            host, port = ns_daemon.locationStr.rsplit(":", 1)
            nameserver = await aio.locateNS(host, int(port))
            async with nameserver:
                assert await nameserver.lookup("test.thing") == core.URI(uri(daemon))
                assert "test.thing" in await nameserver.list()
            async with aio.Proxy("PYRONAME:test.thing@%s" % ns_daemon.locationStr) as proxy:
                assert await proxy.echo("by name") == "by name"
            async with aio.Proxy("PYROMETA:kind:thing@%s" % ns_daemon.locationStr) as proxy:
                assert await proxy.echo("by meta") == "by meta"
            proxy = aio.Proxy("PYRONAME:test.thing@%s" % ns_daemon.locationStr)
            await proxy._pyroBind()
            assert proxy._pyroUri.protocol == "PYRO"
            proxy._pyroRelease()
            with pytest.raises(errors.NamingError):
                await aio.Proxy("PYRONAME:nothing.here@%s" % ns_daemon.locationStr).echo(1)
            config.NS_HOST, config.NS_PORT = host, int(port)
            nameserver = await aio.locateNS()
            nameserver._pyroRelease()
            nameserver = await aio.locateNS(host="%s:%s,%s" % (host, port, host), port=int(port))
            nameserver._pyroRelease()
        run(main)
