"""Pyro4's ``Pyro4.message`` surface: the :class:`Message` class over the sans-IO protocol core.

``Message`` keeps Pyro4's attributes, signatures and error texts so code written against
``Pyro4.message`` keeps working; all byte-level rules live in :mod:`pyro4compat._protocol`.
This is the layer that reads ``config.MAX_MESSAGE_SIZE`` (when a message is built, received or
decompressed) and talks to a connection: any object with ``send(bytes)``, ``recv(size)``
(returning exactly ``size`` bytes or raising ``ConnectionClosedError``) and ``close()``.

One receive path
----------------
Every transport reads messages the same way: it feeds the sans-IO
:class:`~pyro4compat._frames.FrameReader` and passes each event through :func:`next_item`, the
one validation step (expected type, HMAC; the reader has checked the tag, version, checksum and
size limit). A server that reads without blocking (the thread, multiplex and asyncio servers)
feeds whatever arrived; a blocking reader (:func:`read_message`: proxies, the existing-connection
server, ``Message.recv``) pulls through ``FrameReader.receive``: exactly the header, the
annotations and the payload, so the reader is empty again after every message (a
``SocketConnection`` keeps it for its next receive). A proxy's reply that arrived whole in one
receive is split by the reader's own shortcut for that case, ``_frames.whole_frame``
(:func:`read_reply`). A server that read ahead leaves the next
message, or the error receiving it met, in the connection's ``_pyroReceived`` attribute and
:meth:`Message.recv` (and so ``Daemon.handleRequest``) takes it from there instead of reading
the socket (:func:`_take_received`).
The allocator tuning for large payloads (:mod:`._large_buffers`) only runs for a message that
passed the size limit and its HMAC check.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Container, Dict, Optional, Union

from . import _frames, _large_buffers, _protocol as proto
from ._sockio import SocketConnection
from .configuration import config
from .errors import MessageTooLargeError, ProtocolError, SecurityError

__all__ = ["Message", "secure_compare"]

log = logging.getLogger("Pyro4.message")

MSG_CONNECT = proto.MSG_CONNECT
MSG_CONNECTOK = proto.MSG_CONNECTOK
MSG_CONNECTFAIL = proto.MSG_CONNECTFAIL
MSG_INVOKE = proto.MSG_INVOKE
MSG_RESULT = proto.MSG_RESULT
MSG_PING = proto.MSG_PING
FLAGS_EXCEPTION = proto.FLAGS_EXCEPTION
FLAGS_COMPRESSED = proto.FLAGS_COMPRESSED
FLAGS_ONEWAY = proto.FLAGS_ONEWAY
FLAGS_BATCH = proto.FLAGS_BATCH
FLAGS_META_ON_CONNECT = proto.FLAGS_META_ON_CONNECT
FLAGS_ITEMSTREAMRESULT = proto.FLAGS_ITEMSTREAMRESULT
FLAGS_KEEPSERIALIZED = proto.FLAGS_KEEPSERIALIZED

secure_compare = proto.secure_compare


def _take_received(connection: Any) -> Optional["Message"]:
    """The message a server already read for ``connection`` (taken off it), or None when there is none.

    A receive error the server met instead (with its ``pyroMsg``) is raised here, where a
    blocking receive would have raised it.
    """
    received = getattr(connection, "_pyroReceived", None)
    if received is None:
        return None
    connection._pyroReceived = None
    if isinstance(received, BaseException):
        raise received
    return received


def _fail(exc: Exception, msg: "Message") -> Exception:
    """Attach the offending message as ``pyroMsg``, as Pyro4 does for receive errors."""
    exc.pyroMsg = msg  # type: ignore[attr-defined]
    return exc


class Message(object):
    """One protocol 48 message: header fields, annotations and (possibly compressed) payload.

    Payload (de)serialization happens elsewhere; this class only frames it, adds the HMAC chunk
    when given a key, and checks it on receipt.
    """

    __slots__ = ["type", "flags", "seq", "data", "data_size", "serializer_id", "annotations",
                 "annotations_size", "hmac_key"]
    header_format = proto.HEADER_FORMAT
    header_size = proto.HEADER_SIZE
    checksum_magic = proto.CHECKSUM_MAGIC

    def __init__(self, msgType: int, databytes: Any, serializer_id: int, flags: int, seq: int,
                 annotations: Optional[Dict[str, bytes]] = None, hmac_key: Optional[bytes] = None) -> None:
        self.type = msgType
        self.flags = flags
        self.seq = seq
        self.data = databytes
        self.data_size = data_size = len(databytes)
        self.serializer_id = serializer_id
        if hmac_key:
            anns = proto.with_hmac(annotations, hmac_key, databytes)  # HMAC last: it covers the rest
        else:
            anns = dict(annotations) if annotations else {}   # (with_hmac's copy, without the call)
        self.annotations = anns
        self.hmac_key = hmac_key
        self.annotations_size = anns_size = proto.annotations_size(anns) if anns else 0
        max_size = config.MAX_MESSAGE_SIZE
        if 0 < max_size < data_size + anns_size:
            proto.check_message_size(data_size, anns_size, max_size)

    def __repr__(self) -> str:
        return "<%s.%s at %x; type=%d flags=%d seq=%d datasize=%d #ann=%d>" % (
            self.__module__, type(self).__name__, id(self), self.type, self.flags, self.seq,
            self.data_size, len(self.annotations))

    def _head_bytes(self) -> bytes:
        """Header plus annotation chunks, from the current attribute values."""
        return proto.encode_head(self.type, self.flags, self.seq, self.data_size, self.serializer_id,
                                 self.annotations)

    def to_bytes(self) -> bytes:
        """The whole message (header, annotation chunks, payload) as one bytes object."""
        return self._head_bytes() + self.data

    def send(self, connection: Any) -> None:
        """Send the message; a large payload is sent after the head without copying it."""
        data = self.data
        if len(data) < proto.SEND_JOIN_LIMIT:
            connection.send(self._head_bytes() + data)  # one buffer: no Nagle delay, one syscall
            return
        if len(data) >= _large_buffers.LARGE:
            _large_buffers.expect(len(data))
        chunks = proto.wire_chunks(self._head_bytes(), data)
        send_buffers = getattr(connection, "send_buffers", None)
        if send_buffers is not None and len(chunks) > 1:
            send_buffers(chunks)  # one sendmsg: no Nagle delay between head and payload
        else:
            for chunk in chunks:
                connection.send(chunk)

    @classmethod
    def from_header(cls, headerData: bytes) -> "Message":
        """A message holding just the parsed header; annotations and payload are read later."""
        msg = cls.__new__(cls)
        (msg.type, msg.flags, msg.seq, msg.data_size, msg.serializer_id,
         msg.annotations_size) = proto.header_fields(headerData)
        msg.data = b""
        msg.annotations = {}
        msg.hmac_key = None
        return msg

    @classmethod
    def recv(cls, connection: Any, requiredMsgTypes: Optional[Container[int]] = None,
             hmac_key: Optional[bytes] = None) -> "Message":
        """Read one message from ``connection``, checking size, type and HMAC as Pyro4 does.

        A message a server already received for the connection is taken instead (see the module).
        """
        if getattr(connection, "_pyroReceived", None) is None:   # (the usual case, without a call)
            return read_message(connection, requiredMsgTypes, hmac_key)
        return _take_received(connection)  # type: ignore[return-value]

    def hmac(self) -> bytes:
        """HMAC-SHA1 of the payload and all annotation values except the HMAC chunk itself."""
        return proto.compute_hmac(self.hmac_key, self.data, self.annotations)

    @staticmethod
    def ping(pyroConnection: Any, hmac_key: Optional[bytes] = None) -> None:
        """Send a PING and wait for the daemon's PING reply."""
        ping = Message(MSG_PING, b"ping", 42, 0, 0, hmac_key=hmac_key)
        pyroConnection.send(ping.to_bytes())
        Message.recv(pyroConnection, [MSG_PING])

    def decompress_if_needed(self) -> "Message":
        """Inflate a compressed payload in place, bounded by ``MAX_MESSAGE_SIZE`` (unlike Pyro4 4.82)."""
        if self.flags & FLAGS_COMPRESSED:
            max_size = config.MAX_MESSAGE_SIZE
            bound = max(max_size - self.annotations_size, 0) if max_size > 0 else None
            try:
                self.data = proto.decompress_payload(self.data, bound)
            except MessageTooLargeError:
                text = "max message size exceeded (decompressed data larger than %d bytes where max=%d)" % (
                    bound, max_size)
                raise _fail(MessageTooLargeError(text), self) from None
            self.flags &= ~FLAGS_COMPRESSED
            self.data_size = len(self.data)
        return self


