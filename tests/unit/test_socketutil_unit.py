"""socketutil's pure parts: address literals, error translation, and the send/receive loops
driven by scripted fake sockets (no real sockets, threads or sleeps)."""

from __future__ import annotations

import errno
import socket
import ssl

import pytest

from pyro4compat import _sockio, socketutil
from pyro4compat.configuration import config
from pyro4compat.errors import CommunicationError, ConnectionClosedError, TimeoutError

MIB = 1 << 20


class ScriptedSocket:
    """Plays back a script: each entry is bytes to deliver, a count to accept, or an exception.

    It has no ``sendmsg``, like a TLS socket or a platform without scatter/gather.
    """

    family = socket.AF_INET
    type = socket.SOCK_STREAM

    def __init__(self, script, timeout=None):
        self.script = list(script)
        self.timeout = timeout
        self.sent = bytearray()
        self.calls = []          # (method, requested size, flags)

    def _next(self):
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step

    def _take(self, size):
        data = self._next()
        if len(data) > size:          # deliver the rest on the next call, as a stream would
            self.script.insert(0, data[size:])
        return bytes(data[:size])

    def recv(self, size, flags=0):
        self.calls.append(("recv", size, flags))
        return self._take(size)

    def recv_into(self, buffer, nbytes=0, flags=0):
        self.calls.append(("recv_into", len(buffer), flags))
        data = self._take(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def gettimeout(self):
        return self.timeout

    def sendall(self, data):
        self.calls.append(("sendall", len(data), 0))
        self._next()
        self.sent += data

    def send(self, data):
        self.calls.append(("send", len(data), 0))
        count = min(self._next(), len(data))
        self.sent += data[:count]
        return count


class ScatterSocket(ScriptedSocket):
    """sendmsg that accepts at most the scripted number of bytes per call."""

    def sendmsg(self, buffers):
        buffers = list(buffers)
        self.calls.append(("sendmsg", len(buffers), 0))
        budget = self._next()
        accepted = 0
        for buf in buffers:
            take = bytes(buf[:budget - accepted])
            self.sent += take
            accepted += len(take)
        return accepted


class TlsLikeSocket(ScriptedSocket):
    """Like an SSLSocket: has getpeercert (and, as the base class, no sendmsg)."""

    def getpeercert(self):
        return {}


def eagain():
    return BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")


@pytest.fixture(autouse=True)
def waits(monkeypatch):
    """Record the retry waits instead of waiting: (want_write, delay) per retry."""
    calls = []
    record = lambda sock, want_write, delay: calls.append((want_write, delay))  # noqa: E731
    monkeypatch.setattr(_sockio, "_wait_ready", record)  # where the send/receive retries live
    return calls


# ---------------------------------------------------------------------------------------------
# addresses and families
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("literal, version", [
    ("127.0.0.1", 4), ("10.1.2.3", 4), ("0.0.0.0", 4),
    ("::1", 6), ("fe80::1", 6), ("2001:db8::42", 6),
])
def test_getIpVersion_of_literals(literal, version):
    assert socketutil.getIpVersion(literal) == version


@pytest.mark.parametrize("prefer", [4, 0])
def test_getIpVersion_of_an_ipv4_literal_asks_no_resolver(monkeypatch, prefer):
    def no_resolver(*args, **kwargs):
        raise AssertionError("getaddrinfo called for a literal")
    monkeypatch.setattr(socket, "getaddrinfo", no_resolver)
    monkeypatch.setattr(config, "PREFER_IP_VERSION", prefer)
    assert socketutil.getIpVersion("127.0.0.1") == 4


def test_getIpVersion_resolves_an_ipv4_literal_when_ipv6_is_preferred(monkeypatch):
    asked = []

    def resolver(host, port, family, *args):
        asked.append((host, family))
        raise socket.gaierror(socket.EAI_NONAME, "no such address")
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    monkeypatch.setattr(config, "PREFER_IP_VERSION", 6)
    with pytest.raises(OSError, match="unable to determine IPV6 address"):
        socketutil.getIpVersion("127.0.0.1")   # as Pyro4: the literal is not an IPv6 address
    assert asked == [("127.0.0.1", socket.AF_INET6)]


@pytest.mark.parametrize("literal, ipVersion, expected", [
    ("127.0.0.1", None, "127.0.0.1"),
    ("127.0.0.1", 0, "127.0.0.1"),
    ("127.0.0.1", 4, "127.0.0.1"),
    ("::1", None, "::1"),          # a ':' literal is resolved with any family
    ("::1", 6, "::1"),
])
def test_getIpAddress_of_literals(literal, ipVersion, expected):
    assert socketutil.getIpAddress(literal, ipVersion=ipVersion) == expected


def test_getIpAddress_rejects_unknown_version():
    with pytest.raises(ValueError, match="unknown value for argument ipVersion"):
        socketutil.getIpAddress("127.0.0.1", ipVersion=5)


def test_getIpAddress_refuses_ipv4_literal_as_ipv6():
    with pytest.raises(OSError, match="unable to determine IPV6 address"):
        socketutil.getIpAddress("127.0.0.1", ipVersion=6)


class FamilyOnly:
    def __init__(self, family):
        self.family = family


@pytest.mark.parametrize("family, name", [
    (socket.AF_INET, "IPv4"), (socket.AF_INET6, "IPv6"), (socket.AF_UNIX, "Unix"), (12345, "???"),
])
def test_family_str(family, name):
    assert socketutil.family_str(FamilyOnly(family)) == name
    conn = socketutil.SocketConnection(FamilyOnly(family), keep_open=True)
    assert conn.family() == name


def test_errno_lists():
    assert set(socketutil.ERRNO_RETRIES) >= {errno.EINTR, errno.EAGAIN, errno.EWOULDBLOCK, errno.EINPROGRESS}
    assert errno.ECONNRESET not in socketutil.ERRNO_RETRIES
    table = [
        (socketutil.ERRNO_BADF, errno.EBADF), (socketutil.ERRNO_ENOTSOCK, errno.ENOTSOCK),
        (socketutil.ERRNO_EADDRNOTAVAIL, errno.EADDRNOTAVAIL), (socketutil.ERRNO_EADDRINUSE, errno.EADDRINUSE),
    ]
    for values, code in table:
        assert isinstance(values, list) and values[0] == code


# ---------------------------------------------------------------------------------------------
# the one place where OSError becomes a Pyro error
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("exc, action, kind, message", [
    (socket.timeout("timed out"), "receiving", TimeoutError, "receiving: timeout"),
    (socket.timeout("timed out"), "sending", TimeoutError, "sending: timeout"),
    (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), "receiving", ConnectionClosedError,
     "receiving: connection lost: [Errno %d] Connection reset by peer" % errno.ECONNRESET),
    (BrokenPipeError(errno.EPIPE, "Broken pipe"), "sending", ConnectionClosedError,
     "sending: connection lost: [Errno %d] Broken pipe" % errno.EPIPE),
    (ssl.SSLError(1, "bad record"), "receiving", ConnectionClosedError, "receiving: connection lost: bad record"),
    (OSError("connect failed"), "sending", ConnectionClosedError, "sending: connection lost: connect failed"),
])
def test_translate(exc, action, kind, message):
    err = _sockio._translate(exc, action)
    assert type(err) is kind
    assert str(err) == message


