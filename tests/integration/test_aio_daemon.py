"""aio.Daemon: async def methods on the loop, plain ones on workers, and the core daemon's features."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import threading
import time
from typing import Any, List

import pytest

from pyro4compat import aio, core, errors
from pyro4compat.configuration import config

from aio_support import run
from daemons import serving
from hostile_support import RawClient, connect_bytes, header
from remote_helpers import HOST, WAIT, Thing

pytestmark = pytest.mark.timeout(60)


@core.expose
class Service:
    def __init__(self) -> None:
        self.loop_threads: List[str] = []
        self.gate = threading.Event()
        self.oneway_done = threading.Event()

    async def sleepy(self, seconds: float, value: Any) -> Any:
        self.loop_threads.append(threading.current_thread().name)
        await asyncio.sleep(seconds)
        return value

    def blocking(self) -> str:
        self.gate.wait(WAIT)
        return "unblocked"

    async def whoami(self, pause: float) -> Any:
        before = aio.current_context.client_sock_addr
        aio.current_context.response_annotations["WHOM"] = str(before).encode()
        await asyncio.sleep(pause)
        return [list(before), list(aio.current_context.client_sock_addr), aio.current_context.seq]

    async def fails(self) -> None:
        await asyncio.sleep(0)
        raise KeyError("async failure")

    @core.oneway
    async def later(self) -> None:
        await asyncio.sleep(0.01)
        self.oneway_done.set()

    async def countdown(self, count: int) -> Any:
        for n in range(count, 0, -1):
            await asyncio.sleep(0)
            yield n

    def plain_numbers(self, count: int) -> Any:
        return iter(range(count))

    async def stop_daemon(self) -> str:
        self._pyroDaemon.shutdown()
        return "stopping"


def served_service(**kwargs: Any) -> Any:
    daemon = aio.Daemon(host=HOST, **kwargs)
    service = Service()
    daemon.register(service, "service")
    daemon.register(Thing(), "thing")
    return daemon, service


def test_async_methods_overlap_on_the_loop():
    daemon, service = served_service()

    async def main() -> None:
        proxies = [aio.Proxy(daemon.uriFor("service")) for _ in range(10)]
        start = time.monotonic()
        results = await asyncio.gather(*[p.sleepy(0.3, n) for n, p in enumerate(proxies)])
        elapsed = time.monotonic() - start
        assert results == list(range(10))
        assert elapsed < 2.0, "ten 0.3 s async calls on ten connections took %.2f s" % elapsed
        for proxy in proxies:
            proxy._pyroRelease()
    with serving(daemon):
        run(main)
    assert set(service.loop_threads) == {"test-daemon-loop"}


def test_a_blocking_method_does_not_stall_the_loop():
    daemon, service = served_service()

    async def main() -> None:
        async with aio.Proxy(daemon.uriFor("service")) as blocker, aio.Proxy(daemon.uriFor("service")) as other:
            blocked = asyncio.ensure_future(blocker.blocking())
            assert await other.sleepy(0.01, "meanwhile") == "meanwhile"
            assert not blocked.done()
            service.gate.set()
            assert await blocked == "unblocked"
    with serving(daemon):
        run(main)


def test_plain_calls_of_other_clients_go_on_while_plain_calls_block():
    """Plain calls run on few workers; one stuck in a call gets company, so others are served,
    and plain calls that wait for each other (a rendezvous of ten clients) do not deadlock."""
    daemon, service = served_service()

    @core.expose
    class Rendezvous:
        def __init__(self) -> None:
            self.arrived = threading.Barrier(10)

        def meet(self) -> int:
            return self.arrived.wait(WAIT)

    daemon.register(Rendezvous(), "rendezvous")

    async def main() -> None:
        async with aio.Proxy(daemon.uriFor("service")) as blocker, aio.Proxy(daemon.uriFor("thing")) as other:
            blocked = asyncio.ensure_future(blocker.blocking())
            await asyncio.sleep(0.05)
            start = time.monotonic()
            assert await other.echo("meanwhile") == "meanwhile"
            assert time.monotonic() - start < 1.0
            assert not blocked.done()
            service.gate.set()
            assert await blocked == "unblocked"
        proxies = [aio.Proxy(daemon.uriFor("rendezvous")) for _ in range(10)]
        try:
            assert sorted(await asyncio.gather(*[p.meet() for p in proxies])) == list(range(10))
        finally:
            for proxy in proxies:
                await proxy._pyroReleaseAndWait()
    with serving(daemon):
        run(main)


def test_serve_on_the_callers_loop_and_async_with():
    async def main() -> None:
        async with aio.Daemon(host=HOST) as daemon:
            service = Service()
            uri = daemon.register(service, "service")
            assert daemon.uriFor("service") == uri and str(uri).startswith("PYRO:service@")
            server = asyncio.ensure_future(daemon.serve())
            async with aio.Proxy(uri) as proxy:
                assert await proxy.sleepy(0, 5) == 5
                with pytest.raises(KeyError, match="async failure"):
                    await proxy.fails()
                await proxy.later()
                await asyncio.get_running_loop().run_in_executor(None, service.oneway_done.wait, WAIT)
                stream = await proxy.countdown(3)
                assert [n async for n in stream] == [3, 2, 1]
                stream = await proxy.plain_numbers(3)
                assert [n async for n in stream] == [0, 1, 2]
            other = daemon.proxyFor("service")
            assert "sleepy" in other._pyroMethods
            daemon.resetMetadataCache("service")
            daemon.unregister("service")
            with pytest.raises(errors.DaemonError):
                daemon.uriFor(service)
            daemon.shutdown()
            await asyncio.wait_for(server, WAIT)
        assert daemon.transportServer is None
    run(main)


def test_call_context_per_task_and_response_annotations():
    daemon, _ = served_service()

    class Recording(aio.Proxy):
        seen: List[Any] = []

        def _pyroResponseAnnotations(self, annotations: dict, msgtype: int) -> None:
            self.seen.append(annotations.get("WHOM"))

    async def main() -> None:
        proxies = [Recording(daemon.uriFor("service")) for _ in range(3)]
        results = await asyncio.gather(*[p.whoami(0.05) for p in proxies])
        for before, after, seq in results:
            assert before == after and seq > 0
        assert len({tuple(r[0]) for r in results}) == 3
        assert all(who is not None for who in Recording.seen[-3:])
        for proxy in proxies:
            proxy._pyroRelease()
    with serving(daemon):
        run(main)


def test_oneway_async_method_runs():
    daemon, service = served_service()
    with serving(daemon):
        with core.Proxy(daemon.uriFor("service")) as proxy:   # a synchronous proxy, too
            assert proxy.later() is None
            assert service.oneway_done.wait(WAIT)
            assert proxy.sleepy(0, "sync caller") == "sync caller"


def test_instance_modes():
    @core.behavior(instance_mode="single")
    @core.expose
    class Single:
        async def ident(self) -> int:
            return id(self)

    made = itertools.count()

    @core.behavior(instance_mode="session")
    @core.expose
    class Session:
        def __init__(self) -> None:
            self.number = next(made)   # not id(): a dropped session's address may be reused

        def ident(self) -> int:
            return self.number

    @core.behavior(instance_mode="percall")
    @core.expose
    class PerCall:
        async def ident(self) -> int:
            return id(self)

    daemon = aio.Daemon(host=HOST)
    for cls in (Single, Session, PerCall):
        daemon.register(cls, cls.__name__)

    async def idents(name: str) -> List[int]:
        out = []
        for _ in range(2):
            async with aio.Proxy(daemon.uriFor(name)) as proxy:
                out += [await proxy.ident(), await proxy.ident()]
        return out

    async def main() -> None:
        single, session, percall = await idents("Single"), await idents("Session"), await idents("PerCall")
        assert len(set(single)) == 1
        assert session[0] == session[1] and session[2] == session[3] and session[0] != session[2]
        assert len(set(percall)) >= 3
    with serving(daemon):
        run(main)


def test_callback_errors_are_returned():
    @core.expose
    class WithCallback:
        @core.callback
        def cb(self) -> None:
            raise ValueError("from a callback")

    daemon = aio.Daemon(host=HOST)
    daemon.register(WithCallback(), "cb")

    async def main() -> None:
        async with aio.Proxy(daemon.uriFor("cb")) as proxy:
            with pytest.raises(ValueError, match="from a callback"):
                await proxy.cb()
    with serving(daemon):
        run(main)


def test_validate_handshake_and_client_disconnect():
    class Guarded(aio.Daemon):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.gone = threading.Event()
            self.conns: List[Any] = []

        def validateHandshake(self, conn: Any, data: Any) -> Any:
            if data != "let me in":
                raise ValueError("go away")
            self.conns.append(conn)
            return "welcome"

        def clientDisconnect(self, conn: Any) -> None:
            if conn in self.conns:
                self.gone.set()

    daemon = Guarded(host=HOST)
    daemon.register(Thing(), "thing")

    async def main() -> None:
        proxy = aio.Proxy(daemon.uriFor("thing"))
        with pytest.raises(errors.CommunicationError, match="go away"):
            await proxy.echo(1)
        proxy._pyroHandshake = "let me in"
        assert await proxy.echo(2) == 2
        assert daemon.conns[0].peer_address()[0] == "127.0.0.1"
        proxy._pyroRelease()
    with serving(daemon):
        run(main)
        assert daemon.gone.wait(WAIT)


def test_commtimeout_closes_stalled_connections():
    config.COMMTIMEOUT = 0.3
    daemon, _ = served_service()
    with serving(daemon):
        port = daemon.sock.getsockname()[1]
        with RawClient(port) as silent:               # never says anything: CONNECTFAIL, then closed
            reply = silent.reply()
            assert reply.type == 3 and b"timeout" in reply.data
        with RawClient(port) as partial:               # stops mid-header after its handshake
            partial.handshake()
            partial.send(header()[:10])
            partial.sock.settimeout(WAIT)
            assert partial.sock.recv(100) == b""
        with core.Proxy(daemon.uriFor("thing")) as proxy:  # idle between calls: kept, as in Pyro4
            assert proxy.echo(1) == 1
            time.sleep(0.5)
            assert proxy.echo(2) == 2


def test_shutdown_from_a_remote_async_call_still_answers_it():
    daemon, _ = served_service()
    thread = threading.Thread(target=daemon.requestLoop)
    thread.start()

    async def main() -> None:
        async with aio.Proxy(daemon.uriFor("service")) as proxy:
            assert await proxy.stop_daemon() == "stopping"
    run(main)
    thread.join(WAIT)
    assert not thread.is_alive()
    with pytest.raises(errors.PyroError):
        run(daemon.serve)


def test_shutdown_from_a_remote_sync_call():
    daemon, _ = served_service()
    thread = threading.Thread(target=daemon.requestLoop)
    thread.start()
    with core.Proxy(daemon.uriFor("thing")) as proxy:
        assert proxy.shutdown_daemon() == "bye"
    thread.join(WAIT)
    assert not thread.is_alive()


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets")
def test_unix_socket(tmp_path):
    path = str(tmp_path / "aio.sock")
    daemon = aio.Daemon(unixsocket=path)
    daemon.register(Thing(), "thing")

    async def main() -> None:
        async with aio.Proxy(daemon.uriFor("thing")) as proxy:
            assert await proxy.echo("unix") == "unix"
    with serving(daemon):
        run(main)
    assert not os.path.exists(path)


def test_name_server_on_the_loop():
    async def main() -> None:
        ns_uri, ns_daemon = aio.startNS(host=HOST, port=0)
        daemon = aio.Daemon(host=HOST)
        uri = daemon.register(Service(), "service")
        servers = [asyncio.ensure_future(ns_daemon.serve()), asyncio.ensure_future(daemon.serve())]
        host, port = ns_daemon.locationStr.rsplit(":", 1)
        async with await aio.locateNS(host, int(port)) as ns:
            await ns.register("example.service", uri)
            assert await ns.lookup("example.service") == uri
        async with aio.Proxy("PYRONAME:example.service@%s" % ns_daemon.locationStr) as proxy:
            assert await proxy.sleepy(0, "via the name server") == "via the name server"
        ns_daemon.shutdown()
        daemon.shutdown()
        await asyncio.wait_for(asyncio.gather(*servers), WAIT)
        assert ns_uri.object == "Pyro.NameServer"
    run(main)


def test_stream_lifetime_and_linger():
    config.ITER_STREAM_LIFETIME = 0.2
    config.POLLTIMEOUT = 0.05
    daemon, _ = served_service()

    async def main() -> None:
        async with aio.Proxy(daemon.uriFor("service")) as proxy:
            stream = await proxy.plain_numbers(10)
            assert await stream.__anext__() == 0
            for _ in range(200):
                if not daemon.streaming_responses:
                    break
                await asyncio.sleep(0.02)
            with pytest.raises(errors.PyroError, match="item stream terminated"):
                await stream.__anext__()
    with serving(daemon):
        run(main)


def test_async_method_while_not_served_is_an_error():
    daemon, _ = served_service()
    with pytest.raises(errors.DaemonError):
        daemon._pyroRunAsync(Service().sleepy)
    daemon.close()


def test_raw_bytes_after_handshake_pipelined():
    """Two requests written back to back on one connection are answered in order."""
    daemon, _ = served_service()
    with serving(daemon):
        port = daemon.sock.getsockname()[1]
        from hostile_support import invoke_bytes
        with RawClient(port) as client:
            client.handshake()
            client.send(invoke_bytes("thing", "echo", [1], seq=1) + invoke_bytes("service", "sleepy", [0.05, 2], seq=2)
                        + invoke_bytes("thing", "echo", [3], seq=3))
            assert [client.reply().seq for _ in range(3)] == [1, 2, 3]
    assert connect_bytes()


def test_handle_request_override_is_honoured():
    """As on the thread server: a subclass's handleRequest sees every request (auth, logging)."""
    class Auditing(aio.Daemon):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.audited: List[Any] = []

        def handleRequest(self, conn: Any) -> None:
            self.audited.append(conn)
            super().handleRequest(conn)

    daemon = Auditing(host=HOST)
    daemon.register(Service(), "service")

    async def main() -> None:
        async with aio.Proxy(daemon.uriFor("service")) as proxy:
            assert await asyncio.gather(*[proxy.sleepy(0, n) for n in range(5)]) == list(range(5))
            assert await proxy.plain_numbers(2) is not None
    with serving(daemon):
        run(main)
    assert len(daemon.audited) == 6 and all(conn is daemon.audited[0] for conn in daemon.audited)