def plain_message_bytes(msg_type: int, payload: bytes, serializer_id: int, flags: int, seq: int,
                        annotations: Dict[str, bytes], hmac_key: Optional[bytes]) -> Optional[bytes]:
    """The bytes ``Message(...).send()`` would send, for the usual small message; None otherwise.

    Usual: no HMAC, no wire logging, a payload :meth:`Message.send` would join to its head,
    within ``MAX_MESSAGE_SIZE``. Proxies and daemons then skip building the Message (a tenth of
    a small call's Python work); for anything else they build it, and it does its checks.
    """
    if hmac_key or config.LOGWIRE or len(payload) >= proto.SEND_JOIN_LIMIT:
        return None
    max_size = config.MAX_MESSAGE_SIZE
    if max_size > 0 and len(payload) + proto.annotations_size(annotations) > max_size:
        return None
    return proto.encode_head(msg_type, flags, seq, len(payload), serializer_id, annotations) + payload


# --- the one receive path (see the module docstring) ---------------------------------------------

Item = Union[Message, Exception]
_NO_READER: Any = object()     # a connection that keeps no FrameReader between receives
_DISCARD_CHUNK = 64 * 1024     # most one receive asks for while an oversized body is dropped


def message_from_frame(frame: _frames.Frame, hmac_key: Optional[bytes]) -> Message:
    """The :class:`Message` for a complete received frame (its payload still compressed, if it was)."""
    header = frame.header
    msg = Message.__new__(Message)
    msg.type = header.msg_type
    msg.flags = header.flags
    msg.seq = header.seq
    msg.data = frame.payload
    msg.data_size = header.data_size
    msg.serializer_id = header.serializer_id
    msg.annotations = frame.annotations
    msg.annotations_size = header.annotations_size
    msg.hmac_key = hmac_key
    return msg


