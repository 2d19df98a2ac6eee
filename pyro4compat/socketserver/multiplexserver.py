"""Multiplex transport (``SERVERTYPE="multiplex"``): one thread, one selector, calls strictly in turn.

Theory of operation
-------------------
Whoever runs :meth:`SocketServer_Multiplex.loop` (or calls :meth:`~SocketServer_Multiplex.events`
from an external loop) is the only thread that touches the selector and the clients' state.

* **Reading never blocks the loop.** Pyro4 reads a whole message with blocking ``recv`` calls, so
  one client sending a byte a second freezes every other client. Here each readable event gets
  one ``recv`` of what is there (TLS: until the TLS object has nothing buffered), fed into that
  connection's :class:`~pyro4compat._frames.FrameReader` (see :mod:`._receiving`, shared with
  the thread server). The rest of a large payload (``_frames.GATHER_FROM`` and up) is received
  into new ``bytes`` objects that the reader joins once, not copied through the shared receive
  buffer. Only complete messages, checked for size, type and HMAC, are dispatched: left in
  ``conn._pyroReceived``, through ``daemon._handshake(conn)`` and ``daemon.handleRequest(conn)``, the
  entry points of every server type, so a subclass overriding them is honoured here too.
  Before the handshake a receive error becomes the CONNECTFAIL Pyro4 would send; after it, it
  goes through ``handleRequest`` like a message (it raises there) and the connection is closed.
* **Refusals on the header**: a header over ``MAX_MESSAGE_SIZE`` is answered at once (CONNECTFAIL
  before the handshake, a ``MessageTooLargeError`` reply for its sequence number after it),
  before its body arrives; the body is then dropped as it arrives (never buffered) when within
  ``_protocol.discard_limit``, otherwise the connection is closed right after the answer.
* **Writing may block briefly**: replies go out with blocking sends bounded by ``COMMTIMEOUT``
  (as in Pyro4), so a client that stops reading stalls the loop until its socket buffer drains
  or the timeout hits.
* **TLS** handshakes run non-blocking in the loop (the listening socket stays plain); a failed
  one closes just that connection.
* **Accepting**: one connection per readiness event of the listening socket; a burst of
  connects is taken one per turn, between the requests that are ready.
* **A request's payload** is referenced only by its ``Message`` while it is served, so the
  daemon's drop after decoding frees a multi-megabyte payload before the call runs.
* **Housekeeping** runs every ``min(POLLTIMEOUT, max(COMMTIMEOUT, 5))`` seconds, not per event.
* **Stalled clients**: with ``COMMTIMEOUT`` set, a connection that has not completed its
  handshake, or is part-way through a message, and has sent nothing for that long is closed
  (before the handshake with Pyro4's CONNECTFAIL ``"receiving: timeout"``), where Pyro4's
  blocking ``recv`` would have timed out. An idle connection between messages stays, as in Pyro4.
* ``combine_loop(server)`` registers another server's ``sockets`` in this selector with that
  server as key data; ready sockets are handed to its ``events()``. A combined multiplex server
  keeps registering its new connections in the selector it was given.
* **Shutdown** from any thread, or from inside a call: the listening socket closes at once.
  While ``loop`` runs, the open connections are served on until none is left or the grace
  ends (see ``_LoopGuard``); then, or at once on ``close()``, the connections and the selector
  are released by the last thread leaving ``loop``/``events`` (after the current reply has
  been sent), or right away when none is inside.
"""

from __future__ import annotations, print_function

import logging
import os
import selectors
import socket
import sys
import threading
import time
from collections import defaultdict
from typing import Any, Callable, Dict, List, Optional

from .._star import lazy_modules
from .. import _busypoll, _frames, errors, socketutil
from ..configuration import config
from . import (_LoopGuard, _client_disconnect, _close_listener, _housekeeping_interval, _listen, _log_handshake_error,
               _log_request_error, _poll_timeout, _prepare_accepted, _shutdown_grace, _Waker)
from ..message import Message, next_item as validated_item
from ._receiving import REQUIRED_TYPES, TLS_WAIT, Item, ends_stream, hmac_key_of, receive_available

# Pyro4's module has no __all__, so its star-import also yields what it imported: the second line.
__all__ = ["SocketServer_Multiplex",
           "config", "defaultdict", "errors", "log", "logging", "os", "print_function", "selectors", "socket",
           "socketutil", "sys", "time", "util"]
# ``util`` is a facade that the package's own modules do not import; bound when first asked for.
__getattr__ = lazy_modules(__name__, {"util": "pyro4compat.util"})

log = logging.getLogger("Pyro4.multiplexserver")

_RECV_BUFFER = 1 << 20        # one reusable receive buffer per server