def test_pipelined_replies_stay_in_order_whoever_writes_them():
    """A worker writes a reply to a plain socket itself when nothing else of that connection is
    waiting to be written; the loop writes the rest. Many tasks on one proxy pipeline their calls
    on one connection, and large replies that don't go out in one write are among them: every
    reply must still come in its request's order (the proxy checks each sequence number)."""
    daemon, _ = served_service()
    big = "x" * (3 << 20)   # more than a socket takes at once: the rest goes through the loop

    async def caller(proxy: Any, task: int) -> None:
        for n in range(40):
            if n % 10 == task % 10:
                assert await proxy.echo(big) == big
            else:
                assert await proxy.add(task, n) == task + n

    async def main() -> None:
        async with aio.Proxy(daemon.uriFor("thing")) as proxy:
            await asyncio.gather(*[caller(proxy, task) for task in range(30)])
            assert await proxy.add(1, 2) == 3

    with serving(daemon):
        run(main)


def test_workers_write_plain_replies_themselves_and_leave_tls_to_the_loop():
    from pyro4compat.aio import _connection

    daemon, _ = served_service()

    async def main() -> None:
        async with aio.Proxy(daemon.uriFor("thing")) as proxy:
            assert await proxy.add(2, 3) == 5
            connections = list(daemon.transportServer.connections)
            assert len(connections) == 1
            assert (connections[0].direct_fd >= 0) == _connection._DIRECT_WRITES
            for n in range(20):   # one caller at a time: the replies the workers write
                assert await proxy.echo(n) == n
    with serving(daemon):
        run(main)
