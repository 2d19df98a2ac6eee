"""Sockets for Pyro: creation, exact-size receive, complete send, TLS contexts.

Theory of operation
-------------------
Everything above this module (proxies, daemons, socket servers) talks to the network through
:class:`SocketConnection` or the module functions :func:`receiveData` / :func:`sendData`.
Their contract is Pyro4's:

* a receive returns exactly the bytes asked for, or raises;
* a send either hands every byte to the kernel, or raises;
* the only errors that escape are :class:`~pyro4compat.errors.TimeoutError` and
  :class:`~pyro4compat.errors.ConnectionClosedError`, with Pyro4's messages
  (``"receiving: timeout"``, ``"receiving: not enough data"``,
  ``"receiving: connection lost: ..."``, ``"sending: timeout"``, ``"sending: connection lost: ..."``).

Every ``OSError`` (``socket.timeout`` and ``ssl.SSLError`` are ones too) raised while sending
or receiving passes through :func:`_translate` and :func:`_retry_or_raise`: that pair is the
only place where socket errors become Pyro errors, and the only place that decides which
errors are worth another try (EAGAIN and friends on non-blocking sockets, TLS "want read /
want write"). The creation helpers (:func:`createSocket`, :func:`createBroadcastSocket`) raise
the raw ``OSError`` as Pyro4 does, because their callers word the error themselves
(``"cannot connect to ..."`` lives in the proxy, not here).

Fast paths (not in Pyro4, used by the layers above): :func:`receive_into` fills a caller's
buffer without a copy, and :func:`send_buffers` sends a header and a payload with one
``sendmsg`` instead of concatenating them. A receive never allocates more than
``_PREALLOC_LIMIT`` bytes ahead of the data that actually arrived, so a header that lies
about its length cannot make us reserve gigabytes.

No state is shared between threads except the two cached TLS contexts, which sit behind
``_ssl_lock``.
"""

from __future__ import annotations

import errno
import functools
import os
import select
import socket
import threading
import time
import weakref
from typing import TYPE_CHECKING

try:
    import ssl
except ImportError:  # Python built without OpenSSL
    ssl = None  # type: ignore[assignment]

from .configuration import config
from .errors import CommunicationError, ConnectionClosedError, TimeoutError

if TYPE_CHECKING:  # typing names stay out of the module's public namespace, as in Pyro4
    from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

    Address = Union[str, Tuple[Any, ...]]
    Buffer = Union[bytes, bytearray, memoryview]


def _errno_list(*names: str) -> List[int]:
    """The errno values of ``names`` that this platform defines (WSA* ones exist on Windows only)."""
    return [getattr(errno, name) for name in names if hasattr(errno, name)]


# Errors after which the same call may simply be tried again (non-blocking sockets).
ERRNO_RETRIES = _errno_list("EINTR", "EAGAIN", "EWOULDBLOCK", "EINPROGRESS",
                            "WSAEINTR", "WSAEWOULDBLOCK", "WSAEINPROGRESS")
ERRNO_BADF = _errno_list("EBADF", "WSAEBADF")
ERRNO_ENOTSOCK = _errno_list("ENOTSOCK", "WSAENOTSOCK")
ERRNO_EADDRNOTAVAIL = _errno_list("EADDRNOTAVAIL", "WSAEADDRNOTAVAIL")
ERRNO_EADDRINUSE = _errno_list("EADDRINUSE", "WSAEADDRINUSE")

_RETRYABLE = frozenset(ERRNO_RETRIES)
_PREALLOC_LIMIT = 1 << 20      # never reserve more than this ahead of received data
_JOIN_LIMIT = 64 * 1024        # below this, joining buffers is cheaper than separate sends
_IOV_BATCH = 512               # buffers per sendmsg call, well under any IOV_MAX
_READ_AHEAD_SIZE = 16 * 1024   # a read-ahead connection's reusable receive buffer (small calls fit)

# Sentinel: "leave the socket's timeout at the process default" (Pyro4 has the same name).
_GLOBAL_DEFAULT_TIMEOUT = object()


# --------------------------------------------------------------------------------------------
# Error translation: the one place where OSError becomes a Pyro error.
# --------------------------------------------------------------------------------------------

