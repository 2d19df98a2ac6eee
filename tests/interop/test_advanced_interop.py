"""Batches, async chains, streams, callbacks, TLS and compression against real Pyro4 4.82, both directions.

"ours → Pyro4": a pyro4compat proxy in this process calls a real Pyro4 daemon in a child
(``pyro4_server``). "Pyro4 → ours": real Pyro4 code in a child (``pyro4``) calls a pyro4compat
daemon served from this process. Both serve ``service.py``'s objects.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import threading
import time
from typing import Any, Dict, List

import pytest

import service
from daemons import serving
from pyro4compat import core, errors, socketutil
from pyro4compat.configuration import config
from pyro4compat.message import FLAGS_COMPRESSED, Message

pytestmark = [pytest.mark.interop, pytest.mark.timeout(90)]


def _wait_until(predicate: Any, timeout: float = 5.0) -> Any:
    """Re-check state another process/thread owns until it holds (bounded; fails on timeout)."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        tick.wait(0.02)
    return True


@contextlib.contextmanager
def our_daemon(servertype: str = "thread"):
    config.SERVERTYPE = servertype
    daemon = core.Daemon(host="127.0.0.1")
    classes = service.register_all(core, daemon)
    with serving(daemon):
        yield daemon, classes


def _make_cert(directory: str, name: str, common_name: str):
    cert, key = os.path.join(directory, name + ".crt"), os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-keyout", key, "-out", cert, "-days", "2", "-nodes", "-subj", "/CN=" + common_name,
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,digitalSignature,keyCertSign"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Dict[str, Any]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not available")
    directory = str(tmp_path_factory.mktemp("interop-tls"))
    made = {"server": _make_cert(directory, "server", "localhost"),
            "client": _make_cert(directory, "client", "interop-client")}
    made["trust"] = os.path.join(directory, "trust.pem")
    with open(made["trust"], "w") as out:
        for cert, _ in (made["server"], made["client"]):
            with open(cert) as src:
                out.write(src.read())
    return made


@pytest.fixture
def fresh_tls():
    socketutil._clear_ssl_contexts()
    yield
    socketutil._clear_ssl_contexts()


