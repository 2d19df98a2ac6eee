"""Properties of the frame reader: any split gives the same frames; junk only ever gives ProtocolError."""

from __future__ import annotations

import string
import struct
import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyro4compat import _frames, _protocol as p
from pyro4compat.message import Message
from pyro4compat.errors import ProtocolError

BOUNDED = settings(max_examples=200, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.too_slow])

u16 = st.integers(min_value=0, max_value=0xFFFF)
keys = st.text(alphabet=string.ascii_letters + string.digits + "_", min_size=4, max_size=4).filter(
    lambda k: k != "HMAC")  # the HMAC chunk is the sender's to add, from its key
annotations = st.dictionaries(keys, st.binary(max_size=40), max_size=4)
messages = st.tuples(u16, st.binary(max_size=300), u16, u16, u16, annotations,
                     st.one_of(st.none(), st.binary(min_size=1, max_size=8)))


def build(msg) -> bytes:
    msg_type, payload, ser, flags, seq, anns, key = msg
    return Message(msg_type, payload, ser, flags, seq, anns, key).to_bytes()


def split(data: bytes, cuts) -> list:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0] + points + [len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:])]


def outcome(pieces, max_message_size: int = 0, gather_from: int = _frames.GATHER_FROM):
    """Frames produced and the error text (if any) when feeding ``pieces`` one at a time."""
    reader = _frames.FrameReader(max_message_size, gather_from=gather_from)
    frames = []
    try:
        for piece in pieces:
            whole, before = reader.feed(piece), len(frames)
            frames.extend(_frames.iter_frames(reader))   # (keeps the frames before an error)
            if whole:   # feed's promise: that one frame was all there is
                assert len(frames) == before + 1 and not reader.holds_bytes
    except ProtocolError as exc:
        return frames, type(exc).__name__, str(exc)
    return frames, None, reader.buffered


def test_feed_says_when_the_bytes_were_exactly_one_frame():
    one, two = build((1, b"abc", 2, 0, 7, {}, None)), build((1, b"defg", 2, 0, 8, {}, None))
    reader = _frames.FrameReader()
    assert reader.feed(one) is True
    assert [f.header.seq for f in _frames.iter_frames(reader)] == [7] and not reader.holds_bytes
    assert reader.feed(one + two) is False                        # two frames: ask until NEED_DATA
    assert [f.header.seq for f in _frames.iter_frames(reader)] == [7, 8]
    assert reader.feed(one[:5]) is False and reader.feed(one[5:]) is False   # completed from the buffer
    assert [f.header.seq for f in _frames.iter_frames(reader)] == [7]
    limited = _frames.FrameReader(max_message_size=2, discard_oversized=True)
    assert limited.feed(one) is False                             # over the limit: reported, not handed out whole
    oversized = _frames.FrameReader(max_message_size=3, discard_oversized=True)
    assert oversized.feed(two[:_frames.HEADER_SIZE]) is False     # its refusal is still to be reported ...
    assert oversized.feed(two[_frames.HEADER_SIZE:] + one) is False   # ... before the whole frame behind it
    events = list(_frames.iter_frames(oversized))
    assert type(events[0]) is _frames.Oversized and events[-1].header.seq == 7


@BOUNDED
@given(st.lists(messages, min_size=1, max_size=4), st.lists(st.integers(min_value=0), max_size=12))
def test_any_split_of_valid_stream_gives_the_messages(msgs, cuts):
    stream = b"".join(build(m) for m in msgs)
    frames, error, left = outcome(split(stream, cuts))
    assert error is None and left == 0
    assert len(frames) == len(msgs)
    for frame, (msg_type, payload, ser, flags, seq, anns, key) in zip(frames, msgs):
        assert tuple(frame.header)[:3] == (msg_type, flags, seq)
        assert frame.header.serializer_id == ser
        assert frame.payload == payload
        assert frame.annotations == p.with_hmac(anns, key, payload)
        assert p.hmac_problem(key, frame.payload, frame.annotations) is None


@BOUNDED
@given(st.lists(messages, min_size=1, max_size=4), st.lists(st.integers(min_value=0), max_size=12),
       st.integers(min_value=0, max_value=64), st.booleans())
def test_gathered_payloads_give_the_same_frames(msgs, cuts, gather_from, as_views):
    """Small ``gather_from`` makes most payloads take the gathering path, fed as bytes or as views."""
    stream = b"".join(build(m) for m in msgs)
    pieces = split(stream, cuts)
    if as_views:
        pieces = [memoryview(bytearray(piece)) for piece in pieces]
    assert outcome(pieces, gather_from=gather_from) == outcome([stream])


@BOUNDED
@given(st.lists(messages, min_size=1, max_size=3), st.integers(min_value=0, max_value=2000))
def test_max_message_size_split_invariant(msgs, limit):
    stream = b"".join(build(m) for m in msgs)
    assert outcome([stream], limit) == outcome([bytes([b]) for b in stream], limit)


