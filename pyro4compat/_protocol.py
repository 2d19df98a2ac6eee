"""Protocol 48 on bytes: header, annotation chunks, HMAC, compression and an incremental frame reader.

Theory of operation
-------------------
This module never touches a socket, a thread or the global config: every function takes bytes
(and plain limits) and returns bytes or parsed values, so each protocol rule is testable on its own
and the I/O layers above it (``message.Message``, the socket servers) stay thin.

A message on the wire is::

    header (24 bytes, HEADER_STRUCT) | annotation chunks (annotations_size bytes) | payload (data_size bytes)

and each annotation chunk is ``4-byte ASCII key | 2-byte big-endian length | value``.

Sending: :func:`encode_message` returns ``(head, payload)`` where ``head`` is header plus
annotation chunks. Small messages go out as one buffer (:func:`wire_chunks` joins them, which keeps
Nagle's algorithm from delaying the reply); large payloads are sent after the head without being
copied into a new buffer.

Receiving: :class:`FrameReader` is fed whatever bytes arrived and hands out complete
:class:`Frame` objects, or :data:`NEED_DATA` until there are enough bytes. It validates the header
as soon as it is complete (and the tag/version as soon as the first six bytes are there), checks the
size limit before buffering a body, and only ever holds bytes that actually arrived. Errors are
deterministic: a reader that raised keeps raising the same error for the same buffered bytes, so the
caller's only sensible move is to drop the connection.

A server may instead ask the reader to *discard* a message over the limit (``discard_oversized``):
if the message is no larger than :func:`discard_limit` allows, its bytes are counted off as they
arrive (never buffered) and the reader then hands out an :class:`Oversized` event carrying just the
header, so the server can answer ``MessageTooLargeError`` on a stream that is still in step. A larger
one still raises, and the connection is closed.

Every malformed input raises a :class:`~pyro4compat.errors.ProtocolError` subclass (or
``SecurityError`` for HMAC problems) carrying Pyro4's own message text where Pyro4 has one.
"""

from __future__ import annotations

import hashlib
import hmac as _hmac
import struct
import zlib
from typing import Any, Dict, Iterator, List, Mapping, NamedTuple, Optional, Tuple, Union

from .constants import PROTOCOL_VERSION
from .errors import MessageTooLargeError, ProtocolError, SecurityError

__all__ = [
    "MSG_CONNECT", "MSG_CONNECTOK", "MSG_CONNECTFAIL", "MSG_INVOKE", "MSG_RESULT", "MSG_PING",
    "FLAGS_EXCEPTION", "FLAGS_COMPRESSED", "FLAGS_ONEWAY", "FLAGS_BATCH", "FLAGS_META_ON_CONNECT",
    "FLAGS_ITEMSTREAMRESULT", "FLAGS_KEEPSERIALIZED", "MSG_TYPE_NAMES", "VALID_MSG_TYPES", "FLAG_NAMES",
    "HEADER_FORMAT", "HEADER_SIZE", "CHECKSUM_MAGIC", "MAX_DATA_SIZE", "MAX_ANNOTATIONS_SIZE",
    "COMPRESSION_THRESHOLD", "SEND_JOIN_LIMIT", "GATHER_FROM", "NEED_DATA", "Header", "Frame", "Oversized", "FrameReader",
    "DISCARD_MINIMUM", "discard_limit",
    "checksum", "pack_header", "unpack_header", "header_fields", "annotations_size", "encode_annotations",
    "decode_annotations", "compute_hmac", "with_hmac", "hmac_problem", "verify_hmac", "secure_compare",
    "check_message_size", "max_size_text", "compress_payload", "decompress_payload", "encode_message",
    "build_message_bytes", "wire_chunks", "iter_frames",
]

BytesLike = Union[bytes, bytearray, memoryview]

# --- message types and flags -----------------------------------------------------------------------

MSG_CONNECT = 1
MSG_CONNECTOK = 2
MSG_CONNECTFAIL = 3
MSG_INVOKE = 4
MSG_RESULT = 5
MSG_PING = 6

FLAGS_EXCEPTION = 1 << 0
FLAGS_COMPRESSED = 1 << 1
FLAGS_ONEWAY = 1 << 2
FLAGS_BATCH = 1 << 3
FLAGS_META_ON_CONNECT = 1 << 4
FLAGS_ITEMSTREAMRESULT = 1 << 5
FLAGS_KEEPSERIALIZED = 1 << 6