def _is_retryable(exc: OSError) -> bool:
    """True when ``exc`` only means "not now" (a non-blocking socket that isn't ready)."""
    if ssl is not None and isinstance(exc, ssl.SSLError):
        # SSL errors carry SSL_ERROR_* codes in errno, which must not be read as errno values.
        return isinstance(exc, (ssl.SSLWantReadError, ssl.SSLWantWriteError))
    if isinstance(exc, socket.timeout):
        return False
    code = exc.errno if exc.errno is not None else (exc.args[0] if exc.args else None)
    return code in _RETRYABLE


# First match wins; the messages are Pyro4's. socket.timeout is also the builtin TimeoutError
# (so an ETIMEDOUT from the kernel reads as a timeout too, as it does in Pyro4).
_ERROR_TABLE = (
    (socket.timeout, TimeoutError, "{action}: timeout"),
    (OSError, ConnectionClosedError, "{action}: connection lost: {exc}"),
)


def _translate(exc: OSError, action: str) -> CommunicationError:
    """The Pyro error for an OSError raised while ``action`` ("sending"/"receiving")."""
    for caught, pyro_error, message in _ERROR_TABLE:
        if isinstance(exc, caught):
            return pyro_error(message.format(action=action, exc=exc))
    raise TypeError("not an OSError: %r" % (exc,))


def _next_delay(delay: float) -> float:
    """Pyro4's back-off between retries: two short waits, then 0.1 s more each time."""
    if delay == 0.0:
        return 0.001
    if delay == 0.001:
        return 0.01
    return delay + 0.1


def _wait_ready(sock: Any, want_write: bool, delay: float) -> None:
    """Wait until ``sock`` is ready, but at most ``delay`` seconds (a bounded back-off)."""
    seconds = 0.00001 + delay
    try:
        fd = sock.fileno()
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(fd, select.POLLOUT if want_write else select.POLLIN)
            poller.poll(seconds * 1000.0)
        elif want_write:
            select.select([], [fd], [], seconds)
        else:
            select.select([fd], [], [], seconds)
    except (OSError, ValueError, AttributeError, TypeError):
        time.sleep(seconds)  # not a pollable descriptor: plain back-off, as Pyro4 does


def _retry_or_raise(sock: Any, exc: OSError, action: str, delay: float) -> float:
    """Raise the translated error, or wait a little and return the next back-off delay."""
    if not _is_retryable(exc):
        raise _translate(exc, action) from exc
    want_write = action == "sending"
    if ssl is not None and isinstance(exc, ssl.SSLError):
        want_write = isinstance(exc, ssl.SSLWantWriteError)
    _wait_ready(sock, want_write, delay)
    return _next_delay(delay)


# --------------------------------------------------------------------------------------------
# Addresses
# --------------------------------------------------------------------------------------------

_FAMILY_FOR_VERSION = {6: socket.AF_INET6, 4: socket.AF_INET, 0: socket.AF_UNSPEC}


def getIpVersion(hostnameOrAddress: str) -> int:
    """4 or 6: resolve the name (or take the literal) and look at the address's shape."""
    address = getIpAddress(hostnameOrAddress)
    if "." in address:
        return 4
    if ":" in address:
        return 6
    raise CommunicationError("Unknown IP address format" + address)


def _resolve(hostname: Optional[str], ipVersion: Any, workaround127: bool) -> str:
    family = _FAMILY_FOR_VERSION.get(ipVersion)
    if family is None:
        raise ValueError("unknown value for argument ipVersion.")
    infos = socket.getaddrinfo(hostname or socket.gethostname(), 80, family,
                               socket.SOCK_STREAM, socket.IPPROTO_TCP)
    ip = infos[0][4][0]
    if workaround127 and (ip.startswith("127.") or ip == "0.0.0.0"):
        ip = getInterfaceAddress("4.2.2.2")   # the interface that would route outwards
    return ip


