"""Protocol 48 on bytes: header, annotation chunks, HMAC, compression and message building.

Theory of operation
-------------------
This module never touches a socket, a thread or the global config: every function takes bytes
(and plain limits) and returns bytes or parsed values, so each protocol rule is testable on its own
and the I/O layers above it (``message.Message``, the socket servers) stay thin.

A message on the wire is::

    header (24 bytes, HEADER_STRUCT) | annotation chunks (annotations_size bytes) | payload (data_size bytes)

and each annotation chunk is ``4-byte ASCII key | 2-byte big-endian length | value``.

Sending: :func:`encode_head` gives a message's header plus annotation chunks (``Message`` sends
that, and the byte-level tests test it); the payload follows untouched. Small messages go out
as one buffer (:func:`wire_chunks` joins them, which keeps Nagle's algorithm from delaying the
reply); large payloads are sent after the head without being copied into a new buffer.

Receiving: :mod:`pyro4compat._frames` builds its frame reader, the only one, on the header and
annotation functions here.

Every malformed input raises a :class:`~pyro4compat.errors.ProtocolError` subclass (or
``SecurityError`` for HMAC problems) carrying Pyro4's own message text where Pyro4 has one.
"""

from __future__ import annotations

import hashlib
import hmac as _hmac
import struct
import zlib
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple, Union

from .constants import PROTOCOL_VERSION
from .errors import MessageTooLargeError, ProtocolError

