"""The thread server's connections: what a worker (or the loop thread) does with one client.

Theory of operation
-------------------
See :mod:`.threadpoolserver` for where a connection may be (parked in the selector, queued,
held by one worker) and who may touch it: always exactly one thread at a time, so a job's
fields need no lock. A job keeps the connection's :class:`~pyro4compat._frames.FrameReader`
across all of those places: the loop thread feeds it while the connection is parked
(:meth:`ClientConnectionJob._receive`), a worker while it lingers for a next request, and a
partial message simply waits there for more bytes. Only a whole message (or the receive error
that stands for one) reaches the daemon, through ``daemon._handshake(conn)`` or
``daemon.handleRequest(conn)`` with the item waiting in ``conn._pyroReceived``.

Receives never wait, except a lingering worker's wait for the next message on a plain socket
on Linux, which is the receive itself (bounded in the kernel, see :func:`._receiving.linger_in_kernel`).
A worker's waits are bounded by its linger window (a busy-poll, then that receive or a poll);
a partial message gets no more than one window from its first bytes, unless it keeps arriving
fast (``_STEADY_BYTES`` per receive, ``_REST_WAIT`` more each time), so a trickling client can
never hold a worker. The usual request arrives whole into an idle reader and is taken apart
where it was received (``whole_frame``), without a trip through the reader.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from typing import TYPE_CHECKING, Any, Optional

from .. import _frames, errors, socketutil
from .._busypoll import begin_work, end_work, spin_seconds
from ..configuration import config
from ..message import Message
from . import _client_disconnect, _log_handshake_error, _log_request_error
from ..message import next_item as validated_item
from ..message import whole_item
from ._receiving import (DONTWAIT, RECEIVED_NOTHING, REQUIRED_TYPES, Item, ends_stream, hmac_key_of,
                         linger_in_kernel, plain_recv_into, receive_available, thread_buffer)

if TYPE_CHECKING:
    from .threadpoolserver import SocketServer_Threadpool

__all__ = ["ClientConnectionJob"]

log = logging.getLogger("Pyro4.threadpoolserver")
_client_disconnect_lock = threading.Lock()   # serializes daemon._clientDisconnect calls, as in Pyro4

_REST_WAIT = 0.002          # a worker's wait for more of a message that arrives steadily ...
_STEADY_BYTES = 16 * 1024   # ... at least this much per receive (a large payload, not a trickle)
_MAX_LINGER_SKIPS = 64      # requests without lingering after repeated empty windows, at most


def _has_poll() -> bool:
    return hasattr(select, "poll")


def _lost(text: str) -> errors.ConnectionClosedError:
    """The item for a connection that ended (EOF, socket error): closed without a word to the daemon."""
    exc = errors.ConnectionClosedError(text)
    exc._pyroLost = True  # type: ignore[attr-defined]
    return exc


class ClientConnectionJob(object):
    """One client connection and the work it brings to a worker thread (one call = one activation).

    The connection's :class:`~pyro4compat._frames.FrameReader` keeps what the client sent so
    far, whoever receives it (the loop thread while it is parked, the worker that holds it);
    ``ready`` is a complete message (or receive error) the loop thread found, for the worker.
    """

    def __init__(self, clientSocket: Any, clientAddr: Any, daemon: Any, server: "SocketServer_Threadpool") -> None:
        self.csock = socketutil.SocketConnection(clientSocket)
        self.csock._remember_peer(clientAddr)
        self.csock.spin_gate = server._may_spin
        self.caddr = clientAddr
        self.daemon = daemon
        self.server = server
        self.reader = _frames.FrameReader(config.MAX_MESSAGE_SIZE, discard_oversized=True)
        self.tls_pending = server._tls is not None
        self.ready: Optional[Item] = None
        self.connected = False      # handshake completed (only then does _clientDisconnect apply)
        self.ended = False          # _finish ran: the server counts this connection as open until then
        self.watched = False        # parked: watched for its next bytes (see _parking)
        self.armed = False          # its descriptor is in the epoll parking set (see _parking)
        self.fd = self.csock.sock.fileno()
        self._linger_skips = 0      # requests left that don't linger (see _serve_while_busy)
        self._linger_backoff = 1
        self.evicted = False        # one too many without a handshake: to be closed (see _evict)
        self.heard_at = time.monotonic()   # parked, or bytes arrived: the COMMTIMEOUT sweep's clock
        self._poller: Any = None
        self._pending = getattr(self.csock.sock, "pending", None)   # TLS: bytes decrypted, invisible to poll
        self._drained = True        # the reader is idle (see FrameReader.idle): _receive may take a frame apart itself
        self._plain_recv_into = plain_recv_into(self.csock.sock)   # None: TLS, a timeout or no MSG_DONTWAIT
        # a lingering worker's wait as one blocking recv (None: a poll, then a receive)
        self._window_recv_into = (self._plain_recv_into if self._plain_recv_into is not None
                                  and linger_in_kernel(self.csock.sock, server._linger_window) else None)

    def __call__(self) -> None:
        job: Optional[ClientConnectionJob] = self
        while job is not None:
            try:
                ended = job._serve_while_busy()
            except BaseException as exc:   # a fault of ours or of a duck-typed daemon: this connection only
                log.warning("error serving connection %s: %r", job.caddr, exc)
                job._finish()
                return
            job = job.server._take_over_accept() if ended else None

    def _serve_while_busy(self) -> bool:
        """Handshake and requests while whole ones keep coming; True when the connection ended, False if parked.

        Lingering is learnt per client: one whose next call comes later than the window (many
        clients sharing the machine, a slow network, a client thinking) only costs the worker a
        wake-up per call there. After a window that saw nothing the next requests skip lingering
        (1, 2, 4 ... up to 64 of them); one that catches a request brings lingering back at once.
        """
        server = self.server
        while not server._closed:
            if self._linger_skips:
                self._linger_skips -= 1
                item = self._next_item(0.0)
            else:
                linger = server._linger()
                item = self._next_item(linger)
                if linger:
                    if item is not None:
                        self._linger_backoff = 1
                    elif not self.reader.buffered:
                        self._linger_skips = self._linger_backoff
                        self._linger_backoff = min(self._linger_backoff * 2, _MAX_LINGER_SKIPS)
            if item is None:
                server._park(self)      # nothing whole within the linger window: the reader keeps the rest
                return False
            if server._closed:
                break       # shut down while we waited: serve nothing more
            if not self._serve_item(item):
                return True
        self._finish()
        return False

    def _next_item(self, linger: float) -> Optional[Item]:
        """The next whole message (or receive error), received within ``linger`` seconds; None: not yet.

        Never waits on a partial message past the window (counted from its first bytes), except
        while it keeps arriving at ``_STEADY_BYTES`` per receive (a large payload): then
        ``_REST_WAIT`` more each time.
        """
        # after a served message the reader is usually idle: nothing to take before waiting
        item = self._take() if self.ready is not None or not self._drained else None
        deadline = 0.0
        while item is None:
            if linger and self._drained and self._window_recv_into is not None:
                count = self._receive(in_window=True)
                if not count:
                    return None
            elif not self._wait_readable(linger):
                return None
            else:
                count = self._receive()
            if count < 0:
                return self.ready       # the connection is over: _receive left the error there
            item = self._take()
            if item is None:
                if count >= _STEADY_BYTES:
                    linger, deadline = max(linger, _REST_WAIT), 0.0
                elif not deadline:
                    deadline = self.heard_at + linger
                elif self.heard_at > deadline:
                    return None     # a trickle: the reader keeps it, the worker goes
        return item

    def _take(self) -> Optional[Item]:
        item, self.ready = self.ready, None
        if item is None:
            reader = self.reader
            item = validated_item(reader, REQUIRED_TYPES[self.connected], hmac_key_of(self.daemon))
            if item is not None:
                self._drained = reader.idle
        return item

    def _receive(self, in_window: bool = False) -> int:
        """One receive of what is there (TLS handshake steps first): bytes fed, 0 for none, -1 when over.

        ``in_window``: the lingering wait itself, one ``recv`` bounded by the socket's kernel
        receive timeout (see :func:`._receiving.linger_in_kernel`), where a ``poll`` and a
        ``recv`` cost a system call, a wait-queue set-up and a GIL round more; 0: nothing came.
        When the connection is over (EOF, a socket error) the error is left in ``ready``. The
        usual request arrives whole into an idle reader: it is taken apart right here (the same
        ``whole_frame`` the reader's ``feed`` would use) and left in ``ready``, validated.
        """
        sock = self.csock.sock
        try:
            if in_window:
                if spin_seconds():
                    self.csock.spin_until_readable()   # busy-polling first, as _wait_readable does
                buffer = thread_buffer()
                data = buffer[:self._window_recv_into(buffer)]
            elif self._drained and self._plain_recv_into is not None:   # receive_available's usual case
                buffer = thread_buffer()
                data = buffer[:self._plain_recv_into(buffer, 0, DONTWAIT)]
            else:
                if self.tls_pending:
                    sock.do_handshake()
                    self.tls_pending = False
                data = receive_available(sock, self.reader)
        except RECEIVED_NOTHING:
            return 0
        except (OSError, ValueError) as exc:
            self.ready = _lost("receiving: connection lost: %s" % exc)
            return -1
        if data is None:
            return 0
        if not data:
            self.ready = _lost("receiving: connection lost")
            return -1
        self.heard_at = time.monotonic()
        if self._drained:
            self.ready = whole_item(data, self.reader.max_message_size, REQUIRED_TYPES[self.connected],
                                    hmac_key_of(self.daemon))
            if self.ready is not None:
                return len(data)
            self._drained = False
        self.reader.feed(data)
        return len(data)

    def _wait_readable(self, wait: float) -> bool:
        """Is something to receive there (or EOF)? Waits up to ``wait`` seconds, busy-polling first."""
        pending = self._pending
        if pending is not None and pending():
            return True      # bytes decrypted and buffered inside the TLS object: invisible to poll
        if wait and spin_seconds() and self.csock.spin_until_readable():   # (off: not even the call)
            return True
        try:
            poller = self._poller
            if poller is None:
                if not _has_poll():
                    return bool(select.select([self.csock.sock], [], [], wait)[0])
                poller = self._poller = select.poll()
                poller.register(self.fd, select.POLLIN)
            return bool(poller.poll(wait * 1000.0))
        except (OSError, ValueError):
            return True      # let the receive meet the broken socket and report it

    def _serve_item(self, item: Item) -> bool:
        """The handshake or ``daemon.handleRequest`` for one item; False when the connection was closed."""
        csock = self.csock
        plain = type(item) is Message       # the usual item: a message, no error to look into
        if not plain and getattr(item, "_pyroLost", False):
            log.debug("disconnected %s", self.caddr)
            self._finish()
            return False
        tls = self.server._tls is not None
        if tls:
            csock.sock.settimeout(self.server._commtimeout or None)   # replies are sent blocking
        csock._pyroReceived = item
        begin_work(None)
        try:
            if self.connected:
                self.daemon.handleRequest(csock)
            elif self.daemon._handshake(csock):
                self.connected = True
                self.server._handshaken(self)
            else:
                self._finish()
                return False
        except BaseException as exc:     # SystemExit from a remote method too: Pyro4 serves on
            (_log_request_error(log, exc, self.caddr) if self.connected else _log_handshake_error(log, exc))
            self._finish()
            return False
        finally:
            csock._pyroReceived = None
            end_work()
        if not plain and ends_stream(item):   # the stream lost its place, even if an override swallowed the error
            self._finish()
            return False
        if tls:
            csock.sock.setblocking(False)
        return True

    def denyConnection(self, reason: str) -> None:
        """Refuse the client with CONNECTFAIL ``reason`` if its CONNECT is here already, then close."""
        log.warning("client connection was denied: " + reason)
        item, self.ready = self.ready, None
        try:
            if isinstance(item, Message):
                if self.server._tls is not None:
                    self.csock.sock.settimeout(self.server._commtimeout or None)
                self.csock._pyroReceived = item
                self.daemon._handshake(self.csock, denied_reason=reason)
        except Exception as exc:
            log.debug("could not send the refusal: %s", exc)
        self._finish()

    def _finish(self) -> None:
        """The connection's end: tell the daemon (once, if handshaken), then close the socket."""
        if self.connected:
            self.connected = False
            with _client_disconnect_lock:
                _client_disconnect(log, self.daemon, self.csock)
        self._poller = None
        self.csock._pyroReceived = None
        self.csock.close()
        if not self.ended:
            self.ended = True
            self.server._connection_ended(self)
