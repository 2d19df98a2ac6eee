"""Receiving for the socket servers: take what a client sent without waiting, hand out whole messages.

Theory of operation
-------------------
Both socket servers give each connection a sans-IO :class:`~pyro4compat._frames.FrameReader`
(``discard_oversized``, the size limit read when the connection was accepted). Whoever holds
the connection (the multiplex loop; on the thread server the loop thread or the one worker
serving it) calls :func:`receive_available` when the socket is readable: one receive of what is
there, never a wait, so a client that sends a byte a second costs a few bytes of buffer, not a
blocked thread. The validation step every transport shares,
:func:`pyro4compat.message.next_item` with the types of :data:`REQUIRED_TYPES` (by whether the
handshake is done) and the key :func:`hmac_key_of` reads, then turns the reader's next event
into what a blocking ``Message.recv`` would have returned or raised:

* a complete frame: type (CONNECT before the handshake, INVOKE/PING after) and HMAC are
  checked, then it becomes a :class:`~pyro4compat.message.Message`; only such a message, past
  size limit, type and HMAC, may tune the allocator (:mod:`.._large_buffers`);
* an oversized header: a ``MessageTooLargeError`` at once, before the body arrived, marked
  ``_pyroDiscarded`` when the reader drops the body and stays in step, ``_pyroEarly`` always
  (the daemon answers it, then closes the connection when it is not in step);
* a protocol error (the reader raised): that error; the stream is lost (:func:`ends_stream`).

The server leaves the item in ``conn._pyroReceived`` and calls ``daemon._handshake(conn)`` or
``daemon.handleRequest(conn)``, whose receive step takes it from there. Nothing here blocks,
holds a lock or reads the config.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import threading
from typing import Any, Optional

from .. import _frames, _large_buffers, _protocol
from ..message import Item

try:
    import ssl
except ImportError:  # Python built without OpenSSL
    ssl = None  # type: ignore[assignment]

__all__ = ["receive_available", "REQUIRED_TYPES", "ends_stream", "hmac_key_of", "TLS_WAIT", "Item",
           "thread_buffer", "plain_recv_into", "linger_in_kernel", "DONTWAIT", "RECEIVED_NOTHING"]

# what a server expects, by whether the handshake is done: CONNECT before it, INVOKE or PING after
REQUIRED_TYPES = {False: (_protocol.MSG_CONNECT,), True: (_protocol.MSG_INVOKE, _protocol.MSG_PING)}
TLS_WAIT = (ssl.SSLWantReadError, ssl.SSLWantWriteError) if ssl is not None else ()
GATHER_RECV_MAX = 16 << 20    # most one recv asks for while gathering a large payload (address space)
THREAD_BUFFER = 32 * 1024     # each receiving thread's reusable buffer (a small request fits)
DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
_READV = getattr(os, "readv", None)
_LINUX = sys.platform.startswith("linux")
RECEIVED_NOTHING = (BlockingIOError, InterruptedError) + TLS_WAIT   # a receive that found nothing to take
_SSLSocket = ssl.SSLSocket if ssl is not None else None


class _ThreadBuffer(threading.local):
    view: Optional[memoryview] = None


_buffers = _ThreadBuffer()


def thread_buffer() -> memoryview:
    """This thread's reusable receive buffer (what it receives must be fed before its next receive)."""
    view = _buffers.view
    if view is None:
        view = _buffers.view = memoryview(bytearray(THREAD_BUFFER))
    return view


def plain_recv_into(sock: Any) -> Any:
    """``sock.recv_into`` when :func:`receive_available` would call it with ``MSG_DONTWAIT`` (a
    plain socket without a timeout): a caller that knows the reader is idle may call it itself."""
    if not DONTWAIT or (_SSLSocket is not None and isinstance(sock, _SSLSocket)) or sock.gettimeout() is not None:
        return None
    return sock.recv_into


def linger_in_kernel(sock: Any, seconds: float) -> bool:
    """Bound ``sock``'s blocking receives to ``seconds`` in the kernel (``SO_RCVTIMEO``); False where not done.

    Only on Linux, where a receive past the bound fails with ``EAGAIN`` (``BlockingIOError``)
    and the bound is rounded up to the kernel's clock tick (1-4 ms for HZ 1000-250). Receives
    with ``MSG_DONTWAIT`` and sends are unaffected.
    """
    if not _LINUX or seconds <= 0:
        return False
    whole = int(seconds)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                        struct.pack("ll", whole, max(int((seconds - whole) * 1e6), 1)))
    except (OSError, AttributeError):
        return False
    return True


def receive_available(sock: Any, reader: _frames.FrameReader,
                      buffer: Optional[memoryview] = None) -> Optional[_protocol.BytesLike]:
    """What ``sock`` holds now, without waiting: b"" at EOF, None when nothing (or half a TLS record).

    The returned view is only valid until the next receive of this thread: feed it at once.
    The rest of a large payload comes as new ``bytes`` objects the reader keeps as they are
    (see ``FrameReader.gathering``). ``OSError`` means the connection broke.
    """
    if buffer is None:
        buffer = _buffers.view or thread_buffer()
    try:
        if _SSLSocket is not None and isinstance(sock, _SSLSocket):
            return _receive_tls(sock, buffer)     # a non-blocking TLS socket: no flags allowed
        if reader.gathering:
            # warm heap blocks for these receives, not a fresh mapping each (see _large_buffers)
            _large_buffers.expect(reader.pending_header.total_size)  # type: ignore[union-attr]
            return _recv_new(sock, min(reader.bytes_needed, GATHER_RECV_MAX))
        if DONTWAIT and sock.gettimeout() is None:     # _recv_into's usual case, inlined
            return buffer[:sock.recv_into(buffer, 0, DONTWAIT)]
        return buffer[:_recv_into(sock, buffer)]
    except RECEIVED_NOTHING:
        return None


def _recv_into(sock: Any, view: memoryview) -> int:
    """One receive that never waits, whatever timeout the socket has (replies are sent with it)."""
    timeout = sock.gettimeout()
    if timeout is None and DONTWAIT:
        return sock.recv_into(view, 0, DONTWAIT)
    if timeout and _READV is not None:
        return _READV(sock.fileno(), [view])   # a timeout socket's descriptor is non-blocking already
    return sock.recv_into(view)                # readiness was seen: this does not wait


def _recv_new(sock: Any, size: int) -> bytes:
    timeout = sock.gettimeout()
    if timeout is None and DONTWAIT:
        return sock.recv(size, DONTWAIT)
    if timeout and _READV is not None:
        return os.read(sock.fileno(), size)
    return sock.recv(size)


def _receive_tls(sock: Any, view: memoryview) -> Optional[memoryview]:
    """Decrypted bytes until the TLS object has none buffered; None when not even one record is whole."""
    filled = 0
    try:
        while filled < len(view):
            count = sock.recv_into(view[filled:])
            if not count:
                break
            filled += count
            if not sock.pending():
                break
    except TLS_WAIT:
        if not filled:
            return None
    return view[:filled]


def hmac_key_of(daemon: Any) -> Optional[bytes]:
    """The daemon's HMAC key; None for a duck-typed daemon without one (Pyro4's servers accept any
    object with ``_handshake``, ``handleRequest`` and ``_housekeeping``)."""
    return getattr(daemon, "_pyroHmacKey", None)


def ends_stream(item: Item) -> bool:
    """After this item the connection can't go on, whatever the daemon made of it."""
    return isinstance(item, Exception) and not getattr(item, "_pyroDiscarded", False)
