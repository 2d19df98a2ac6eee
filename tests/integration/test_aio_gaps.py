"""Issue 20's last gaps: async def methods in batches, aio.Proxy's raw replies, blobs, pickling,
copying and autoproxy, and the broadcast responder of the name server on the loop."""

from __future__ import annotations

import asyncio
import copy
import pickle
import socket
import threading
from typing import Any, List

import pytest

from pyro4compat import aio, core, errors, naming
from pyro4compat._serializers import _serializers, get_serializer_by_id
from pyro4compat.configuration import config
from pyro4compat.message import FLAGS_EXCEPTION, MSG_RESULT, Message

from aio_support import SERVER_KINDS, run, served_any
from daemons import serving
from remote_helpers import HOST, WAIT, Thing, open_fds

pytestmark = pytest.mark.timeout(60)

BLOB_SERIALIZERS = [name for name in ("serpent", "json", "pickle", "msgpack") if name in _serializers]  # as test_blob


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


# --- 2. aio.Proxy: raw replies, SerializedBlob, pickling, copying, autoproxy -------------------------

@core.expose
class Factory:
    """Hands out registered objects: they travel as proxies (autoproxy)."""

    def __init__(self) -> None:
        self.made: List[Thing] = []

    def make(self) -> Thing:
        thing = Thing()
        self._pyroDaemon.register(thing)
        self.made.append(thing)
        return thing

    def make_two(self) -> List[Thing]:
        return [self.make(), self.make()]

    def stream(self, count: int) -> Any:
        return (self.make() for _ in range(count))

    def take_blob(self, blob: Any) -> Any:
        return [blob.info, blob.deserialized()]


@core.expose
class AsyncDispatcher:
    """An async def dispatcher that forwards a blob it never decodes, with an aio.Proxy."""

    def __init__(self, target: Any) -> None:
        self.target = target

    async def dispatch(self, blob: Any) -> Any:
        async with aio.Proxy(self.target) as target:
            return await target.take_blob(blob)


@pytest.fixture(params=SERVER_KINDS)
def factory(request):
    with served_any(request.param, {"factory": Factory(), "thing": Thing()}) as daemon:
        yield daemon


def test_raw_wire_response_returns_the_reply_message(factory):
    async def main() -> None:
        async with aio.Proxy(factory.uriFor("thing")) as proxy:
            proxy._pyroRawWireResponse = True
            reply = await proxy.add(2, 3)
            assert isinstance(reply, Message) and reply.type == MSG_RESULT
            assert not reply.flags & FLAGS_EXCEPTION
            assert get_serializer_by_id(reply.serializer_id).deserializeData(reply.data) == 5
            failed = await proxy.fail("raw")             # no raise: the raw reply carries the error
            assert failed.flags & FLAGS_EXCEPTION
            proxy._pyroRawWireResponse = False
            assert await proxy.add(2, 3) == 5
    run(main)


@pytest.mark.parametrize("kind", SERVER_KINDS)
@pytest.mark.parametrize("serializer", BLOB_SERIALIZERS)
def test_serialized_blob_argument(kind, serializer):
    config.SERIALIZER = serializer
    config.SERIALIZERS_ACCEPTED = {serializer}

    async def main() -> None:
        async with aio.Proxy(daemon.uriFor("factory")) as proxy:
            assert await proxy.take_blob(core.SerializedBlob("info", {"k": [1, 2]})) == ["info", {"k": [1, 2]}]
            with pytest.raises(errors.SerializeError, match="must be the only argument"):
                await proxy.take_blob(core.SerializedBlob("info", 1), 2)
            assert await proxy.take_blob(core.SerializedBlob(None, "again")) == [None, "again"]
    with served_any(kind, {"factory": Factory()}) as daemon:
        run(main)


def test_serialized_blob_forwarded_undecoded_by_an_async_dispatcher():
    with served_any("thread", {"factory": Factory()}) as target:
        dispatcher = AsyncDispatcher(target.uriFor("factory"))
        with served_any("asyncio", {"dispatcher": dispatcher}) as daemon:
            async def main() -> None:
                async with aio.Proxy(daemon.uriFor("dispatcher")) as proxy:
                    assert await proxy.dispatch(core.SerializedBlob("routed", [1, "two"])) == ["routed", [1, "two"]]
            run(main)