def _header_then(prefix_fields, tail: bytes) -> bytes:
    msg_type, flags, seq, data_size, ser, anns_size = prefix_fields
    chk = p.checksum(msg_type, flags, seq, data_size, ser, anns_size)
    return struct.pack("!4sHHHHiHHHH", b"PYRO", 48, msg_type, flags, seq, data_size, ser, anns_size, 0, chk) + tail


junk = st.one_of(
    st.binary(max_size=200),
    st.binary(max_size=200).map(lambda b: b"PYRO\x00\x30" + b),
    st.tuples(st.tuples(u16, u16, u16, st.integers(-5, 300), u16, st.integers(0, 120)),
              st.binary(max_size=400)).map(lambda t: _header_then(*t)),
)


@BOUNDED
@given(junk, st.lists(st.integers(min_value=0), max_size=10))
def test_random_bytes_only_raise_protocol_errors_and_split_does_not_matter(data, cuts):
    whole = outcome([data])
    pieces = outcome(split(data, cuts))
    assert whole == pieces  # outcome() lets any non-ProtocolError exception escape and fail the test


@BOUNDED
@given(st.one_of(junk, st.lists(messages, min_size=1, max_size=2).map(lambda ms: b"".join(build(m) for m in ms))),
       st.integers(min_value=0, max_value=400), st.sampled_from([bytes, bytearray, memoryview]))
def test_whole_frame_is_exactly_what_the_reader_makes_of_one_frame(data, limit, kind):
    """``whole_frame`` (a proxy's one-receive reply, ``feed``'s shortcut) never disagrees with the
    reader fed byte by byte: the same frame when the bytes are exactly one, else None."""
    frames, error, left = outcome([bytes([b]) for b in data], limit)
    quick = _frames.whole_frame(kind(data), limit)
    if error is None and left == 0 and len(frames) == 1:
        assert quick == frames[0] and type(quick.payload) is bytes
        assert all(type(v) is bytes for v in quick.annotations.values())
    else:
        assert quick is None


@BOUNDED
@given(st.binary(max_size=120))
def test_decode_annotations_on_junk(data):
    try:
        result = p.decode_annotations(data)
    except ProtocolError:
        return
    assert all(len(k) == 4 and k.isascii() and type(v) is bytes for k, v in result.items())
    assert sum(6 + len(v) for v in result.values()) <= len(data)
    assert p.decode_annotations(p.encode_annotations(result)) == result


@BOUNDED
@given(st.binary(max_size=300), st.one_of(st.none(), st.integers(min_value=0, max_value=500)))
def test_decompress_on_junk_is_bounded(data, bound):
    try:
        out = p.decompress_payload(data, bound)
    except ProtocolError:
        return
    assert bound is None or len(out) <= bound


@BOUNDED
@given(st.binary(max_size=3000), st.integers(min_value=0, max_value=4000))
def test_decompress_roundtrip_respects_bound(data, bound):
    packed = zlib.compress(data)
    try:
        assert p.decompress_payload(packed, bound) == data
        assert len(data) <= bound
    except ProtocolError:
        assert len(data) > bound


def _events(reader, pieces):
    """What ``reader`` hands out for ``pieces`` fed one at a time (ending with the error text, if any)."""
    events = []
    try:
        for piece in pieces:
            reader.feed(piece)
            events.extend(_frames.iter_frames(reader))
    except ProtocolError as exc:
        events.append((type(exc).__name__, str(exc)))
    return events


@BOUNDED
@given(st.lists(messages, min_size=1, max_size=4), st.lists(st.integers(min_value=0), max_size=12),
       st.integers(min_value=0, max_value=400))
def test_an_idle_reader_hands_out_what_a_fresh_one_would(msgs, cuts, limit):
    """``idle`` is what lets a server take the next bytes apart itself (``whole_frame``): whenever
    it says so, the reader goes on exactly as a new reader would, oversized bodies being dropped
    included (a reader still dropping one is never idle)."""
    pieces = split(b"".join(build(m) for m in msgs), cuts)
    for start in range(len(pieces) + 1):
        reader = _frames.FrameReader(limit, discard_oversized=True)
        _events(reader, pieces[:start])
        if reader.idle:
            rest = pieces[start:]
            assert _events(reader, rest) == _events(_frames.FrameReader(limit, discard_oversized=True), rest)


def test_idle_while_between_frames_only():
    one = build((1, b"abc", 2, 0, 7, {}, None))
    reader = _frames.FrameReader(max_message_size=2, discard_oversized=True)
    assert reader.idle
    reader.feed(one[:3])
    assert not reader.idle                       # a partial header
    reader.feed(one[3:_frames.HEADER_SIZE])
    assert not reader.idle                       # an oversized header, not reported yet
    assert type(reader.next_frame()) is _frames.Oversized
    assert not reader.idle                       # its body is still to be dropped
    reader.feed(one[_frames.HEADER_SIZE:])
    assert reader.next_frame() is _frames.NEED_DATA and reader.idle
    plain = _frames.FrameReader()
    plain.feed(one)
    assert not plain.idle                        # a whole frame not handed out yet
    plain.next_frame()
    assert plain.idle