@pytest.mark.parametrize("exc, retry", [
    (BlockingIOError(errno.EAGAIN, "again"), True),
    (InterruptedError(errno.EINTR, "interrupted"), True),
    (BlockingIOError(errno.EINPROGRESS, "in progress"), True),
    (OSError(errno.EAGAIN), True),
    (ssl.SSLWantReadError(ssl.SSL_ERROR_WANT_READ, "want read"), True),
    (ssl.SSLWantWriteError(ssl.SSL_ERROR_WANT_WRITE, "want write"), True),
    # SSL_ERROR_WANT_X509_LOOKUP is 4, the same number as EINTR: not a retry
    (ssl.SSLError(ssl.SSL_ERROR_WANT_X509_LOOKUP, "x509"), False),
    (ssl.SSLZeroReturnError(ssl.SSL_ERROR_ZERO_RETURN, "closed"), False),
    (socket.timeout("timed out"), False),
    (ConnectionResetError(errno.ECONNRESET, "reset"), False),
    (OSError("no errno"), False),
])
def test_is_retryable(exc, retry):
    assert _sockio._is_retryable(exc) is retry


@pytest.mark.parametrize("action, exc, want_write", [
    ("receiving", eagain(), False),
    ("sending", eagain(), True),
    ("receiving", ssl.SSLWantWriteError(ssl.SSL_ERROR_WANT_WRITE, "want write"), True),
    ("sending", ssl.SSLWantReadError(ssl.SSL_ERROR_WANT_READ, "want read"), False),
])
def test_retry_waits_for_the_right_readiness(waits, action, exc, want_write):
    assert _sockio._retry_or_raise(object(), exc, action, 0.01) == pytest.approx(0.11)
    assert waits == [(want_write, 0.01)]