def getIpAddress(hostname: Optional[str], workaround127: bool = False,
                 ipVersion: Optional[int] = None) -> str:
    """The IP address of ``hostname`` (None or "" means this machine).

    ``ipVersion``: 4, 6, 0 (any) or None (``config.PREFER_IP_VERSION``; any for a literal
    containing ':'). ``workaround127`` swaps a loopback answer for the outward interface's address.
    """
    if hostname and ":" in hostname and ipVersion is None:
        ipVersion = 0
    wanted = config.PREFER_IP_VERSION if ipVersion is None else ipVersion
    try:
        return _resolve(hostname, wanted, workaround127)
    except socket.gaierror:
        if wanted == 6:
            raise socket.error("unable to determine IPV6 address")
        return _resolve(hostname, 0, workaround127)


def getInterfaceAddress(ip_address: str) -> str:
    """The local address of the interface that would reach ``ip_address`` (no packet is sent)."""
    family = socket.AF_INET if getIpVersion(ip_address) == 4 else socket.AF_INET6
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.connect((ip_address, 53))   # UDP connect only picks a route
        return sock.getsockname()[0]
    finally:
        sock.close()


def family_str(sock: Any) -> str:
    """"IPv4", "IPv6", "Unix" or "???" for the socket's address family."""
    return _FAMILY_NAMES.get(sock.family, "???")


_FAMILY_NAMES = {socket.AF_INET: "IPv4", socket.AF_INET6: "IPv6"}
if hasattr(socket, "AF_UNIX"):
    _FAMILY_NAMES[socket.AF_UNIX] = "Unix"


# --------------------------------------------------------------------------------------------
# Receiving
# --------------------------------------------------------------------------------------------

def _waitall_flag(sock: Any) -> int:
    """MSG_WAITALL when configured and usable; TLS sockets accept no flags at all."""
    if config.USE_MSG_WAITALL and not hasattr(sock, "getpeercert"):
        return getattr(socket, "MSG_WAITALL", 0)
    return 0


def _not_enough_data(partial: bytes) -> ConnectionClosedError:
    err = ConnectionClosedError("receiving: not enough data")
    err.partialData = partial  # type: ignore[attr-defined]   # Pyro4 keeps what did arrive
    return err


def _recv_once(sock: Any, size: int, flags: int) -> bytes:
    """One ``recv`` of up to ``size`` bytes, retried while the socket merely isn't ready."""
    delay = 0.0
    while True:
        try:
            return sock.recv(size, flags) if flags else sock.recv(size)
        except OSError as exc:
            delay = _retry_or_raise(sock, exc, "receiving", delay)


def _fill(sock: Any, view: memoryview, flags: int) -> int:
    """Receive into ``view`` until it is full or the peer closes; return the bytes filled."""
    filled = 0
    total = len(view)
    delay = 0.0
    while filled < total:
        try:
            count = sock.recv_into(view[filled:], 0, flags)
        except OSError as exc:
            delay = _retry_or_raise(sock, exc, "receiving", delay)
            continue
        if not count:
            break
        filled += count
    return filled


def _recv_growing(sock: Any, size: int, first: bytes, flags: int) -> bytes:
    """Receive the rest of ``size`` bytes in chunks that grow only as data keeps arriving."""
    chunks = [first] if first else []  # type: List[Any]
    got = len(first)
    while got < size:
        chunk = bytearray(min(size - got, max(_PREALLOC_LIMIT, got)))
        count = _fill(sock, memoryview(chunk), flags)
        got += count
        if count < len(chunk):
            chunks.append(memoryview(chunk)[:count])
            raise _not_enough_data(b"".join(chunks))
        chunks.append(chunk)
    return b"".join(chunks)


def receiveData(sock: Any, size: int) -> bytes:
    """Exactly ``size`` bytes from ``sock``, or TimeoutError / ConnectionClosedError.

    On a premature close the error's ``partialData`` holds what did arrive.
    """
    if size < 0:
        raise ValueError("negative size")
    flags = _waitall_flag(sock)
    first = b""
    if size <= _PREALLOC_LIMIT:
        first = _recv_once(sock, size, flags)
        if len(first) == size:
            return first          # the common case: one syscall, no copy
        if not first:
            raise _not_enough_data(b"")
    return _recv_growing(sock, size, first, flags)


