"""Proxy behaviour against a live daemon on loopback, on both server types.

Covers connecting (lazy, bind, release, reconnect, context manager), metadata, remote
attributes, timeouts, retries, per-proxy serializer/HMAC/handshake settings, annotations,
sequence numbers, thread sharing, copying and pickling, and connected-socket proxies.
"""

from __future__ import annotations

import contextlib
import copy
import pickle
import re
import socket
import threading
from typing import Any, Dict, List

import pytest

from pyro4compat import core, errors, naming
from pyro4compat._client import proxy as proxy_module
from pyro4compat._context import current_context
from pyro4compat._serializers import _serializers, get_serializer
from pyro4compat.configuration import config
from pyro4compat.message import MSG_CONNECT, MSG_CONNECTOK, MSG_INVOKE, MSG_RESULT, Message

from remote_helpers import HOST, WAIT, Recorder, Thing, make_daemon, refused_port, served

pytestmark = pytest.mark.timeout(30)


# --- connecting ---------------------------------------------------------------------------------

def test_lazy_connect_and_repr(servertype, serve):
    with served(serve) as (daemon, uri, _):
        proxy = core.Proxy(uri)
        assert proxy._pyroConnection is None
        assert re.fullmatch(r"<Pyro4\.core\.Proxy at 0x[0-9a-f]+; not connected; for %s>" % re.escape(str(uri)),
                            repr(proxy))
        assert proxy.echo(5) == 5
        assert proxy._pyroConnection is not None
        assert re.fullmatch(r"<Pyro4\.core\.Proxy at 0x[0-9a-f]+; connected IPv4; for %s>" % re.escape(str(uri)),
                            repr(proxy))
        proxy._pyroRelease()


def test_construction_never_connects():
    port = refused_port()
    proxy = core.Proxy("PYRO:thing@%s:%d" % (HOST, port))  # nothing listens: still fine
    with pytest.raises(errors.CommunicationError) as info:
        proxy.echo(1)
    assert str(info.value) == "cannot connect to ('%s', %d): [Errno 111] Connection refused" % (HOST, port)
    assert proxy._pyroConnection is None


def test_bind_connects_once(servertype, serve):
    with served(serve) as (daemon, uri, _):
        with core.Proxy(uri) as proxy:
            assert proxy._pyroBind() is True
            conn = proxy._pyroConnection
            assert conn is not None
            assert proxy._pyroBind() is False
            assert proxy._pyroConnection is conn
            assert proxy._pyroMethods >= {"echo", "add"}


def test_bind_pins_a_pyroname_uri(servertype, serve):
    nsuri, nsdaemon, bcserver = naming.startNS(host=HOST, port=0, enableBroadcast=False)
    assert bcserver is None
    with serve(nsdaemon), served(serve) as (daemon, uri, _):
        with core.Proxy(nsuri) as ns:
            ns.register("test.thing", uri)
        name_uri = "PYRONAME:test.thing@%s:%d" % (HOST, nsuri.port)
        with core.Proxy(name_uri) as proxy:
            assert proxy._pyroBind() is True
            assert proxy._pyroUri == uri  # pinned: no name server lookup on reconnect
            assert proxy.echo("x") == "x"
        with core.Proxy(name_uri) as unpinned:
            assert unpinned.echo("y") == "y"
            assert str(unpinned._pyroUri) == name_uri  # a plain call resolves but does not pin