class WireTap:
    """Stands in for a proxy's connection and keeps the raw reply bytes (to read header flags)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self.received = bytearray()

    def recv(self, size: int) -> bytes:
        data = self._conn.recv(size)
        self.received += data
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


# ==== ours → real Pyro4 daemon ==========================================================================

@pytest.fixture(params=["thread", "multiplex"])
def pyro4_daemon(request, pyro4_server):
    return pyro4_server(servertype=request.param)


def test_ours_batch_async_and_oneway_against_pyro4(pyro4_daemon):
    with core.Proxy(pyro4_daemon.uri("interop.journal")) as journal:
        batch = core.batch(journal)
        batch.record(1)
        batch.fail("middle")
        batch.record(3)
        results = batch()
        assert next(results) == 1
        with pytest.raises(ValueError, match="middle"):
            next(results)
        assert journal.read() == [1, "fail:middle"]  # Pyro4 stopped at the failing call
        batch.record("a")
        batch.record("b")
        assert list(batch(asynchronous=True).value) == ["a", "b"]
        batch = core.batch(journal)
        batch.record("one-way")
        assert batch(oneway=True) is None
        assert journal.read() == ["a", "b", "one-way"]  # same connection: the oneway batch ran first


def test_ours_async_chain_against_pyro4(pyro4_daemon):
    with core.Proxy(pyro4_daemon.uri("interop.service")) as proxy:
        core.asyncproxy(proxy)
        chained = proxy.add(2, 3).then(lambda v: v * 10).then(lambda v: "=%d" % v)
        errors_seen: List[Exception] = []
        failing = proxy.fail("async failure").iferror(errors_seen.append)
        slow = proxy.slow(0.2)
        assert not slow.ready
        assert chained.value == "=50"
        assert failing.wait(10)
        with pytest.raises(ValueError, match="async failure"):
            _ = failing.value
        assert [str(e) for e in errors_seen] == ["async failure"]
        assert slow.value == "slow done"


def test_ours_stream_partial_consumption_and_close_on_pyro4(pyro4_daemon):
    with core.Proxy(pyro4_daemon.uri("interop.service")) as proxy, \
            core.Proxy(pyro4_daemon.uri("interop.inspector")) as inspector:
        stream = proxy.numbers(1000)
        assert [next(stream) for _ in range(3)] == [0, 1, 2]
        assert inspector.open_streams() == 1
        stream.close()
        _wait_until(lambda: inspector.open_streams() == 0)
        with pytest.raises(StopIteration):
            next(stream)
        assert list(proxy.numbers(4)) == [0, 1, 2, 3]


class _Listener:
    def __init__(self) -> None:
        self.seen: List[Any] = []

    @core.expose
    def ping(self, value: Any) -> str:
        self.seen.append(value)
        return "pong %s" % value

    @core.expose
    @core.callback
    def explode(self) -> None:
        raise RuntimeError("callback exploded")


def test_pyro4_server_calls_back_into_our_daemon(pyro4_daemon):
    listener = _Listener()
    pyro_logger = logging.getLogger("Pyro4")
    saved_level = pyro_logger.level
    records: List[logging.LogRecord] = []
    arrived = threading.Event()

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)
            arrived.set()

    handler = Collect(logging.WARNING)
    pyro_logger.setLevel(logging.WARNING)
    pyro_logger.addHandler(handler)
    try:
        with our_daemon() as (daemon, _):
            daemon.register(listener)
            with core.Proxy(pyro4_daemon.uri("interop.callbacker")) as callbacker:
                assert callbacker.call_back(listener, "ping", 7) == "pong 7"
                assert callbacker.call_back(listener, "explode") == "RuntimeError: callback exploded"
                assert arrived.wait(5)
    finally:
        pyro_logger.removeHandler(handler)
        pyro_logger.setLevel(saved_level)
    assert listener.seen == [7]
    assert any("error during handleRequest: callback exploded" in r.getMessage() for r in records)


def test_ours_two_way_tls_with_pyro4(pyro4_server, certs, fresh_tls):
    server = pyro4_server(ssl={"servercert": certs["server"][0], "serverkey": certs["server"][1],
                               "cacerts": certs["trust"], "requireclientcert": True})
    config.SSL = True
    config.SSL_CACERTS = certs["trust"]
    config.SSL_CLIENTCERT, config.SSL_CLIENTKEY = certs["client"]
    with core.Proxy(server.uri("interop.inspector")) as inspector:
        assert inspector.peer_common_name() == "interop-client"
        assert inspector._pyroConnection.getpeercert()["subject"] == ((("commonName", "localhost"),),)
    socketutil._clear_ssl_contexts()
    config.SSL_CLIENTCERT = config.SSL_CLIENTKEY = ""  # Pyro4 requires a client certificate
    with core.Proxy(server.uri("interop.inspector")) as inspector:
        with pytest.raises(errors.CommunicationError):
            inspector.peer_common_name()


@pytest.mark.parametrize("client_compression", [False, True])
def test_ours_compression_with_pyro4(pyro4_server, client_compression):
    server = pyro4_server(compression=True)
    config.COMPRESSION = client_compression
    with core.Proxy(server.uri("interop.service")) as proxy, \
            core.Proxy(server.uri("interop.inspector")) as inspector:
        assert inspector.request_compressed("x" * 500) is client_compression
        assert inspector.request_compressed("x") is False  # too small to compress
        proxy._pyroBind()
        tap = WireTap(proxy._pyroConnection)
        proxy._pyroConnection = tap
        assert proxy.echo("y" * 5000) == "y" * 5000
        proxy._pyroConnection = tap._conn
        # Pyro4 decides for its reply by its own COMPRESSION, whatever the request did
        assert Message.from_header(bytes(tap.received[:Message.header_size])).flags & FLAGS_COMPRESSED


def test_ours_max_message_size_with_pyro4(pyro4_server):
    server = pyro4_server(max_message_size=2000)
    with core.Proxy(server.uri("interop.service")) as proxy:
        with pytest.raises(errors.ConnectionClosedError):
            proxy.echo("z" * 5000)  # Pyro4 closes the connection on an oversized request
        assert proxy.echo("ok") == "ok"
        config.MAX_MESSAGE_SIZE = 1000
        with pytest.raises(errors.MessageTooLargeError):
            proxy.echo("z" * 5000)


# ==== real Pyro4 proxy → our daemon =====================================================================

PYRO4_CLIENT = r"""
import threading
location = INPUT["location"]
uri = lambda name: "PYRO:%s@%s" % (name, location)
out = {}
with Pyro4.Proxy(uri("interop.journal")) as journal:
    batch = Pyro4.batch(journal)
    batch.record(1); batch.fail("middle"); batch.record(3)
    results = batch()
    out["first"] = next(results)
    try:
        next(results)
    except ValueError as e:
        out["batch_error"] = str(e)
    out["journal"] = journal.read()
    batch.record("x")
    out["async_batch"] = list(batch(asynchronous=True).value)
with Pyro4.Proxy(uri("interop.service")) as proxy:
    Pyro4.asyncproxy(proxy)
    out["chain"] = proxy.add(2, 3).then(lambda v: v * 10).then(lambda v: v + 1).value
    failed = proxy.fail("async failure")
    try:
        failed.value
    except ValueError as e:
        out["async_error"] = str(e)
