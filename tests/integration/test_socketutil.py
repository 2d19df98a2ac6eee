"""socketutil over real loopback sockets: TCP on 127.0.0.1 and ::1, Unix and abstract
sockets, UDP broadcast sockets, and one-way / two-way TLS with throwaway certificates."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from pyro4compat import socketutil
from pyro4compat.configuration import config
from pyro4compat.errors import ConnectionClosedError, TimeoutError

pytestmark = pytest.mark.timeout(20)

BIG = bytes(range(256)) * (5 * (1 << 20) // 256 + 3)   # a bit over 5 MiB


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
needs_abstract = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract sockets are Linux only")


class Peer:
    """Runs ``work(conn)`` on the accepted side in a thread; ``result()`` joins and re-raises."""

    def __init__(self, listener, work):
        self.listener = listener
        self.work = work
        self.outcome = None
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            sock, _ = self.listener.accept()
            with socketutil.SocketConnection(sock) as conn:
                self.outcome = self.work(conn)
        except BaseException as exc:   # handed to the test thread by result()
            self.error = exc

    def result(self, timeout=10.0):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "peer thread did not finish"
        if self.error is not None:
            raise self.error
        return self.outcome


@pytest.fixture
def listeners():
    """Factory for listening sockets that are all closed after the test."""
    made = []

    def make(**kwargs):
        sock = socketutil.createSocket(**kwargs)
        made.append(sock)
        return sock

    yield make
    for sock in made:
        sock.close()


def echo_sizes(conn):
    """Peer work: read a 4-byte length + payload, send it back with send_buffers."""
    size = int.from_bytes(conn.recv(4), "big")
    payload = conn.recv(size)
    conn.send_buffers([size.to_bytes(4, "big"), payload])
    return size


def roundtrip(address, payload, listener, **connect_kwargs):
    peer = Peer(listener, echo_sizes)
    sock = socketutil.createSocket(connect=address, timeout=10, **connect_kwargs)
    with socketutil.SocketConnection(sock) as conn:
        conn.send(len(payload).to_bytes(4, "big") + payload)
        size = int.from_bytes(conn.recv(4), "big")
        back = bytearray(size)
        conn.recv_into(back)
        family = conn.family()
    assert peer.result() == len(payload)
    assert back == payload
    return family


# ---------------------------------------------------------------------------------------------
# transports
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("payload", [b"", b"ping", BIG], ids=["empty", "small", "5MiB"])
def test_tcp_ipv4_roundtrip(listeners, payload):
    listener = listeners(bind=("127.0.0.1", 0))
    assert socketutil.family_str(listener) == "IPv4"
    assert roundtrip(listener.getsockname(), payload, listener) == "IPv4"


@needs_ipv6
def test_tcp_ipv6_roundtrip(listeners):
    listener = listeners(bind=("::1", 0))
    host, port = listener.getsockname()[:2]
    assert (host, socketutil.family_str(listener)) == ("::1", "IPv6")
    assert roundtrip((host, port), BIG, listener) == "IPv6"


@needs_ipv6
def test_ipv6_forced_by_config(listeners, monkeypatch):
    monkeypatch.setattr(config, "PREFER_IP_VERSION", 6)
    listener = listeners(bind=("", 0), ipv6=None)
    assert listener.family == socket.AF_INET6


def test_unix_socket_roundtrip(listeners, tmp_path):
    path = str(tmp_path / "pyro.sock")
    listener = listeners(bind=path)
    assert socketutil.family_str(listener) == "Unix"
    assert roundtrip(path, BIG, listener) == "Unix"


@needs_abstract
def test_abstract_unix_socket_roundtrip(listeners):
    name = "\0pyro4compat-test-%d-%d" % (os.getpid(), threading.get_ident())
    listener = listeners(bind=name)
    assert listener.getsockname() in (name, name.encode())
    assert roundtrip(name, b"abstract hello", listener) == "Unix"


def test_non_blocking_sockets_retry_until_complete():
    """Both ends non-blocking: EAGAIN on either side is waited out, nothing is lost."""
    left, right = socket.socketpair()
    left.setblocking(False)
    right.setblocking(False)
    received = []
    reader = threading.Thread(target=lambda: received.append(socketutil.receiveData(right, len(BIG))))
    reader.start()
    try:
        socketutil.sendData(left, BIG)
        reader.join(10)
    finally:
        left.close()
        right.close()
    assert not reader.is_alive() and received == [BIG]


def test_listening_socket_options(listeners):
    plain = listeners(bind=("127.0.0.1", 0))
    tuned = listeners(bind=("127.0.0.1", 0), reuseaddr=True, keepalive=False, nodelay=False, noinherit=True)
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE), (socket.IPPROTO_TCP, socket.TCP_NODELAY),
               (socket.SOL_SOCKET, socket.SO_REUSEADDR)]
    assert [bool(plain.getsockopt(*o)) for o in options] == [True, True, False]
    assert [bool(tuned.getsockopt(*o)) for o in options] == [False, False, True]
    assert not tuned.get_inheritable()


@pytest.mark.parametrize("kwargs, expected", [
    ({}, socket.getdefaulttimeout()), ({"timeout": 0}, None), ({"timeout": None}, None), ({"timeout": 1.5}, 1.5),
])
def test_createSocket_timeouts(kwargs, expected):
    with socketutil.createSocket(**kwargs) as sock:
        assert sock.gettimeout() == expected


def test_connect_refused_raises_oserror():
    port = socketutil.findProbablyUnusedPort()
    with pytest.raises(ConnectionRefusedError):
        socketutil.createSocket(connect=("127.0.0.1", port), timeout=5)


def test_non_blocking_connect_completes_or_reports(listeners):
    listener = listeners(bind=("127.0.0.1", 0))
    refused_port = socketutil.findProbablyUnusedPort()
    for address, outcome in [(listener.getsockname(), None), (("127.0.0.1", refused_port), ConnectionRefusedError)]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setblocking(False)
            if outcome is None:
                socketutil._connect(sock, address, 0.0)
                assert sock.getpeername() == address
            else:
                with pytest.raises(OSError) as info:
                    socketutil._connect(sock, address, 0.0)
                assert info.value.errno == errno.ECONNREFUSED


def test_bind_on_unused_port_and_find_port():
    port = socketutil.findProbablyUnusedPort()
    assert 0 < port < 65536
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        bound = socketutil.bindOnUnusedPort(sock)
        assert sock.getsockname() == ("127.0.0.1", bound)
    if _ipv6_loopback():
        assert 0 < socketutil.findProbablyUnusedPort(socket.AF_INET6) < 65536


def test_getInterfaceAddress_of_loopback():
    assert socketutil.getInterfaceAddress("127.0.0.1") == "127.0.0.1"


# ---------------------------------------------------------------------------------------------
# failures seen through SocketConnection
# ---------------------------------------------------------------------------------------------

def test_receive_timeout(listeners):
    listener = listeners(bind=("127.0.0.1", 0))
    release = threading.Event()
    peer = Peer(listener, lambda conn: release.wait(10))
    conn = socketutil.SocketConnection(socketutil.createSocket(connect=listener.getsockname()))
    try:
        conn.timeout = 0.05
        with pytest.raises(TimeoutError) as info:
            conn.recv(10)
        assert str(info.value) == "receiving: timeout"
    finally:
        release.set()
        conn.close()
    peer.result()


def test_peer_closing_early_gives_partial_data(listeners):
    listener = listeners(bind=("127.0.0.1", 0))
    peer = Peer(listener, lambda conn: conn.send(b"only this"))
    with socketutil.SocketConnection(socketutil.createSocket(connect=listener.getsockname(), timeout=10)) as conn:
        peer.result()
        with pytest.raises(ConnectionClosedError) as info:
            conn.recv(3 << 20)
    assert str(info.value) == "receiving: not enough data"
    assert info.value.partialData == b"only this"


def test_sending_to_a_closed_peer(listeners):
    listener = listeners(bind=("127.0.0.1", 0))
    peer = Peer(listener, lambda conn: None)       # accepts and closes at once
    with socketutil.SocketConnection(socketutil.createSocket(connect=listener.getsockname(), timeout=10)) as conn:
        peer.result()
        with pytest.raises(ConnectionClosedError) as info:
            for _ in range(100):                   # the first sends may still be buffered
                conn.send(BIG)
    assert str(info.value).startswith("sending: connection lost: ")


def test_interruptSocket_wakes_a_blocked_accept(listeners):
    listener = listeners(bind=("127.0.0.1", 0), timeout=10)
    peer = Peer(listener, lambda conn: conn.recv(16))
    socketutil.interruptSocket(listener.getsockname())
    assert peer.result() == b"!" * 16


def test_interruptSocket_ignores_nobody_listening():
    socketutil.interruptSocket(("127.0.0.1", socketutil.findProbablyUnusedPort()))


# ---------------------------------------------------------------------------------------------
# UDP broadcast sockets
# ---------------------------------------------------------------------------------------------

def test_broadcast_socket_roundtrip():
    receiver = socketutil.createBroadcastSocket(bind=("127.0.0.1", 0), timeout=5)
    sender = socketutil.createBroadcastSocket(timeout=5)
    try:
        assert receiver.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST)
        assert socketutil.family_str(receiver) == "IPv4" and receiver.type == socket.SOCK_DGRAM
        sender.sendto(b"GET_NSURI", receiver.getsockname())
        data, _ = receiver.recvfrom(100)
        assert data == b"GET_NSURI"
    finally:
        receiver.close()
        sender.close()


@pytest.mark.parametrize("kwargs, expected", [
    ({}, socket.getdefaulttimeout()), ({"timeout": 0}, 0.0), ({"timeout": None}, None), ({"timeout": 0.7}, 0.7),
])
def test_broadcast_socket_timeouts(kwargs, expected):
    with socketutil.createBroadcastSocket(**kwargs) as sock:
        assert sock.gettimeout() == expected


@needs_ipv6
def test_broadcast_socket_ipv6():
    with socketutil.createBroadcastSocket(bind=("::1", 0)) as sock:
        assert socketutil.family_str(sock) == "IPv6" and sock.getsockname()[0] == "::1"


# ---------------------------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------------------------

def _make_cert(directory, stem, password=None):
    cert, key = str(directory / (stem + ".crt")), str(directory / (stem + ".key"))
    command = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
               "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
               "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
               "-addext", "basicConstraints=critical,CA:TRUE",
               "-addext", "keyUsage=critical,digitalSignature,keyCertSign"]
    command += ["-passout", "pass:" + password] if password else ["-nodes"]
    subprocess.run(command, check=True, capture_output=True, timeout=30)
    return cert, key


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not available")
    directory = tmp_path_factory.mktemp("certs")
    return {
        "server": _make_cert(directory, "server"),
        "client": _make_cert(directory, "client"),
        "locked": _make_cert(directory, "locked", password="s3cret"),
    }


@pytest.fixture
def fresh_ssl_cache():
    socketutil._clear_ssl_contexts()
    yield
    socketutil._clear_ssl_contexts()


def tls_echo(conn):
    data = conn.recv(int.from_bytes(conn.recv(4), "big"))
    conn.send_buffers([b"ACK:", data])
    return conn.getpeercert()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_one_way_tls(listeners, certs, fresh_ssl_cache, host):
    server_cert, server_key = certs["server"]
    server_ctx = socketutil.getSSLcontext(servercert=server_cert, serverkey=server_key)
    client_ctx = socketutil.getSSLcontext(cacerts=server_cert)
    assert server_ctx.verify_mode == ssl.CERT_NONE
    listener = listeners(bind=("127.0.0.1", 0), sslContext=server_ctx)
    peer = Peer(listener, tls_echo)
    sock = socketutil.createSocket(connect=(host, listener.getsockname()[1]), sslContext=client_ctx, timeout=10)
    with socketutil.SocketConnection(sock) as conn:
        conn.send_buffers([len(BIG).to_bytes(4, "big"), BIG])
        assert conn.recv(4 + len(BIG)) == b"ACK:" + BIG
        peercert = conn.getpeercert()
    assert dict(item[0] for item in peercert["subject"])["commonName"] == "localhost"
    assert peer.result() is None          # the server asked for no client certificate


def test_tls_client_refuses_unknown_server(listeners, certs, fresh_ssl_cache):
    server_ctx = socketutil.getSSLcontext(servercert=certs["server"][0], serverkey=certs["server"][1])
    client_ctx = socketutil.getSSLcontext(cacerts=certs["client"][0])     # trusts someone else
    listener = listeners(bind=("127.0.0.1", 0), sslContext=server_ctx)
    peer = Peer(listener, lambda conn: None)
    with pytest.raises(ssl.SSLCertVerificationError):
        socketutil.createSocket(connect=listener.getsockname(), sslContext=client_ctx, timeout=10)
    with pytest.raises(ssl.SSLError):
        peer.result()


def test_two_way_tls(listeners, certs, fresh_ssl_cache, monkeypatch):
    monkeypatch.setattr(config, "SSL_REQUIRECLIENTCERT", True)
    (server_cert, server_key), (client_cert, client_key) = certs["server"], certs["client"]
    server_ctx = socketutil.getSSLcontext(servercert=server_cert, serverkey=server_key, cacerts=client_cert)
    client_ctx = socketutil.getSSLcontext(clientcert=client_cert, clientkey=client_key, cacerts=server_cert)
    assert server_ctx.verify_mode == ssl.CERT_REQUIRED
    listener = listeners(bind=("127.0.0.1", 0), sslContext=server_ctx)
    peer = Peer(listener, tls_echo)
    sock = socketutil.createSocket(connect=listener.getsockname(), sslContext=client_ctx, timeout=10)
    with socketutil.SocketConnection(sock) as conn:
        conn.send((5).to_bytes(4, "big") + b"hello")
        assert conn.recv(9) == b"ACK:hello"
    client_seen_by_server = peer.result()
    assert dict(item[0] for item in client_seen_by_server["subject"])["commonName"] == "localhost"


def test_encrypted_server_key(certs, fresh_ssl_cache):
    cert, key = certs["locked"]
    with pytest.raises(ssl.SSLError):
        socketutil.getSSLcontext(servercert=cert, serverkey=key, keypassword="wrong")
    assert socketutil._ssl_contexts == {}        # a failed build is not cached
    context = socketutil.getSSLcontext(servercert=cert, serverkey=key, keypassword="s3cret")
    assert isinstance(context, ssl.SSLContext)


def test_ssl_contexts_are_cached_per_role_across_threads(certs, fresh_ssl_cache):
    server_cert, server_key = certs["server"]
    start = threading.Barrier(8)

    def fetch(index):
        start.wait(5)
        if index % 2:
            return "server", socketutil.getSSLcontext(servercert=server_cert, serverkey=server_key)
        return "client", socketutil.getSSLcontext(cacerts=server_cert)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(fetch, range(8)))
    by_role = {}
    for role, context in results:
        by_role.setdefault(role, set()).add(id(context))
    assert {role: len(ids) for role, ids in by_role.items()} == {"server": 1, "client": 1}
    assert by_role["server"] != by_role["client"]