def test_pickled_proxy_keeps_its_settings_and_comes_back_unconnected(factory):
    async def main() -> None:
        async with aio.Proxy(factory.uriFor("thing")) as proxy:
            assert await proxy.echo(1) == 1
            proxy._pyroHandshake = {"hello": "there"}
            proxy._pyroSerializer = "marshal"
            proxy._pyroTimeout, proxy._pyroMaxRetries = 7.5, 3
            config.COMMTIMEOUT, config.MAX_RETRIES = 0.0, 0
            clone = pickle.loads(pickle.dumps(proxy))
            assert type(clone) is aio.Proxy and clone._pyroConnection is None
            assert clone._pyroUri == proxy._pyroUri and clone._pyroHandshake == {"hello": "there"}
            assert clone._pyroSerializer == "marshal"
            assert (clone._pyroMethods, clone._pyroAttrs, clone._pyroOneway) == \
                (proxy._pyroMethods, proxy._pyroAttrs, proxy._pyroOneway)
            assert (clone._pyroTimeout, clone._pyroMaxRetries) == (0.0, 0)   # local config, as core.Proxy
            async with clone:
                assert await clone.echo("from the clone") == "from the clone"
            assert proxy._pyroConnection is not None                        # the original kept its own
    run(main)


def test_pickled_proxy_keeps_the_hmac_key():
    daemon = aio.Daemon(host=HOST)
    daemon._pyroHmacKey = b"secret"
    daemon.register(Thing(), "thing")

    async def main() -> None:
        proxy = aio.Proxy(daemon.uriFor("thing"))
        proxy._pyroHmacKey = "secret"
        clone = pickle.loads(pickle.dumps(proxy))
        assert clone._pyroHmacKey == b"secret"
        async with clone:
            assert await clone.add(1, 2) == 3
    with serving(daemon):
        run(main)


def test_copy_is_an_unconnected_proxy_with_the_same_settings(factory):
    async def main() -> None:
        async with aio.Proxy(factory.uriFor("thing")) as proxy:
            assert await proxy.echo(1) == 1
            proxy._pyroTimeout, proxy._pyroMaxRetries, proxy._pyroRawWireResponse = 9.0, 2, True
            duplicate = copy.copy(proxy)
            assert duplicate is not proxy and duplicate._pyroConnection is None
            assert (duplicate._pyroTimeout, duplicate._pyroMaxRetries, duplicate._pyroRawWireResponse) == (9.0, 2, True)
            assert duplicate._pyroMethods == proxy._pyroMethods and duplicate._pyroMethods is not proxy._pyroMethods
            duplicate._pyroRawWireResponse = False
            async with duplicate:
                assert await duplicate.echo(2) == 2
            assert isinstance(await proxy.echo(3), Message)   # the original: its own connection, raw
    run(main)


def test_returned_pyro_object_is_an_aio_proxy(factory):
    async def main() -> None:
        async with aio.Proxy(factory.uriFor("factory")) as proxy:
            made = await proxy.make()
            assert isinstance(made, aio.Proxy)
            async with made:
                assert await made.echo("autoproxied") == "autoproxied"
                assert await made.value == 1
            batch = proxy._pyroBatch()
            batch.make()
            batch.make()
            from_batch = list(await batch())
            assert all(isinstance(item, aio.Proxy) for item in from_batch)
            async with from_batch[0] as first:
                assert await first.add(1, 1) == 2
            streamed = [item async for item in await proxy.stream(2)]
            assert all(isinstance(item, aio.Proxy) for item in streamed)
            async with streamed[1] as second:
                assert await second.echo("streamed") == "streamed"
            nested = await proxy.make_two()     # inside a container: core.Proxy, wrap it
            assert all(isinstance(item, core.Proxy) for item in nested)
            async with aio.Proxy(nested[0]) as wrapped:
                assert await wrapped.echo("wrapped") == "wrapped"
            for item in nested:
                item._pyroRelease()
    run(main)