def _recv_some(sock: Any, buffer: Any) -> int:
    """One ``recv_into`` of whatever has arrived (at least one byte), retried while not ready."""
    delay = 0.0
    while True:
        try:
            count = sock.recv_into(buffer)
            break
        except OSError as exc:
            delay = _retry_or_raise(sock, exc, "receiving", delay)
    if not count:
        raise _not_enough_data(b"")
    return count


def _prefixed(head: bytes, rest: Any) -> bytes:
    """``head`` + ``rest()``; a premature close reports ``head`` as part of ``partialData`` too."""
    try:
        tail = rest()
    except ConnectionClosedError as exc:
        partial = getattr(exc, "partialData", None)
        if partial is not None:
            exc.partialData = head + partial  # type: ignore[attr-defined]
        raise
    return head + tail


def receive_into(sock: Any, buffer: Any) -> None:
    """Fill all of the writable ``buffer`` from ``sock`` without intermediate copies.

    For callers that already trust the size (the buffer is theirs); errors as :func:`receiveData`.
    """
    view = memoryview(buffer).cast("B")
    count = _fill(sock, view, _waitall_flag(sock))
    if count < len(view):
        raise _not_enough_data(bytes(view[:count]))


# --------------------------------------------------------------------------------------------
# Sending
# --------------------------------------------------------------------------------------------

def _send_loop(sock: Any, view: memoryview) -> None:
    """``send`` until done; each call gets the full socket timeout, as in Pyro4."""
    offset = 0
    delay = 0.0
    while offset < len(view):
        try:
            offset += sock.send(view[offset:])
        except OSError as exc:
            delay = _retry_or_raise(sock, exc, "sending", delay)


def sendData(sock: Any, data: Buffer) -> None:
    """Send all of ``data``; TimeoutError / ConnectionClosedError when that fails."""
    if sock.gettimeout() is None:
        try:
            sock.sendall(data)
        except OSError as exc:   # a blocking sendall that failed sent an unknown amount
            raise _translate(exc, "sending") from exc
        return
    _send_loop(sock, memoryview(data).cast("B"))


def _advance(views: List[memoryview], sent: int) -> List[memoryview]:
    """Drop ``sent`` bytes from the front of ``views``."""
    index = 0
    while index < len(views) and sent >= len(views[index]):
        sent -= len(views[index])
        index += 1
    rest = views[index:]
    if rest and sent:
        rest[0] = rest[0][sent:]
    return rest


def send_buffers(sock: Any, buffers: Iterable[Buffer]) -> None:
    """Send several buffers as one byte stream without concatenating large ones.

    Plain sockets use ``sendmsg`` (scatter/gather); TLS sockets, which have no ``sendmsg``,
    get small buffers joined (one TLS record) and large ones sent one after another.
    """
    views = [view for view in (memoryview(b).cast("B") for b in buffers) if len(view)]
    if not hasattr(sock, "sendmsg") or hasattr(sock, "getpeercert"):
        if sum(len(view) for view in views) <= _JOIN_LIMIT:
            views = [memoryview(b"".join(views))] if len(views) > 1 else views
        for view in views:
            sendData(sock, view)
        return
    delay = 0.0
    while views:
        try:
            sent = sock.sendmsg(views[:_IOV_BATCH])
        except OSError as exc:
            delay = _retry_or_raise(sock, exc, "sending", delay)
            continue
        views = _advance(views, sent)


# --------------------------------------------------------------------------------------------
# Socket options
# --------------------------------------------------------------------------------------------

def _set_option(sock: Any, level: int, option: Optional[int]) -> None:
    """Switch an option on; a socket that doesn't support it (e.g. Unix) stays as it is."""
    try:
        sock.setsockopt(level, option, 1)
    except Exception:
        pass


def setReuseAddr(sock: Any) -> None:
    """SO_REUSEADDR, if possible."""
    _set_option(sock, socket.SOL_SOCKET, socket.SO_REUSEADDR)


def setNoDelay(sock: Any) -> None:
    """TCP_NODELAY (Nagle off), if possible."""
    _set_option(sock, socket.IPPROTO_TCP, getattr(socket, "TCP_NODELAY", None))