MSG_TYPE_NAMES: Dict[int, str] = {
    MSG_CONNECT: "CONNECT",
    MSG_CONNECTOK: "CONNECTOK",
    MSG_CONNECTFAIL: "CONNECTFAIL",
    MSG_INVOKE: "INVOKE",
    MSG_RESULT: "RESULT",
    MSG_PING: "PING",
}
VALID_MSG_TYPES = frozenset(MSG_TYPE_NAMES)

FLAG_NAMES: Dict[int, str] = {
    FLAGS_EXCEPTION: "EXCEPTION",
    FLAGS_COMPRESSED: "COMPRESSED",
    FLAGS_ONEWAY: "ONEWAY",
    FLAGS_BATCH: "BATCH",
    FLAGS_META_ON_CONNECT: "META_ON_CONNECT",
    FLAGS_ITEMSTREAMRESULT: "ITEMSTREAMRESULT",
    FLAGS_KEEPSERIALIZED: "KEEPSERIALIZED",
}

# --- layout ----------------------------------------------------------------------------------------

HEADER_FORMAT = "!4sHHHHiHHHH"
HEADER_STRUCT = struct.Struct(HEADER_FORMAT)
HEADER_SIZE = HEADER_STRUCT.size
_HEADER_PACK = HEADER_STRUCT.pack
_HEADER_UNPACK = HEADER_STRUCT.unpack
CHECKSUM_MAGIC = 0x34E9
TAG = b"PYRO"
HEADER_PREFIX = TAG + struct.pack("!H", PROTOCOL_VERSION)  # what every valid stream starts with
CHUNK_STRUCT = struct.Struct("!4sH")
CHUNK_HEADER_SIZE = CHUNK_STRUCT.size
MAX_DATA_SIZE = 0x7FFFFFFF  # the length field is a signed int32
MAX_ANNOTATIONS_SIZE = 0xFFFF  # the annotations length field is an unsigned short
MAX_U16 = 0xFFFF

COMPRESSION_THRESHOLD = 200  # Pyro4 does not bother compressing payloads smaller than this
SEND_JOIN_LIMIT = 64 * 1024  # below this, copying payload into one buffer is cheaper than two sends
GATHER_FROM = 1 << 20  # FrameReader: payloads this large are gathered piece by piece, not buffered
_OWN_PIECE = 64 * 1024  # ... and a fed bytes object this large is kept as a piece of its own

ERR_HEADER_SIZE = "header data size mismatch"
ERR_BAD_TAG = "invalid data or unsupported protocol version"
ERR_CHECKSUM = "header checksum mismatch"
ERR_DATA_SIZE = "invalid message size (outside range 0..2Gb)"
ERR_KEY_LENGTH = "annotation key must be of length 4"
ERR_HMAC_MISMATCH = "message hmac mismatch"
ERR_HMAC_NOT_SYMMETRIC = "hmac key config not symmetric"


class _Sentinel:
    """A named singleton, so ``NEED_DATA`` prints as itself in test failures and logs."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


NEED_DATA = _Sentinel("NEED_DATA")


# --- header ----------------------------------------------------------------------------------------

class Header(NamedTuple):
    """The fields of a validated protocol 48 header (tag, version and checksum already checked)."""

    msg_type: int
    flags: int
    seq: int
    data_size: int
    serializer_id: int
    annotations_size: int

    @property
    def total_size(self) -> int:
        """Bytes following the header: what ``MAX_MESSAGE_SIZE`` limits."""
        return self.data_size + self.annotations_size


def checksum(msg_type: int, flags: int, seq: int, data_size: int, serializer_id: int,
             annotations_size: int) -> int:
    """Pyro4's header checksum: a plain sum of the fields, enough to spot non-Pyro data."""
    total = msg_type + PROTOCOL_VERSION + data_size + annotations_size + serializer_id + flags + seq
    return (total + CHECKSUM_MAGIC) & 0xFFFF


_U16_FIELDS = ("msg_type", "flags", "seq", "serializer_id", "annotations_size")


