"""Protocol 48 received incrementally: a sans-IO frame reader (h11's receive/next shape).

Theory of operation
-------------------
:class:`FrameReader` is fed whatever bytes arrived and hands out complete
:class:`Frame` objects, or :data:`NEED_DATA` until there are enough bytes. It validates the header
as soon as it is complete (and the tag/version as soon as the first six bytes are there), checks the
size limit before buffering a body, and only ever holds bytes that actually arrived. Errors are
deterministic: a reader that raised keeps raising the same error for the same buffered bytes, so the
caller's only sensible move is to drop the connection.

A server may instead ask the reader to *discard* a message over the limit (``discard_oversized``):
the reader hands out an :class:`Oversized` event carrying just the header as soon as the header
is in, so the server can answer ``MessageTooLargeError`` for its sequence number at once, before
the body arrives. If the message is no larger than :func:`~pyro4compat._protocol.discard_limit`
allows (``in_step``), its body is then counted off as it arrives (never buffered) and the frames
after it are read as usual. A larger one leaves the reader raising ``MessageTooLargeError``
from then on: the server answers and closes the connection.

Like :mod:`pyro4compat._protocol`, this module never touches a socket, a thread or the config.
"""

from __future__ import annotations

from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Union

from ._protocol import (ERR_BAD_TAG, HEADER_PREFIX, HEADER_SIZE, BytesLike, Header, decode_annotations,
                        discard_limit, max_size_text, unpack_header)
from .errors import MessageTooLargeError, ProtocolError

__all__ = ["GATHER_FROM", "OWN_PIECE", "NEED_DATA", "Frame", "Oversized", "FrameReader", "iter_frames",
           "whole_frame"]

GATHER_FROM = 1 << 20  # payloads this large are gathered piece by piece, not buffered
_ONE_RECEIVE_BELOW = 64 * 1024  # receive(): smaller payloads come with their annotations, then are sliced off
OWN_PIECE = 64 * 1024  # ... and a fed bytes object this large is kept as a piece of its own


