"""Sending and receiving for Pyro sockets, and the connection object built on them.

Theory of operation
-------------------
A receive returns exactly the bytes asked for, or raises; a send hands every byte to the
kernel, or raises. The only errors that escape are :class:`~pyro4compat.errors.TimeoutError`
and :class:`~pyro4compat.errors.ConnectionClosedError`, with Pyro4's messages
(``"receiving: timeout"``, ``"receiving: not enough data"``, ``"receiving: connection lost:
..."``, ``"sending: timeout"``, ``"sending: connection lost: ..."``).

Every ``OSError`` (``socket.timeout`` and ``ssl.SSLError`` are ones too) raised while sending
or receiving passes through :func:`_translate` and :func:`_retry_or_raise`: that pair is the
only place where socket errors become Pyro errors, and the only place that decides which
errors are worth another try (EAGAIN and friends on non-blocking sockets, TLS "want read /
want write").

Fast paths (not in Pyro4): :func:`receive_into` fills a caller's buffer without a copy,
:func:`send_buffers` sends a header and a payload with one ``sendmsg``, and a read-ahead
:class:`SocketConnection` gets a small message in one ``recv``. A receive never *fills* memory
ahead of the data that actually arrived: chunks are zero-filled at most ``_PREALLOC_LIMIT``
bytes ahead, and a large message on a blocking socket (declared size up to ``_TRUSTED_SIZE``)
goes into one uninitialised ``recv`` buffer whose pages are only backed as data arrives. A
header that lies about its length therefore costs address space, never gigabytes of RAM.
:mod:`pyro4compat.socketutil` re-exports
the public names, as Pyro4 has them there.
"""

from __future__ import annotations

import errno
import select
import socket
import time
import weakref
from typing import TYPE_CHECKING

try:
    import ssl
except ImportError:  # Python built without OpenSSL
    ssl = None  # type: ignore[assignment]

from ._busypoll import spin_seconds, spinner_for
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
_PREALLOC_LIMIT = 1 << 20      # never zero-fill more than this ahead of received data
_TRUSTED_SIZE = 256 << 20      # larger declared sizes are never reserved at once (see _recv_rest_at_once)
_JOIN_LIMIT = 64 * 1024        # below this, joining buffers is cheaper than separate sends
_IOV_BATCH = 512               # buffers per sendmsg call, well under any IOV_MAX
_READ_AHEAD_SIZE = 16 * 1024   # a read-ahead connection's reusable receive buffer (small calls fit)
_EXACT_AFTER_LARGE = 3         # exact small receives after a large one before reading ahead again

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


def _recv_rest_at_once(sock: Any, size: int, first: bytes, flags: int) -> bytes:
    """``first`` plus what one blocking ``MSG_WAITALL`` recv of the rest brings, where that applies.

    ``recv`` allocates its result uninitialised and the kernel writes the data straight into it,
    so the memory is only backed by pages as data arrives (a lying header costs address space,
    not RAM) and nothing is zero-filled or joined. Only for blocking plain sockets and declared
    sizes up to :data:`_TRUSTED_SIZE`; otherwise ``first`` comes back unchanged, and whatever is
    still missing (also after an interrupted recv) is received in growing chunks.
    """
    rest = size - len(first)
    if not flags or rest <= _PREALLOC_LIMIT or size > _TRUSTED_SIZE or sock.gettimeout() is not None:
        return first
    try:
        data = _recv_once(sock, rest, flags)
    except MemoryError:
        return first    # no address space for it: receive in growing chunks instead
    if not data:
        raise _not_enough_data(first)
    return first + data if first else data


def _recv_growing(sock: Any, size: int, first: bytes, flags: int) -> bytes:
    """Receive the rest of ``size`` bytes: at once where possible, else in chunks that grow only
    as data keeps arriving."""
    first = _recv_rest_at_once(sock, size, first, flags)
    if len(first) == size:
        return first
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
# SocketConnection
# --------------------------------------------------------------------------------------------