def pack_header(msg_type: int, flags: int, seq: int, data_size: int, serializer_id: int,
                annotations_size: int = 0) -> bytes:
    """The 24 header bytes; out-of-range fields raise instead of producing a corrupt header."""
    if (0 <= data_size <= MAX_DATA_SIZE and 0 <= msg_type <= MAX_U16 and 0 <= flags <= MAX_U16
            and 0 <= seq <= MAX_U16 and 0 <= serializer_id <= MAX_U16 and 0 <= annotations_size <= MAX_U16):
        # the common case, inlined: this runs twice per call on each side
        chk = (msg_type + PROTOCOL_VERSION + data_size + annotations_size + serializer_id + flags + seq
               + CHECKSUM_MAGIC) & 0xFFFF
        return _HEADER_PACK(TAG, PROTOCOL_VERSION, msg_type, flags, seq, data_size, serializer_id,
                            annotations_size, 0, chk)
    return _pack_header_checked(msg_type, flags, seq, data_size, serializer_id, annotations_size)


def _pack_header_checked(msg_type: int, flags: int, seq: int, data_size: int, serializer_id: int,
                         annotations_size: int) -> bytes:
    """``pack_header`` for a field out of range: raises the error naming it."""
    if not 0 <= data_size <= MAX_DATA_SIZE:
        raise ValueError(ERR_DATA_SIZE)  # Pyro4 raises ValueError with this text
    values = (msg_type, flags, seq, serializer_id, annotations_size)
    for name, value in zip(_U16_FIELDS, values):
        if not 0 <= value <= MAX_U16:
            raise ProtocolError("header field %s out of range 0..65535: %d" % (name, value))
    chk = checksum(msg_type, flags, seq, data_size, serializer_id, annotations_size)
    return HEADER_STRUCT.pack(TAG, PROTOCOL_VERSION, msg_type, flags, seq, data_size,
                              serializer_id, annotations_size, 0, chk)


def unpack_header(data: BytesLike) -> Header:
    """Parse and validate 24 header bytes. The reserved field is ignored, as Pyro4 ignores it."""
    return Header(*header_fields(data))


def header_fields(data: BytesLike) -> Tuple[int, int, int, int, int, int]:
    """:func:`unpack_header` as a plain tuple, in ``Header``'s field order (the per-message fast path)."""
    if not data or len(data) != HEADER_SIZE:
        raise ProtocolError(ERR_HEADER_SIZE)
    (tag, version, msg_type, flags, seq, data_size, serializer_id, anns_size, _reserved,
     chk) = _HEADER_UNPACK(data)
    if tag != TAG or version != PROTOCOL_VERSION:
        raise ProtocolError(ERR_BAD_TAG)
    if chk != (msg_type + PROTOCOL_VERSION + data_size + anns_size + serializer_id + flags + seq
               + CHECKSUM_MAGIC) & 0xFFFF:
        raise ProtocolError(ERR_CHECKSUM)
    if data_size < 0:
        raise ProtocolError(ERR_DATA_SIZE)
    return msg_type, flags, seq, data_size, serializer_id, anns_size


# --- size limit ------------------------------------------------------------------------------------

def max_size_text(size: int, max_size: int) -> str:
    """Pyro4's wording for a message over ``MAX_MESSAGE_SIZE``."""
    return "max message size exceeded (%d where max=%d)" % (size, max_size)


DISCARD_MINIMUM = 1 << 20  # a server reads off (and drops) at least this much beyond its limit


def discard_limit(max_size: int) -> int:
    """The largest message (annotations + data) a server with ``max_size`` still reads off to answer it.

    ``max_size`` plus the larger of ``max_size`` and 1 MiB: enough for the usual "a bit too big"
    call to get a ``MessageTooLargeError`` reply, while a header claiming gigabytes gets the
    connection closed instead of a long read. 0 (no limit) gives 0.
    """
    if max_size <= 0:
        return 0
    return max_size + max(max_size, DISCARD_MINIMUM)


def check_message_size(data_size: int, anns_size: int, max_size: int) -> None:
    """Raise ``MessageTooLargeError`` when data + annotations exceed ``max_size`` (0 = no limit)."""
    if 0 < max_size < data_size + anns_size:
        raise MessageTooLargeError(max_size_text(data_size + anns_size, max_size))


# --- annotations -----------------------------------------------------------------------------------

