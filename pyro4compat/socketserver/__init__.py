"""Transport servers for the Daemon: thread pool, multiplex (selector) and existing connection.

This package module also holds the few pieces every server shares: opening the listening
socket (and the TLS context for accepted connections), the ``locationStr`` rules, the
housekeeping cadence, a self-pipe to wake a blocked loop, and one table that says how a failed
request is logged before its connection is closed.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from typing import Any, Callable, Optional, Tuple

from .. import errors, socketutil
from .._tracebacks import formatTraceback
from ..configuration import config

# Pyro4's package module is empty: nothing for a star-import, the shared helpers stay private.
__all__: list = []

_LOOPBACK_PREFIX = "127."


def _tls_context() -> Any:
    """The server TLS context when ``config.SSL`` is on (read now, as Pyro4 does), else None."""
    if not config.SSL:
        return None
    return socketutil.getSSLcontext(servercert=config.SSL_SERVERCERT, serverkey=config.SSL_SERVERKEY,
                                    keypassword=config.SSL_SERVERKEYPASSWD, cacerts=config.SSL_CACERTS)


def _listen(log: logging.Logger, host: Optional[str], port: int,
            unixsocket: Optional[str]) -> Tuple[socket.socket, str, Any]:
    """Bind and listen; return ``(socket, locationStr, tls_context)``.

    The listening socket itself stays plain and non-blocking: accepted connections are wrapped
    in TLS afterwards, off the accepting thread, so one client's slow TLS handshake can never
    stall ``accept``.
    """
    context = _tls_context()
    if context is not None:
        log.info("using SSL,  cert=%s  key=%s  cacerts=%s", config.SSL_SERVERCERT, config.SSL_SERVERKEY,
                 config.SSL_CACERTS)
    else:
        log.info("not using SSL")
    bind_location = unixsocket if unixsocket else (host, port)
    sock = socketutil.createSocket(bind=bind_location, reuseaddr=config.SOCK_REUSE, timeout=config.COMMTIMEOUT,
                                   noinherit=True, nodelay=config.SOCK_NODELAY)
    sock.setblocking(False)
    sockaddr = sock.getsockname()
    if unixsocket:
        return sock, "./u:" + unixsocket, context
    if sockaddr[0].startswith(_LOOPBACK_PREFIX):
        if host is None or host.lower() != "localhost" and not host.startswith(_LOOPBACK_PREFIX):
            log.warning("weird DNS setup: %s resolves to localhost (127.x.x.x)", host)
    return sock, _location(host or sockaddr[0], port or sockaddr[1]), context


def _location(host: str, port: int) -> str:
    """``host:port``, with IPv6 hosts in brackets."""
    if ":" in host:
        return "[%s]:%d" % (host, port)
    return "%s:%d" % (host, port)


def _close_listener(sock: Any) -> None:
    """Close a listening socket and remove its Unix socket file (if it was one)."""
    try:
        sockname = sock.getsockname()
    except OSError:
        sockname = None
    try:
        sock.close()
    except OSError:
        pass
    if isinstance(sockname, str) and sockname and os.path.exists(sockname):
        try:
            os.remove(sockname)
        except OSError:
            pass


# Linux's accept() never passes the listener's O_NONBLOCK on to the new socket, so there an
# accepted socket is in the mode its ``gettimeout()`` reports. BSD and macOS do pass it on
# (and Python's accept() only corrects that for a listener with a positive timeout).
_ACCEPTED_MODE_KNOWN = sys.platform.startswith("linux")


def _prepare_accepted(csock: socket.socket) -> None:
    """Give an accepted socket the configured timeout (blocking when COMMTIMEOUT is 0).

    Where the socket is known to be in that mode already, nothing is called: a
    ``settimeout`` is an ``ioctl`` per accepted connection.
    """
    timeout = config.COMMTIMEOUT or None
    if _ACCEPTED_MODE_KNOWN and csock.gettimeout() == timeout:
        return
    csock.settimeout(timeout)


def _housekeeping_interval() -> float:
    """Seconds between housekeeping runs: Pyro4's ``min(POLLTIMEOUT, max(COMMTIMEOUT, 5))``.

    Pyro4 would spin when POLLTIMEOUT is 0; we fall back to the ``max(COMMTIMEOUT, 5)`` part.
    """
    slow = max(config.COMMTIMEOUT or 0, 5)
    interval = min(config.POLLTIMEOUT or 0, slow)
    return interval if interval > 0 else slow


def _poll_timeout() -> Optional[float]:
    """How long one wait of a request loop may last before ``loopCondition`` is checked again."""
    return config.POLLTIMEOUT if config.POLLTIMEOUT and config.POLLTIMEOUT > 0 else None


class _Waker(object):
    """A socket pair: writing one byte wakes a thread blocked in select() on the read end."""

    def __init__(self) -> None:
        self.reader, self.writer = socket.socketpair()
        self.reader.setblocking(False)
        self.writer.setblocking(False)

    def fileno(self) -> int:
        return self.reader.fileno()

    def wake(self) -> None:
        try:
            self.writer.send(b"\0")
        except OSError:
            pass  # buffer full (already awake) or closed (shutting down): nothing to do

    def drain(self) -> None:
        try:
            while self.reader.recv(4096):
                pass
        except OSError:
            pass

    def close(self) -> None:
        self.reader.close()
        self.writer.close()


# How a failed request is logged, first matching class wins. The connection is closed in every case.
_REQUEST_ERROR_LOG = (
    (errors.ConnectionClosedError, logging.DEBUG, "disconnected {client}"),
    (OSError, logging.DEBUG, "disconnected {client}"),
    (errors.SecurityError, logging.DEBUG, "security error on client {client}: {exc}"),
    (errors.TimeoutError, logging.WARNING, "error during handleRequest: {exc}"),
)


class _LoopGuard(object):
    """Counts the threads inside ``loop()``/``events()``: after ``close()`` the last one out tears down.

    It also owns the shutdown grace. ``shutdown()`` refuses new connections at once; a running
    ``loop()`` then goes on serving the connections that are open (a client that unregisters
    from a name server while it shuts down still gets its answer) until none is left or
    ``grace`` seconds have passed, and closes the server as it returns. Without a ``loop()``
    running (an external event loop calling ``events()``), or with no grace, it closes now.

    Subclasses set ``_lock``, ``_closed``, ``_inside``, ``_looping``, ``_drain_until`` and
    ``grace`` in ``__init__``/``init`` and provide ``_usable()``, ``_teardown()``,
    ``_stop_accepting()``, ``_open_connections()`` and ``wakeup()``.
    """

    _lock: threading.Lock
    _closed: bool
    _inside: int
    _looping: int
    _drain_until: Optional[float]
    grace: float
    shutting_down: bool

    def _usable(self) -> bool:
        raise NotImplementedError

    def _teardown(self) -> None:
        raise NotImplementedError

    def _stop_accepting(self) -> None:
        raise NotImplementedError

    def _open_connections(self) -> int:
        raise NotImplementedError

    def wakeup(self) -> None:
        raise NotImplementedError

    def serving_here(self) -> bool:
        """Is the calling thread one that serves this server's requests outside the loop thread?"""
        return False

    def _enter(self, looping: bool = False) -> bool:
        with self._lock:
            if self._closed or not self._usable():
                return False
            self._inside += 1
            self._looping += looping
            return True

    def _leave(self, looping: bool = False) -> None:
        with self._lock:
            self._inside -= 1
            self._looping -= looping
            teardown = self._closed and self._inside == 0
        if teardown:
            self._teardown()

    def _keep_looping(self, loopCondition: Callable[[], bool]) -> bool:
        """``loop()``'s test before each turn: the caller's condition, or a grace still running."""
        if self._closed:
            return False
        until = self._drain_until
        if until is None:
            return not self.shutting_down and loopCondition()
        return self._open_connections() > 0 and time.monotonic() < until

    def _turn_timeout(self, timeout: Optional[float]) -> Optional[float]:
        """A turn's wait, cut short so a grace that runs out is noticed on time."""
        until = self._drain_until
        if until is None:
            return timeout
        left = max(until - time.monotonic(), 0.0)
        return left if timeout is None else min(timeout, left)

    def shutdown(self) -> bool:
        """Refuse new connections now; True if a running loop serves the open ones for the grace first."""
        self.shutting_down = True
        with self._lock:
            drain = self._looping > 0 and not self._closed and self.grace > 0 and self._drain_until is None
            if drain:
                self._drain_until = time.monotonic() + self.grace
        if not drain:
            self.close()
            return False
        self._stop_accepting()
        self.wakeup()
        return True

    def close(self) -> None:
        raise NotImplementedError