def setKeepalive(sock: Any) -> None:
    """SO_KEEPALIVE, if possible."""
    _set_option(sock, socket.SOL_SOCKET, socket.SO_KEEPALIVE)


def setNoInherit(sock: Any) -> None:
    """Keep the socket out of child processes (close-on-exec / no handle inheritance)."""
    os.set_inheritable(sock.fileno(), False)


# --------------------------------------------------------------------------------------------
# Creating sockets
# --------------------------------------------------------------------------------------------

_FORCED_IPV6_MESSAGES = {
    "bind": "IPv4 address is used bind argument with forceIPv6 argument:",
    "connect": "IPv4 address is used in connect argument with forceIPv6 argument:",
    "broadcast": "IPv4 address is used with forceIPv6 option:",
}


def _force_ipv6(ipv6: Optional[bool]) -> bool:
    """ipv6=None defers to ``config.PREFER_IP_VERSION``."""
    return bool(ipv6) or (ipv6 is None and config.PREFER_IP_VERSION == 6)


def _inet_family(address: Tuple[Any, ...], force_ipv6: bool, role: str) -> Tuple[int, Tuple[Any, ...]]:
    """Family for an (host, port, ...) tuple; IPv6 addresses become 4-tuples."""
    host = address[0]
    if not host:
        return (socket.AF_INET6 if force_ipv6 else socket.AF_INET), address
    if getIpVersion(host) == 4:
        if force_ipv6:
            raise ValueError(_FORCED_IPV6_MESSAGES[role] + host + ".")
        return socket.AF_INET, address
    if len(address) == 2:
        address = (host, address[1], 0, 0)
    return socket.AF_INET6, address


def _stream_family(bind: Any, connect: Any, force_ipv6: bool) -> Tuple[int, Any, Any]:
    """Pick the family for createSocket: a string address means a Unix socket."""
    if isinstance(bind, str) or isinstance(connect, str):
        return socket.AF_UNIX, bind, connect
    if not bind and not connect:
        return (socket.AF_INET6 if force_ipv6 else socket.AF_INET), bind, connect
    if type(bind) is tuple:
        family, bind = _inet_family(bind, force_ipv6, "bind")
        return family, bind, connect
    if type(connect) is tuple:
        family, connect = _inet_family(connect, force_ipv6, "connect")
        return family, bind, connect
    raise ValueError("unknown bind or connect format.")


def _wrap_tls(sock: socket.socket, context: Any, bind: Any, connect: Any) -> socket.socket:
    if bind:
        return context.wrap_socket(sock, server_side=True)
    # Pyro4 verifies the peer against the host it connects to; a Unix path is no host name.
    hostname = connect[0] if isinstance(connect, tuple) else None
    return context.wrap_socket(sock, server_side=False, server_hostname=hostname)


LISTEN_BACKLOG = max(socket.SOMAXCONN, 100)


def _bind_and_listen(sock: Any, bind: Any) -> None:
    if type(bind) is tuple and bind[1] == 0:
        bindOnUnusedPort(sock, bind[0])
    else:
        sock.bind(bind)
    try:
        # Pyro4 listens with a backlog of 100; a burst of connects (a reconnect storm) then
        # overflows the queue and every further connect waits for a SYN retry (1 s, 3 s, ...).
        # The system maximum (the kernel caps it at somaxconn) absorbs such a burst.
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        pass


def _connect(sock: Any, address: Any, timeout: Any) -> None:
    """connect(); on a non-blocking socket, wait for it to complete and report its outcome."""
    try:
        sock.connect(address)
        return
    except OSError as exc:
        if exc.errno not in _RETRYABLE:
            raise
    wait = 0.1 if timeout is _GLOBAL_DEFAULT_TIMEOUT or timeout is None or timeout < 0.1 else timeout
    while True:
        _, writable, failed = select.select([], [sock], [sock], wait)
        if writable or failed:
            break
    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if failed or code:
        raise OSError(code or errno.ECONNREFUSED, "connect failed")