def test_retries_follow_the_backoff(waits):
    sock = ScriptedSocket([eagain(), eagain(), eagain(), b"abc"])
    assert socketutil.receiveData(sock, 3) == b"abc"
    assert waits == [(False, 0.0), (False, 0.001), (False, 0.01)]


def test_backoff_schedule():
    delays = [0.0]
    for _ in range(4):
        delays.append(_sockio._next_delay(delays[-1]))
    assert delays == pytest.approx([0.0, 0.001, 0.01, 0.11, 0.21])


# ---------------------------------------------------------------------------------------------
# receiving
# ---------------------------------------------------------------------------------------------

RECV_CASES = [
    # (script, size, expected bytes or (error type, message, partialData))
    ([b"abcdef"], 6, b"abcdef"),
    ([b"ab", b"cd", b"ef"], 6, b"abcdef"),
    ([eagain(), b"abc", eagain(), b"def"], 6, b"abcdef"),
    ([b""], 0, b""),
    ([b""], 6, (ConnectionClosedError, "receiving: not enough data", b"")),
    ([b"ab", b"cd", b""], 6, (ConnectionClosedError, "receiving: not enough data", b"abcd")),
    ([b"ab", socket.timeout("timed out")], 6, (TimeoutError, "receiving: timeout", None)),
    ([socket.timeout("timed out")], 6, (TimeoutError, "receiving: timeout", None)),
    ([b"a", ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")], 6,
     (ConnectionClosedError,
      "receiving: connection lost: [Errno %d] Connection reset by peer" % errno.ECONNRESET, None)),
]


@pytest.mark.parametrize("script, size, expected", RECV_CASES)
def test_receiveData(script, size, expected):
    sock = ScriptedSocket(script)
    if isinstance(expected, bytes):
        data = socketutil.receiveData(sock, size)
        assert data == expected and type(data) is bytes
        return
    kind, message, partial = expected
    with pytest.raises(kind) as info:
        socketutil.receiveData(sock, size)
    assert str(info.value) == message
    if partial is not None:
        assert info.value.partialData == partial


@pytest.mark.parametrize("waitall, tls, flag_used", [
    (True, False, True), (False, False, False), (True, True, False),
])
def test_receive_uses_msg_waitall_only_when_configured_and_plain(monkeypatch, waitall, tls, flag_used):
    monkeypatch.setattr(config, "USE_MSG_WAITALL", waitall)
    sock = (TlsLikeSocket if tls else ScriptedSocket)([b"abcd"])
    assert socketutil.receiveData(sock, 4) == b"abcd"
    assert sock.calls[0][2] == (socket.MSG_WAITALL if flag_used else 0)


def test_huge_claimed_size_reserves_at_most_one_mib():
    sock = ScriptedSocket([b"x" * 10, b""])
    with pytest.raises(ConnectionClosedError) as info:
        socketutil.receiveData(sock, 2 << 30)
    assert info.value.partialData == b"x" * 10
    assert max(size for _, size, _ in sock.calls) <= MIB


def test_large_receive_grows_as_data_arrives():
    payload = bytes(range(256)) * (3 * MIB // 256 + 7)
    pieces = [payload[i:i + 700_000] for i in range(0, len(payload), 700_000)]
    sock = ScriptedSocket(pieces, timeout=5.0)   # a timed socket: MSG_WAITALL can't wait for it all
    assert socketutil.receiveData(sock, len(payload)) == payload
    requested = [size for method, size, _ in sock.calls]
    assert all(method == "recv_into" for method, _, _ in sock.calls)
    assert requested[0] == MIB                 # the first chunk is capped
    assert sum(requested) < 3 * len(payload)   # later chunks grow, no quadratic re-requests


def test_large_blocking_receive_takes_the_rest_in_one_waitall_recv():
    payload = bytes(range(256)) * (3 * MIB // 256 + 7)
    sock = ScriptedSocket([payload])
    assert socketutil.receiveData(sock, len(payload)) == payload
    assert sock.calls == [("recv", len(payload), socket.MSG_WAITALL)]


def test_interrupted_waitall_receive_finishes_in_growing_chunks():
    payload = bytes(range(256)) * (3 * MIB // 256 + 7)
    sock = ScriptedSocket([payload[:700_000], payload[700_000:1_500_000], payload[1_500_000:]])
    assert socketutil.receiveData(sock, len(payload)) == payload
    methods = [method for method, _, _ in sock.calls]
    assert methods[0] == "recv" and set(methods[1:]) == {"recv_into"}   # no second at-once attempt


def test_declared_size_beyond_trust_is_never_reserved_at_once():
    sock = ScriptedSocket([b"x" * 10, b""])
    with pytest.raises(ConnectionClosedError):
        socketutil.receiveData(sock, _sockio._TRUSTED_SIZE + 1)
    assert max(size for _, size, _ in sock.calls) <= MIB


def test_small_receive_falls_back_after_short_waitall():
    sock = ScriptedSocket([b"abc", b"defgh"])
    assert socketutil.receiveData(sock, 8) == b"abcdefgh"
    assert [method for method, _, _ in sock.calls] == ["recv", "recv_into"]


def test_receive_into_fills_caller_buffer():
    buffer = bytearray(6)
    socketutil.receive_into(ScriptedSocket([b"ab", b"cdef"]), buffer)
    assert buffer == b"abcdef"
    with pytest.raises(ConnectionClosedError, match="not enough data") as info:
        socketutil.receive_into(ScriptedSocket([b"ab", b""]), bytearray(6))
    assert info.value.partialData == b"ab"


def test_receive_rejects_negative_size():
    with pytest.raises(ValueError):
        socketutil.receiveData(ScriptedSocket([]), -1)


# ---------------------------------------------------------------------------------------------
# sending
# ---------------------------------------------------------------------------------------------

SEND_CASES = [
    # (timeout, script, data, expected sent bytes or (error type, message))
    (None, [None], b"abcdef", b"abcdef"),
    (None, [socket.timeout("timed out")], b"abc", (TimeoutError, "sending: timeout")),
    (None, [eagain()], b"abc",   # a blocking sendall that failed: unknown amount sent, no retry
     (ConnectionClosedError, "sending: connection lost: [Errno %d] Resource temporarily unavailable" % errno.EAGAIN)),
    (1.0, [2, eagain(), 3, 5], b"abcdef", b"abcdef"),
    (1.0, [], b"", b""),
    (1.0, [2, socket.timeout("timed out")], b"abcdef", (TimeoutError, "sending: timeout")),
    (1.0, [BrokenPipeError(errno.EPIPE, "Broken pipe")], b"abc",
     (ConnectionClosedError, "sending: connection lost: [Errno %d] Broken pipe" % errno.EPIPE)),
]


@pytest.mark.parametrize("timeout, script, data, expected", SEND_CASES)
def test_sendData(timeout, script, data, expected):
    sock = ScriptedSocket(script, timeout)
    if isinstance(expected, bytes):
        socketutil.sendData(sock, data)
        assert sock.sent == expected
        return
    kind, message = expected
    with pytest.raises(kind) as info:
        socketutil.sendData(sock, data)
    assert str(info.value) == message


@pytest.mark.parametrize("views, sent, expected", [
    ([b"abc", b"de"], 0, [b"abc", b"de"]),
    ([b"abc", b"de"], 2, [b"c", b"de"]),
    ([b"abc", b"de"], 3, [b"de"]),
    ([b"abc", b"de"], 4, [b"e"]),
    ([b"abc", b"de"], 5, []),
])
def test_advance(views, sent, expected):
    result = _sockio._advance([memoryview(v) for v in views], sent)
    assert [bytes(v) for v in result] == expected


def test_send_buffers_scatter_gather_with_partial_sends():
    sock = ScatterSocket([4, eagain(), 3, 100])
    socketutil.send_buffers(sock, [b"HEAD", b"", bytearray(b"payload"), memoryview(b"!")])
    assert sock.sent == b"HEADpayload!"
    assert [method for method, _, _ in sock.calls] == ["sendmsg"] * 4


def test_send_buffers_errors_are_translated():
    sock = ScatterSocket([ConnectionResetError(errno.ECONNRESET, "reset")])
    with pytest.raises(ConnectionClosedError, match="^sending: connection lost: "):
        socketutil.send_buffers(sock, [b"a", b"b"])


def test_send_buffers_on_tls_joins_small_and_streams_large():
    small = TlsLikeSocket([None])
    socketutil.send_buffers(small, [b"HEAD", b"body"])
    assert small.sent == b"HEADbody" and small.calls == [("sendall", 8, 0)]
    big_payload = b"z" * (200 * 1024)
    large = TlsLikeSocket([None, None])
    socketutil.send_buffers(large, [b"HEAD", big_payload])
    assert large.sent == b"HEAD" + big_payload
    assert [size for _, size, _ in large.calls] == [4, len(big_payload)]


# ---------------------------------------------------------------------------------------------
# SocketConnection on a fake socket
# ---------------------------------------------------------------------------------------------

class RecordingSocket:
    family = socket.AF_INET6

    def __init__(self):
        self.events = []
        self.timeout = None

    def shutdown(self, how):
        self.events.append(("shutdown", how))

    def close(self):
        self.events.append(("close",))

    def fileno(self):
        return 42

    def settimeout(self, value):
        self.timeout = value

    def gettimeout(self):
        return self.timeout


class Resource:
    def __init__(self, log, fail=False):
        self.log, self.fail = log, fail

    def close(self):
        self.log.append(self)
        if self.fail:
            raise RuntimeError("resource refused to close")


def test_connection_close_releases_everything():
    sock = RecordingSocket()
    conn = socketutil.SocketConnection(sock, "obj.1")
    closed = []
    resources = [Resource(closed, fail=True), Resource(closed)]
    for resource in resources:
        conn.tracked_resources.add(resource)
    conn.pyroInstances["cls"] = object()
    conn.close()
    assert sock.events == [("shutdown", socket.SHUT_RDWR), ("close",)]
    assert set(closed) == set(resources)
    assert conn.pyroInstances == {} and len(conn.tracked_resources) == 0


def test_connection_closes_its_socket_once_but_each_new_socket_too():
    sock = RecordingSocket()
    conn = socketutil.SocketConnection(sock)
    conn.close()
    conn.close()        # e.g. __del__ after an explicit close
    conn.__del__()
    assert sock.events == [("shutdown", socket.SHUT_RDWR), ("close",)]
    wrapped = RecordingSocket()
    conn.sock = wrapped  # a replaced socket (as TLS wrapping does) is closed in its turn
    conn.close()
    assert wrapped.events == [("shutdown", socket.SHUT_RDWR), ("close",)]


def test_connection_keep_open_and_context_manager():
    sock = RecordingSocket()
    with socketutil.SocketConnection(sock, keep_open=True) as conn:
        assert conn.objectId is None and conn.keep_open
    conn.close()
    assert sock.events == []
    other = RecordingSocket()
    with socketutil.SocketConnection(other):
        pass
    assert other.events[-1] == ("close",)


def test_connection_accessors():
    sock = RecordingSocket()
    conn = socketutil.SocketConnection(sock, keep_open=True)
    assert conn.fileno() == 42 and conn.family() == "IPv6"
    assert conn.getpeercert() is None
    conn.timeout = 2.5
    assert sock.timeout == 2.5 and conn.getTimeout() == 2.5
    conn.setTimeout(None)
    assert conn.timeout is None


def test_connection_tracked_resources_are_weak():
    conn = socketutil.SocketConnection(RecordingSocket(), keep_open=True)
    conn.tracked_resources.add(Resource([]))
    assert len(conn.tracked_resources) == 0


# ---------------------------------------------------------------------------------------------
# argument checks that happen before any socket exists
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(bind=("127.0.0.1", 0), connect=("127.0.0.1", 1)),
     "bind and connect cannot both be specified at the same time"),
    (dict(bind=["127.0.0.1", 0]), "unknown bind or connect format."),
    (dict(bind=("127.0.0.1", 0), ipv6=True), "IPv4 address is used bind argument with forceIPv6 argument:127.0.0.1."),
    (dict(connect=("127.0.0.1", 1), ipv6=True),
     "IPv4 address is used in connect argument with forceIPv6 argument:127.0.0.1."),
])
def test_createSocket_argument_errors(kwargs, message):
    with pytest.raises(ValueError) as info:
        socketutil.createSocket(**kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize("kwargs, message", [
    (dict(bind=["127.0.0.1", 0]), "unknown bind format: ['127.0.0.1', 0]"),
    (dict(bind=("127.0.0.1", 0), ipv6=True), "IPv4 address is used with forceIPv6 option:127.0.0.1."),
])
def test_createBroadcastSocket_argument_errors(kwargs, message):
    with pytest.raises(ValueError) as info:
        socketutil.createBroadcastSocket(**kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize("address, family, result", [
    ("/tmp/pyro.sock", socket.AF_UNIX, "/tmp/pyro.sock"),
    ("\0abstract", socket.AF_UNIX, "\0abstract"),
    (("", 9090), socket.AF_INET, ("", 9090)),
    (("127.0.0.1", 9090), socket.AF_INET, ("127.0.0.1", 9090)),
    (("::1", 9090), socket.AF_INET6, ("::1", 9090, 0, 0)),
    (("::1", 9090, 0, 3), socket.AF_INET6, ("::1", 9090, 0, 3)),
])
def test_stream_family_table(address, family, result):
    assert socketutil._stream_family(address, None, False) == (family, result, None)
    assert socketutil._stream_family(None, address, False) == (family, None, result)


def test_stream_family_forced_ipv6_for_empty_host(monkeypatch):
    assert socketutil._stream_family(None, None, True)[0] == socket.AF_INET6
    assert socketutil._stream_family(("", 0), None, True)[0] == socket.AF_INET6
    monkeypatch.setattr(config, "PREFER_IP_VERSION", 6)
    assert socketutil._force_ipv6(None) is True
    assert socketutil._force_ipv6(False) is False


def test_bindOnUnusedPort_refuses_other_families():
    fake = FamilyOnly(socket.AF_UNIX)
    fake.type = socket.SOCK_STREAM
    with pytest.raises(CommunicationError, match="unsupported socket family: AF_UNIX"):
        socketutil.bindOnUnusedPort(fake)


# ---------------------------------------------------------------------------------------------
# TLS context argument checks (no certificates needed)
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def fresh_ssl_cache():
    socketutil._clear_ssl_contexts()
    yield
    socketutil._clear_ssl_contexts()


@pytest.mark.parametrize("kwargs, kind, message", [
    (dict(servercert="s.pem", clientcert="c.pem"), ValueError, "can't have both server cert and client cert"),
    (dict(servercert="/nonexistent/cert.pem"), OSError, "server cert file not found"),
    (dict(servercert=__file__, serverkey="/nonexistent/key.pem"), OSError, "server key file not found"),
    (dict(clientcert="/nonexistent/cert.pem"), OSError, "client cert file not found"),
])
def test_getSSLcontext_errors_cache_nothing(fresh_ssl_cache, kwargs, kind, message):
    with pytest.raises(kind) as info:
        socketutil.getSSLcontext(**kwargs)
    assert str(info.value) == message
    assert socketutil._ssl_contexts == {}


def test_getSSLcontext_client_context_is_cached(fresh_ssl_cache):
    first = socketutil.getSSLcontext()
    assert isinstance(first, ssl.SSLContext)
    assert first.verify_mode == ssl.CERT_REQUIRED and first.check_hostname
    # later arguments are ignored once a client context exists (Pyro4's behaviour)
    assert socketutil.getSSLcontext(clientcert="/nonexistent/cert.pem") is first