def _shutdown_grace() -> float:
    """``config.SHUTDOWN_GRACE`` in seconds, read when a server starts; a bad value is refused here."""
    value = config.SHUTDOWN_GRACE
    try:
        grace = float(value)
    except (TypeError, ValueError):
        grace = -1.0
    if not grace >= 0.0:    # also refuses NaN
        raise ValueError("config.SHUTDOWN_GRACE (PYRO_SHUTDOWN_GRACE) must be a number of seconds >= 0, "
                         "not %r" % (value,))
    return grace


def _log_request_error(log: logging.Logger, exc: BaseException, client: Any) -> None:
    """Log why a connection is being dropped, the way Pyro4's transports word it."""
    for cls, level, text in _REQUEST_ERROR_LOG:
        if isinstance(exc, cls):
            if log.isEnabledFor(level):
                log.log(level, text.format(client=client, exc=exc))
            return
    tb = formatTraceback(type(exc), exc, exc.__traceback__)
    log.warning("error during handleRequest: %s; %s", exc, "".join(tb))


def _log_handshake_error(log: logging.Logger, exc: BaseException) -> None:
    tb = formatTraceback(type(exc), exc, exc.__traceback__)
    log.warning("error during connect/handshake: %s; %s", exc, "\n".join(tb))


def _client_disconnect(log: logging.Logger, daemon: Any, conn: Any) -> None:
    """Tell the daemon a handshaken client is gone; a failing hook is logged, never raised."""
    try:
        daemon._clientDisconnect(conn)
    except Exception as exc:
        log.warning("Error in clientDisconnect: " + str(exc))
