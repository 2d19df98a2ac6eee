"""One client connection of the asyncio server: the protocol on the loop, the work on a runner.

:class:`_Connection` is the ``asyncio.BufferedProtocol`` for one client (framing and
validation on the loop, its messages served one at a time by a runner of the server), and
:class:`AioConnection` what dispatch and user code see as that client's connection. How they
meet the loop, the run queue and the workers is the theory of operation in
:mod:`pyro4compat.aio.server`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Deque, List, Optional

from .. import _frames, errors
from .._sockio import SocketConnection
from ..configuration import config
from ..socketserver import _client_disconnect, _log_handshake_error, _log_request_error
from ..message import Message, next_item as validated_item
from ..socketserver._receiving import REQUIRED_TYPES, Item, ends_stream, hmac_key_of

if TYPE_CHECKING:
    from .server import AsyncioServer

__all__ = ["AioConnection"]

log = logging.getLogger("Pyro4.aioserver")

_MAX_QUEUED = 8          # complete messages a connection may have waiting before its reading pauses
_CLOSE = object()        # a work item's verdict: close the connection after its replies
# a worker may write a reply to a plain socket itself (see _Connection._send_now): write(2) on a
# socket is POSIX, and only the standard selector loop's transports are known to allow it
_DIRECT_WRITES = os.name == "posix"
_DIRECT_MAX = 64 * 1024  # larger replies (several chunks, or one big one) always go through the transport
_get_ident = threading.get_ident
_monotonic = time.monotonic


class AioConnection(SocketConnection):
    """What dispatch and user code see as the client connection (``current_context.client``).

    Same attributes as a ``SocketConnection`` (``pyroInstances``, ``tracked_resources``,
    ``sock``, ``peer_address()``, ``family()``, ``getpeercert()``); ``send`` from the worker that
    serves this connection's message goes to the outbox, from anywhere else straight to the loop.
    """

    def __init__(self, owner: "_Connection", transport: Any) -> None:
        super().__init__(transport.get_extra_info("socket"))
        self._owner = owner
        self._transport = transport
        self._outbox: List[bytes] = []
        self.worker: Optional[int] = None
        peer = transport.get_extra_info("peername")
        if peer is not None:
            self._peer = (self.sock, peer)

    def send(self, data: Any) -> None:
        if self._owner.lost:
            raise errors.ConnectionClosedError("sending: connection lost")
        if self.worker == _get_ident():
            self._outbox.append(bytes(data))
        else:
            self._owner.server.call_soon(self._owner.write, [bytes(data)])

    def send_buffers(self, buffers: Any) -> None:
        for buffer in buffers:
            self.send(buffer)

    def recv(self, size: int) -> bytes:
        """Never reads the socket (the loop does): whole messages wait in ``_pyroReceived``."""
        raise errors.ConnectionClosedError("receiving: not enough data")

    def close(self) -> None:
        self._owner.server.call_soon(self._owner.close_now)

    def __del__(self) -> None:
        pass

    def getpeercert(self) -> Any:
        ssl_object = self._transport.get_extra_info("ssl_object")
        return ssl_object.getpeercert() if ssl_object is not None else None

    def setTimeout(self, timeout: Optional[float]) -> None:
        pass  # COMMTIMEOUT is enforced by the server's sweep

    def getTimeout(self) -> Optional[float]:
        return config.COMMTIMEOUT or None

    timeout = property(getTimeout, setTimeout)


class _Connection(asyncio.BufferedProtocol):
    """One client: framing on the loop, one message at a time to the workers (module docstring)."""

    def __init__(self, server: "AsyncioServer") -> None:
        self.server = server
        self.daemon = server.daemon
        self.reader = _frames.FrameReader(config.MAX_MESSAGE_SIZE, discard_oversized=True)
        self.queue: Deque[Item] = collections.deque()   # received items waiting for this connection's worker
        self.frames = 0              # frames seen: the first must be the CONNECT
        self.connected = False
        self.busy = False            # a worker is serving this connection (guarded by lock)
        self.lock = threading.Lock()  # busy and the queue's head, between the loop and the worker
        self.unsent = 0              # completions a worker handed to the loop, not yet written
        self.lost = False
        self.reading_paused = False
        self.write_paused_at: Optional[float] = None
        self.heard_at = time.monotonic()
        self.transport: Any = None
        self.conn: Any = None
        self.direct_fd = -1          # >= 0: a worker may write a reply to this descriptor itself (see _send_now)

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.conn = AioConnection(self, transport)
        self.server.connections.add(self)
        if _DIRECT_WRITES and transport.get_extra_info("sslcontext") is None and isinstance(
                self.server.evloop, asyncio.SelectorEventLoop):
            self.direct_fd = transport.get_extra_info("socket").fileno()

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.server.recv_buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self.server.recv_view[:nbytes])

    def data_received(self, data: Any) -> None:
        """What the socket gave (a view of the server's receive buffer, valid until this returns)."""
        self.heard_at = _monotonic()
        reader, queue = self.reader, self.queue
        whole = reader.feed(data)
        hmac_key = hmac_key_of(self.daemon)
        while not self.lost:
            item = validated_item(reader, REQUIRED_TYPES[self.frames > 0], hmac_key)
            if item is None:
                break
            self.frames += 1
            queue.append(item)
            if type(item) is not Message and ends_stream(item):
                self.transport.pause_reading()    # the stream lost its place: nothing after this is read
                self.reading_paused = True
                break
            if whole or not reader.holds_bytes:
                break     # (the usual case: one request per receive, no second look needed)
        if len(queue) >= _MAX_QUEUED and not self.reading_paused:
            self.transport.pause_reading()
            self.reading_paused = True
        self.kick()

    def eof_received(self) -> Optional[bool]:
        return None   # close our side too

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        if not self.transport.is_closing():
            self.transport.abort()   # TLS before Python 3.11: a peer's EOF leaves this transport "open"
        self.server.connections.discard(self)
        with self.lock:
            self.lost = True
            self.queue.clear()
            busy = self.busy
        if not busy:
            self._gone()   # else the worker's last completion does it

    def pause_writing(self) -> None:
        self.write_paused_at = time.monotonic()

    def resume_writing(self) -> None:
        self.write_paused_at = None
        self.kick()

    # --- work ------------------------------------------------------------------------------------

    def _serve_item(self, item: Item) -> Any:
        """On a worker: the handshake or ``daemon.handleRequest`` for one received item (a message,
        or the receive error that stands for one), as the socket servers do; the verdict says
        whether the connection ends here (a remote ``sys.exit()`` too, as in Pyro4: the connection
        ends, not the server)."""
        conn = self.conn
        conn._pyroReceived = item
        try:
            if self.connected:
                self.daemon.handleRequest(conn)
            elif self.daemon._handshake(conn):
                self.connected = True
            else:
                return _CLOSE
        except BaseException as exc:
            if self.connected:
                _log_request_error(log, exc, conn)
            else:
                _log_handshake_error(log, exc)
            return _CLOSE
        finally:
            conn._pyroReceived = None
        return _CLOSE if type(item) is not Message and ends_stream(item) else None

    def kick(self) -> None:
        """Hand the next queued message to a worker, unless one is in flight or writing is stuck."""
        if self.reading_paused and len(self.queue) < _MAX_QUEUED // 2 and not self.server.stopping:
            self.reading_paused = False
            self.transport.resume_reading()
        with self.lock:
            if self.busy or self.lost or self.write_paused_at is not None or not self.queue:
                return
            item = self.queue.popleft()
            self.busy = True
        self.server.run(self, item)

    def _run(self, item: Item) -> None:
        """On a worker: this connection's messages through the daemon, in order, while more are queued.

        Each message's replies go to the loop as soon as it is done; a pipelining client's next
        message is taken from the queue right here (under ``lock``), without a trip through the loop.
        """
        conn, server, lock, queue = self.conn, self.server, self.lock, self.queue
        conn.worker = _get_ident()
        while True:
            verdict = self._serve_item(item)
            outbox, conn._outbox = conn._outbox, []
            with lock:
                more = verdict is None and len(queue) > 0 and not self.lost and self.write_paused_at is None
                if more:
                    item = queue.popleft()
                else:
                    conn.worker = None
                    self.busy = False
                    if (verdict is None and len(outbox) == 1 and not server._runq and self.direct_fd >= 0
                            and len(outbox[0]) <= _DIRECT_MAX and server.quiet()):
                        outbox = self._send_now(outbox[0])
                # the loop hears of this message only when it has something to do for it
                tell_loop = outbox or verdict is not None or self.lost or self.reading_paused
                if tell_loop:
                    self.unsent += 1
            if tell_loop:
                server.complete(self, outbox, verdict)
            if not more:
                return
            if server._runq:   # others wait: this connection's next message takes its turn behind them
                conn.worker = None
                server.run_later(self, item)
                return

    def _done(self, outbox: List[bytes], verdict: Any) -> None:
        with self.lock:   # written and counted in one step: a worker's _send_now sees both or neither
            self.unsent -= 1
            if outbox:
                self._write_locked(outbox)
        if verdict is _CLOSE:
            self.close_now()
        if self.lost:
            if not self.busy:
                self._gone()
        elif self.queue or self.reading_paused:
            self.kick()   # (else nothing to hand over or resume: only the loop adds to the queue)

    def write(self, chunks: List[bytes]) -> None:
        """On the loop: through the transport, under ``lock`` (see :meth:`_send_now`)."""
        with self.lock:
            self._write_locked(chunks)

    def _write_locked(self, chunks: List[bytes]) -> None:
        """On the loop: a lone small reply to an idle plain socket goes out with one ``write(2)``
        (what the transport would do, without its bookkeeping); anything else through the transport."""
        transport = self.transport
        if transport.is_closing():
            return
        if len(chunks) > 1:
            transport.writelines(chunks)
            return
        data = chunks[0]
        if self.direct_fd >= 0 and len(data) <= _DIRECT_MAX and not transport.get_write_buffer_size():
            data = self._write_direct(data)
            if not data:
                return
        transport.write(data)

    def _write_direct(self, data: bytes) -> bytes:
        """One ``write(2)`` of ``data`` to the plain socket; what did not go out (all of it on an
        error: would block, interrupted, the peer went away; the transport finds out)."""
        try:
            sent = os.write(self.direct_fd, data)
        except OSError:
            return data
        return data[sent:] if sent else data

    def _send_now(self, data: bytes) -> List[bytes]:
        """On the worker, ``lock`` held: write a small reply straight to the socket; what is left for the loop.

        Only while no completion of this connection is on its way to the loop (``unsent``) and
        the transport holds nothing unwritten: the loop writes under ``lock`` and counts the
        completion in the same step, and asyncio's own flushing keeps its buffer non-empty until
        the kernel has the bytes, so replies never overtake each other. The descriptor cannot be
        closed and reused meanwhile: asyncio calls ``connection_lost`` (which takes ``lock`` and
        sets ``lost``) before it closes the socket. What does not go out whole, and any error,
        is left to the transport, which reports errors its own way.
        """
        transport = self.transport
        if self.lost or self.unsent or transport.get_write_buffer_size() or transport.is_closing():
            return [data]
        rest = self._write_direct(data)
        return [rest] if rest else []

    def in_flight(self) -> bool:
        """A message of this connection is queued, being served, or its reply not yet written."""
        return self.busy or bool(self.queue) or self.unsent > 0

    def stalled(self, now: float, commtimeout: float) -> bool:
        """Silent for COMMTIMEOUT mid-message or before the handshake, or not reading its replies."""
        if self.write_paused_at is not None and now - self.write_paused_at > commtimeout:
            return True
        if self.in_flight():
            return False
        return now - self.heard_at > commtimeout and (self.frames == 0 or self.reader.in_frame)

    def close_now(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _gone(self) -> None:
        """The connection ended and no message of it is in flight: the daemon's hook, once."""
        if self.connected:
            self.connected = False
            conn, daemon = self.conn, self.daemon

            def disconnect() -> None:
                _client_disconnect(log, daemon, conn)
                conn._release_session()

            self.server.pool.submit(disconnect)
        else:
            self.conn._release_session()