__all__ = [
    "MSG_CONNECT", "MSG_CONNECTOK", "MSG_CONNECTFAIL", "MSG_INVOKE", "MSG_RESULT", "MSG_PING",
    "FLAGS_EXCEPTION", "FLAGS_COMPRESSED", "FLAGS_ONEWAY", "FLAGS_BATCH", "FLAGS_META_ON_CONNECT",
    "FLAGS_ITEMSTREAMRESULT", "FLAGS_KEEPSERIALIZED", "MSG_TYPE_NAMES", "VALID_MSG_TYPES", "FLAG_NAMES",
    "HEADER_FORMAT", "HEADER_SIZE", "CHECKSUM_MAGIC", "MAX_DATA_SIZE", "MAX_ANNOTATIONS_SIZE",
    "COMPRESSION_THRESHOLD", "SEND_JOIN_LIMIT", "Header",
    "DISCARD_MINIMUM", "discard_limit",
    "checksum", "pack_header", "unpack_header", "header_fields", "annotations_size", "encode_annotations",
    "decode_annotations", "compute_hmac", "with_hmac", "hmac_problem", "secure_compare",
    "check_message_size", "max_size_text", "compress_payload", "decompress_payload", "wire_chunks",
    "encode_head",
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
CHECKSUM_MAGIC = 0x34E9
TAG = b"PYRO"
HEADER_PREFIX = TAG + struct.pack("!H", PROTOCOL_VERSION)  # what every valid stream starts with
# the same 24 bytes read as (tag and version, the six Header fields in wire order, reserved,
# checksum): the fields come out as one slice, and the checksum is their sum plus a constant
_HEADER_UNPACK = struct.Struct("!6sHHHiHHHH").unpack
_CHECKSUM_BASE = PROTOCOL_VERSION + CHECKSUM_MAGIC
CHUNK_STRUCT = struct.Struct("!4sH")
CHUNK_HEADER_SIZE = CHUNK_STRUCT.size
_CORR_CHUNK_HEAD = CHUNK_STRUCT.pack(b"CORR", 16)
_CORR_CHUNK_SIZE = CHUNK_HEADER_SIZE + 16     # the annotations area of a lone CORR
MAX_DATA_SIZE = 0x7FFFFFFF  # the length field is a signed int32
MAX_ANNOTATIONS_SIZE = 0xFFFF  # the annotations length field is an unsigned short
MAX_U16 = 0xFFFF

COMPRESSION_THRESHOLD = 200  # Pyro4 does not bother compressing payloads smaller than this
SEND_JOIN_LIMIT = 64 * 1024  # below this, copying payload into one buffer is cheaper than two sends

ERR_HEADER_SIZE = "header data size mismatch"
ERR_BAD_TAG = "invalid data or unsupported protocol version"
ERR_CHECKSUM = "header checksum mismatch"
ERR_DATA_SIZE = "invalid message size (outside range 0..2Gb)"
ERR_KEY_LENGTH = "annotation key must be of length 4"
ERR_HMAC_MISMATCH = "message hmac mismatch"
ERR_HMAC_NOT_SYMMETRIC = "hmac key config not symmetric"


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


_new_tuple = tuple.__new__

_U16_FIELDS = ("msg_type", "flags", "seq", "serializer_id", "annotations_size")


def pack_header(msg_type: int, flags: int, seq: int, data_size: int, serializer_id: int,
                annotations_size: int = 0) -> bytes:
    """The 24 header bytes; out-of-range fields raise instead of producing a corrupt header."""
    if 0 <= data_size <= MAX_DATA_SIZE and not (msg_type | flags | seq | serializer_id | annotations_size) >> 16:
        # the common case, inlined: this runs twice per call on each side (all five are 0..65535
        # exactly when no bit from 16 up is set in any: a negative int has them all)
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
    if not data or len(data) != HEADER_SIZE:
        raise ProtocolError(ERR_HEADER_SIZE)
    words = _HEADER_UNPACK(data)
    fields = words[1:7]    # msg_type, flags, seq, data_size, serializer_id, annotations_size
    if words[0] != HEADER_PREFIX:
        raise ProtocolError(ERR_BAD_TAG)
    if words[8] != (sum(fields) + _CHECKSUM_BASE) & 0xFFFF:
        raise ProtocolError(ERR_CHECKSUM)
    if fields[3] < 0:
        raise ProtocolError(ERR_DATA_SIZE)
    # Header(...) without NamedTuple's __new__: this runs for every message
    return _new_tuple(Header, fields)


# :func:`unpack_header` under the name callers use that only unpack its six fields (a Header is that tuple)
header_fields: Callable[[BytesLike], Tuple[int, int, int, int, int, int]] = unpack_header


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
    try:
        return sum(CHUNK_HEADER_SIZE + len(value) for value in annotations.values())
    except TypeError:
        encode_annotations(annotations)   # raises the ProtocolError naming the value that is not bytes
        raise


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
    if type(data) is bytes or type(data) is memoryview:
        return _decode_chunks(data)  # slicing bytes copies just the value, as tobytes() would
    with memoryview(data) as view:   # (a bytearray: the view is released before it may be resized)
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
    if size == _CORR_CHUNK_SIZE and view[:CHUNK_HEADER_SIZE] == _CORR_CHUNK_HEAD:   # a lone CORR: most replies
        value = view[CHUNK_HEADER_SIZE:]
        return {"CORR": value if type(value) is bytes else value.tobytes()}  # type: ignore[dict-item]
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

def encode_head(msg_type: int, flags: int, seq: int, data_size: int, serializer_id: int,
                annotations: Mapping[str, BytesLike]) -> bytes:
    """Header plus annotation chunks: everything of a message before its payload.

    Every message goes out through this (``Message._head_bytes``), so byte-level tests of it
    test what production sends. A lone CORR of 16 bytes, what most replies carry, has its chunk
    header ready-made.
    """
    if not annotations:
        chunks = b""
    elif len(annotations) == 1 and len(corr := annotations.get("CORR") or b"") == 16 and type(corr) is bytes:
        chunks = _CORR_CHUNK_HEAD + corr
    else:
        chunks = encode_annotations(annotations)
    return pack_header(msg_type, flags, seq, data_size, serializer_id, len(chunks)) + chunks


def wire_chunks(head: bytes, payload: BytesLike, join_limit: int = SEND_JOIN_LIMIT) -> List[BytesLike]:
    """What to hand to ``sendall`` in turn: one buffer for small messages, two for large payloads."""
    if len(payload) < join_limit:
        return [head + payload]
    return [head, payload]