def createSocket(bind: Optional[Address] = None, connect: Optional[Address] = None,
                 reuseaddr: bool = False, keepalive: bool = True, timeout: Any = _GLOBAL_DEFAULT_TIMEOUT,
                 noinherit: bool = False, ipv6: Optional[bool] = False, nodelay: bool = True,
                 sslContext: Any = None) -> socket.socket:
    """A bound-and-listening or connected stream socket (Unix when the address is a string).

    ``timeout``: seconds, None or 0 for blocking, or left out for the process default.
    ``ipv6=None`` follows ``config.PREFER_IP_VERSION``. Port 0 binds a free port; an
    ``sslContext`` wraps the socket (server side when binding). Failures raise OSError.
    """
    if bind and connect:
        raise ValueError("bind and connect cannot both be specified at the same time")
    family, bind, connect = _stream_family(bind, connect, _force_ipv6(ipv6))
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if sslContext:
            sock = _wrap_tls(sock, sslContext, bind, connect)
        for wanted, setter in ((nodelay, setNoDelay), (reuseaddr, setReuseAddr), (noinherit, setNoInherit)):
            if wanted:
                setter(sock)
        if timeout == 0:
            timeout = None
        if timeout is not _GLOBAL_DEFAULT_TIMEOUT:
            sock.settimeout(timeout)
        if bind:
            _bind_and_listen(sock, bind)
        if connect:
            _connect(sock, connect, timeout)
        if keepalive:
            setKeepalive(sock)
    except BaseException:
        sock.close()
        raise
    return sock


def _broadcast_family(bind: Any, force_ipv6: bool) -> Tuple[int, Any]:
    if not bind:
        return (socket.AF_INET6 if force_ipv6 else socket.AF_INET), bind
    if type(bind) is not tuple:
        raise ValueError("unknown bind format: %r" % (bind,))
    return _inet_family(bind, force_ipv6, "broadcast")


def _bind_broadcast(sock: Any, bind: Tuple[Any, ...]) -> None:
    host = bind[0] or ""
    port = bind[1]
    if port == 0:
        bindOnUnusedPort(sock, host)
    elif len(bind) == 2:
        sock.bind((host, port))
    elif len(bind) == 4:
        sock.bind((host, port, 0, 0))
    else:
        raise ValueError("bind must be None, 2-tuple or 4-tuple")


def createBroadcastSocket(bind: Optional[Tuple[Any, ...]] = None, reuseaddr: bool = False,
                          timeout: Any = _GLOBAL_DEFAULT_TIMEOUT, ipv6: Optional[bool] = False) -> socket.socket:
    """A UDP socket for name server discovery (SO_BROADCAST on IPv4), optionally bound.

    Unlike createSocket, ``timeout=0`` here means non-blocking (as in Pyro4).
    """
    family, bind = _broadcast_family(bind, _force_ipv6(ipv6))
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        if reuseaddr:
            setReuseAddr(sock)
        if timeout is not _GLOBAL_DEFAULT_TIMEOUT:
            sock.settimeout(timeout)
        if bind:
            _bind_broadcast(sock, bind)
    except BaseException:
        sock.close()
        raise
    return sock


def bindOnUnusedPort(sock: Any, host: str = "localhost") -> int:
    """Bind an IPv4/IPv6 socket to a free port on ``host`` ('localhost' = loopback) and return it."""
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        if hasattr(socket, "SO_EXCLUSIVEADDRUSE"):   # Windows: nobody may steal the port
            _set_option(sock, socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE)
    if sock.family == socket.AF_INET:
        sock.bind(("127.0.0.1" if host == "localhost" else host, 0))
    elif sock.family == socket.AF_INET6:
        sock.bind(("::1" if host == "localhost" else host, 0, 0, 0))
    else:
        raise CommunicationError("unsupported socket family: " + str(getattr(sock.family, "name", sock.family)))
    return sock.getsockname()[1]


def findProbablyUnusedPort(family: int = socket.AF_INET, socktype: int = socket.SOCK_STREAM) -> int:
    """A port that was free a moment ago (another process may take it before you do)."""
    probe = socket.socket(family, socktype)
    try:
        return bindOnUnusedPort(probe)
    finally:
        probe.close()