def _header_message(header: proto.Header, hmac_key: Optional[bytes]) -> Message:
    """A message of just this header: the ``pyroMsg`` of an error met before its body was read."""
    return message_from_frame(_frames.Frame(header, {}, b""), hmac_key)


def receive_problem(msg: Message, allowed: Optional[Container[int]],
                    hmac_key: Optional[bytes]) -> Optional[Exception]:
    """The error a received message stands for (a type not ``allowed``, a bad HMAC), or None."""
    if allowed and msg.type not in allowed:
        text = "invalid msg type %d received" % msg.type
        log.error(text)
        return ProtocolError(text)
    if hmac_key or "HMAC" in msg.annotations:
        problem = proto.hmac_problem(hmac_key, msg.data, msg.annotations)
        if problem:
            if problem == proto.ERR_HMAC_NOT_SYMMETRIC:
                log.warning(problem)
            return SecurityError(problem)
    return None


def oversized_error(event: _frames.Oversized, max_size: int) -> MessageTooLargeError:
    """The ``MessageTooLargeError`` for a header over the limit, its header attached as ``pyroMsg``.

    ``_pyroDiscarded``: the reader drops the body and the stream stays in step; ``_pyroEarly``:
    the body has not been read (a daemon answers at once, see ``dispatch.answer_oversized``).
    """
    exc = MessageTooLargeError(proto.max_size_text(event.header.total_size, max_size))
    log.error("%s (seq %d)", exc, event.header.seq)
    exc.pyroMsg = _header_message(event.header, None)  # type: ignore[attr-defined]
    exc._pyroDiscarded = event.in_step  # type: ignore[attr-defined]
    exc._pyroEarly = True  # type: ignore[attr-defined]
    return exc


def next_item(reader: _frames.FrameReader, allowed: Optional[Container[int]],
              hmac_key: Optional[bytes]) -> Optional[Item]:
    """The reader's next complete message, validated, or the error receiving it; None: incomplete."""
    try:
        event = reader.next_frame()
    except ProtocolError as exc:
        return _with_header(exc, reader, hmac_key)
    if event is _frames.NEED_DATA:
        return None
    return _validated(event, reader, allowed, hmac_key)  # type: ignore[arg-type]


def _with_header(exc: ProtocolError, reader: _frames.FrameReader, hmac_key: Optional[bytes]) -> ProtocolError:
    """``exc`` with the header it concerns attached as ``pyroMsg`` (e.g. bad annotations after a sound header)."""
    header = reader.pending_header
    if header is not None and not hasattr(exc, "pyroMsg"):
        exc.pyroMsg = _header_message(header, hmac_key)  # type: ignore[attr-defined]
    return exc


def _validated(event: Union[_frames.Frame, _frames.Oversized], reader: Optional[_frames.FrameReader],
               allowed: Optional[Container[int]], hmac_key: Optional[bytes]) -> Item:
    """The one validation step after the reader's: the message, or the error it stands for."""
    if type(event) is _frames.Oversized:
        return oversized_error(event, reader.max_message_size)  # type: ignore[arg-type,union-attr]
    msg = message_from_frame(event, hmac_key)  # type: ignore[arg-type]
    if hmac_key or (allowed and msg.type not in allowed) or "HMAC" in msg.annotations:
        problem = receive_problem(msg, allowed, hmac_key)   # (the usual message skips the call)
        if problem is not None:
            problem.pyroMsg = msg  # type: ignore[attr-defined]
            return problem
    if msg.data_size >= _large_buffers.LARGE:
        _large_buffers.expect(msg.data_size)  # from the next such message on (see _large_buffers)
    return msg


