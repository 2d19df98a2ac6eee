"""Daemon behaviour on loopback, on both server types: registry, URIs, lifecycle, hooks, sockets.

The thread pool tests read the transport's theory of operation: a connection holds a worker
only while it has work, and a *new* connection is refused with Pyro4's "no free workers" text
only when every worker is busy and ``NEW_CONNECTION_BACKLOG`` jobs already wait.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from typing import Any, List

import pytest

from pyro4compat import constants, core, errors
from pyro4compat.configuration import config
from pyro4compat.socketserver import threadpoolserver

from remote_helpers import HOST, WAIT, Recorder, Thing, make_daemon, served, wait_until

pytestmark = pytest.mark.timeout(30)


# --- registration -------------------------------------------------------------------------------

@core.expose
class Plain:
    def method(self) -> str:
        return "plain"


def test_register_objects_and_ids(servertype):
    with make_daemon() as daemon:
        obj = Plain()
        uri = daemon.register(obj)
        assert uri.object.startswith("obj_") and len(uri.object) == 36
        assert uri.location == daemon.locationStr
        assert obj._pyroId == uri.object and obj._pyroDaemon is daemon
        assert daemon.objectsById[uri.object] is obj
        named = daemon.register(Plain(), "named")
        assert str(named) == "PYRO:named@" + daemon.locationStr
        assert sorted(daemon.objectsById) == sorted([constants.DAEMON_NAME, uri.object, "named"])


REGISTER_ERRORS = [
    ("same object twice", lambda d, o: d.register(o, "other"), errors.DaemonError,
     "object or class already has a Pyro id"),
    ("id taken", lambda d, o: d.register(Plain(), "taken"), errors.DaemonError,
     "an object or class is already registered with that id"),
    ("id not a string", lambda d, o: d.register(Plain(), 42), TypeError, "objectId must be a string or None"),
    ("unregister None", lambda d, o: d.unregister(None), ValueError, "object or objectid argument expected"),
    ("unregister stranger", lambda d, o: d.unregister(Plain()), errors.DaemonError, "object isn't registered"),
    ("uriFor stranger", lambda d, o: d.uriFor(Plain()), errors.DaemonError,
     "object isn't registered in this daemon"),
    ("proxyFor unknown id", lambda d, o: d.proxyFor("nope"), errors.DaemonError,
     "object isn't registered in this daemon"),
]


@pytest.mark.parametrize("what,action,exc_type,text", REGISTER_ERRORS, ids=[c[0] for c in REGISTER_ERRORS])
def test_registration_errors(servertype, what, action, exc_type, text):
    with make_daemon() as daemon:
        obj = Plain()
        daemon.register(obj, "taken")
        with pytest.raises(exc_type) as info:
            action(daemon, obj)
        assert str(info.value) == text


def test_register_force_and_unregister(servertype):
    with make_daemon() as daemon:
        first, second = Plain(), Plain()
        daemon.register(first, "x")
        daemon.register(second, "x", force=True)  # replaces the id's owner
        assert daemon.objectsById["x"] is second
        daemon.register(first, "y", force=True)  # re-registers an object that has an id
        assert first._pyroId == "y"
        daemon.unregister("x")
        assert "x" not in daemon.objectsById
        daemon.unregister(first)
        assert "y" not in daemon.objectsById
        assert not hasattr(first, "_pyroId") and not hasattr(first, "_pyroDaemon")
        daemon.unregister("never-there")  # unknown ids are ignored
        daemon.unregister(constants.DAEMON_NAME)  # the daemon object stays
        assert constants.DAEMON_NAME in daemon.objectsById


def test_register_class_gets_session_instancing(servertype):
    class Fresh:
        pass

    with make_daemon() as daemon:
        daemon.register(Fresh, "fresh")
        assert Fresh._pyroInstancing == ("session", None)
        assert Fresh._pyroId == "fresh"


def test_calls_to_an_unregistered_object(servertype, serve):
    with served(serve) as (daemon, uri, thing):
        with core.Proxy(uri) as proxy:
            assert proxy.echo(1) == 1
            daemon.unregister(thing)
            with pytest.raises(errors.DaemonError) as info:
                proxy.echo(2)
            assert str(info.value) == "unknown object"
        with pytest.raises(errors.CommunicationError) as info:
            core.Proxy(uri)._pyroBind()
        assert str(info.value) == "connection to ('%s', %d) rejected: unknown object" % (HOST, uri.port)


# --- URIs, proxies, metadata cache ----------------------------------------------------------------

def test_uri_for_ids_objects_and_nat(servertype):
    with make_daemon(nathost="nat.example", natport=0) as daemon:
        port = int(daemon.locationStr.rsplit(":", 1)[1])
        assert daemon.locationStr == "%s:%d" % (HOST, port)
        assert daemon.natLocationStr == "nat.example:%d" % port  # natport 0 mirrors the real port
        obj = Plain()
        daemon.register(obj, "thing")
        assert str(daemon.uriFor("thing")) == "PYRO:thing@nat.example:%d" % port
        assert str(daemon.uriFor(obj, nat=False)) == "PYRO:thing@%s:%d" % (HOST, port)
        assert str(daemon.uriFor("not-registered")) == "PYRO:not-registered@nat.example:%d" % port
        assert daemon.proxyFor(obj)._pyroUri == daemon.uriFor(obj)
        assert daemon.proxyFor(obj, nat=False)._pyroUri == daemon.uriFor(obj, nat=False)
    with make_daemon(nathost="nat.example", natport=5555) as daemon:
        assert daemon.natLocationStr == "nat.example:5555"
    with make_daemon() as daemon:
        assert daemon.natLocationStr is None


def test_nat_from_config(servertype):
    config.NATHOST = "cfg.example"
    config.NATPORT = 4444
    with make_daemon() as daemon:
        assert daemon.natLocationStr == "cfg.example:4444"


@pytest.mark.parametrize("kwargs,text", [
    (dict(nathost="nat.example", natport=None), None),  # config.NATPORT (0) applies: mirrored
    (dict(natport=1234), "must provide natport with nathost"),
    (dict(unixsocket="\0pyro4compat-nat-%s" % uuid.uuid4().hex, nathost="x", natport=1),
     "cannot use nathost together with unixsocket"),
])
def test_nat_argument_rules(servertype, kwargs, text):
    if text is None:
        with make_daemon(**kwargs) as daemon:
            assert daemon.natLocationStr == "nat.example:" + daemon.locationStr.rsplit(":", 1)[1]
    else:
        with pytest.raises(ValueError) as info:
            make_daemon(**kwargs)
        assert str(info.value) == text


def test_nat_uri_reaches_the_daemon_through_its_real_address(servertype, serve):
    daemon = make_daemon(nathost="localhost", natport=0)
    with served(serve, daemon=daemon) as (daemon, uri, _):
        assert uri.host == "localhost"
        with core.Proxy(uri) as proxy:
            assert proxy.echo("nat") == "nat"


def test_proxy_for_has_metadata_without_connecting(servertype, serve):
    with served(serve) as (daemon, uri, thing):
        proxy = daemon.proxyFor(thing)
        assert proxy._pyroConnection is None
        assert "echo" in proxy._pyroMethods and proxy._pyroAttrs == {"value", "readonly"}
        assert proxy._pyroOneway == {"fire", "fire_and_block"}
        assert proxy.echo(1) == 1
        proxy._pyroRelease()


def test_reset_metadata_cache(servertype, serve):
    class Growing:
        @core.expose
        def first(self) -> int:
            return 1

    with served(serve, obj=Growing()) as (daemon, uri, obj):
        with core.Proxy(uri) as proxy:
            proxy._pyroBind()
            assert proxy._pyroMethods == {"first"}

        def second(self: Any) -> int:
            return 2

        Growing.second = core.expose(second)
        with core.Proxy(uri) as proxy:
            proxy._pyroBind()
            assert proxy._pyroMethods == {"first"}  # cached
        daemon.resetMetadataCache(obj)
        with core.Proxy(uri) as proxy:
            proxy._pyroBind()
            assert proxy._pyroMethods == {"first", "second"}
            assert proxy.second() == 2
        daemon.resetMetadataCache("unknown-id")  # nothing to reset: no error


# --- the daemon object ----------------------------------------------------------------------------

def test_daemon_object(servertype, serve):
    with served(serve) as (daemon, uri, _):
        with core.Proxy("PYRO:%s@%s" % (constants.DAEMON_NAME, daemon.locationStr)) as proxy:
            assert proxy.ping() is None
            assert sorted(proxy.registered()) == sorted([constants.DAEMON_NAME, "thing"])
            info = proxy.info()
            transport = "SocketServer_Threadpool" if servertype == "thread" else "SocketServer_Multiplex"
            expected_prefix = "Pyro.Daemon bound on %s, NAT None, 2 objects registered. Servertype: <%s on %s; " % (
                daemon.locationStr, transport, daemon.locationStr)
            assert info.startswith(expected_prefix)
            workers = config.THREADPOOL_SIZE_MIN
            assert info[len(expected_prefix):] == ("%d workers>" % workers if servertype == "thread"
                                                   else "1 connections>")
            metadata = proxy.get_metadata("thing")
            assert metadata["attrs"] == {"value", "readonly"} or sorted(metadata["attrs"]) == ["readonly", "value"]
            as_lists = proxy.get_metadata("thing", as_lists=True)
            assert isinstance(as_lists["methods"], list) and "echo" in as_lists["methods"]
            with pytest.raises(errors.DaemonError) as info_exc:
                proxy.get_metadata("nope")
            assert str(info_exc.value) == "unknown object"
            assert proxy._pyroMethods >= {"ping", "info", "registered", "get_metadata", "get_next_stream_item",
                                          "close_stream"}


def test_custom_daemon_interface(servertype, serve):
    class Interface(core.DaemonObject):
        @core.expose
        def extra(self) -> str:
            return "extra from %s" % self.daemon.locationStr

    with served(serve, daemon=make_daemon(interface=Interface)) as (daemon, uri, _):
        with core.Proxy("PYRO:Pyro.Daemon@" + daemon.locationStr) as proxy:
            assert proxy.extra() == "extra from " + daemon.locationStr
            assert proxy.ping() is None


# --- lifecycle ----------------------------------------------------------------------------------------

def test_shutdown_from_another_thread(servertype):
    daemon = make_daemon()
    loop = threading.Thread(target=daemon.requestLoop, daemon=True)
    loop.start()
    with core.Proxy("PYRO:Pyro.Daemon@" + daemon.locationStr) as proxy:
        proxy.ping()  # the loop is running
    stopper = threading.Thread(target=daemon.shutdown)
    stopper.start()
    stopper.join(WAIT)
    loop.join(WAIT)
    assert not loop.is_alive() and not stopper.is_alive()
    assert daemon.transportServer is None


def test_shutdown_from_inside_a_call(servertype):
    daemon = make_daemon()
    daemon.register(Thing(), "thing")
    loop = threading.Thread(target=daemon.requestLoop, daemon=True)
    loop.start()
    proxy = core.Proxy(daemon.uriFor("thing"))
    assert proxy.shutdown_daemon() == "bye"  # the reply still arrives
    loop.join(WAIT)
    assert not loop.is_alive()
    proxy._pyroRelease()
    with pytest.raises(errors.CommunicationError):
        proxy.echo(1)


def test_request_loop_condition(servertype):
    daemon = make_daemon()
    daemon.register(Thing(), "thing")
    keep_going = threading.Event()
    keep_going.set()
    config.POLLTIMEOUT = 0.05  # how often the condition is looked at
    loop = threading.Thread(target=daemon.requestLoop, args=(keep_going.is_set,), daemon=True)
    loop.start()
    with core.Proxy(daemon.uriFor("thing")) as proxy:
        assert proxy.echo(1) == 1
    keep_going.clear()
    loop.join(WAIT)
    assert not loop.is_alive()
    daemon.close()


def test_close_and_context_manager(servertype):
    with make_daemon() as daemon:
        sock = daemon.sock
        assert sock.fileno() != -1
        assert daemon.sockets
    assert sock.fileno() == -1
    assert daemon.transportServer is None
    assert repr(daemon).endswith("; unusable>")
    with pytest.raises(errors.PyroError) as info:
        with daemon:
            pass
    assert str(info.value) == "cannot reuse this object"
    daemon.close()  # closing twice is harmless


def test_invalid_servertype():
    config.SERVERTYPE = "nonsense"
    with pytest.raises(errors.PyroError) as info:
        core.Daemon(host=HOST)
    assert str(info.value) == "invalid server type 'nonsense'"


def test_repr_and_selector(servertype):
    with make_daemon() as daemon:
        assert repr(daemon).endswith("; %s - IPv4; 1 objects>" % daemon.locationStr)
        if servertype == "thread":
            with pytest.raises(TypeError) as info:
                daemon.selector
            assert str(info.value) == "threadpool server doesn't have multiplexing selector"
        else:
            assert daemon.sock in [key.fileobj for key in daemon.selector.get_map().values()]


def test_serve_simple_without_name_server(servertype, capsys):
    daemon = make_daemon()
    obj = Plain()

    class Named:
        pass

    def call_then_stop() -> None:
        with core.Proxy("PYRO:plain@" + daemon.locationStr) as proxy:
            assert proxy.method() == "plain"  # answered: the loop runs
        daemon.shutdown()

    stopper = threading.Thread(target=call_then_stop)
    stopper.start()
    core.Daemon.serveSimple({obj: "plain", Named: None}, daemon=daemon, ns=False)
    stopper.join(WAIT)
    assert not stopper.is_alive()
    out = capsys.readouterr().out
    location = daemon.locationStr
    expected = ("Object {0!r}:\n    uri = PYRO:plain@{1}\n"
                "Object {2!r}:\n    uri = PYRO:{3}@{1}\n"
                "Pyro daemon running.\n").format(obj, location, Named, Named._pyroId)
    assert out == expected


def test_serve_simple_quiet(servertype, capsys):
    daemon = make_daemon()
    stopper = threading.Thread(target=lambda: (core.Proxy("PYRO:Pyro.Daemon@" + daemon.locationStr).ping(),
                                               daemon.shutdown()))
    stopper.start()
    core.Daemon.serveSimple({Plain(): "p"}, daemon=daemon, ns=False, verbose=False)
    stopper.join(WAIT)
    assert capsys.readouterr().out == ""


# --- hooks -------------------------------------------------------------------------------------------

class HookDaemon(core.Daemon):
    def __init__(self, **kwargs: Any) -> None:
        self.handshakes = Recorder()
        self.disconnects = Recorder()
        self.housekeepings = Recorder()
        super().__init__(**kwargs)

    def validateHandshake(self, conn: Any, data: Any) -> Any:
        self.handshakes.add((conn, data))
        return super().validateHandshake(conn, data)

    def clientDisconnect(self, conn: Any) -> None:
        self.disconnects.add(conn)

    def housekeeping(self) -> None:
        self.housekeepings.add(threading.current_thread().name)


def test_client_disconnect_gets_the_handshake_connection(servertype, serve):
    with served(serve, daemon=HookDaemon(host=HOST)) as (daemon, uri, _):
        for _ in range(3):
            with core.Proxy(uri) as proxy:
                proxy.echo(1)
        assert daemon.disconnects.wait_count(3)
        # (the order may differ: one client's goodbye can be handled after the next one's hello)
        assert {id(c) for c, _ in daemon.handshakes.items} == {id(c) for c in daemon.disconnects.items}
        assert [d for _, d in daemon.handshakes.items] == ["hello"] * 3


def test_client_disconnect_failure_is_contained(servertype, serve):
    class Failing(HookDaemon):
        def clientDisconnect(self, conn: Any) -> None:
            self.disconnects.add(conn)
            raise RuntimeError("hook broke")

    with served(serve, daemon=Failing(host=HOST)) as (daemon, uri, _):
        for n in range(2):
            with core.Proxy(uri) as proxy:
                assert proxy.echo(n) == n
        assert daemon.disconnects.wait_count(2)
        with core.Proxy(uri) as proxy:
            assert proxy.echo("still serving") == "still serving"


def test_housekeeping_runs_periodically(servertype, serve):
    config.POLLTIMEOUT = 0.02  # housekeeping every min(POLLTIMEOUT, max(COMMTIMEOUT, 5)) seconds
    with served(serve, daemon=HookDaemon(host=HOST)) as (daemon, uri, _):
        assert daemon.housekeepings.wait_count(3)


# --- Unix domain sockets ------------------------------------------------------------------------------

def test_unix_socket_file(servertype, serve, tmp_path):
    path = str(tmp_path / "pyro.sock")
    daemon = core.Daemon(unixsocket=path)
    assert daemon.locationStr == "./u:" + path
    assert daemon.sock.family == socket.AF_UNIX
    with served(serve, daemon=daemon) as (daemon, uri, _):
        assert str(uri) == "PYRO:thing@./u:" + path
        with core.Proxy(uri) as proxy:
            assert proxy.echo("unix") == "unix"
            assert repr(proxy).endswith("; connected Unix; for %s>" % uri)
            assert proxy.context()["addr"] == ""  # unix peers have no address
        assert os.path.exists(path)
    assert not os.path.exists(path)  # removed when the daemon closes


def test_unix_socket_abstract_namespace(servertype, serve):
    name = "\0pyro4compat-test-%s" % uuid.uuid4().hex
    daemon = core.Daemon(unixsocket=name)
    assert daemon.locationStr == "./u:" + name
    with served(serve, daemon=daemon) as (daemon, uri, _):
        assert uri.sockname == name
        with core.Proxy(uri) as proxy:
            assert proxy.echo("abstract") == "abstract"


def test_ipv6_location(servertype):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        daemon = core.Daemon(host="::1")
    except errors.CommunicationError:
        pytest.skip("no IPv6 loopback")
    with daemon:
        assert daemon.locationStr.startswith("[::1]:")
        assert str(daemon.uriFor("x")).startswith("PYRO:x@[::1]:")


# --- the thread pool -----------------------------------------------------------------------------------

class Gate:
    """Blocks calls until opened; counts how many are inside."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.inside = 0
        self.open = False

    @core.expose
    def wait(self) -> str:
        with self.cond:
            self.inside += 1
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.open, WAIT)
            self.inside -= 1
        return "through"

    @core.expose
    def quick(self) -> str:
        return "quick"

    def wait_inside(self, count: int) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.inside >= count, WAIT)

    def release(self) -> None:
        with self.cond:
            self.open = True
            self.cond.notify_all()


