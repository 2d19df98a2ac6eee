"""The name server over real sockets on loopback: its remote API, resolution, discovery, load.

Every name server here binds 127.0.0.1 on port 0; the broadcast responder binds 127.0.0.1 on
a free UDP port and clients are pointed at it with ``BROADCAST_ADDRS = "127.0.0.1"``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from pyro4compat import constants, errors, naming, socketutil
from pyro4compat._client.proxy import Proxy
from pyro4compat._client.resolve import _locateNS, _resolve
from pyro4compat._naming_memory import MemoryStorage
from pyro4compat._server.daemon import Daemon
from pyro4compat._server.exposure import expose
from pyro4compat._uri import URI
from pyro4compat.configuration import config

pytestmark = pytest.mark.timeout(60)

NS_TAG = "class:Pyro4.naming.NameServer"
STORAGES = ["memory", "sql", "dbm"]


@expose
class Greeter:
    def greet(self, name: str) -> str:
        return "hello " + name


@pytest.fixture(params=STORAGES)
def storage(request, tmp_path) -> str:
    if request.param == "memory":
        return "memory"
    return "%s:%s" % (request.param, tmp_path / ("names." + request.param))


@contextlib.contextmanager
def running_ns(serve, storage: str = "memory", hmac: Any = None) -> Iterator[Tuple[URI, naming.NameServerDaemon]]:
    uri, daemon, bcserver = naming.startNS(host="127.0.0.1", port=0, storage=storage, hmac=hmac)
    assert bcserver is None  # bound to loopback: no broadcast responder
    with serve(daemon):
        yield uri, daemon


@pytest.fixture
def ns(servertype, serve, storage) -> Iterator[Tuple[URI, naming.NameServerDaemon]]:
    with running_ns(serve, storage) as started:
        yield started


@pytest.fixture
def ns_memory(servertype, serve) -> Iterator[Tuple[URI, naming.NameServerDaemon]]:
    with running_ns(serve) as started:
        yield started


@pytest.fixture
def greeter_daemon(serve) -> Iterator[Tuple[Daemon, URI]]:
    daemon = Daemon(host="127.0.0.1", port=0)
    uri = daemon.register(Greeter(), "greeter")
    with serve(daemon):
        yield daemon, uri


def nsproxy(uri: URI, hmac_key: Any = None) -> Proxy:
    proxy = Proxy(uri)
    proxy._pyroHmacKey = hmac_key
    return proxy


# --- the remote API ------------------------------------------------------------------------------

def test_registers_itself_with_its_pyro4_class_tag(ns):
    uri, daemon = ns
    with nsproxy(uri) as proxy:
        assert proxy.count() == 1
        assert proxy.lookup(constants.NAMESERVER_NAME) == uri
        assert uri.asString() == "PYRO:Pyro.NameServer@%s" % daemon.locationStr
        expected_tags = [] if daemon.nameserver.storage.__class__.__name__ == "DbmStorage" else [NS_TAG]
        assert proxy.lookup(constants.NAMESERVER_NAME, return_metadata=True) == (uri, expected_tags)
        assert proxy.ping() is None


def test_register_lookup_list_remove(ns):
    uri, daemon = ns
    dbm = type(daemon.nameserver.storage).__name__ == "DbmStorage"
    with nsproxy(uri) as proxy:
        proxy.register("app.one", "PYRO:one@127.0.0.1:5001")
        proxy.register("app.two", URI("PYRO:two@127.0.0.1:5002"))
        proxy.register("other.three", "PYRO:three@127.0.0.1:5003")
        proxy.register("app.one", "PYRO:uno@127.0.0.1:5001")  # not safe: replaces
        assert proxy.count() == 4
        assert proxy.lookup("app.one") == URI("PYRO:uno@127.0.0.1:5001")
        assert isinstance(proxy.lookup("app.two"), URI)
        everything = proxy.list()
        assert everything["app.two"] == "PYRO:two@127.0.0.1:5002"
        assert set(everything) == {constants.NAMESERVER_NAME, "app.one", "app.two", "other.three"}
        assert proxy.list(prefix="app.") == {"app.one": "PYRO:uno@127.0.0.1:5001",
                                             "app.two": "PYRO:two@127.0.0.1:5002"}
        assert set(proxy.list(regex=r"app\.t.*")) == {"app.two"}
        assert set(proxy.list(regex=r"t.*")) == set()  # re.match: anchored at the start
        assert set(proxy.list(regex=r".*t.*")) == {"app.two", "other.three"}
        # Pyro4's DbmStorage anchors at the end as well; the others match a prefix of the name.
        assert set(proxy.list(regex=r"app\.t")) == (set() if dbm else {"app.two"})
        assert proxy.remove("app.one") == 1
        assert proxy.remove("app.one") == 0
        assert proxy.remove(prefix="app.") == 1
        assert proxy.remove(regex="oth.*") == 1
        assert proxy.list() == {constants.NAMESERVER_NAME: uri.asString()}


def test_never_removes_itself(ns):
    uri, _ = ns
    with nsproxy(uri) as proxy:
        proxy.register("Pyro.other", "PYRO:x@127.0.0.1:1")
        assert proxy.remove(constants.NAMESERVER_NAME) == 0
        assert proxy.remove(prefix="Pyro.") == 1
        assert proxy.remove(regex=".*") == 0
        assert proxy.remove() == 0
        assert proxy.count() == 1


METADATA_CASES = [
    # (list keyword arguments, expected names besides the name server's own)
    ({"metadata_all": ["lang:en"]}, {"a", "c"}),
    ({"metadata_all": {"lang:en", "kind:greeter"}}, {"a"}),
    ({"metadata_all": ("nope",)}, set()),
    ({"metadata_any": ["lang:de", "kind:greeter"]}, {"a", "b"}),
    ({"metadata_any": ["nope"]}, set()),
    ({"metadata_all": [NS_TAG]}, {constants.NAMESERVER_NAME}),
]


@pytest.mark.parametrize("storage", ["memory", "sql"], indirect=True)
def test_metadata_queries(ns):
    uri, _ = ns
    with nsproxy(uri) as proxy:
        proxy.register("a", "PYRO:a@127.0.0.1:1", metadata=["lang:en", "kind:greeter"])
        proxy.register("b", "PYRO:b@127.0.0.1:2", metadata={"lang:de"})
        proxy.register("c", "PYRO:c@127.0.0.1:3", metadata=("lang:en",))
        proxy.register("d", "PYRO:d@127.0.0.1:4")
        for query, names in METADATA_CASES:
            assert set(proxy.list(**query)) == names, query
            with_meta = proxy.list(return_metadata=True, **query)
            for name, (found_uri, tags) in with_meta.items():
                assert isinstance(tags, list)
                assert (URI(found_uri), sorted(tags)) == \
                    (proxy.lookup(name), sorted(proxy.lookup(name, return_metadata=True)[1]))
        assert sorted(proxy.lookup("a", return_metadata=True)[1]) == ["kind:greeter", "lang:en"]
        assert proxy.lookup("d", return_metadata=True)[1] == []
        proxy.set_metadata("d", ["new"])
        assert proxy.list(metadata_any=["new"]) == {"d": "PYRO:d@127.0.0.1:4"}
        proxy.set_metadata("d", [])
        assert proxy.lookup("d", return_metadata=True)[1] == []
        everything = proxy.list(return_metadata=True)
        assert sorted(everything["a"][1]) == ["kind:greeter", "lang:en"] and everything["d"][1] == []


def test_dbm_storage_refuses_metadata_searches(servertype, serve, tmp_path, capsys):
    with running_ns(serve, "dbm:%s" % (tmp_path / "db")) as (uri, _):
        assert "Warning: the DbmStorage doesn't support metadata." in capsys.readouterr().out
        with nsproxy(uri) as proxy:
            proxy.register("a", "PYRO:a@127.0.0.1:1", metadata=["x"])
            assert proxy.lookup("a", return_metadata=True)[1] == []
            with pytest.raises(errors.NamingError, match="DbmStorage doesn't support metadata"):
                proxy.list(metadata_all=["x"])


# (method, args, kwargs, exception type, exact message or None to skip the message check)
ERROR_CASES = [
    ("register", ("x", 42), {}, TypeError, "only URIs or strings can be registered"),
    ("register", ("x", "not a uri"), {}, errors.PyroError, "invalid uri"),
    ("register", ("x", "PYROX:x@h:1"), {}, errors.PyroError, "invalid uri (protocol)"),
    ("register", (42, "PYRO:x@h:1"), {}, TypeError, "name must be a str"),
    ("register", ("x", "PYRO:x@h:1"), {"metadata": "tag"}, TypeError,
     "metadata should not be a str, but another iterable (set, list, etc)"),
    ("register", ("x", "PYRO:x@h:1"), {"metadata": 5}, TypeError, "'int' object is not iterable"),
    ("register", ("taken", "PYRO:x@h:1"), {"safe": True}, errors.NamingError, "name already registered: taken"),
    ("lookup", ("missing",), {}, errors.NamingError, "unknown name: missing"),
    ("set_metadata", ("missing", ["a"]), {}, errors.NamingError, "unknown name: missing"),
    ("set_metadata", (42, ["a"]), {}, TypeError, "name must be a str"),
    ("set_metadata", ("taken", "a"), {}, TypeError,
     "metadata should not be a str, but another iterable (set, list, etc)"),
    ("list", (), {"prefix": "a", "regex": "b"}, ValueError, "you can only filter on one thing at a time"),
    ("list", (), {"metadata_all": ["a"], "metadata_any": ["b"]}, ValueError,
     "you can only filter on one thing at a time"),
    ("list", (), {"regex": "(unclosed"}, errors.NamingError, None),
    ("list", (), {"metadata_all": "abc"}, TypeError,
     "metadata_all should not be a str, but another iterable (set, list, etc)"),
    ("list", (), {"metadata_any": "abc"}, TypeError,
     "metadata_any should not be a str, but another iterable (set, list, etc)"),
]


@pytest.mark.parametrize("storage", ["memory", "sql"], indirect=True)
def test_errors_have_pyro4_types_and_texts(ns):
    uri, _ = ns
    with nsproxy(uri) as proxy:
        proxy.register("taken", "PYRO:taken@127.0.0.1:1")
        for method, args, kwargs, exc_type, message in ERROR_CASES:
            with pytest.raises(exc_type) as caught:
                getattr(proxy, method)(*args, **kwargs)
            if message is None:
                assert str(caught.value).startswith("invalid regex: ")
            else:
                assert str(caught.value) == message, (method, args, kwargs)
        assert proxy.count() == 2  # nothing half-done


# --- resolution: PYRONAME / PYROMETA, locateNS, resolve --------------------------------------------

def test_pyroname_and_pyrometa_through_proxies(ns_memory, greeter_daemon):
    nsuri, _ = ns_memory
    _, greeter_uri = greeter_daemon
    location = "%s:%d" % (nsuri.host, nsuri.port)
    with nsproxy(nsuri) as proxy:
        proxy.register("example.greeter", greeter_uri, metadata=["role:greeter", "lang:en"])
    with Proxy("PYRONAME:example.greeter@" + location) as greeter:
        assert greeter.greet("name") == "hello name"
        assert greeter._pyroUri == URI("PYRONAME:example.greeter@" + location)  # a call does not pin it
    with Proxy("PYRONAME:example.greeter@" + location) as greeter:
        greeter._pyroBind()
        assert greeter._pyroUri == greeter_uri  # binding pins the resolved URI
    with Proxy("PYROMETA:role:greeter,lang:en@" + location) as greeter:
        greeter._pyroBind()
        assert greeter._pyroUri == greeter_uri
        assert greeter.greet("meta") == "hello meta"
    assert _resolve("PYRONAME:example.greeter@" + location) == greeter_uri
    assert naming.resolve(URI("PYROMETA:lang:en@" + location)) == greeter_uri
    assert _resolve(greeter_uri) is greeter_uri
    with pytest.raises(errors.NamingError, match="^unknown name: nope$"):
        Proxy("PYRONAME:nope@" + location)._pyroBind()
    with pytest.raises(errors.NamingError, match="no registrations available with desired metadata properties"):
        _resolve("PYROMETA:nope@" + location)


def test_pyroname_without_location_uses_ns_host_and_port(ns_memory, greeter_daemon):
    nsuri, _ = ns_memory
    config.NS_HOST, config.NS_PORT = nsuri.host, nsuri.port
    with nsproxy(nsuri) as proxy:
        proxy.register("plain.greeter", greeter_daemon[1])
    with Proxy("PYRONAME:plain.greeter") as greeter:
        assert greeter.greet("x") == "hello x"


def test_locate_ns_with_host_and_port(ns_memory):
    nsuri, _ = ns_memory
    for locate in (naming.locateNS, _locateNS):
        with locate(nsuri.host, nsuri.port) as proxy:
            assert proxy._pyroUri == nsuri
            assert proxy.count() == 1


def test_locate_ns_failure_is_quick_and_clear():
    config.NS_HOST = "127.0.0.1"
    config.NS_PORT = socketutil.findProbablyUnusedPort()
    config.NS_BCPORT = socketutil.findProbablyUnusedPort(socktype=socket.SOCK_DGRAM)
    config.BROADCAST_ADDRS = "127.0.0.1"
    started = time.monotonic()
    with pytest.raises(errors.NamingError, match="^Failed to locate the nameserver$") as caught:
        naming.locateNS()
    assert time.monotonic() - started < 6.0
    assert caught.value.__cause__ is not None
    with pytest.raises(errors.NamingError, match="^Failed to locate the nameserver$"):
        naming.locateNS("127.0.0.1", config.NS_PORT)


def test_type_meta():
    class Base:
        pass

    class Child(Base):
        pass

    module = __name__
    expected = {"class:%s.Child" % module, "class:%s.Base" % module}
    assert naming.type_meta(Child) == expected
    assert naming.type_meta(Child()) == expected
    assert naming.type_meta(Child, prefix="t:") == {"t:%s.Child" % module, "t:%s.Base" % module}
    assert naming.type_meta(42) == set()  # builtins are left out
    assert naming.type_meta(naming.NameServer) == {"class:pyro4compat.naming.NameServer"}


# --- broadcast discovery (loopback only) ------------------------------------------------------------

@contextlib.contextmanager
def responder(nsuri: Any) -> Iterator[naming.BroadcastServer]:
    bcserver = naming.BroadcastServer(nsuri, bchost="127.0.0.1", bcport=0)
    thread = bcserver.runInThread()
    try:
        yield bcserver
    finally:
        bcserver.close()
        thread.join(5)
        assert not thread.is_alive()


def ask(port: int, payload: bytes = b"GET_NSURI", timeout: float = 2.0) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(payload, ("127.0.0.1", port))
        return sock.recvfrom(100)[0]


def test_broadcast_responder_answers_only_get_nsuri():
    nsuri = URI("PYRO:Pyro.NameServer@127.0.0.1:4444")
    with responder(nsuri) as bcserver:
        assert bcserver.locationStr == "127.0.0.1:%d" % bcserver.getPort()
        assert bcserver.fileno() == bcserver.sock.fileno()
        assert ask(bcserver.getPort()) == b"PYRO:Pyro.NameServer@127.0.0.1:4444"
        with pytest.raises(socket.timeout):
            ask(bcserver.getPort(), b"GET_NSURI please", timeout=0.3)
        assert ask(bcserver.getPort()) == b"PYRO:Pyro.NameServer@127.0.0.1:4444"  # still serving


def test_broadcast_reply_replaces_any_address_by_facing_interface():
    with naming.BroadcastServer("PYRO:Pyro.NameServer@0.0.0.0:4444", bchost="127.0.0.1", bcport=0) as bcserver:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2.0)
            sock.sendto(b"GET_NSURI", ("127.0.0.1", bcserver.getPort()))
            bcserver.processRequest()
            assert sock.recvfrom(100)[0] == b"PYRO:Pyro.NameServer@127.0.0.1:4444"


def test_locate_ns_by_broadcast(ns_memory):
    nsuri, _ = ns_memory
    with responder(nsuri) as bcserver:
        config.NS_HOST = "127.0.0.1"
        config.NS_PORT = socketutil.findProbablyUnusedPort()  # nothing there: the localhost try fails
        config.BROADCAST_ADDRS = "127.0.0.1"
        config.NS_BCPORT = bcserver.getPort()
        with naming.locateNS() as proxy:
            assert proxy._pyroUri == nsuri
            assert proxy.count() == 1
        with naming.locateNS(port=bcserver.getPort()) as proxy:  # without host, port is the broadcast port
            assert proxy._pyroUri == nsuri
        with Proxy("PYRONAME:" + constants.NAMESERVER_NAME) as proxy:
            assert proxy.ping() is None


def test_broadcast_server_combined_into_multiplex_daemon(serve):
    config.SERVERTYPE = "multiplex"
    nsuri, daemon, _ = naming.startNS(host="127.0.0.1", port=0)
    bcserver = naming.BroadcastServer(nsuri, bchost="127.0.0.1", bcport=0)
    try:
        daemon.combine(bcserver)
        with serve(daemon):
            assert ask(bcserver.getPort()).decode("iso-8859-1") == nsuri.asString()
    finally:
        bcserver.close()


# --- HMAC keys ---------------------------------------------------------------------------------------

def test_hmac_key_on_every_path(servertype, serve, greeter_daemon):
    key = b"name server secret"
    with running_ns(serve, hmac=key) as (nsuri, daemon):
        assert daemon._pyroHmacKey == key
        location = "%s:%d" % (nsuri.host, nsuri.port)
        with naming.locateNS(nsuri.host, nsuri.port, hmac_key=key) as proxy:
            proxy.register("secret.greeter", greeter_daemon[1])
        with naming.locateNS(nsuri.host, nsuri.port, hmac_key=key.decode()) as proxy:  # str keys are encoded
            assert proxy.count() == 2
        assert _resolve("PYRONAME:secret.greeter@" + location, hmac_key=key) == greeter_daemon[1]
        with pytest.raises(errors.NamingError, match="Failed to locate the nameserver"):
            naming.locateNS(nsuri.host, nsuri.port)
        with pytest.raises(errors.NamingError, match="Failed to locate the nameserver"):
            naming.locateNS(nsuri.host, nsuri.port, hmac_key=b"wrong")
        with pytest.raises(errors.PyroError):
            _resolve("PYRONAME:secret.greeter@" + location)


# --- the daemon: storages, lifecycle, autoclean --------------------------------------------------------

def test_protocol_errors_are_shown_on_the_name_server_console(serve):
    # Thread server only: the multiplex transport rejects malformed frames itself, before
    # anything reaches the daemon's handleRequest (see the report on that transport).
    config.SERVERTYPE = "thread"
    with running_ns(serve) as (nsuri, _):
        proxy = nsproxy(nsuri)
        proxy._pyroBind()
        sock = proxy._pyroConnection.sock
        with pytest.warns(UserWarning, match="^Pyro protocol error occurred: "):
            sock.sendall(b"PYRO" + bytes(30))  # a header with a wrong protocol version
            sock.settimeout(10)
            assert sock.recv(100) == b""  # the name server dropped the connection after warning
        proxy._pyroRelease()


def test_invalid_storage_specs():
    for spec in ("nosuch", "sql:", "dbm:", "sql", "mem"):
        with pytest.raises(ValueError, match="^invalid storage type '%s'$" % spec):
            naming.NameServerDaemon("127.0.0.1", 0, storage=spec)


def test_daemon_lifecycle(servertype, tmp_path):
    daemon = naming.NameServerDaemon("127.0.0.1", 0, storage="sql:%s" % (tmp_path / "ns.sqlite"))
    assert isinstance(daemon.nameserver, naming.NameServer)
    assert daemon.objectsById[constants.NAMESERVER_NAME] is daemon.nameserver
    with daemon as entered:
        assert entered is daemon
    assert daemon.nameserver is None
    with pytest.raises(errors.PyroError, match="cannot reuse this object"):
        daemon.__enter__()
    daemon.close()  # closing twice is harmless


def test_default_memory_storage_and_reexport():
    assert naming.MemoryStorage is MemoryStorage
    assert isinstance(naming.NameServer().storage, MemoryStorage)


def test_autoclean_period_is_validated():
    config.NS_AUTOCLEAN = 1.0
    with pytest.raises(ValueError, match="^NS_AUTOCLEAN cannot be smaller than 3$"):
        naming.NameServerDaemon("127.0.0.1", 0)


def test_autoclean_thread_starts_and_stops_promptly():
    config.NS_AUTOCLEAN = 3.0
    daemon = naming.NameServerDaemon("127.0.0.1", 0)
    cleaner = daemon.cleaner_thread
    assert isinstance(cleaner, naming.AutoCleaner) and cleaner.is_alive()
    started = time.monotonic()
    daemon.close()
    assert not cleaner.is_alive() and time.monotonic() - started < 1.0
    assert daemon.cleaner_thread is None


def test_autoclean_removes_only_unreachable_registrations(greeter_daemon):
    config.NS_AUTOCLEAN = 3.0
    nameserver = naming.NameServer()
    nameserver.register(constants.NAMESERVER_NAME, "PYRO:Pyro.NameServer@127.0.0.1:1")
    nameserver.register("alive", greeter_daemon[1])
    dead_port = socketutil.findProbablyUnusedPort()
    nameserver.register("dead", "PYRO:dead@127.0.0.1:%d" % dead_port)
    cleaner = naming.AutoCleaner(nameserver)
    cleaner.clean_once()
    assert set(cleaner.unreachable) == {"dead"}  # not yet removed: unreachable for too short a time
    assert nameserver.count() == 3
    cleaner.unreachable["dead"] -= cleaner.max_unreachable_time
    cleaner.clean_once()
    assert set(nameserver.list()) == {constants.NAMESERVER_NAME, "alive"}
    assert cleaner.unreachable == {}


# --- serveSimple(ns=True) -------------------------------------------------------------------------------

class SignallingDaemon(Daemon):
    """Tells the test when serveSimple has registered everything and entered its loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.looping = threading.Event()

    def requestLoop(self, loopCondition: Any = lambda: True) -> None:
        self.looping.set()
        super().requestLoop(loopCondition)