def read_message(connection: Any, allowed: Optional[Container[int]], hmac_key: Optional[bytes],
                 discard_oversized: bool = False) -> Message:
    """Receive one message from a blocking ``connection`` (``recv(n)`` returns exactly n bytes).

    Raises the error the message stands for, with ``pyroMsg`` attached. A message over
    ``MAX_MESSAGE_SIZE`` closes the connection (Pyro4's client behaviour), unless
    ``discard_oversized`` (a daemon): then its body is received and dropped when
    :func:`~pyro4compat._protocol.discard_limit` allows, and the error says so (``_pyroDiscarded``).
    """
    kept = getattr(connection, "_pyroFrameReader", _NO_READER)
    if kept is None or kept is _NO_READER:
        reader = _frames.FrameReader(config.MAX_MESSAGE_SIZE, True)
    else:   # taken off the connection: a receive that fails leaves no half-used reader there
        connection._pyroFrameReader = None
        reader = kept
        reader.max_message_size = config.MAX_MESSAGE_SIZE
    try:
        event = reader.receive(connection.recv)
    except ProtocolError as exc:
        raise _with_header(exc, reader, hmac_key)
    item = _validated(event, reader, allowed, hmac_key)
    if type(item) is Message:
        if kept is not _NO_READER:
            connection._pyroFrameReader = reader   # empty again: the connection's next receive reuses it
        return item   # type: ignore[return-value]
    if getattr(item, "_pyroDiscarded", False) and discard_oversized:
        while reader.bytes_needed:
            reader.feed(connection.recv(min(reader.bytes_needed, _DISCARD_CHUNK)))
    elif isinstance(item, MessageTooLargeError):
        item._pyroDiscarded = False  # type: ignore[attr-defined]
        connection.close()  # no reply possible: the stream position is lost
    raise item  # type: ignore[misc]


def read_reply(connection: Any, allowed: Optional[Container[int]], hmac_key: Optional[bytes]) -> Message:
    """:meth:`Message.recv` for a proxy's own connection: a reply that came whole in one receive
    is taken apart right there.

    A connection that reads ahead (``SocketConnection.receive_ahead``) receives whatever has
    arrived, at most its read-ahead buffer; when that is exactly one frame within
    ``MAX_MESSAGE_SIZE`` (a small reply), :func:`~pyro4compat._frames.whole_frame` checks and
    splits it and :func:`_validated` makes the message (:func:`whole_item`), as for any other receive. Anything else
    (a partial frame, a check that fails) goes back to the connection (``unread``) and
    :func:`read_message` starts over from its first byte, so errors are the usual ones. Any
    other connection object (a wrapper, a subclass) gets :meth:`Message.recv` as before.
    """
    # Only our own connection class: a wrapper or subclass may watch or change what recv returns.
    received = connection.receive_ahead() if type(connection) is SocketConnection else None
    if received is not None:
        item = whole_item(received, config.MAX_MESSAGE_SIZE, allowed, hmac_key)
        if item is None:
            connection.unread(len(received))
        elif type(item) is Message:
            return item  # type: ignore[return-value]
        else:
            raise item
    return Message.recv(connection, allowed, hmac_key)


def whole_item(data: proto.BytesLike, max_message_size: int, allowed: Optional[Container[int]],
               hmac_key: Optional[bytes]) -> Optional[Item]:
    """What ``data`` stands for when it is exactly one frame within the limit (the usual small
    message, received whole): the validated message, or the error it stands for; None otherwise
    (the caller then reads it the general way, see :func:`~pyro4compat._frames.whole_frame`)."""
    frame = _frames.whole_frame(data, max_message_size)
    return None if frame is None else _validated(frame, None, allowed, hmac_key)


def log_wiredata(logger: logging.Logger, text: str, msg: Message) -> None:
    """Log a message's fields the way Pyro4 does when ``config.LOGWIRE`` is on (callers check it)."""
    corr = msg.annotations.get("CORR")
    corr_text = _uuid_text(corr) if corr is not None else "?"
    logger.debug("%s: msgtype=%d flags=0x%x ser=%d seq=%d corr=%s\nannotations=%r\ndata=%r" % (
        text, msg.type, msg.flags, msg.serializer_id, msg.seq, corr_text, msg.annotations, msg.data))


def _uuid_text(raw: bytes) -> str:
    try:
        return str(uuid.UUID(bytes=bytes(raw)))
    except ValueError:
        return repr(raw)