def _call_in_threads(uri: Any, count: int, results: List[Any]) -> List[threading.Thread]:
    def call() -> None:
        with core.Proxy(uri) as proxy:
            try:
                results.append(proxy.wait())
            except Exception as exc:  # the test inspects it
                results.append(exc)

    threads = [threading.Thread(target=call, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads


def test_thread_pool_grows_and_shrinks(serve):
    config.SERVERTYPE = "thread"
    config.THREADPOOL_SIZE_MIN = 1
    config.THREADPOOL_SIZE = 4
    gate = Gate()
    with served(serve, obj=gate) as (daemon, uri, _):
        pool = daemon.transportServer.pool
        assert wait_until(lambda: pool.num_workers() == 1)
        results: List[Any] = []
        threads = _call_in_threads(uri, 4, results)
        try:
            assert gate.wait_inside(4)  # four calls at once: the pool grew to its maximum
            assert pool.num_workers() == 4
        finally:
            gate.release()
        for thread in threads:
            thread.join(WAIT)
        assert results == ["through"] * 4
        assert wait_until(lambda: pool.num_workers() == 1)  # idle workers above the minimum leave


def test_thread_pool_no_free_workers(serve, monkeypatch):
    config.SERVERTYPE = "thread"
    config.THREADPOOL_SIZE_MIN = 1
    config.THREADPOOL_SIZE = 2
    monkeypatch.setattr(threadpoolserver, "NEW_CONNECTION_BACKLOG", 0)  # refuse as soon as all are busy
    gate = Gate()
    with served(serve, obj=gate, daemon=HookDaemon(host=HOST)) as (daemon, uri, _):
        results: List[Any] = []
        threads = _call_in_threads(uri, 2, results)
        try:
            assert gate.wait_inside(2)
            with pytest.raises(errors.CommunicationError) as info:
                core.Proxy(uri)._pyroBind()
            assert str(info.value) == ("connection to ('%s', %d) rejected: no free workers, increase server "
                                       "threadpool size" % (HOST, uri.port))
        finally:
            gate.release()
        for thread in threads:
            thread.join(WAIT)
        assert results == ["through"] * 2
        pool = daemon.transportServer.pool
        # the callers' connections are gone (workers handled their EOF) and no worker is busy any more
        assert daemon.disconnects.wait_count(2)
        assert wait_until(lambda: not pool.busy and not pool.waiting)
        with core.Proxy(uri) as proxy:
            assert proxy.quick() == "quick"  # workers are free again: accepted


def test_thread_pool_queues_requests_of_connected_clients(serve):
    """Unlike Pyro4, idle connections hold no worker: more clients than workers are all served."""
    config.SERVERTYPE = "thread"
    config.THREADPOOL_SIZE_MIN = 1
    config.THREADPOOL_SIZE = 1
    gate = Gate()
    with served(serve, obj=gate) as (daemon, uri, _):
        proxies = [core.Proxy(uri) for _ in range(3)]
        for proxy in proxies:
            assert proxy.quick() == "quick"  # three connections, one worker
        results: List[Any] = []
        threads = [threading.Thread(target=lambda p=p: results.append(p.wait()), daemon=True) for p in proxies[:2]]
        for thread in threads:
            thread.start()
        try:
            assert gate.wait_inside(1)
        finally:
            gate.release()
        for thread in threads:
            thread.join(WAIT)
        assert results == ["through", "through"]
        for proxy in proxies:
            proxy._pyroRelease()


def test_multiplex_serves_calls_one_at_a_time(serve):
    config.SERVERTYPE = "multiplex"
    gate = Gate()
    with served(serve, obj=gate) as (daemon, uri, _):
        results: List[Any] = []
        threads = _call_in_threads(uri, 2, results)
        try:
            assert gate.wait_inside(1)
            with gate.cond:
                assert not gate.cond.wait_for(lambda: gate.inside > 1, 0.2)  # the loop is busy
        finally:
            gate.release()
        for thread in threads:
            thread.join(WAIT)
        assert results == ["through"] * 2


def test_thread_server_closes_connections_idle_past_commtimeout(serve):
    """As a Pyro4 worker's recv would time out; the proxy's next call then reconnects (retry)."""
    config.SERVERTYPE = "thread"
    config.COMMTIMEOUT = 0.1
    config.MAX_RETRIES = 1
    with served(serve, daemon=HookDaemon(host=HOST)) as (daemon, uri, _):
        proxy = core.Proxy(uri)
        proxy._pyroTimeout = None
        assert proxy.echo(1) == 1
        assert daemon.disconnects.wait_count(1)
        assert proxy.echo(2) == 2
        proxy._pyroRelease()


def test_existing_connection_daemon_ends_when_the_peer_goes():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        daemon = HookDaemon(connected_socket=theirs)
        daemon.register(Thing(), "thing")
        loop = threading.Thread(target=daemon.requestLoop, daemon=True)
        loop.start()
        proxy = core.Proxy("thing", connected_socket=ours)
        assert proxy.echo("x") == "x"
        ours.shutdown(socket.SHUT_RDWR)
        loop.join(WAIT)
        assert not loop.is_alive()
        assert daemon.disconnects.wait_count(1) and len(daemon.disconnects.items) == 1
        assert theirs.fileno() != -1  # the user's socket: never closed by Pyro