def test_serve_simple_registers_in_the_name_server(ns_memory, capsys):
    nsuri, _ = ns_memory
    config.NS_HOST, config.NS_PORT = nsuri.host, nsuri.port
    daemon = SignallingDaemon(host="127.0.0.1", port=0)
    greeter = Greeter()
    thread = threading.Thread(target=Daemon.serveSimple, args=({greeter: "simple.greeter"},),
                              kwargs={"daemon": daemon}, daemon=True)
    thread.start()
    try:
        assert daemon.looping.wait(10)
        with Proxy("PYRONAME:simple.greeter") as proxy:
            assert proxy.greet("simple") == "hello simple"
        resolved = _resolve("PYRONAME:simple.greeter")
        assert resolved == daemon.uriFor(greeter)
        assert resolved.object.startswith("obj_")  # the name lives in the name server only
    finally:
        daemon.shutdown()
        thread.join(10)
    assert not thread.is_alive()
    out = capsys.readouterr().out
    assert "    name = simple.greeter\nPyro daemon running.\n" in out


# --- load -------------------------------------------------------------------------------------------------

def test_many_concurrent_clients_lose_nothing(ns_memory):
    nsuri, _ = ns_memory
    threads_count, duration = 20, 3.0
    registered: List[List[str]] = [[] for _ in range(threads_count)]
    failures: List[str] = []
    barrier = threading.Barrier(threads_count)
    deadline: Dict[str, float] = {}

    def client(index: int) -> None:
        try:
            with nsproxy(nsuri) as proxy:
                proxy._pyroBind()
                barrier.wait(10)
                end = deadline.setdefault("end", time.monotonic() + duration)
                counter = 0
                while time.monotonic() < end:
                    name = "load.%d.%d" % (index, counter)
                    uri = "PYRO:obj_%d_%d@127.0.0.1:%d" % (index, counter, 1000 + index)
                    proxy.register(name, uri, metadata=["thread:%d" % index])
                    registered[index].append(name)
                    if proxy.lookup(name) != URI(uri):
                        failures.append("lookup mismatch " + name)
                    counter += 1
        except Exception as exc:  # reported below: a thread must not die silently
            failures.append("%d: %r" % (index, exc))

    workers = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(threads_count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(duration + 30)
    assert not any(worker.is_alive() for worker in workers)
    assert failures == []
    total = sum(len(names) for names in registered)
    assert all(names for names in registered)  # every client got answers
    with nsproxy(nsuri) as proxy:
        assert proxy.count() == total + 1
        listed = proxy.list(prefix="load.")
        assert set(listed) == {name for names in registered for name in names}
        for index in range(threads_count):
            assert len(proxy.list(metadata_all=["thread:%d" % index])) == len(registered[index])
    print("load: %d registrations + lookups by %d threads in %.1f s" % (total, threads_count, duration))