class DisconnectDaemon(core.Daemon):
    def __init__(self, recorder: Recorder, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.recorder = recorder

    def clientDisconnect(self, conn: Any) -> None:
        self.recorder.add(conn)


def test_release_closes_and_next_call_reconnects(servertype, serve):
    gone = Recorder()
    with served(serve, daemon=DisconnectDaemon(gone, host=HOST)) as (daemon, uri, _):
        proxy = core.Proxy(uri)
        assert proxy.echo(1) == 1
        first = proxy._pyroConnection
        proxy._pyroRelease()
        assert proxy._pyroConnection is None
        assert first.sock.fileno() == -1
        assert gone.wait_count(1)
        proxy._pyroRelease()  # releasing twice is harmless
        assert proxy.echo(2) == 2
        assert proxy._pyroConnection is not None and proxy._pyroConnection is not first
        proxy._pyroRelease()
        assert gone.wait_count(2)


def test_context_manager_releases(servertype, serve):
    with served(serve) as (daemon, uri, _):
        with core.Proxy(uri) as proxy:
            assert proxy.echo(3) == 3
            conn = proxy._pyroConnection
        assert proxy._pyroConnection is None
        assert conn.sock.fileno() == -1
        assert proxy.echo(4) == 4  # still usable afterwards
        proxy._pyroRelease()


def _restartable_daemon(port: int) -> core.Daemon:
    daemon = make_daemon(port=port)
    daemon.register(Thing(), "thing")
    return daemon


def test_reconnect_after_daemon_restarts_on_same_port(servertype, serve):
    with served(serve) as (daemon, uri, _):
        proxy = core.Proxy(uri)
        assert proxy.echo("before") == "before"
    with pytest.raises(errors.CommunicationError):
        proxy.echo("down")  # the old daemon is gone
    assert proxy._pyroConnection is None
    with serve(_restartable_daemon(uri.port)):
        proxy._pyroReconnect(3)
        assert proxy._pyroConnection is not None
        assert proxy.echo("after") == "after"
        proxy._pyroRelease()


def test_reconnect_retries_until_the_daemon_is_back(servertype, serve, monkeypatch):
    """The pause between tries is where the daemon comes back: tries continue after a failure."""
    port = refused_port()
    proxy = core.Proxy("PYRO:thing@%s:%d" % (HOST, port))
    pauses: List[float] = []
    with contextlib.ExitStack() as stack:

        class Clock:
            @staticmethod
            def sleep(seconds: float) -> None:
                pauses.append(seconds)
                if len(pauses) == 2:
                    stack.enter_context(serve(_restartable_daemon(port)))

        monkeypatch.setattr(proxy_module, "time", Clock)
        proxy._pyroReconnect(5)
        assert pauses == [proxy_module.RECONNECT_DELAY] * 2  # two failed tries, the third one worked
        assert proxy_module.RECONNECT_DELAY == 2.0
        assert proxy.echo("ok") == "ok"
        proxy._pyroRelease()


def test_reconnect_gives_up():
    proxy = core.Proxy("PYRO:thing@%s:%d" % (HOST, refused_port()))
    with pytest.raises(errors.ConnectionClosedError) as info:
        proxy._pyroReconnect(1)  # one try: no pause
    assert str(info.value) == "failed to reconnect"


# --- metadata and attributes --------------------------------------------------------------------

def test_metadata_sets(servertype, serve):
    with served(serve) as (daemon, uri, _):
        with core.Proxy(uri) as proxy:
            assert (proxy._pyroMethods, proxy._pyroAttrs, proxy._pyroOneway) == (set(), set(), set())
            proxy._pyroBind()
            assert proxy._pyroMethods == {"echo", "add", "fire", "fire_and_block", "fail", "block", "context",
                                          "shutdown_daemon"}
            assert proxy._pyroAttrs == {"value", "readonly"}
            assert proxy._pyroOneway == {"fire", "fire_and_block"}
            names = dir(proxy)
            assert {"echo", "add", "value", "readonly", "_pyroBind"} <= set(names)
            assert names == sorted(names)


def test_metadata_comes_from_get_metadata_when_handshake_lacks_it(servertype, serve):
    calls = []

    class CountingDaemonObject(core.DaemonObject):
        @core.expose
        def get_metadata(self, objectId, as_lists=False):
            calls.append((objectId, as_lists))
            return super().get_metadata(objectId, as_lists)

    daemon = make_daemon(interface=CountingDaemonObject)
    with served(serve, daemon=daemon) as (daemon, uri, _):
        with core.Proxy(uri) as proxy:
            proxy._pyroBind()
        assert calls == [("thing", True)]  # once, in the handshake
        config.METADATA = False
        with core.Proxy(uri) as proxy:
            assert proxy.echo(1) == 1
            assert proxy._pyroMethods == set()
            proxy._pyroGetMetadata()  # explicitly: through Pyro.Daemon.get_metadata
            assert proxy._pyroAttrs == {"value", "readonly"}
        assert calls[1:] == [("thing", False)]


ATTRIBUTE_ERRORS = [
    ("get", "nothere", "remote object '{uri}' has no exposed attribute or method 'nothere'"),
    ("get", "_private", "remote object '{uri}' has no exposed attribute or method '_private'"),
    ("set", "nothere", "remote object '{uri}' has no exposed attribute 'nothere'"),
    ("set", "readonly", "attempt to access unexposed or unknown remote attribute 'readonly'"),
]


@pytest.mark.parametrize("action,name,text", ATTRIBUTE_ERRORS)
def test_attribute_errors(servertype, serve, action, name, text):
    with served(serve) as (daemon, uri, _):
        with core.Proxy(uri) as proxy:
            with pytest.raises(AttributeError) as info:
                if action == "get":
                    getattr(proxy, name)
                else:
                    setattr(proxy, name, 1)
            assert str(info.value) == text.format(uri=uri)


def test_remote_attributes(servertype, serve):
    with served(serve) as (daemon, uri, thing):
        with core.Proxy(uri) as proxy:
            assert proxy.value == 1
            proxy.value = 42
            assert thing._value == 42
            assert proxy.value == 42
            assert proxy.readonly == "fixed"
            assert "value" not in proxy.__dict__


def test_implicit_dunder_protocols_are_not_forwarded(servertype, serve):
    @core.expose
    class Sized:
        def __len__(self) -> int:
            return 7

    with served(serve, obj=Sized()) as (daemon, uri, _):
        with core.Proxy(uri) as proxy:
            with pytest.raises(TypeError):
                len(proxy)
            assert proxy.__len__() == 7


def test_metadata_off(servertype, serve):
    config.METADATA = False
    with served(serve) as (daemon, uri, _):
        with core.Proxy(uri) as proxy:
            assert proxy.echo("m") == "m"
            assert proxy._pyroMethods == set() and proxy._pyroAttrs == set()
            proxy.local = 3  # not a remote attribute: stays on the proxy
            assert proxy.__dict__["local"] == 3
            with pytest.raises(AttributeError) as info:
                proxy.nothere()
            assert str(info.value) == "'Thing' object has no attribute 'nothere'"  # the server's error
            with pytest.raises(AttributeError) as info:
                proxy.echo.real()  # dotted names are refused by the server
            assert str(info.value) == "'Thing' object has no attribute 'echo.real'"


def test_object_exposing_nothing(servertype, serve):
    class Hidden:
        def secret(self) -> None:
            pass

    with served(serve, obj=Hidden()) as (daemon, uri, _):
        proxy = core.Proxy(uri)
        with pytest.warns(UserWarning, match="doesn't expose any methods or attributes"):
            with pytest.raises(errors.PyroError) as info:
                proxy._pyroBind()
        assert str(info.value) == ("remote object doesn't expose any methods or attributes. "
                                   "Did you forget setting @expose on them?")
        proxy._pyroRelease()


# --- timeouts and retries -----------------------------------------------------------------------

def test_timeout_defaults_to_commtimeout():
    config.COMMTIMEOUT = 1.5
    assert core.Proxy("PYRO:x@%s:1" % HOST)._pyroTimeout == 1.5
    config.COMMTIMEOUT = 0.0
    assert core.Proxy("PYRO:x@%s:1" % HOST)._pyroTimeout == 0.0


def test_timeout_changes_the_live_socket_and_expires(servertype, serve):
    with served(serve) as (daemon, uri, thing):
        proxy = core.Proxy(uri)
        assert proxy.echo(1) == 1
        conn = proxy._pyroConnection
        assert conn.sock.gettimeout() is None
        proxy._pyroTimeout = 0.2
        assert conn.sock.gettimeout() == 0.2
        try:
            with pytest.raises(errors.TimeoutError) as info:
                proxy.block()
            assert str(info.value) == "receiving: timeout"
            assert proxy._pyroConnection is None  # never reuse a stream with a reply still coming
            assert conn.sock.fileno() == -1
        finally:
            thing.release.set()
        thing.fired_event.clear()
        proxy._pyroTimeout = None
        assert proxy.echo(2) == 2  # reconnected, no stale reply read
        assert proxy._pyroConnection.sock.gettimeout() is None
        proxy._pyroRelease()


def test_commtimeout_applies_to_new_proxies(servertype, serve):
    thing = Thing()
    with served(serve, obj=thing) as (daemon, uri, _):
        config.COMMTIMEOUT = 0.2
        proxy = core.Proxy(uri)
        proxy._pyroMaxRetries = 0
        try:
            with pytest.raises(errors.TimeoutError):
                proxy.block()
        finally:
            thing.release.set()
        proxy._pyroRelease()


class DroppingThing(Thing):
    """Remembers the server side of its caller's connection so the test can cut it."""

    def __init__(self) -> None:
        super().__init__()
        self.connections: List[Any] = []

    @core.expose
    def remember(self) -> int:
        self.connections.append(current_context.client)
        return len(self.connections)


@pytest.mark.parametrize("retries", [0, 1])
def test_retry_after_the_daemon_dropped_the_connection(servertype, serve, retries):
    gone = Recorder()
    thing = DroppingThing()
    config.MAX_RETRIES = retries
    with served(serve, obj=thing, daemon=DisconnectDaemon(gone, host=HOST)) as (daemon, uri, _):
        proxy = core.Proxy(uri)
        assert proxy._pyroMaxRetries == retries
        assert proxy.remember() == 1
        thing.connections[0].sock.shutdown(socket.SHUT_RDWR)  # the server drops the client
        assert gone.wait_count(1)
        if retries:
            assert proxy.remember() == 2  # retried on a new connection
            assert thing.connections[1] is not thing.connections[0]
        else:
            with pytest.raises(errors.ConnectionClosedError):
                proxy.remember()
            assert proxy._pyroConnection is None
            assert proxy.remember() == 2  # the next call reconnects
        proxy._pyroRelease()


def test_per_proxy_max_retries_overrides_config(servertype, serve):
    gone = Recorder()
    thing = DroppingThing()
    config.MAX_RETRIES = 0
    with served(serve, obj=thing, daemon=DisconnectDaemon(gone, host=HOST)) as (daemon, uri, _):
        proxy = core.Proxy(uri)
        proxy._pyroMaxRetries = 2
        proxy.remember()
        thing.connections[0].sock.shutdown(socket.SHUT_RDWR)
        assert gone.wait_count(1)
        assert proxy.remember() == 2
        proxy._pyroRelease()


# --- serializers, hmac, handshake ----------------------------------------------------------------

SERIALIZERS = sorted(_serializers)


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_per_proxy_serializer(servertype, serve, serializer):
    config.SERIALIZERS_ACCEPTED = set(SERIALIZERS)
    with served(serve) as (daemon, uri, _):
        with core.Proxy(uri) as proxy:
            proxy._pyroSerializer = serializer
            assert proxy.add(2, b=3) == 5
            assert proxy.echo([1, "two", 3.5]) in ([1, "two", 3.5], (1, "two", 3.5))
            context = proxy.context()
            assert context["serializer_id"] == get_serializer(serializer).serializer_id
            assert proxy.value == 1  # remote attribute reads work with every serializer
            with pytest.raises(ValueError):
                proxy.fail("x")


def test_unaccepted_serializer_is_refused(servertype, serve):
    config.SERIALIZERS_ACCEPTED = {"serpent"}
    with served(serve) as (daemon, uri, _):
        proxy = core.Proxy(uri)
        proxy._pyroSerializer = "json"
        with pytest.raises(errors.CommunicationError) as info:
            proxy.echo(1)
        assert str(info.value) == "connection to ('%s', %d) rejected: message used serializer that is not " \
                                  "accepted: %d" % (HOST, uri.port, get_serializer("json").serializer_id)


HMAC_CASES = [
    # daemon key, proxy key, expected error text (None: works)
    (b"secret", "secret", None),
    (b"secret", b"secret", None),
    ("secret", b"secret", None),
    (b"secret", b"wrong", "cannot connect to ('{host}', {port}): message hmac mismatch"),
    (b"secret", None, "cannot connect to ('{host}', {port}): hmac key config not symmetric"),
    (None, b"secret", "cannot connect to ('{host}', {port}): hmac key config not symmetric"),
]


@pytest.mark.parametrize("daemon_key,proxy_key,text", HMAC_CASES)
def test_hmac(servertype, serve, daemon_key, proxy_key, text):
    daemon = make_daemon()
    daemon._pyroHmacKey = daemon_key
    with served(serve, daemon=daemon) as (daemon, uri, _):
        proxy = core.Proxy(uri)
        proxy._pyroHmacKey = proxy_key
        if isinstance(proxy_key, str):
            assert proxy._pyroHmacKey == proxy_key.encode()
        if text is None:
            assert proxy.echo("signed") == "signed"
            proxy._pyroRelease()
        else:
            with pytest.raises(errors.CommunicationError) as info:
                proxy.echo("signed")
            assert str(info.value) == text.format(host=HOST, port=uri.port)
            assert proxy._pyroConnection is None


class HandshakeDaemon(core.Daemon):
    def validateHandshake(self, conn: Any, data: Any) -> Any:
        if data != "let me in":
            raise ValueError("go away: %r" % (data,))
        conn.greeted = data
        return {"welcome": data}


class HandshakeProxy(core.Proxy):
    def _pyroValidateHandshake(self, response: Any) -> None:
        self.__dict__.setdefault("responses", []).append(response)
        if response.get("welcome") != "let me in":
            raise errors.SecurityError("unexpected handshake reply")


def test_handshake_accepted(servertype, serve):
    with served(serve, daemon=HandshakeDaemon(host=HOST)) as (daemon, uri, _):
        with HandshakeProxy(uri) as proxy:
            proxy._pyroHandshake = "let me in"
            assert proxy.echo(1) == 1
            assert proxy.__dict__["responses"] == [{"welcome": "let me in"}]


@pytest.mark.parametrize("metadata", [True, False])
def test_handshake_refused(servertype, serve, metadata):
    config.METADATA = metadata
    with served(serve, daemon=HandshakeDaemon(host=HOST)) as (daemon, uri, _):
        proxy = HandshakeProxy(uri)
        proxy._pyroHandshake = ["knock"]
        with pytest.raises(errors.CommunicationError) as info:
            proxy.echo(1)
        assert str(info.value) == "connection to ('%s', %d) rejected: go away: ['knock']" % (HOST, uri.port)
        assert proxy._pyroConnection is None and "responses" not in proxy.__dict__


def test_proxy_side_handshake_validation_can_refuse(servertype, serve):
    class PickyProxy(core.Proxy):
        def _pyroValidateHandshake(self, response: Any) -> None:
            raise errors.SecurityError("not talking to that daemon: %s" % response)

    with served(serve) as (daemon, uri, _):
        proxy = PickyProxy(uri)
        for _ in range(2):  # refused again: the refused connection was not kept (Pyro4 keeps it)
            with pytest.raises(errors.SecurityError) as info:
                proxy.echo(1)
            assert str(info.value) == "not talking to that daemon: hello"
            assert proxy._pyroConnection is None


# --- annotations and sequence numbers ------------------------------------------------------------

class AnnotatingProxy(core.Proxy):
    def _pyroAnnotations(self) -> Dict[str, bytes]:
        return {"XTRA": b"from-proxy"}

    def _pyroResponseAnnotations(self, annotations: Dict[str, bytes], msgtype: int) -> None:
        self.__dict__.setdefault("seen", []).append(({k: bytes(v) for k, v in annotations.items()}, msgtype))


class AnnotatingDaemon(core.Daemon):
    def annotations(self) -> Dict[str, bytes]:
        return {"DAEM": b"from-daemon"}


def test_annotations_both_ways(servertype, serve):
    with served(serve, daemon=AnnotatingDaemon(host=HOST)) as (daemon, uri, _):
        with AnnotatingProxy(uri) as proxy:
            proxy._pyroBind()
            connect_seen = proxy.__dict__["seen"]
            assert connect_seen[0][1] == MSG_CONNECTOK
            assert connect_seen[0][0]["DAEM"] == b"from-daemon"
            current_context.annotations = {"USER": b"per-call"}
            context = proxy.context()
            assert context["annotations"]["USER"] == "per-call"
            assert context["annotations"]["XTRA"] == "from-proxy"
            assert current_context.annotations == {}  # consumed by the call
            last, msgtype = proxy.__dict__["seen"][-1]
            assert msgtype == MSG_RESULT
            assert last["RESP"] == b"response-bytes" and last["DAEM"] == b"from-daemon"
            assert bytes(current_context.response_annotations["RESP"]) == b"response-bytes"
            assert "USER" not in proxy.context()["annotations"]


def test_creating_a_proxy_resets_the_threads_annotations():
    current_context.annotations = {"OLD1": b"x"}
    current_context.response_annotations = {"OLD2": b"y"}
    core.Proxy("PYRO:x@%s:1" % HOST)
    assert current_context.annotations == {} and current_context.response_annotations == {}


def test_sequence_numbers(servertype, serve):
    with served(serve) as (daemon, uri, _):
        with core.Proxy(uri) as proxy:
            seqs = [proxy.context()["seq"] for _ in range(3)]
            assert seqs == [1, 2, 3] and proxy._pyroSeq == 3
            proxy._pyroSeq = 0xffff
            assert proxy.context()["seq"] == 0  # 16 bits, wraps around
            assert proxy._pyroSeq == 0


def _fake_daemon(listener: socket.socket, reply_seq_offset: int, done: threading.Event) -> None:
    """Answers the handshake properly, then one call with a wrong sequence number."""
    conn, _ = listener.accept()
    with conn:
        serializer = get_serializer("serpent")
        connect = Message.recv(conn, [MSG_CONNECT])
        payload, _ = serializer.serializeData("hello")
        Message(MSG_CONNECTOK, payload, serializer.serializer_id, 0, connect.seq).send(conn)
        call = Message.recv(conn, [MSG_INVOKE])
        payload, _ = serializer.serializeData("result")
        Message(MSG_RESULT, payload, serializer.serializer_id, 0, call.seq + reply_seq_offset).send(conn)
        done.wait(WAIT)


def test_reply_sequence_out_of_sync():
    config.METADATA = False
    with socket.socket() as listener:
        listener.bind((HOST, 0))
        listener.listen(1)
        listener.settimeout(WAIT)
        done = threading.Event()
        server = threading.Thread(target=_fake_daemon, args=(listener, 5, done), daemon=True)
        server.start()
        proxy = core.Proxy("PYRO:fake@%s:%d" % ((HOST,) + (listener.getsockname()[1],)))
        try:
            with pytest.raises(errors.ProtocolError) as info:
                proxy.anything()
            assert str(info.value) == "invoke: reply sequence out of sync, got 6 expected 1"
            assert proxy._pyroConnection is None
        finally:
            done.set()
            server.join(WAIT)


# --- sharing, copying, pickling, equality -------------------------------------------------------

def test_one_proxy_shared_by_threads(servertype, serve):
    with served(serve) as (daemon, uri, _):
        proxy = core.Proxy(uri)
        results: Dict[int, List[Any]] = {}
        peers = set()
        barrier = threading.Barrier(8, timeout=WAIT)

        def worker(n: int) -> None:
            barrier.wait()
            results[n] = [proxy.add(n, i) for i in range(25)]
            peers.add(tuple(proxy.context()["addr"]))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        assert all(not t.is_alive() for t in threads)
        assert results == {n: [n + i for i in range(25)] for n in range(8)}
        assert len(peers) == 1  # one connection, calls one after another
        assert proxy._pyroSeq == 8 * 26
        proxy._pyroRelease()


def test_copy_is_independent(servertype, serve):
    with served(serve) as (daemon, uri, _):
        proxy = core.Proxy(uri)
        proxy._pyroTimeout = 4.5
        proxy._pyroHmacKey = None
        proxy._pyroSerializer = "json"
        proxy._pyroMaxRetries = 3
        proxy._pyroHandshake = "hello"
        proxy._pyroBind()
        duplicate = copy.copy(proxy)
        assert duplicate is not proxy and duplicate == proxy
        assert duplicate._pyroConnection is None
        assert (duplicate._pyroMethods, duplicate._pyroAttrs, duplicate._pyroOneway) == \
               (proxy._pyroMethods, proxy._pyroAttrs, proxy._pyroOneway)
        assert duplicate._pyroMethods is not proxy._pyroMethods
        assert (duplicate._pyroTimeout, duplicate._pyroSerializer, duplicate._pyroMaxRetries) == (4.5, "json", 3)
        assert duplicate.context()["addr"] != proxy.context()["addr"]  # its own connection
        duplicate._pyroRelease()
        assert proxy._pyroConnection is not None
        proxy._pyroRelease()


def test_pickled_proxy_works(servertype, serve):
    with served(serve) as (daemon, uri, _):
        proxy = core.Proxy(uri)
        proxy._pyroBind()
        proxy._pyroHmacKey = None
        proxy._pyroTimeout = 7.0
        proxy._pyroMaxRetries = 5
        proxy._pyroSerializer = "serpent"
        state = proxy.__getstate__()
        assert state == (uri, {"fire", "fire_and_block"}, proxy._pyroMethods, {"value", "readonly"}, 7.0, None, "hello", 5, "serpent")
        config.COMMTIMEOUT = 0.0
        config.MAX_RETRIES = 0
        restored = pickle.loads(pickle.dumps(proxy))
        assert restored == proxy and restored._pyroConnection is None
        assert restored._pyroTimeout == 0.0 and restored._pyroMaxRetries == 0  # local config wins
        assert restored._pyroMethods == proxy._pyroMethods
        assert restored.echo("p") == "p"
        restored._pyroRelease()
        proxy._pyroRelease()


@pytest.mark.parametrize("serializer", ["serpent", "json", "msgpack", "marshal"])
def test_proxy_travels_through_dict_serializers(servertype, serve, serializer):
    if serializer not in _serializers:
        pytest.skip("serializer not available")
    config.SERIALIZERS_ACCEPTED = {serializer}
    with served(serve) as (daemon, uri, _):
        with core.Proxy(uri) as proxy:
            proxy._pyroSerializer = serializer
            inner = core.Proxy(uri)
            inner._pyroHmacKey = b"k\x00ey"
            returned = proxy.echo(inner)
            assert isinstance(returned, core.Proxy)
            assert returned == inner
            assert returned._pyroHmacKey == b"k\x00ey"
            assert returned._pyroConnection is None


def test_getstate_for_dict_form():
    proxy = core.Proxy("PYRO:thing@%s:9999" % HOST)
    proxy._pyroHmacKey = b"\x01\x02"
    proxy._pyroMethods = {"a"}
    state = proxy.__getstate_for_dict__()
    assert state == ("PYRO:thing@%s:9999" % HOST, (), ("a",), (), 0.0, "b64:AQI=", "hello", 0, None)
    other = core.Proxy.__new__(core.Proxy)
    other.__setstate_from_dict__(list(state))
    assert other == proxy and other._pyroHmacKey == b"\x01\x02" and other._pyroMethods == {"a"}


def test_equality_and_hash():
    a = core.Proxy("PYRO:thing@%s:9999" % HOST)
    b = core.Proxy(core.URI("PYRO:thing@%s:9999" % HOST))
    c = core.Proxy("PYRO:other@%s:9999" % HOST)
    assert a == b and not (a != b) and hash(a) == hash(b)
    assert a != c and not (a == c)
    assert a != "PYRO:thing@%s:9999" % HOST
    assert len({a, b, c}) == 2


def test_invalid_uri_argument():
    with pytest.raises(TypeError):
        core.Proxy(42)


# --- connected sockets ------------------------------------------------------------------------------

def test_connected_socket_proxy_and_daemon():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        daemon = core.Daemon(connected_socket=theirs)
        thing = Thing()
        daemon.register(thing, "thing")
        assert daemon.locationStr.startswith("./u:")
        loop = threading.Thread(target=daemon.requestLoop, daemon=True)
        loop.start()
        try:
            proxy = core.Proxy("thing", connected_socket=ours)
            assert proxy._pyroUri.object == "thing"
            assert proxy._pyroConnection is not None  # no handshake was needed
            assert proxy.echo("pair") == "pair"
            assert proxy._pyroMethods >= {"echo"}  # metadata via Pyro.Daemon.get_metadata
            proxy.value = 8
            assert thing._value == 8
            proxy._pyroRelease()
            assert proxy._pyroConnection is not None  # the user's socket stays open
            assert ours.fileno() != -1
            assert proxy.add(1, 2) == 3
        finally:
            daemon.shutdown()
            loop.join(WAIT)
        assert not loop.is_alive()
        assert theirs.fileno() != -1  # the daemon does not close it either


def test_connected_socket_over_tcp(servertype):
    listener = socket.create_server((HOST, 0))
    with listener:
        client = socket.create_connection(listener.getsockname())
        server_side, _ = listener.accept()
    with client, server_side:
        daemon = core.Daemon(connected_socket=server_side)
        assert daemon.locationStr == "%s:%d" % server_side.getsockname()
        daemon.register(Thing(), "thing")
        loop = threading.Thread(target=daemon.requestLoop, daemon=True)
        loop.start()
        try:
            proxy = core.Proxy("thing", connected_socket=client)
            assert proxy.add(20, 22) == 42
        finally:
            daemon.shutdown()
            loop.join(WAIT)
        assert not loop.is_alive()