def annotations_size(annotations: Mapping[str, BytesLike]) -> int:
    """The header's annotations length: 6 bytes of chunk header per value plus the value."""
    return sum(CHUNK_HEADER_SIZE + len(value) for value in annotations.values())


def _encode_key(key: object) -> bytes:
    if not isinstance(key, str):
        raise ProtocolError("annotation key must be a str, not %s" % type(key).__name__)
    if len(key) != 4:
        raise ProtocolError(ERR_KEY_LENGTH)
    try:
        return key.encode("ascii")
    except UnicodeEncodeError:
        raise ProtocolError("annotation key must be ASCII: %r" % key) from None


def _check_value(key: str, value: object) -> None:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise ProtocolError("annotation %r value must be bytes, not %s" % (key, type(value).__name__))
    if len(value) > MAX_ANNOTATIONS_SIZE - CHUNK_HEADER_SIZE:
        raise ProtocolError("annotation %r value too large: %d bytes (max %d)"
                            % (key, len(value), MAX_ANNOTATIONS_SIZE - CHUNK_HEADER_SIZE))


_KEY_CACHE: Dict[str, bytes] = {}  # keys already validated, so a call's CORR etc. skip the checks
_KEY_CACHE_MAX = 256               # annotation keys are a handful of constants; never grow without bound
_VALUE_MAX = MAX_ANNOTATIONS_SIZE - CHUNK_HEADER_SIZE


def _cached_key(key: Any) -> bytes:
    raw_key = _encode_key(key)
    if len(_KEY_CACHE) < _KEY_CACHE_MAX:
        _KEY_CACHE[key] = raw_key
    return raw_key


def encode_annotations(annotations: Mapping[str, BytesLike]) -> bytes:
    """The annotation chunks in dict order (the order decides the bytes, so keep it stable)."""
    if not annotations:
        return b""
    parts: List[BytesLike] = []
    pack = CHUNK_STRUCT.pack
    for key, value in annotations.items():
        raw_key = _KEY_CACHE.get(key) if type(key) is str else None
        if raw_key is None:
            raw_key = _cached_key(key)
        if type(value) is not bytes or len(value) > _VALUE_MAX:
            _check_value(key, value)
        parts.append(pack(raw_key, len(value)))
        parts.append(value)
    encoded = b"".join(parts)
    if len(encoded) > MAX_ANNOTATIONS_SIZE:
        raise ProtocolError("annotations too large: %d bytes in total (max %d)"
                            % (len(encoded), MAX_ANNOTATIONS_SIZE))
    return encoded


def decode_annotations(data: BytesLike) -> Dict[str, bytes]:
    """Parse the annotations area; a later duplicate key wins, as in Pyro4."""
    if type(data) is bytes:
        return _decode_chunks(data)  # slicing bytes copies just the value, as tobytes() would
    with memoryview(data) as view:
        return _decode_chunks(view)


_DECODED_KEYS: Dict[bytes, str] = {}  # raw keys seen before (bounded like _KEY_CACHE)


def _decode_key(raw_key: bytes, offset: int) -> str:
    try:
        key = raw_key.decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError("annotation key at offset %d is not ASCII: %r" % (offset, raw_key)) from None
    if len(_DECODED_KEYS) < _KEY_CACHE_MAX:
        _DECODED_KEYS[raw_key] = key
    return key


def _decode_chunks(view: Union[bytes, memoryview]) -> Dict[str, bytes]:
    size = len(view)
    result: Dict[str, bytes] = {}
    offset = 0
    unpack_from = CHUNK_STRUCT.unpack_from
    as_bytes = type(view) is bytes
    while offset < size:
        if size - offset < CHUNK_HEADER_SIZE:
            raise ProtocolError("annotation chunk header truncated at offset %d (%d bytes left of %d)"
                                % (offset, size - offset, size))
        raw_key, length = unpack_from(view, offset)
        key = _DECODED_KEYS.get(raw_key) or _decode_key(raw_key, offset)
        start = offset + CHUNK_HEADER_SIZE
        end = start + length
        if end > size:
            raise ProtocolError("annotation %r at offset %d has length %d, running past the end of "
                                "the annotations area (%d bytes)" % (key, offset, length, size))
        result[key] = view[start:end] if as_bytes else view[start:end].tobytes()  # type: ignore[assignment]
        offset = end
    return result


