"""Pyro4's ``Pyro4.message`` surface: the :class:`Message` class over the sans-IO protocol core.

``Message`` keeps Pyro4's attributes, signatures and error texts so code written against
``Pyro4.message`` keeps working; all byte-level rules live in :mod:`pyro4compat._protocol`.
This is the layer that reads ``config.MAX_MESSAGE_SIZE`` (when a message is built, received or
decompressed) and talks to a connection: any object with ``send(bytes)``, ``recv(size)``
(returning exactly ``size`` bytes or raising ``ConnectionClosedError``) and ``close()``.

A server that reads without blocking (both socket servers do) has the next message, or the
error receiving it met, complete before the daemon is called; it leaves it in the connection's
``_pyroReceived`` attribute and :meth:`Message.recv` (and so ``Daemon.handleRequest``) takes it from
there instead of reading the socket (:func:`_take_received`). The allocator tuning for large
payloads (:mod:`._large_buffers`) only runs for a message whose size passed the limit.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Container, Dict, Optional

from . import _large_buffers, _protocol as proto
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
        self.annotations = anns = proto.with_hmac(annotations, hmac_key, databytes)  # HMAC last: it covers the rest
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
        received = _take_received(connection)
        if received is not None:
            return received
        msg = cls.from_header(connection.recv(cls.header_size))
        msg.hmac_key = hmac_key
        max_size = config.MAX_MESSAGE_SIZE
        if 0 < max_size < msg.data_size + msg.annotations_size:
            exc = MessageTooLargeError(proto.max_size_text(msg.data_size + msg.annotations_size, max_size))
            log.error("connection %s: %s", connection, exc)
            connection.close()  # no reply possible: the stream position is lost
            raise _fail(exc, msg)
        return cls._recv_body(connection, msg, requiredMsgTypes, hmac_key)

    @classmethod
    def _recv_body(cls, connection: Any, msg: "Message", requiredMsgTypes: Optional[Container[int]],
                   hmac_key: Optional[bytes]) -> "Message":
        """The rest of ``recv`` once the header is in and its size accepted (the daemon's path too)."""
        if msg.data_size >= _large_buffers.LARGE:
            _large_buffers.expect(msg.data_size)  # only now: the size passed the limit
        if requiredMsgTypes and msg.type not in requiredMsgTypes:
            text = "invalid msg type %d received" % msg.type
            log.error(text)
            raise _fail(ProtocolError(text), msg)
        if msg.annotations_size:
            try:
                msg.annotations = proto.decode_annotations(connection.recv(msg.annotations_size))
            except ProtocolError as exc:
                raise _fail(exc, msg)
        msg.data = connection.recv(msg.data_size)
        if not hmac_key and "HMAC" not in msg.annotations:
            return msg  # nothing to check (hmac_problem's answer for this case)
        problem = proto.hmac_problem(hmac_key, msg.data, msg.annotations)
        if problem:
            if problem == proto.ERR_HMAC_NOT_SYMMETRIC:
                log.warning(problem)
            raise _fail(SecurityError(problem), msg)
        return msg

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