class _Client(object):
    """What the loop keeps per connection."""

    __slots__ = ("conn", "reader", "connected", "tls_pending", "peer", "heard_at")

    def __init__(self, conn: socketutil.SocketConnection, peer: Any, tls: bool) -> None:
        self.conn = conn
        self.reader = _frames.FrameReader(config.MAX_MESSAGE_SIZE, discard_oversized=True)
        self.connected = False
        self.tls_pending = tls
        self.peer = peer
        self.heard_at = time.monotonic()   # when the client last sent anything (see _sweep_stalled)

    def stalled(self, now: float, commtimeout: float) -> bool:
        """Silent for COMMTIMEOUT while the server waits for the rest of a handshake or message."""
        return now - self.heard_at > commtimeout and (not self.connected or self.reader.in_frame)


class SocketServer_Multiplex(_LoopGuard):
    """Multiplexed transport server for socket connections (selectors: epoll, kqueue, poll, select)."""

    def __init__(self) -> None:
        self.sock: Any = None
        self.daemon: Any = None
        self.locationStr: Optional[str] = None
        self.selector: Any = selectors.DefaultSelector()
        self.shutting_down = False
        self._own_selector = self.selector
        self._listener: Any = None
        self._tls: Any = None
        self._waker: Optional[_Waker] = None
        self._clients: Dict[Any, _Client] = {}
        self._view = memoryview(bytearray(_RECV_BUFFER))
        self._lock = threading.Lock()
        self._closed = False
        self._torn_down = False
        self._inside = 0
        self._looping = 0
        self._drain_until: Optional[float] = None
        self.grace = 0.0
        self._next_housekeeping = 0.0
        self._commtimeout = 0.0
        self._next_sweep = float("inf")
        self._spinner = _busypoll.Spinner()     # spins only while config.BUSYPOLL_US is on

    def init(self, daemon: Any, host: Optional[str], port: int, unixsocket: Optional[str] = None) -> None:
        log.info("starting multiplexed socketserver")
        log.debug("selector implementation: %s.%s", type(self.selector).__module__, type(self.selector).__name__)
        self.daemon = daemon
        self.grace = _shutdown_grace()
        self._listener, self.locationStr, self._tls = _listen(log, host, port, unixsocket)
        self.sock = self._listener
        self._waker = _Waker()
        self.selector.register(self._listener, selectors.EVENT_READ, self)
        self.selector.register(self._waker.reader, selectors.EVENT_READ, self)
        self._next_housekeeping = time.monotonic() + _housekeeping_interval()
        self._commtimeout = config.COMMTIMEOUT  # read once, as for the sockets' own timeouts
        if self._commtimeout:
            self._next_sweep = time.monotonic() + self._commtimeout

    def __repr__(self) -> str:
        return "<%s on %s; %d connections>" % (type(self).__name__, self.locationStr, len(self._clients))

    def __del__(self) -> None:
        if getattr(self, "_listener", None) is not None and not self._closed:
            try:
                self.close()
            except Exception:
                pass

    # --- the loop -------------------------------------------------------------------------------

    def loop(self, loopCondition: Callable[[], bool] = lambda: True) -> None:
        log.debug("entering multiplexed requestloop")
        if not self._enter(looping=True):
            return
        try:
            while self._keep_looping(loopCondition):
                try:
                    self._run_once()
                except KeyboardInterrupt:
                    log.debug("stopping on break signal")
                    break
        finally:
            if self._drain_until is not None:
                self.close()        # the grace is over (or no connection is left)
            self._leave(looping=True)

    def _run_once(self) -> None:
        """One turn: wait for readiness (spinning first when busy-polling is on), serve it, housekeep."""
        due = min(self._next_housekeeping, self._next_sweep)
        try:
            ready = None
            if self._spinner is not None and _busypoll.spin_seconds():
                ready = self._spinner.spin(self._select_now, _busypoll.idle)
            if not ready:
                timeout = max(due - time.monotonic(), 0.0)
                poll = _poll_timeout()
                if poll is not None and poll < timeout:
                    timeout = poll
                if self._drain_until is not None:
                    timeout = self._turn_timeout(timeout)
                ready = self.selector.select(timeout)
        except (OSError, ValueError):
            ready = []      # selector closed or interrupted: the loop condition decides
        mine: List[Any] = []
        others: Optional[Dict[Any, List[Any]]] = None   # other servers sharing this selector
        for key, mask in ready:
            if mask & selectors.EVENT_READ:
                if key.data is self:
                    mine.append(key.fileobj)
                else:
                    if others is None:
                        others = defaultdict(list)
                    others[key.data].append(key.fileobj)
        if mine:
            self._handle_ready(mine)
        if others:
            for server, fileobjs in others.items():
                server.events(fileobjs)
        if time.monotonic() >= due:   # (most turns skip the call; only housekeeping moves ``due``)
            self._maybe_housekeep()

    def _select_now(self) -> Any:
        return self.selector.select(0)

    def events(self, eventsockets: Any) -> None:
        """Handle the given ready sockets of this server (for external event loops)."""
        if not self._enter():
            return
        try:
            self._handle_ready(eventsockets)
            self._maybe_housekeep()
        finally:
            self._leave()

    def _handle_ready(self, eventsockets: Any) -> None:
        for fileobj in eventsockets:
            if self._closed:
                return
            if fileobj is self._listener:
                self._accept_ready()
            elif self._waker is not None and fileobj is self._waker.reader:
                self._waker.drain()
            else:
                client = self._clients.get(fileobj)
                if client is not None:
                    self._on_readable(client)

    def _maybe_housekeep(self) -> None:
        now = time.monotonic()
        if now >= self._next_sweep and not self._closed:
            self._sweep_stalled(now)
        if now >= self._next_housekeeping and not self._closed:
            self._next_housekeeping = now + _housekeeping_interval()
            try:
                self.daemon._housekeeping()
            except Exception as exc:
                log.warning("error during housekeeping: %s", exc)

    def _sweep_stalled(self, now: float) -> None:
        """Close the connections :meth:`_Client.stalled` names (checked a few times per COMMTIMEOUT)."""
        commtimeout = self._commtimeout
        self._next_sweep = now + max(commtimeout / 4.0, 0.05)
        for client in [c for c in self._clients.values() if c.stalled(now, commtimeout)]:
            if client.conn not in self._clients:
                continue    # dropped while an earlier one was answered
            if client.tls_pending:
                self._drop(client, None)    # no TLS session to answer through
            else:
                self._reject(client, errors.TimeoutError("receiving: timeout"))

    # --- connections ----------------------------------------------------------------------------

    def _accept_ready(self) -> None:
        """Accept one connection per readiness event.

        The selector is level-triggered, so more waiting connections are reported again on the
        next turn, after the requests that are ready now. A second ``accept`` here would nearly
        always fail with EAGAIN, and that exception cost each new connection more than the extra
        turn of the loop costs a burst.
        """
        listener = self._listener
        if listener is None:
            return      # closed by shutdown() meanwhile
        try:
            csock, caddr = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if self._closed or self._listener is None:
                return      # closed by shutdown() meanwhile
            if exc.errno in socketutil.ERRNO_BADF or exc.errno in socketutil.ERRNO_ENOTSOCK:
                raise errors.ConnectionClosedError("server socket closed") from exc
            log.warning("accept() failed '%s' with errno=%s, shouldn't happen", exc, exc.errno)
            return
        log.debug("connected %s - %s", caddr, "SSL" if self._tls is not None else "unencrypted")
        try:
            self._adopt(csock, caddr)
        except (OSError, ValueError) as exc:
            log.warning("cannot serve new connection %s: %s", caddr, exc)
            csock.close()

    def _adopt(self, csock: Any, caddr: Any) -> None:
        _prepare_accepted(csock)
        if self._tls is not None:
            csock = self._tls.wrap_socket(csock, server_side=True, do_handshake_on_connect=False)
            csock.setblocking(False)
        conn = socketutil.SocketConnection(csock)
        conn._remember_peer(caddr)
        self._clients[conn] = _Client(conn, caddr, self._tls is not None)
        self.selector.register(conn, selectors.EVENT_READ, self)

    def _on_readable(self, client: _Client) -> None:
        if self._commtimeout:
            client.heard_at = time.monotonic()     # only the COMMTIMEOUT sweep reads it
        if client.tls_pending and not self._advance_tls(client):
            return
        reader = client.reader
        try:
            data = receive_available(client.conn.sock, reader, self._view)
        except OSError as exc:
            self._drop(client, exc)
            return
        if data is None:
            return          # a spurious wake-up, or only part of a TLS record arrived
        if not data:
            self._drop(client, errors.ConnectionClosedError("receiving: connection lost"))
            return
        whole = reader.feed(data)
        hmac_key = hmac_key_of(self.daemon)
        conn = client.conn
        while not self._closed and conn in self._clients:
            item = validated_item(reader, REQUIRED_TYPES[client.connected], hmac_key)
            if item is None:
                return
            self._dispatch(client, item)
            if whole or not reader.holds_bytes:
                return      # (the usual case: one request per receive, no second look needed)

    def _advance_tls(self, client: _Client) -> bool:
        """Continue a non-blocking TLS handshake; True once it is complete."""
        try:
            client.conn.sock.do_handshake()
        except TLS_WAIT:
            return False    # (a wanted write is rare here: a fresh socket's send buffer is empty)
        except (OSError, ValueError) as exc:
            log.debug("TLS handshake with %s failed: %s", client.peer, exc)
            self._drop(client, None)
            return False
        client.tls_pending = False
        return True

    def _dispatch(self, client: _Client, item: Item) -> None:
        """One complete message (or receive error): the handshake or ``daemon.handleRequest``, replies blocking."""
        if client.connected:
            self._serve(client, item, self.daemon.handleRequest)
        elif isinstance(item, Exception):
            self._reject(client, item)
        else:
            self._serve(client, item, lambda conn: self._handshake(client))

    def _handshake(self, client: _Client) -> None:
        if self.daemon._handshake(client.conn):
            client.connected = True
        else:
            self._drop(client, None)

    def _serve(self, client: _Client, item: Item, work: Callable[[Any], Any]) -> None:
        """Leave ``item`` in ``conn._pyroReceived`` and run ``work(conn)``; any failure drops the connection.

        So does a receive error after which the stream can't go on, even when ``work`` (an
        overridden ``handleRequest``, say) swallowed it.
        """
        conn = client.conn
        conn._pyroReceived = item
        tls = self._tls is not None
        if tls:
            conn.sock.settimeout(config.COMMTIMEOUT or None)
        try:
            work(conn)
        except BaseException as exc:    # as Pyro4: a remote sys.exit() ends this connection, not the loop
            if client.connected:
                _log_request_error(log, exc, client.peer)
            else:
                _log_handshake_error(log, exc)
            self._drop(client, None)
            return
        finally:
            conn._pyroReceived = None
        if type(item) is not Message and ends_stream(item):
            self._drop(client, None)
        elif tls and client.conn in self._clients:
            conn.sock.setblocking(False)

    def _reject(self, client: _Client, exc: Exception) -> None:
        """A receive error: Pyro4 answers it with CONNECTFAIL before the handshake, else just closes."""
        if not client.connected:
            try:
                if self._tls is not None:
                    client.conn.sock.settimeout(config.COMMTIMEOUT or None)
                client.conn._pyroReceived = exc
                self.daemon._handshake(client.conn)
            except Exception as problem:
                _log_handshake_error(log, problem)
        else:
            _log_request_error(log, exc, client.peer)
        self._drop(client, None)

    def _drop(self, client: _Client, exc: Optional[BaseException]) -> None:
        """Forget a connection: unwatch it, tell the daemon (if handshaken), close it."""
        if exc is not None:
            _log_request_error(log, exc, client.peer)
        self._clients.pop(client.conn, None)
        try:
            self.selector.unregister(client.conn)
        except (KeyError, ValueError, OSError):
            pass
        if client.connected:
            client.connected = False
            _client_disconnect(log, self.daemon, client.conn)
        client.conn.close()

    # --- lifecycle ------------------------------------------------------------------------------

    def _usable(self) -> bool:
        return self._listener is not None or self._drain_until is not None

    def _open_connections(self) -> int:
        return len(self._clients)

    def _stop_accepting(self) -> None:
        """Unwatch and close the listening socket: the port (or socket file) frees now."""
        listener, self._listener, self.sock = self._listener, None, None
        if listener is not None:
            self._unwatch(listener)
            _close_listener(listener)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            now = self._inside == 0
        self._stop_accepting()
        if now:
            self._teardown()
        else:       # the thread inside releases the rest
            self.wakeup()

    def _unwatch(self, fileobj: Any) -> None:
        try:
            self.selector.unregister(fileobj)
        except (KeyError, ValueError, OSError, RuntimeError):
            pass

    def _teardown(self) -> None:
        """Release everything; runs once, in a thread that is not inside the loop."""
        with self._lock:
            if self._torn_down:
                return
            self._torn_down = True
        for client in list(self._clients.values()):
            self._drop(client, None)
        if self._waker is not None:
            self._unwatch(self._waker.reader)
            self._waker.close()
        if self.selector is not self._own_selector:     # combined into another server's loop
            self._own_selector.close()
        else:
            self.selector.close()

    def wakeup(self) -> None:
        """Wake a loop blocked in select(), so it notices shutdown or a changed loop condition."""
        if self._waker is not None and not self._torn_down:
            self._waker.wake()

    def combine_loop(self, server: Any) -> None:
        """Serve ``server``'s sockets (another daemon's transport, a broadcast server) from this loop."""
        for sock in server.sockets:
            self.selector.register(sock, selectors.EVENT_READ, server)
        server.selector = self.selector

    @property
    def sockets(self) -> List[Any]:
        """The listening socket, the connected clients and combined servers' sockets, as in Pyro4.

        Not the waker: it only interrupts our own ``loop()``; an external loop calling events()
        does its own waking (and a combined server's waker is not registered, see combine_loop).
        """
        waker = self._waker.reader if self._waker is not None else None
        try:
            registrations = self.selector.get_map()
            if not registrations:
                return []
            return [key.fileobj for key in list(registrations.values()) if key.fileobj is not waker]
        except (RuntimeError, AttributeError):
            return []