# --- HMAC ------------------------------------------------------------------------------------------

secure_compare = _hmac.compare_digest  # constant time; Pyro4 exposes the very same function


def compute_hmac(key: bytes, payload: BytesLike, annotations: Mapping[str, BytesLike]) -> bytes:
    """HMAC-SHA1 over the payload then every other annotation value, in key order (Pyro4's recipe)."""
    mac = _hmac.new(key, payload, digestmod=hashlib.sha1)
    for name in sorted(annotations):
        if name != "HMAC":
            mac.update(annotations[name])
    return mac.digest()


def with_hmac(annotations: Optional[Mapping[str, BytesLike]], key: Optional[bytes],
              payload: BytesLike) -> Dict[str, BytesLike]:
    """A copy of ``annotations`` with the HMAC chunk set (last, unless already present) when keyed."""
    result: Dict[str, BytesLike] = dict(annotations or {})
    if key:
        result["HMAC"] = compute_hmac(key, payload, result)
    return result


def hmac_problem(key: Optional[bytes], payload: BytesLike,
                 annotations: Mapping[str, BytesLike]) -> Optional[str]:
    """None when the HMAC situation is acceptable, else Pyro4's error text for it."""
    present = "HMAC" in annotations
    if present and key:
        if secure_compare(annotations["HMAC"], compute_hmac(key, payload, annotations)):
            return None
        return ERR_HMAC_MISMATCH
    if present != bool(key):
        return ERR_HMAC_NOT_SYMMETRIC
    return None


def verify_hmac(key: Optional[bytes], payload: BytesLike, annotations: Mapping[str, BytesLike]) -> None:
    """Raise ``SecurityError`` when the HMAC is wrong, or present on one side only."""
    problem = hmac_problem(key, payload, annotations)
    if problem:
        raise SecurityError(problem)


# --- keys ------------------------------------------------------------------------------------------

def hmac_key_bytes(value: Any) -> Optional[bytes]:
    """A proxy's or daemon's HMAC key as bytes: a str is utf-8 encoded, as Pyro4 does."""
    if value and not isinstance(value, bytes):
        return value.encode("utf-8")
    return value


# --- compression -----------------------------------------------------------------------------------

def compress_payload(data: BytesLike, compress: bool) -> Tuple[BytesLike, bool]:
    """``(payload, compressed)``: zlib only when asked, worth it (>= 200 bytes) and actually smaller."""
    if not compress or len(data) < COMPRESSION_THRESHOLD:
        return data, False
    packed = zlib.compress(data)
    if len(packed) < len(data):
        return packed, True
    return data, False


def decompress_payload(data: BytesLike, max_size: Optional[int] = None) -> bytes:
    """Inflate a zlib payload, never producing more than ``max_size`` bytes when a bound is given.

    Trailing bytes after the zlib stream are ignored, like ``zlib.decompress`` does.
    """
    inflater = zlib.decompressobj()
    try:
        if max_size is None:
            out = inflater.decompress(data)
        else:
            out = inflater.decompress(data, max_size + 1)  # one extra byte tells "too big"
    except zlib.error as exc:
        raise ProtocolError("invalid compressed data: %s" % exc) from None
    if max_size is not None and len(out) > max_size:
        raise MessageTooLargeError("decompressed data larger than %d bytes" % max_size)
    if not inflater.eof:
        raise ProtocolError("invalid compressed data: incomplete or truncated stream")
    return out


# --- building messages -----------------------------------------------------------------------------

def encode_message(msg_type: int, payload: BytesLike, serializer_id: int, flags: int, seq: int,
                   annotations: Optional[Mapping[str, BytesLike]] = None,
                   hmac_key: Optional[bytes] = None) -> Tuple[bytes, BytesLike]:
    """``(head, payload)``: header plus annotation chunks, and the payload untouched (not copied)."""
    anns = with_hmac(annotations, hmac_key, payload)
    chunks = encode_annotations(anns)
    header = pack_header(msg_type, flags, seq, len(payload), serializer_id, len(chunks))
    return header + chunks, payload


def build_message_bytes(msg_type: int, payload: BytesLike, serializer_id: int, flags: int, seq: int,
                        annotations: Optional[Mapping[str, BytesLike]] = None,
                        hmac_key: Optional[bytes] = None) -> bytes:
    """The complete message as one ``bytes``: what ``Message.to_bytes()`` returns."""
    head, body = encode_message(msg_type, payload, serializer_id, flags, seq, annotations, hmac_key)
    return head + body