def interruptSocket(address: Address) -> None:
    """Wake a server blocked in accept()/select() on ``address`` by connecting and hanging up."""
    try:
        sock = createSocket(connect=address, keepalive=False, timeout=None)
    except OSError:
        return
    try:
        try:
            sock.sendall(b"!" * 16)
        except (OSError, AttributeError):
            pass
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    finally:
        sock.close()


# --------------------------------------------------------------------------------------------
# TLS contexts: one server and one client context per process, built on first use.
# --------------------------------------------------------------------------------------------

_ssl_lock = threading.Lock()
_ssl_contexts = {}  # type: Dict[str, Any]


def _load_cacerts(context: Any, cacerts: str) -> None:
    if not cacerts:
        return
    if os.path.isdir(cacerts):
        context.load_verify_locations(capath=cacerts)
    else:
        context.load_verify_locations(cafile=cacerts)


def _server_context(servercert: str, serverkey: str, cacerts: str, keypassword: str) -> Any:
    if not os.path.isfile(servercert):
        raise IOError("server cert file not found")
    if serverkey and not os.path.isfile(serverkey):
        raise IOError("server key file not found")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(servercert, serverkey or None, keypassword or None)
    _load_cacerts(context, cacerts)
    # read now, as Pyro4 does: 2-way TLS (client certificates) only when asked for
    context.verify_mode = ssl.CERT_REQUIRED if config.SSL_REQUIRECLIENTCERT else ssl.CERT_NONE
    return context


def _client_context(clientcert: str, clientkey: str, cacerts: str, keypassword: str) -> Any:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if clientcert:
        if not os.path.isfile(clientcert):
            raise IOError("client cert file not found")
        context.load_cert_chain(clientcert, clientkey or None, keypassword or None)
    _load_cacerts(context, cacerts)
    return context


def getSSLcontext(servercert: str = "", serverkey: str = "", clientcert: str = "", clientkey: str = "",
                  cacerts: str = "", keypassword: str = "") -> Any:
    """The process-wide server context (when ``servercert`` is given) or client context.

    The first call of each kind builds it; later calls return that same object whatever
    their arguments (Pyro4's behaviour), so configure before the first connection. A build
    that fails caches nothing.
    """
    if ssl is None:
        raise ValueError("SSL requested but ssl module is not available")
    if servercert:
        if clientcert:
            raise ValueError("can't have both server cert and client cert")
        role = "server"
        build = functools.partial(_server_context, servercert, serverkey, cacerts, keypassword)
    else:
        role = "client"
        build = functools.partial(_client_context, clientcert, clientkey, cacerts, keypassword)
    with _ssl_lock:
        context = _ssl_contexts.get(role)
        if context is None:
            context = _ssl_contexts[role] = build()
        return context


def _clear_ssl_contexts() -> None:
    """Forget the cached contexts (for tests that need fresh certificates)."""
    with _ssl_lock:
        _ssl_contexts.clear()


# --------------------------------------------------------------------------------------------
# SocketConnection
# --------------------------------------------------------------------------------------------

