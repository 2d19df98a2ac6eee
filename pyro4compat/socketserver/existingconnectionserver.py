"""Transport for one connection the user already has (``Daemon(connected_socket=...)``).

Theory of operation
-------------------
There is no listening socket and no handshake (both ends were set up by the user, e.g. with
``socket.socketpair()``). The loop waits until the socket is readable, or until the waker says
``shutdown()``/``close()`` was called, at most ``POLLTIMEOUT`` seconds at a time (so
``loopCondition`` is honoured), then lets ``daemon.handleRequest(conn)`` read and answer one
message. The socket belongs to the user and is never closed here. As in Pyro4, a timeout or
a failed request leaves the connection in service, while a lost connection or a security error
ends it; so does a protocol error (Pyro4 would keep reading a stream that lost its message
boundaries). When it ends, the daemon's ``_clientDisconnect`` runs once and the connection's
tracked resources are closed (Pyro4 does neither), so a vanished peer's streams and resources
are not kept forever.
"""

from __future__ import annotations, print_function

import logging
import select
import socket
import sys
import time
from typing import Any, Callable, List, Optional

from .. import errors, socketutil
from .._star import lazy_modules
from ..configuration import config
from . import _client_disconnect, _housekeeping_interval, _log_request_error, _poll_timeout, _Waker

try:
    import ssl
except ImportError:  # Python built without OpenSSL
    ssl = None  # type: ignore[assignment]

# Pyro4's module has no __all__, so its star-import also yields what it imported: the second line.
__all__ = ["SocketServer_ExistingConnection",
           "config", "errors", "log", "logging", "print_function", "socket", "socketutil", "ssl", "sys", "util"]
# ``util`` is a facade that the package's own modules do not import; bound when first asked for.
__getattr__ = lazy_modules(__name__, {"util": "pyro4compat.util"})

log = logging.getLogger("Pyro4.existingconnectionserver")

# Failures after which the connection is over (everything else: log, keep serving). Pyro4 keeps
# reading after a ProtocolError too, from a stream whose message boundaries are lost; we stop.
_CONNECTION_ENDING = (OSError, errors.ConnectionClosedError, errors.SecurityError, errors.ProtocolError)


def _location(connected_socket: Any) -> str:
    name = connected_socket.getsockname()
    if hasattr(socket, "AF_UNIX") and connected_socket.family == socket.AF_UNIX:
        return "./u:" + (name or "<<not-bound>>")
    host, port = name[:2]
    return ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)


class SocketServer_ExistingConnection(object):
    """Serves a single, already connected socket."""

    def __init__(self) -> None:
        self.sock: Any = None
        self.daemon: Any = None
        self.locationStr: Optional[str] = None
        self.conn: Optional[socketutil.SocketConnection] = None
        self.shutting_down = False
        self._waker: Optional[_Waker] = None
        self._ended = False
        self._looping = False
        self._next_housekeeping = 0.0

    def init(self, daemon: Any, connected_socket: Any) -> None:
        connected_socket.getpeername()   # raises when it is not connected
        if config.SSL and not (ssl is not None and isinstance(connected_socket, ssl.SSLSocket)):
            raise socket.error("SSL configured for Pyro but existing socket is not a SSL socket")
        self.daemon = daemon
        self.sock = connected_socket
        log.info("starting server on user-supplied connected socket " + str(connected_socket))
        self.locationStr = _location(connected_socket)
        self.conn = socketutil.SocketConnection(connected_socket, keep_open=True)
        self._waker = _Waker()
        self._next_housekeeping = time.monotonic() + _housekeeping_interval()

    def __repr__(self) -> str:
        return "<%s on %s>" % (type(self).__name__, self.locationStr)

    def __del__(self) -> None:
        if getattr(self, "_waker", None) is not None:
            self._release_waker()

    @property
    def selector(self) -> Any:
        raise TypeError("single-connection server doesn't have multiplexing selector")

    @property
    def sockets(self) -> List[Any]:
        return [self.sock]

    def combine_loop(self, server: Any) -> None:
        raise errors.PyroError("cannot combine servers when using user-supplied connected socket")

    def events(self, eventsockets: Any) -> None:
        raise errors.PyroError("cannot combine events when using user-supplied connected socket")

    def shutdown(self) -> bool:
        """Stop now: the one connection is the user's, there is nothing to drain."""
        self.shutting_down = True
        self.close()
        return False

    def close(self) -> None:
        """Stop serving; the socket itself stays open (it is the user's)."""
        self.sock = None
        self.conn = None
        if self._looping:
            self.wakeup()       # the loop releases the waker on its way out
        else:
            self._release_waker()

    def _release_waker(self) -> None:
        waker, self._waker = self._waker, None
        if waker is not None:
            waker.close()

    def wakeup(self) -> None:
        if self._waker is not None:
            self._waker.wake()

    def handleRequest(self) -> bool:
        """Handle one request; False when it failed (and, if the connection is over, stop serving)."""
        conn = self.conn
        if conn is None:
            return False
        try:
            self.daemon.handleRequest(conn)
            return True
        except Exception as exc:
            _log_request_error(log, exc, self.locationStr)
            if isinstance(exc, _CONNECTION_ENDING):
                self._end(conn)
            return False

    def _end(self, conn: socketutil.SocketConnection) -> None:
        """The peer is gone: tell the daemon once, release the connection's resources, stop."""
        if not self._ended:
            self._ended = True
            _client_disconnect(log, self.daemon, conn)
            conn._release_session()
        self.shutdown()

    def _wait_readable(self, sock: Any) -> bool:
        """Wait until a request (or EOF) is there, shutdown was asked, or POLLTIMEOUT passed."""
        pending = getattr(sock, "pending", None)
        if pending is not None and pending():
            return True
        waker = self._waker
        watched = [sock, waker.reader] if waker is not None else [sock]
        try:
            ready = select.select(watched, [], [], _poll_timeout())[0]
        except (OSError, ValueError):
            return self.sock is not None    # a closed socket: let handleRequest report it
        if waker is not None and waker.reader in ready:
            waker.drain()
        return sock in ready

    def loop(self, loopCondition: Callable[[], bool] = lambda: True) -> None:
        log.debug("entering requestloop")
        self._looping = True
        try:
            while loopCondition() and self.sock is not None:
                try:
                    if self._wait_readable(self.sock):
                        self.handleRequest()
                    self._maybe_housekeep()
                except socket.timeout:
                    pass
                except KeyboardInterrupt:
                    log.debug("stopping on break signal")
                    break
        finally:
            self._looping = False
            if self.sock is None:
                self._release_waker()

    def _maybe_housekeep(self) -> None:
        now = time.monotonic()
        if now >= self._next_housekeeping and self.sock is not None:
            self._next_housekeeping = now + _housekeeping_interval()
            self.daemon._housekeeping()