def wire_chunks(head: bytes, payload: BytesLike, join_limit: int = SEND_JOIN_LIMIT) -> List[BytesLike]:
    """What to hand to ``sendall`` in turn: one buffer for small messages, two for large payloads."""
    if len(payload) < join_limit:
        return [head + payload]
    return [head, payload]


# --- incremental frame reader ----------------------------------------------------------------------

class Frame(NamedTuple):
    """One complete received message, before HMAC checking and decompression."""

    header: Header
    annotations: Dict[str, bytes]
    payload: bytes


class Oversized(NamedTuple):
    """A message over the limit whose bytes were all read and dropped (see ``discard_oversized``)."""

    header: Header


def _check_prefix(buffer: BytesLike) -> None:
    """Reject a stream as soon as its first bytes cannot start a protocol 48 header."""
    count = min(len(buffer), len(HEADER_PREFIX))
    if bytes(buffer[:count]) != HEADER_PREFIX[:count]:
        raise ProtocolError(ERR_BAD_TAG)


class FrameReader:
    """Turn an arbitrarily split byte stream into :class:`Frame` objects (h11's receive/next shape).

    ``feed()`` what the socket gave you, then call ``next_frame()`` until it returns
    :data:`NEED_DATA`. ``bytes_needed`` says how many more bytes the current frame still lacks,
    so a blocking caller can ``recv`` exactly that much. Only received bytes are ever buffered;
    a header's claimed size is checked against ``max_message_size`` (0 = unlimited) first.
    With ``discard_oversized``, a message over the limit but within :func:`discard_limit` is
    dropped as it arrives and reported as :class:`Oversized` instead of raising.

    A payload of ``gather_from`` bytes or more is *gathered* rather than buffered: once its
    frame's header and annotations are in, the payload's bytes are kept as the list of pieces
    fed, and joined once when the last one arrives (a single piece is used as it is). While
    :attr:`gathering` is true, a caller that feeds ``bytes`` objects of at most
    ``bytes_needed`` (``sock.recv(bytes_needed)``, say) has them kept without any copy when
    they are 64 KiB or more; smaller pieces and other buffers are copied once. That spares a multi-megabyte payload the trip through the
    growing byte buffer and the copy out of it.
    """

    def __init__(self, max_message_size: int = 0, discard_oversized: bool = False,
                 gather_from: int = GATHER_FROM) -> None:
        self.max_message_size = max_message_size
        self.discard_oversized = discard_oversized
        self.gather_from = gather_from
        self._buffer = bytearray()
        self._header: Optional[Header] = None
        self._annotations: Optional[Dict[str, bytes]] = None
        self._skipping: Optional[Header] = None   # the oversized message being dropped
        self._skip_left = 0
        self._pieces: List[BytesLike] = []   # the gathered payload so far (see the class doc)
        self._gather_left = 0            # payload bytes still to be gathered
        self._gathered_head = 0          # header and annotation bytes of the frame being gathered

    def feed(self, data: BytesLike) -> None:
        """Add received bytes (any split: a byte, a message, several messages)."""
        if self._skip_left:
            dropped = min(self._skip_left, len(data))
            self._skip_left -= dropped
            data = data[dropped:]
        if self._gather_left and data:
            data = self._gather(data)
        self._buffer += data

    def _gather(self, data: BytesLike) -> BytesLike:
        """Keep the payload's share of ``data``; return the rest (the next frame's bytes).

        A whole ``bytes`` object of ``_OWN_PIECE`` bytes or more is kept as it is; anything
        smaller is appended to a bytearray piece, so a client that trickles its payload costs
        a byte per byte, not an object per byte.
        """
        take = min(self._gather_left, len(data))
        pieces = self._pieces
        if take == len(data) and take >= _OWN_PIECE and type(data) is bytes:
            pieces.append(data)   # type: ignore[arg-type]
        else:
            with memoryview(data) as view:
                if type(pieces[-1]) is bytearray:
                    pieces[-1] += view[:take]   # type: ignore[operator]
                else:
                    pieces.append(bytearray(view[:take]))
        self._gather_left -= take
        return data[take:]

    @property
    def gathering(self) -> bool:
        """True while a large payload is being gathered (``bytes_needed`` of it still missing)."""
        return self._gather_left > 0

    @property
    def buffered(self) -> int:
        """Number of received bytes not yet handed out as frames."""
        if self._pieces:
            return len(self._buffer) + self._gathered_head + sum(map(len, self._pieces))
        return len(self._buffer)

    @property
    def pending_header(self) -> Optional[Header]:
        """The header of the frame being received, once it has been parsed."""
        return self._header or self._skipping

    @property
    def bytes_needed(self) -> int:
        """How many more bytes the frame in progress needs (0: call ``next_frame()``)."""
        if self._skipping is not None:
            return self._skip_left
        if self._pieces:
            return self._gather_left
        if self._header is None:
            return max(HEADER_SIZE - len(self._buffer), 0)
        return max(HEADER_SIZE + self._header.total_size - len(self._buffer), 0)

    def next_frame(self) -> Union[Frame, Oversized, _Sentinel]:
        """The next complete frame (or ``Oversized`` event), else ``NEED_DATA``; ``ProtocolError`` on bad input."""
        if self._skipping is not None:
            return self._finish_skip()
        if self._pieces:
            return self._finish_gathering()
        header = self._header or self._read_header()
        if header is None:
            return NEED_DATA
        if self._skipping is not None:
            return self._finish_skip()
        buffer = self._buffer
        anns_end = HEADER_SIZE + header.annotations_size
        if len(buffer) < anns_end:
            return NEED_DATA
        if self._annotations is None:
            self._annotations = decode_annotations(buffer[HEADER_SIZE:anns_end])
        end = anns_end + header.data_size
        if len(buffer) < end:
            if header.data_size >= self.gather_from:
                self._start_gathering(anns_end, end)
            return NEED_DATA
        with memoryview(buffer) as view:  # released before the buffer is resized below
            payload = bytes(view[anns_end:end])
        return self._frame(payload, end)

    def _frame(self, payload: bytes, consumed: int) -> Frame:
        frame = Frame(self._header, self._annotations, payload)  # type: ignore[arg-type]
        del self._buffer[:consumed]
        self._header = None
        self._annotations = None
        return frame

    def _start_gathering(self, payload_start: int, end: int) -> None:
        """Move the payload's first bytes out of the buffer; the rest will be gathered as fed."""
        buffer = self._buffer
        with memoryview(buffer) as view:  # the buffer ends inside the payload
            self._pieces.append(bytearray(view[payload_start:]))
        self._gather_left = end - len(buffer)
        self._gathered_head = payload_start
        del buffer[:]

    def _finish_gathering(self) -> Union[Frame, _Sentinel]:
        if self._gather_left:
            return NEED_DATA
        pieces, self._pieces = self._pieces, []
        if not pieces[0]:
            del pieces[0]   # no payload byte had arrived with the header
        if len(pieces) == 1 and type(pieces[0]) is bytes:
            return self._frame(pieces[0], 0)   # type: ignore[arg-type]
        return self._frame(b"".join(pieces), 0)

    def _read_header(self) -> Optional[Header]:
        buffer = self._buffer
        if len(buffer) < HEADER_SIZE:
            _check_prefix(buffer)
            return None
        header = unpack_header(bytes(buffer[:HEADER_SIZE]))
        try:
            check_message_size(header.data_size, header.annotations_size, self.max_message_size)
        except MessageTooLargeError:
            if not self.discard_oversized or header.total_size > discard_limit(self.max_message_size):
                raise
            arrived = min(len(buffer) - HEADER_SIZE, header.total_size)
            del buffer[:HEADER_SIZE + arrived]  # what of it already arrived goes right away
            self._skipping, self._skip_left = header, header.total_size - arrived
            return header
        self._header = header
        return header

    def _finish_skip(self) -> Union[Oversized, _Sentinel]:
        if self._skip_left:
            return NEED_DATA
        header, self._skipping = self._skipping, None
        return Oversized(header)  # type: ignore[arg-type]


def iter_frames(reader: FrameReader) -> Iterator[Frame]:
    """Every complete frame currently available from ``reader``."""
    while True:
        frame = reader.next_frame()
        if frame is NEED_DATA:
            return
        yield frame  # type: ignore[misc]
