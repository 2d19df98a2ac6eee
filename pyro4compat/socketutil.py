"""Sockets for Pyro: creation, addresses, options and TLS contexts; Pyro4's ``socketutil``.

Theory of operation
-------------------
Everything above this module (proxies, daemons, socket servers) talks to the network through
:class:`SocketConnection` or :func:`receiveData` / :func:`sendData`, which live in
:mod:`pyro4compat._sockio` (the one place where socket errors become Pyro errors) and are
re-exported here under Pyro4's names. This module creates the sockets. The creation helpers
(:func:`createSocket`, :func:`createBroadcastSocket`) raise the raw ``OSError`` as Pyro4 does,
because their callers word the error themselves (``"cannot connect to ..."`` lives in the
proxy, not here).

No state is shared between threads except the two cached TLS contexts, which sit behind
``_ssl_lock``.
"""

from __future__ import annotations

import errno
import functools
import os
import select
import socket
import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING

try:
    import fcntl  # noqa: F401 (a star-import name, see __all__)
    _have_fcntl = True
except ImportError:  # Windows, where Pyro4's module has no such name either
    _have_fcntl = False

try:
    import ssl
except ImportError:  # Python built without OpenSSL
    ssl = None  # type: ignore[assignment]

from .configuration import config
from .errors import CommunicationError, ConnectionClosedError, TimeoutError  # noqa: F401 (Pyro4 has them here)

if TYPE_CHECKING:  # typing names stay out of the module's public namespace, as in Pyro4
    from typing import Any, Dict, Optional, Tuple

    from ._sockio import Address


from ._sockio import (ERRNO_BADF, ERRNO_EADDRINUSE, ERRNO_EADDRNOTAVAIL, ERRNO_ENOTSOCK,  # noqa: F401
                      ERRNO_RETRIES, _GLOBAL_DEFAULT_TIMEOUT, _RETRYABLE, SocketConnection, family_str,
                      receive_into, receiveData, send_buffers, sendData)

basestring = str  # Pyro4's Python 2 shim, still a name of its module

# Pyro4's module has no __all__: its star-import yields its functions and everything it imported.
__all__ = ["SocketConnection", "bindOnUnusedPort", "createBroadcastSocket", "createSocket", "family_str",
           "findProbablyUnusedPort", "getInterfaceAddress", "getIpAddress", "getIpVersion", "getSSLcontext",
           "interruptSocket", "receiveData", "sendData", "setKeepalive", "setNoDelay", "setNoInherit",
           "setReuseAddr", "ERRNO_BADF", "ERRNO_EADDRINUSE", "ERRNO_EADDRNOTAVAIL", "ERRNO_ENOTSOCK",
           "ERRNO_RETRIES", "CommunicationError", "ConnectionClosedError", "TimeoutError",
           "basestring", "config", "errno", "os", "select", "socket", "ssl", "sys", "time", "weakref"]
if _have_fcntl:
    __all__.append("fcntl")


# --------------------------------------------------------------------------------------------
# Addresses
# --------------------------------------------------------------------------------------------

_FAMILY_FOR_VERSION = {6: socket.AF_INET6, 4: socket.AF_INET, 0: socket.AF_UNSPEC}


def _is_ipv4_literal(text: Any) -> bool:
    """A dotted-quad IPv4 address, which getaddrinfo would hand back unchanged."""
    try:
        socket.inet_pton(socket.AF_INET, text)
        return True
    except (OSError, TypeError, ValueError):
        return False


def getIpVersion(hostnameOrAddress: str) -> int:
    """4 or 6: resolve the name (or take the literal) and look at the address's shape."""
    if config.PREFER_IP_VERSION != 6 and _is_ipv4_literal(hostnameOrAddress):
        return 4    # what resolving it gives, without a getaddrinfo call on every connect
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
        if timeout is not _GLOBAL_DEFAULT_TIMEOUT and timeout != sock.gettimeout():
            sock.settimeout(timeout)  # (a fresh socket already is in its default mode: no syscall)
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
        if timeout is not _GLOBAL_DEFAULT_TIMEOUT and timeout != sock.gettimeout():
            sock.settimeout(timeout)  # (a fresh socket already is in its default mode: no syscall)
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