class SocketConnection(object):
    """One Pyro connection: the socket plus what the daemon keeps per client.

    ``pyroInstances`` holds session-scoped objects, ``tracked_resources`` objects closed when
    the connection ends; user code (e.g. ``validateHandshake``) may add its own attributes.
    ``keep_open`` connections (sockets the user handed in) are never closed by Pyro.
    """

    _peer: "Optional[Tuple[Any, Any]]" = None  # (socket, its getpeername()) once asked, per instance

    def peer_address(self) -> Any:
        """The connected socket's peer address, asked of the OS once per socket, not per request.

        Raises OSError as ``getpeername`` does (nothing is cached then).
        """
        sock = self.sock
        cached = self._peer
        if cached is not None and cached[0] is sock:
            return cached[1]
        address = sock.getpeername()
        self._peer = (sock, address)
        return address

    def __init__(self, sock: Any, objectId: Optional[str] = None, keep_open: bool = False) -> None:
        self.sock = sock
        self.objectId = objectId
        self.pyroInstances: Dict[Any, Any] = {}
        self.tracked_resources: "weakref.WeakSet[Any]" = weakref.WeakSet()
        self.keep_open = keep_open
        # Read-ahead (opt-in, see recv): one recv_into of a reusable buffer may bring a whole small
        # message; bytes past what was asked for stay in _rbuf[_rstart:_rend] for the next recv.
        self.read_ahead = False
        self._rbuf: Optional[memoryview] = None
        self._rstart = 0
        self._rend = 0

    def __del__(self) -> None:
        if "sock" in self.__dict__:
            self.close()

    def __enter__(self) -> "SocketConnection":
        return self

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        self.close()

    def send(self, data: Buffer) -> None:
        sendData(self.sock, data)

    def send_buffers(self, buffers: Iterable[Buffer]) -> None:
        """Send ``buffers`` back to back, without joining large ones (see :func:`send_buffers`)."""
        send_buffers(self.sock, buffers)

    def recv(self, size: int) -> bytes:
        """Exactly ``size`` bytes (Pyro4's contract); served from read-ahead bytes first."""
        if self._rend:
            return self._recv_buffered(size)
        if self.read_ahead and 0 <= size < _READ_AHEAD_SIZE:
            return self._recv_ahead(size) if size else b""  # an empty payload costs no syscall
        return receiveData(self.sock, size)

    @property
    def buffered(self) -> int:
        """Bytes already received by a read-ahead and not yet handed out by ``recv``."""
        return self._rend - self._rstart

    def release_buffer(self) -> None:
        """Drop the read-ahead buffer while nothing is in it (an idle connection then costs no buffer)."""
        if not self._rend:
            self._rbuf = None

    def _recv_ahead(self, size: int) -> bytes:
        """One ``recv_into`` of whatever arrived (up to the buffer), keeping the bytes past ``size``."""
        view = self._rbuf
        if view is None:
            view = self._rbuf = memoryview(bytearray(_READ_AHEAD_SIZE))
        count = _recv_some(self.sock, view)
        if count >= size:
            if count > size:
                self._rstart, self._rend = size, count
            return view[:size].tobytes()
        return _recv_growing(self.sock, size, view[:count].tobytes(), _waitall_flag(self.sock))

    def _recv_buffered(self, size: int) -> bytes:
        start, end = self._rstart, self._rend
        take = min(size, end - start)
        data = self._rbuf[start:start + take].tobytes()  # type: ignore[index]
        if start + take == end:
            self._rstart = self._rend = 0
        else:
            self._rstart = start + take
        if take == size:
            return data
        if size - take >= _READ_AHEAD_SIZE:  # a large payload: one join, no second copy
            return _recv_growing(self.sock, size, data, _waitall_flag(self.sock))
        return _prefixed(data, lambda: self.recv(size - take))

    def recv_into(self, buffer: Any) -> None:
        """Fill all of ``buffer`` (see :func:`receive_into`), read-ahead bytes first."""
        view = memoryview(buffer).cast("B")
        if self._rend and len(view):
            take = min(len(view), self._rend - self._rstart)
            view[:take] = self._recv_buffered(take)
            view = view[take:]
        if len(view):
            receive_into(self.sock, view)

    def close(self) -> None:
        """Shut down and close the socket, drop session objects, close tracked resources."""
        if self.keep_open:
            return
        for step in (lambda: self.sock.shutdown(socket.SHUT_RDWR), self.sock.close):
            try:
                step()
            except Exception:
                pass
        self.pyroInstances.clear()
        for resource in list(self.tracked_resources):
            try:
                resource.close()
            except Exception:
                pass
        self.tracked_resources.clear()

    def fileno(self) -> int:
        return self.sock.fileno()

    def family(self) -> str:
        return family_str(self.sock)

    def setTimeout(self, timeout: Optional[float]) -> None:
        self.sock.settimeout(timeout)

    def getTimeout(self) -> Optional[float]:
        return self.sock.gettimeout()

    def getpeercert(self) -> Optional[Dict[str, Any]]:
        """The peer's TLS certificate (a dict), or None on a plain socket."""
        try:
            return self.sock.getpeercert()
        except AttributeError:
            return None

    timeout = property(getTimeout, setTimeout)