def test_wrapping_a_core_proxy_takes_its_state():
    source = core.Proxy("PYRO:thing@%s:1" % HOST)
    source._pyroHmacKey, source._pyroTimeout, source._pyroMaxRetries = b"k", 4.0, 2
    source._pyroHandshake, source._pyroSerializer = "shake", "json"
    wrapped = aio.Proxy(source)
    assert wrapped._pyroUri == source._pyroUri and wrapped._pyroUri is not None
    assert (wrapped._pyroHmacKey, wrapped._pyroTimeout, wrapped._pyroMaxRetries) == (b"k", 4.0, 2)
    assert (wrapped._pyroHandshake, wrapped._pyroSerializer) == ("shake", "json")
    assert wrapped._pyroConnection is None


# --- 3. the broadcast responder of a name server on the loop --------------------------------------

def ask(port: int, payload: bytes = b"GET_NSURI", timeout: float = 2.0) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(payload, (HOST, port))
        return sock.recvfrom(100)[0]


def broadcast_ns() -> aio.NameServerDaemon:
    return aio.NameServerDaemon(HOST, 0, enableBroadcast=True, bchost=HOST, bcport=0)


def test_name_server_daemon_answers_broadcast_lookups_while_served():
    daemon = broadcast_ns()
    bcserver = daemon.bcserver
    assert isinstance(bcserver, aio.BroadcastServer)
    assert bcserver.locationStr == "%s:%d" % (HOST, bcserver.getPort())
    ns_uri = daemon.uriFor(daemon.nameserver)
    with serving(daemon):
        assert ask(bcserver.getPort()).decode("iso-8859-1") == str(ns_uri)
        with pytest.raises(socket.timeout):
            ask(bcserver.getPort(), b"GET_NSURI please", timeout=0.3)   # anything else: no answer
        assert ask(bcserver.getPort()).decode("iso-8859-1") == str(ns_uri)
    assert bcserver.sock.fileno() == -1 and daemon.bcserver is None       # closed with the name server


def test_locate_ns_by_broadcast_from_the_loop():
    daemon = broadcast_ns()
    port = daemon.bcserver.getPort()
    ns_uri = daemon.uriFor(daemon.nameserver)

    async def main() -> None:
        server = asyncio.ensure_future(daemon.serve())
        config.NS_HOST = HOST
        config.NS_PORT = refused_port()           # nothing there: the direct try fails
        config.BROADCAST_ADDRS = HOST
        config.NS_BCPORT = port
        async with await aio.locateNS() as ns:
            assert ns._pyroUri == ns_uri
            assert await ns.count() == 1
        found = await asyncio.get_running_loop().run_in_executor(None, blocking_lookup)
        assert found == ns_uri                    # a blocking client finds it the same way
        daemon.shutdown()
        await asyncio.wait_for(server, WAIT)
    run(main)
    assert daemon.bcserver is None


def blocking_lookup() -> Any:
    with naming.locateNS() as ns:
        return ns._pyroUri


def refused_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def test_responder_replaces_any_address_by_the_facing_interface():
    async def main() -> None:
        bcserver = aio.BroadcastServer("PYRO:Pyro.NameServer@0.0.0.0:4444", HOST, 0)
        await bcserver.start()
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(None, ask, bcserver.getPort())
        bcserver.close()
        await asyncio.wait_for(bcserver.wait_closed(), WAIT)
        assert answer == b"PYRO:Pyro.NameServer@127.0.0.1:4444"
        assert bcserver.sock.fileno() == -1
    run(main)


def test_start_ns_follows_the_blocking_rules():
    ns_uri, daemon = aio.startNS(host=HOST, port=0)           # bound to 127.x: no responder
    try:
        assert daemon.bcserver is None and ns_uri.object == "Pyro.NameServer"
    finally:
        daemon.close()
    _, daemon = aio.startNS(host=HOST, port=0, enableBroadcast=False)
    daemon.close()
    assert daemon.bcserver is None


def test_responder_of_a_daemon_never_served_is_closed_with_it():
    daemon = broadcast_ns()
    bcserver = daemon.bcserver
    daemon.close()
    assert bcserver.sock.fileno() == -1 and daemon.bcserver is None


def test_responder_port_in_use_fails_and_closes_the_daemon():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind((HOST, 0))
        before = open_fds()
        with pytest.raises(OSError):
            aio.NameServerDaemon(HOST, 0, enableBroadcast=True, bchost=HOST, bcport=taken.getsockname()[1])
        assert open_fds() == before            # the daemon's listening socket is closed again