class SocketConnection(object):
    """One Pyro connection: the socket plus what the daemon keeps per client.

    ``pyroInstances`` holds session-scoped objects, ``tracked_resources`` objects closed when
    the connection ends; user code (e.g. ``validateHandshake``) may add its own attributes.
    ``keep_open`` connections (sockets the user handed in) are never closed by Pyro.
    """

    _peer: "Optional[Tuple[Any, Any]]" = None  # (socket, its getpeername()) once asked, per instance
    # The next message (or its receive error), already read by a server that reads without
    # blocking; ``Message.recv`` takes it from here before it would read the socket.
    _pyroReceived: Any = None
    _closed_sock: Any = None  # the socket close() has shut down and closed already
    # The FrameReader of this connection's last blocking receive, kept for its next one
    # (see message.read_message): a reader that finished its frame is empty again.
    _pyroFrameReader: Any = None

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

    def _remember_peer(self, address: Any) -> None:
        """Take the address ``accept()`` returned, so ``peer_address`` needs no ``getpeername``."""
        self._peer = (self.sock, address)

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
        # After a receive of _PREALLOC_LIMIT or more, the next few small receives are exact: a
        # read-ahead would pull the start of a following large payload into _rbuf, and that payload
        # would then need a second large buffer to join it to the rest (see recv).
        self._exact_reads = 0
        self._spinner: Any = None    # (socket, its spinner or None): see spin_until_readable
        # Set when a readiness check (a spin, a server's poll) has just seen bytes: the next
        # receive then goes straight to recv instead of polling again for the same bytes.
        self.readable_seen = False
        self.spin_gate: Any = None   # when spinning is welcome (None: _busypoll.quiet)

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
        """Exactly ``size`` bytes (Pyro4's contract); served from read-ahead bytes first.

        Large payloads tend to follow large payloads (a bulk transfer, an echo). Once one arrived,
        the next :data:`_EXACT_AFTER_LARGE` small receives (a header, its annotations) take exactly
        what they ask for, so a following large payload lands whole in one fresh buffer instead of
        being joined to a read-ahead prefix: on glibc the second buffer alive at once is what
        makes each of them cost fresh pages. Read-ahead resumes once the small receives go on.
        """
        if self._rend:
            return self._recv_buffered(size)
        if size >= _PREALLOC_LIMIT:
            self._exact_reads = _EXACT_AFTER_LARGE
        elif self.read_ahead and 0 <= size < _READ_AHEAD_SIZE:
            if not size:
                return b""   # an empty payload costs no syscall
            if not self._exact_reads:
                return self._recv_ahead(size)
            self._exact_reads -= 1
        return receiveData(self.sock, size)

    @property
    def buffered(self) -> int:
        """Bytes already received by a read-ahead and not yet handed out by ``recv``."""
        return self._rend - self._rstart

    def release_buffer(self) -> None:
        """Drop the read-ahead buffer while nothing is in it (an idle connection then costs no buffer)."""
        if not self._rend:
            self._rbuf = None

    def receive_ahead(self) -> Optional[bytes]:
        """One receive of whatever arrived into the empty read-ahead buffer: a copy of those bytes.

        For a caller that can take a whole message apart in place (a proxy's reply, see
        ``message.read_reply``). The bytes count as handed out; a caller that can't use them
        gives them back with :meth:`unread`, and ``recv`` then hands them out first. None
        (nothing received) when read-ahead is off for this connection or this receive, or bytes
        are buffered already. (A copy: slicing a small reply apart is cheaper in bytes than
        in views.)
        """
        if self._rend or not self.read_ahead or self._exact_reads:
            return None
        view = self._rbuf
        if view is None:
            view = self._rbuf = memoryview(bytearray(_READ_AHEAD_SIZE))
        if self.readable_seen:
            self.readable_seen = False
        elif spin_seconds():        # (busy-polling off: not even the call)
            self.spin_until_readable()
            self.readable_seen = False
        return view[:_recv_some(self.sock, view)].tobytes()

    def unread(self, count: int) -> None:
        """Give back the ``count`` bytes :meth:`receive_ahead` just returned: ``recv`` starts with them."""
        self._rstart, self._rend = 0, count

    def _recv_ahead(self, size: int) -> bytes:
        """One receive of whatever arrived (up to the buffer), keeping the bytes past ``size``."""
        received = self.receive_ahead()   # (recv checked what it checks)
        count = len(received)   # type: ignore[arg-type]
        if count >= size:
            if count > size:
                self._rstart, self._rend = size, count
            return received[:size]   # type: ignore[index]
        return _recv_growing(self.sock, size, received, _waitall_flag(self.sock))   # type: ignore[arg-type]

    def spin_until_readable(self) -> bool:
        """Busy-poll briefly for the next bytes before a blocking receive (see :mod:`._busypoll`).

        True (and ``readable_seen`` set) when the spin saw bytes arrive. ``spin_gate`` says
        whether spinning is welcome now (None: no other busy thread of ours).
        """
        if not spin_seconds():
            return False        # busy-polling is off: what the spinner would answer, sooner
        sock = self.sock
        known = self._spinner
        if known is None or known[0] is not sock:   # first wait, or the socket was wrapped in TLS
            known = self._spinner = (sock, spinner_for(sock))
        if known[1] is not None and known[1].wait(self.spin_gate):
            self.readable_seen = True
            return True
        return False

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
        if size >= _PREALLOC_LIMIT:
            self._exact_reads = _EXACT_AFTER_LARGE
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
        """Shut down and close the socket, drop session objects, close tracked resources.

        Closing again (``__del__`` after an explicit close) does not touch the closed socket.
        """
        if self.keep_open:
            return
        sock = self.sock
        if self._closed_sock is not sock:
            self._closed_sock = sock
            for step in (lambda: sock.shutdown(socket.SHUT_RDWR), sock.close):
                try:
                    step()
                except Exception:
                    pass
        self._release_session()

    def _release_session(self) -> None:
        """Drop the session-scoped objects and close the tracked resources (also for ``keep_open``)."""
        self.pyroInstances.clear()
        if self.tracked_resources:
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