with Pyro4.Proxy(uri("interop.service")) as proxy, Pyro4.Proxy(uri("interop.inspector")) as inspector:
    stream = proxy.numbers(1000)
    out["partial"] = [next(stream) for _ in range(3)]
    out["open_before"] = inspector.open_streams()
    stream.close()
    out["after_close"] = list(stream)
    out["full"] = list(proxy.numbers(3))

class Listener(object):
    @Pyro4.expose
    def ping(self, value):
        return "pong %s" % value

    @Pyro4.expose
    @Pyro4.callback
    def explode(self):
        raise RuntimeError("callback exploded")

daemon = Pyro4.Daemon(host="127.0.0.1")
listener = Listener()
daemon.register(listener)
thread = threading.Thread(target=daemon.requestLoop)
thread.start()
with Pyro4.Proxy(uri("interop.callbacker")) as callbacker:
    out["callback"] = callbacker.call_back(listener, "ping", 5)
    out["callback_error"] = callbacker.call_back(listener, "explode")
daemon.shutdown()
thread.join()
OUTPUT = out
"""


@pytest.mark.parametrize("servertype", ["thread", "multiplex"])
def test_pyro4_client_batches_async_streams_and_callbacks_on_our_daemon(pyro4, servertype):
    with our_daemon(servertype) as (daemon, _):
        out = pyro4(PYRO4_CLIENT, {"location": daemon.locationStr})
        _wait_until(lambda: not daemon.streaming_responses)  # Pyro4's oneway close_stream arrived
    assert out["first"] == 1 and out["batch_error"] == "middle"
    assert out["journal"] == [1, "fail:middle"]
    assert out["async_batch"] == ["x"]
    assert out["chain"] == 51
    assert out["async_error"] == "async failure"
    assert out["partial"] == [0, 1, 2] and out["open_before"] == 1
    assert out["after_close"] == [] and out["full"] == [0, 1, 2]
    assert out["callback"] == "pong 5"
    assert out["callback_error"] == "RuntimeError: callback exploded"


PYRO4_TLS_AND_COMPRESSION_CLIENT = r"""
import Pyro4.message
location, tls = INPUT["location"], INPUT["tls"]
uri = lambda name: "PYRO:%s@%s" % (name, location)
reply_flags = []
original_recv = Pyro4.message.Message.recv.__func__
def recording_recv(cls, connection, requiredMsgTypes=None, hmac_key=None):
    msg = original_recv(cls, connection, requiredMsgTypes, hmac_key)
    reply_flags.append(msg.flags)
    return msg
Pyro4.message.Message.recv = classmethod(recording_recv)
out = {}
if tls:
    Pyro4.config.SSL = True
    Pyro4.config.SSL_CACERTS = tls["cacerts"]
    Pyro4.config.SSL_CLIENTCERT = tls["clientcert"]
    Pyro4.config.SSL_CLIENTKEY = tls["clientkey"]
    with Pyro4.Proxy(uri("interop.inspector")) as inspector:
        out["peer"] = inspector.peer_common_name()
else:
    Pyro4.config.COMPRESSION = True
    with Pyro4.Proxy(uri("interop.inspector")) as inspector, Pyro4.Proxy(uri("interop.service")) as proxy:
        out["big_request_compressed"] = inspector.request_compressed("x" * 500)
        out["small_request_compressed"] = inspector.request_compressed("x")
        del reply_flags[:]
        out["echo_ok"] = proxy.echo("y" * 5000) == "y" * 5000
        out["reply_compressed"] = bool(reply_flags[-1] & 2)
        del reply_flags[:]
        out["small_echo"] = proxy.echo("s")
        out["small_reply_compressed"] = bool(reply_flags[-1] & 2)
OUTPUT = out
"""


def test_pyro4_client_two_way_tls_to_our_daemon(pyro4, certs, fresh_tls):
    config.SSL = True
    config.SSL_SERVERCERT, config.SSL_SERVERKEY = certs["server"]
    config.SSL_CACERTS = certs["trust"]
    config.SSL_REQUIRECLIENTCERT = True
    tls = {"cacerts": certs["trust"], "clientcert": certs["client"][0], "clientkey": certs["client"][1]}
    with our_daemon() as (daemon, _):
        out = pyro4(PYRO4_TLS_AND_COMPRESSION_CLIENT, {"location": daemon.locationStr, "tls": tls})
    assert out == {"peer": "interop-client"}


def test_pyro4_client_compression_with_our_daemon(pyro4):
    config.COMPRESSION = True
    with our_daemon() as (daemon, _):
        out = pyro4(PYRO4_TLS_AND_COMPRESSION_CLIENT, {"location": daemon.locationStr, "tls": None})
    assert out == {"big_request_compressed": True, "small_request_compressed": False, "echo_ok": True,
                   "reply_compressed": True, "small_echo": "s", "small_reply_compressed": False}