class _Sentinel:
    """A named singleton, so ``NEED_DATA`` prints as itself in test failures and logs."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


NEED_DATA = _Sentinel("NEED_DATA")
_new_tuple = tuple.__new__


class Frame(NamedTuple):
    """One complete received message, before HMAC checking and decompression."""

    header: Header
    annotations: Dict[str, bytes]
    payload: bytes


class Oversized(NamedTuple):
    """A message over the limit, reported on its header (see ``discard_oversized``).

    ``in_step``: its body is being dropped as it arrives and the stream stays usable; False when
    it is too large even for that (the reader raises from now on, the connection must close).
    """

    header: Header
    in_step: bool = True


def whole_frame(data: BytesLike, max_message_size: int) -> Optional[Frame]:
    """The frame ``data`` is when it is exactly one complete frame within the limit, else None.

    The shortcut for bytes that arrived as one whole message (the usual small call or reply):
    the header gets every check :meth:`FrameReader.next_frame` makes and the payload is copied
    straight out of ``data``. Anything else (a part of a frame, more than one, a failed check,
    a size over the limit) gives None and the caller takes the general path, which reports
    errors in their usual order. Used by :meth:`FrameReader.feed` and by a proxy's receive
    (``message.read_reply``).
    """
    if len(data) < HEADER_SIZE:
        return None
    try:
        header = unpack_header(data[:HEADER_SIZE])
        anns_size = header[5]
        total = header[3] + anns_size   # data_size + annotations_size
        if HEADER_SIZE + total != len(data) or 0 < max_message_size < total:
            return None
        anns_end = HEADER_SIZE + anns_size
        annotations = decode_annotations(data[HEADER_SIZE:anns_end]) if anns_size else {}
    except ProtocolError:
        return None        # the general path raises it, in its order
    return _new_tuple(Frame, (header, annotations, bytes(data[anns_end:])))


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
    With ``discard_oversized``, a message over the limit is reported as :class:`Oversized` as
    soon as its header is in, and (within :func:`discard_limit`) its body dropped as it arrives.

    A payload of ``gather_from`` bytes or more is *gathered* rather than buffered: once its
    frame's header and annotations are in, the payload's bytes are kept as the list of pieces
    fed, and joined once when the last one arrives (a single piece is used as it is). While
    :attr:`gathering` is true, a caller that feeds ``bytes`` objects of at most
    ``bytes_needed`` (``sock.recv(bytes_needed)``, say) has them kept without any copy when
    they are 64 KiB or more; smaller pieces and other buffers are copied once. That spares a
    multi-megabyte payload the trip through the growing byte buffer and the copy out of it.

    The usual small request arrives whole, alone, into a reader holding nothing: ``feed`` then
    takes it apart at once (the same header checks, the payload copied straight out of ``data``)
    and ``next_frame`` hands it out, without a trip through the buffer. Anything else (a frame
    in pieces, two at once, a header that fails a check, a size over the limit) goes through
    the buffer as above, so errors and their order are the same either way.
    """

    __slots__ = ("max_message_size", "discard_oversized", "gather_from", "_buffer", "_header", "_annotations",
                 "_skipping", "_skip_left", "_broken", "_pieces", "_gather_left", "_gathered_head", "_whole")

    def __init__(self, max_message_size: int = 0, discard_oversized: bool = False,
                 gather_from: int = GATHER_FROM) -> None:
        self.max_message_size = max_message_size
        self.discard_oversized = discard_oversized
        self.gather_from = gather_from
        self._buffer = bytearray()
        self._header: Optional[Header] = None
        self._annotations: Optional[Dict[str, bytes]] = None
        self._skipping: Optional[Oversized] = None   # an oversized message not reported yet
        self._skip_left = 0                          # bytes of its body still to drop
        self._broken: Optional[MessageTooLargeError] = None   # set once a message was beyond discarding
        self._pieces: List[BytesLike] = []   # the gathered payload so far (see the class doc)
        self._gather_left = 0            # payload bytes still to be gathered
        self._gathered_head = 0          # header and annotation bytes of the frame being gathered
        self._whole: Optional[Frame] = None    # a frame fed whole into an empty reader, not handed out yet

    def feed(self, data: BytesLike) -> bool:
        """Add received bytes (any split: a byte, a message, several messages).

        True when ``data`` was exactly one frame and nothing else is pending: one ``next_frame()``
        hands out all there is (a caller may skip asking again)."""
        if self._broken is not None:
            return False      # the stream lost its message boundaries: nothing more is kept
        if self._skip_left:
            dropped = min(self._skip_left, len(data))
            self._skip_left -= dropped
            data = data[dropped:]
        if self._gather_left and data:
            data = self._gather(data)
        elif len(data) >= HEADER_SIZE and not self._buffer and self._header is None and self._whole is None:
            self._whole = whole_frame(data, self.max_message_size)    # None: buffer it after all
            if self._whole is not None:
                return self._skipping is None
        self._buffer += data
        return False

    def _gather(self, data: BytesLike) -> BytesLike:
        """Keep the payload's share of ``data``; return the rest (the next frame's bytes).

        A whole ``bytes`` object of ``OWN_PIECE`` bytes or more is kept as it is; anything
        smaller is appended to a bytearray piece, so a client that trickles its payload costs
        a byte per byte, not an object per byte.
        """
        take = min(self._gather_left, len(data))
        pieces = self._pieces
        if take == len(data) and take >= OWN_PIECE and type(data) is bytes:
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
        if self._whole is not None:
            return len(self._buffer) + HEADER_SIZE + self._whole.header.total_size
        return len(self._buffer)

    @property
    def holds_bytes(self) -> bool:
        """Anything received and not handed out yet (cheaper than ``buffered``; False: next_frame() has nothing)."""
        return bool(self._buffer) or self._whole is not None or bool(self._pieces) or self._skipping is not None

    @property
    def idle(self) -> bool:
        """Between frames and in step: nothing pending, the next byte fed starts a new frame.

        A caller that knows its reader is idle may take a whole frame apart itself
        (:func:`whole_frame`) instead of feeding it; the two give the same frame."""
        return (self._whole is None and self._header is None and not self._buffer and not self._pieces
                and self._skipping is None and not self._skip_left and self._broken is None)

    @property
    def in_frame(self) -> bool:
        """True while part of a frame has arrived and the rest has not (a sender may have stalled)."""
        return bool(self._buffer) or self._header is not None or self._skip_left > 0 or bool(self._pieces)

    @property
    def pending_header(self) -> Optional[Header]:
        """The header of the frame being received, once it has been parsed."""
        return self._header

    @property
    def bytes_needed(self) -> int:
        """How many more bytes the frame in progress needs (0: call ``next_frame()``)."""
        if self._whole is not None:
            return 0
        if self._skip_left:
            return self._skip_left
        if self._pieces:
            return self._gather_left
        if self._header is None:
            return max(HEADER_SIZE - len(self._buffer), 0)
        return max(HEADER_SIZE + self._header.total_size - len(self._buffer), 0)

    def next_frame(self) -> Union[Frame, Oversized, _Sentinel]:
        """The next complete frame (or ``Oversized`` event), else ``NEED_DATA``; ``ProtocolError`` on bad input."""
        if self._skipping is not None:
            return self._report_oversized()
        whole = self._whole
        if whole is not None:
            self._whole = None
            return whole
        if self._broken is not None:
            raise self._broken
        if self._skip_left:
            return NEED_DATA
        if self._pieces:
            return self._finish_gathering()
        header = self._header or self._read_header()
        if header is None:
            return NEED_DATA
        if self._skipping is not None:
            return self._report_oversized()
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
        frame = _new_tuple(Frame, (self._header, self._annotations, payload))  # Frame(...), minus its __new__
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

    def _report_oversized(self) -> Oversized:
        event, self._skipping = self._skipping, None
        return event  # type: ignore[return-value]

    def _read_header(self) -> Optional[Header]:
        buffer = self._buffer
        if len(buffer) < HEADER_SIZE:
            if buffer:      # nothing at all is the usual case between two messages: nothing to check
                _check_prefix(buffer)
            return None
        return self._accept_header(unpack_header(buffer[:HEADER_SIZE]), len(buffer) - HEADER_SIZE)

    def _accept_header(self, header: Header, arrived: int) -> Header:
        """Check a parsed header's size; ``arrived``: bytes of its body already in the buffer."""
        max_size = self.max_message_size
        if not 0 < max_size < header[3] + header[5]:    # data_size + annotations_size: the usual case
            self._header = header
            return header
        too_large = MessageTooLargeError(max_size_text(header.total_size, max_size))
        if not self.discard_oversized:
            raise too_large
        buffer = self._buffer
        if header.total_size > discard_limit(max_size):
            self._broken = too_large
            del buffer[:]
            self._skipping = Oversized(header, False)
            return header
        arrived = min(arrived, header.total_size)
        del buffer[:HEADER_SIZE + arrived]  # what of it already arrived goes right away
        self._skipping, self._skip_left = Oversized(header), header.total_size - arrived
        return header

    def receive(self, recv: Callable[[int], BytesLike]) -> Union[Frame, Oversized]:
        """Pull one frame through ``recv(n)``, which returns exactly ``n`` bytes (a blocking socket).

        The other way in, for a caller that may block (a proxy, a thread waiting for its reply):
        the header gets the same checks as in :meth:`next_frame` (tag, version, checksum, size
        limit, ``discard_oversized``), then annotations and payload are received as they are,
        so a large payload is never copied (a small one comes in the same receive as its
        annotations and is sliced off: one receive less per reply). Only for a reader with nothing buffered; it is empty
        again afterwards, except after an ``Oversized`` event whose body is still to be dropped
        (``bytes_needed`` says how much; ``feed`` it).
        """
        if self._broken is not None:
            raise self._broken
        header = unpack_header(recv(HEADER_SIZE))
        anns_size, data_size = header[5], header[3]
        max_size = self.max_message_size
        if 0 < max_size < data_size + anns_size:
            self._accept_header(header, 0)
            if self._skipping is not None:
                return self._report_oversized()
        self._header = header   # what a bad annotations area is reported against
        if anns_size and 0 < data_size < _ONE_RECEIVE_BELOW:     # a small reply: one receive, split here
            rest = recv(anns_size + data_size)
            annotations = decode_annotations(rest[:anns_size])
            payload = rest[anns_size:]
        else:
            annotations = decode_annotations(recv(anns_size)) if anns_size else {}
            payload = recv(data_size) if data_size else b""
        self._header = None
        return _new_tuple(Frame, (header, annotations, payload))


def iter_frames(reader: FrameReader) -> Iterator[Frame]:
    """Every complete frame currently available from ``reader``."""
    while True:
        frame = reader.next_frame()
        if frame is NEED_DATA:
            return
        yield frame  # type: ignore[misc]
