"""Property tests of the deserializers and the discarding frame reader (issue 8, item 7).

``test_serializer_badinput.py`` fuzzes every deserializer with random bytes and
``test_frame_reader_properties.py`` the frame reader with random streams; these add what they
leave out: *mutated valid* payloads, compressed payloads, ``__class__`` dicts naming anything,
truncated marshal, and the reader's discard mode (split invariance, never buffering an
oversized body).
"""

from __future__ import annotations

import marshal
import sqlite3  # noqa: F401  (its exceptions are the one module the dict forms may load: rule 4)
import sys
import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyro4compat import _frames, _protocol as p
from pyro4compat.message import Message
from pyro4compat import errors
from pyro4compat import _serializers as S

BOUNDED = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
SAFE = ["serpent", "json", "marshal", "msgpack"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=False),
                    st.text(max_size=20))   # (no bytes: json cannot carry them, in Pyro4 either)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=4)),
                      max_leaves=12)


def only_pyro_errors(name: str, data: bytes, compressed: bool = False) -> None:
    ser = S.get_serializer(name)
    for load in (ser.deserializeData, ser.deserializeCall):
        try:
            load(data, compressed)
        except errors.PyroError:
            pass


@BOUNDED
@given(st.sampled_from(SAFE), values, st.integers(min_value=0), st.integers(0, 255))
def test_mutated_valid_payloads_only_raise_pyro_errors(name, value, position, byte):
    ser = S.get_serializer(name)
    data = bytearray(ser.dumpsCall("obj", "method", [value], {"k": value}))
    data[position % len(data)] = byte
    only_pyro_errors(name, bytes(data))


@BOUNDED
@given(st.sampled_from(SAFE), values, st.integers(min_value=0))
def test_truncated_valid_payloads_only_raise_pyro_errors(name, value, cut):
    data = S.get_serializer(name).dumpsCall("obj", "method", [value], None)
    only_pyro_errors(name, data[:cut % (len(data) + 1)])


@BOUNDED
@given(st.sampled_from(SAFE), st.binary(max_size=300))
def test_compressed_junk_only_raises_pyro_errors(name, junk):
    only_pyro_errors(name, zlib.compress(junk), compressed=True)
    only_pyro_errors(name, junk, compressed=True)       # not even zlib


class_names = st.one_of(st.text(max_size=40),
                        st.sampled_from(["os.system", "subprocess.Popen", "builtins.eval", "builtins.__import__",
                                         "Pyro4.core.URI", "Pyro4.errors.CommunicationError", "sqlite3.Error",
                                         "__main__.Evil", "pickle.loads", "Pyro4.utils.flame.Flame"]))


@BOUNDED
@given(st.sampled_from(["serpent", "json", "msgpack"]), class_names, st.booleans(), values)
def test_class_dicts_never_import_anything(name, classname, exception, extra):
    """Any ``__class__`` name: a PyroError or one of the few known classes, and no new modules."""
    ser = S.get_serializer(name)
    payload = {"__class__": classname, "state": extra}
    if exception:
        payload.update({"__exception__": True, "args": [], "attributes": {}})
    data = ser.dumps(payload)
    before = set(sys.modules)
    try:
        ser.loads(data)
    except errors.PyroError:
        pass
    assert set(sys.modules) == before


@BOUNDED
@given(values, st.integers(min_value=0))
def test_marshal_guard_refuses_every_truncation(value, cut):
    data = marshal.dumps(["obj", value])
    cut %= len(data)
    try:
        S.get_serializer("marshal").loads(data[:cut])
    except errors.SerializeError:
        return
    raise AssertionError("truncated marshal accepted: %r" % data[:cut])


# --- the frame reader's discard mode ------------------------------------------------------------------------

def events(pieces, limit):
    reader = _frames.FrameReader(limit, discard_oversized=True)
    out, peak = [], 0
    try:
        for piece in pieces:
            reader.feed(piece)
            peak = max(peak, reader.buffered)
            for event in _frames.iter_frames(reader):
                out.append(("oversized", event.header.seq) if isinstance(event, _frames.Oversized)
                           else ("frame", event.header.seq, event.payload))
    except errors.ProtocolError as exc:
        out.append(("error", str(exc)))
    return out, peak


sizes = st.lists(st.integers(0, 3000), min_size=1, max_size=5)


@BOUNDED
@given(sizes, st.integers(1, 1500), st.lists(st.integers(min_value=0), max_size=10))
def test_discard_mode_split_invariant_and_never_buffers_an_oversized_body(payload_sizes, limit, cuts):
    stream = b"".join(Message(p.MSG_INVOKE, b"x" * size, 1, 0, seq).to_bytes() for seq, size in
                      enumerate(payload_sizes))
    whole, _ = events([stream], limit)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    pieces = [stream[a:b] for a, b in zip([0] + points, points + [len(stream)])]
    split, peak = events(pieces, limit)
    one_byte, byte_peak = events([stream[i:i + 1] for i in range(len(stream))], limit)
    assert whole == split == one_byte
    expected = [("oversized", seq) if size > limit else ("frame", seq, b"x" * size)
                for seq, size in enumerate(payload_sizes)]
    assert whole == expected
    assert byte_peak <= p.HEADER_SIZE + limit      # fed a byte at a time, never more than one frame's worth


@BOUNDED
@given(st.integers(1, 10 ** 6), st.integers(0, 2 ** 31 - 1))
def test_discard_mode_reports_on_the_header_and_refuses_beyond_the_discard_limit(limit, claimed):
    """An oversized header is reported at once; past the discard limit the reader is broken for good."""
    reader = _frames.FrameReader(limit, discard_oversized=True)
    reader.feed(p.pack_header(p.MSG_INVOKE, 0, 1, claimed, 1))
    event = reader.next_frame()
    if claimed <= limit:
        assert event is _frames.NEED_DATA or isinstance(event, _frames.Frame)
        return
    assert isinstance(event, _frames.Oversized) and event.header.data_size == claimed
    assert event.in_step == (claimed <= p.discard_limit(limit))
    if event.in_step:
        assert reader.next_frame() is _frames.NEED_DATA and reader.bytes_needed == claimed
        assert reader.buffered == 0 and reader.in_frame
        return
    reader.feed(b"x" * 100)
    for _ in range(2):
        try:
            reader.next_frame()
        except errors.MessageTooLargeError:
            continue
        raise AssertionError("a reader past the discard limit must keep raising")
    assert reader.buffered == 0
