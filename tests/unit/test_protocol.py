"""Protocol 48 byte rules: golden messages from real Pyro4 4.82, and every malformed input we could think of."""

from __future__ import annotations

import hashlib
import hmac
import re
import struct
import zlib

import pytest

from pyro4compat import _frames, _protocol as p
from pyro4compat.message import Message
from pyro4compat.errors import MessageTooLargeError, ProtocolError

ABC600_COMPRESSED = bytes.fromhex("789c4b4c4a4e1c45a388da0800ada3e5b1")  # zlib.compress(b"abc" * 200)

# (name, (msg_type, payload, serializer_id, flags, seq, annotations, hmac_key), hex of Pyro4's to_bytes())
# The hex strings were produced once by real Pyro4 4.82's ``Message(...).to_bytes()``.
GOLDEN = [
    ("ping", (6, b"ping", 42, 0, 0, None, None),
     "5059524f003000060000000000000004002a00000000354d70696e67"),
    ("connect_corr", (1, b"{'handshake':'hello'}", 1, 0x10, 0, {"CORR": bytes(range(16))}, None),
     "5059524f0030000100100000000000150001001600003556434f52520010000102030405060708090a0b0c0d0e0f"
     "7b2768616e647368616b65273a2768656c6c6f277d"),
    ("invoke_user_anns", (4, b"call-payload", 2, 0, 513, {"XYZW": b"user", "ABCD": b""}, None),
     "5059524f00300004000002010000000c000200100000373c58595a5700047573657241424344000063616c6c2d"
     "7061796c6f6164"),
    ("result_exception", (5, b"boom", 1, 0x01, 0xFFFF, {"CORR": b"\x01" * 16}, None),
     "5059524f003000050001ffff000000040001001600003539434f5252001001010101010101010101010101010101"
     "626f6f6d"),
    ("invoke_hmac", (4, b"payload", 1, 0, 7, None, b"secret"),
     "5059524f0030000400000007000000070001001a00003546484d41430014f75efc0f29bf50c23f99b30b86f7c78f"
     "daf5f11d7061796c6f6164"),
    ("result_hmac_anns", (5, b"result", 4, 0x08, 8, {"ZZZZ": b"z", "CORR": b"c" * 16, "AAAA": b"aa"}, b"key"),
     "5059524f0030000500080008000000060004003f000035775a5a5a5a00017a434f5252001063636363636363636363"
     "6363636363634141414100026161484d41430014d21a062c3c3379d177e44e391dcc08753d4b7e56726573756c74"),
    ("connectok_hmac_empty", (2, b"", 3, 0, 1, None, b"k"),
     "5059524f0030000200000001000000000003001a00003539484d414300143a84a218ee6665209bb70e84525dd837"
     "645a1965"),
    ("connectfail", (3, b"rejected", 3, 0, 2, None, None),
     "5059524f003000030000000200000008000300000000352972656a6563746564"),
    ("invoke_oneway", (4, b"x", 1, 0x04, 3, None, None),
     "5059524f003000040004000300000001000100000000352678"),
    ("result_stream", (5, b"it", 1, 0x21, 4, {"STRM": b"0123456789abcdef0123456789abcdef0123"}, None),
     "5059524f0030000500210004000000020001002a000035705354524d0024303132333435363738396162636465663031"
     "3233343536373839616263646566303132336974"),
    ("invoke_keepserialized", (4, b"blob", 4, 0x42, 5, {"BLBI": b"\x00\x01"}, None),
     "5059524f0030000400420005000000040004000800003574424c424900020001626c6f62"),
    ("all_flags", (5, b"flags", 1, 0x7F, 6, None, None),
     "5059524f00300005007f00060000000500010000000035a9666c616773"),
    ("compressed_hmac", (5, ABC600_COMPRESSED, 1, 0x02, 9, None, b"k2"),
     "5059524f0030000500020009000000110001001a00003555484d41430014c2dfe52407ad1c9fe6232cc70f61a8cd90"
     "fa2051789c4b4c4a4e1c45a388da0800ada3e5b1"),
    ("hmac_replaces_existing", (4, b"d", 1, 0, 10, {"HMAC": b"old", "AAAA": b"v"}, b"kk"),
     "5059524f003000040000000a00000001000100210000354a484d414300140a8ab2fc300fe2a7210596f262b64f272b"
     "2f8be84141414100017664"),
]
GOLDEN_IDS = [case[0] for case in GOLDEN]


def raw_header(msg_type=4, flags=0, seq=0, data_size=0, serializer_id=1, anns_size=0, reserved=0,
               tag=b"PYRO", version=48, chk=None) -> bytes:
    """A header with any field value; the checksum is made valid unless given."""
    if chk is None:
        chk = (msg_type + version + data_size + anns_size + serializer_id + flags + seq + 0x34E9) & 0xFFFF
    return struct.pack("!4sHHHHiHHHH", tag, version, msg_type, flags, seq, data_size, serializer_id,
                       anns_size, reserved, chk)


def chunk(key: bytes, value: bytes, length=None) -> bytes:
    return struct.pack("!4sH", key, len(value) if length is None else length) + value


def exact(text: str) -> str:
    return "^" + re.escape(text) + "$"


# --- golden bytes -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, args, expected", GOLDEN, ids=GOLDEN_IDS)
def test_build_message_bytes_matches_pyro4(name, args, expected):
    assert Message(*args).to_bytes().hex() == expected


@pytest.mark.parametrize("name, args, expected", GOLDEN, ids=GOLDEN_IDS)
def test_messages_go_out_as_the_golden_bytes(name, args, expected):
    """What production sends: ``Message`` (the proxy's and the daemon's messages) gives Pyro4's bytes."""
    sent = []

    class Connection:
        send = sent.append

        def send_buffers(self, buffers):
            sent.append(b"".join(buffers))

    Message(*args).send(Connection())
    assert b"".join(sent).hex() == expected
    assert Message(*args).to_bytes().hex() == expected


@pytest.mark.parametrize("name, args, expected", GOLDEN, ids=GOLDEN_IDS)
def test_encode_head_is_everything_before_the_payload(name, args, expected):
    msg = Message(*args)
    head = p.encode_head(msg.type, msg.flags, msg.seq, msg.data_size, msg.serializer_id, msg.annotations)
    assert (head + args[1]).hex() == expected


@pytest.mark.parametrize("name, args, expected", GOLDEN, ids=GOLDEN_IDS)
def test_frame_reader_parses_golden(name, args, expected):
    msg_type, payload, ser, flags, seq, anns, key = args
    reader = _frames.FrameReader()
    reader.feed(bytes.fromhex(expected))
    frame = reader.next_frame()
    assert frame.header[:3] == (msg_type, flags, seq)
    assert frame.header.serializer_id == ser
    assert frame.header.data_size == len(payload)
    assert frame.payload == payload
    assert frame.annotations == p.with_hmac(anns, key, payload)
    assert list(frame.annotations) == list(p.with_hmac(anns, key, payload))
    assert p.hmac_problem(key, frame.payload, frame.annotations) is None
    assert reader.next_frame() is _frames.NEED_DATA
    assert reader.buffered == 0


def test_ping_example_from_the_reference():
    expected = bytes.fromhex("5059524f 0030 0006 0000 0000 00000004 002a 0000 0000 354d") + b"ping"
    assert Message(p.MSG_PING, b"ping", 42, 0, 0).to_bytes() == expected


def test_compressed_golden_payload_inflates():
    assert p.decompress_payload(ABC600_COMPRESSED) == b"abc" * 200


# --- tables -----------------------------------------------------------------------------------------

def test_type_and_flag_tables():
    assert {p.MSG_CONNECT: 1, p.MSG_CONNECTOK: 2, p.MSG_CONNECTFAIL: 3, p.MSG_INVOKE: 4, p.MSG_RESULT: 5,
            p.MSG_PING: 6} == {v: v for v in range(1, 7)}
    assert p.MSG_TYPE_NAMES[p.MSG_CONNECTFAIL] == "CONNECTFAIL"
    assert p.VALID_MSG_TYPES == frozenset(range(1, 7))
    assert sorted(p.FLAG_NAMES) == [1, 2, 4, 8, 16, 32, 64]
    assert p.FLAG_NAMES[p.FLAGS_KEEPSERIALIZED] == "KEEPSERIALIZED"
    assert (p.HEADER_FORMAT, p.HEADER_SIZE, p.CHECKSUM_MAGIC) == ("!4sHHHHiHHHH", 24, 0x34E9)


# --- header -----------------------------------------------------------------------------------------

def test_pack_unpack_roundtrip_extremes():
    fields = (0xFFFF, 0xFFFF, 0xFFFF, 0x7FFFFFFF, 0xFFFF, 0xFFFF)
    header = p.pack_header(*fields)
    assert header == raw_header(*fields[:5], anns_size=0xFFFF)
    assert tuple(p.unpack_header(header)) == fields
    assert p.unpack_header(header).total_size == 0x7FFFFFFF + 0xFFFF


def test_reserved_field_is_ignored_like_pyro4():
    assert p.unpack_header(raw_header(seq=3, reserved=0xBEEF)).seq == 3


BAD_HEADERS = [
    ("empty", b"", ProtocolError, "header data size mismatch"),
    ("none", None, ProtocolError, "header data size mismatch"),
    ("short", raw_header()[:23], ProtocolError, "header data size mismatch"),
    ("long", raw_header() + b"x", ProtocolError, "header data size mismatch"),
    ("wrong_tag", raw_header(tag=b"PYRX"), ProtocolError, "invalid data or unsupported protocol version"),
    ("http", b"GET / HTTP/1.1\r\nHost: xy", ProtocolError, "invalid data or unsupported protocol version"),
    ("version_47", raw_header(version=47), ProtocolError, "invalid data or unsupported protocol version"),
    ("version_49", raw_header(version=49), ProtocolError, "invalid data or unsupported protocol version"),
    ("checksum", raw_header(chk=0x1234), ProtocolError, "header checksum mismatch"),
    ("checksum_off_by_one", raw_header(chk=(raw_header()[-1] + 1) & 0xFF), ProtocolError,
     "header checksum mismatch"),
    ("negative_size", raw_header(data_size=-1), ProtocolError, "invalid message size (outside range 0..2Gb)"),
    ("most_negative", raw_header(data_size=-0x80000000), ProtocolError,
     "invalid message size (outside range 0..2Gb)"),
]


@pytest.mark.parametrize("name, data, exc, text", BAD_HEADERS, ids=[c[0] for c in BAD_HEADERS])
def test_unpack_header_rejects(name, data, exc, text):
    with pytest.raises(exc, match=exact(text)):
        p.unpack_header(data)


BAD_PACK = [
    ("negative_size", dict(data_size=-1), ValueError, "invalid message size (outside range 0..2Gb)"),
    ("size_over_2g", dict(data_size=0x80000000), ValueError, "invalid message size (outside range 0..2Gb)"),
    ("seq_overflow", dict(seq=0x10000), ProtocolError, "header field seq out of range 0..65535: 65536"),
    ("negative_type", dict(msg_type=-1), ProtocolError, "header field msg_type out of range 0..65535: -1"),
    ("flags_overflow", dict(flags=0x10000), ProtocolError, "header field flags out of range 0..65535: 65536"),
    ("serializer", dict(serializer_id=70000), ProtocolError,
     "header field serializer_id out of range 0..65535: 70000"),
    ("anns", dict(annotations_size=0x10000), ProtocolError,
     "header field annotations_size out of range 0..65535: 65536"),
]


@pytest.mark.parametrize("name, override, exc, text", BAD_PACK, ids=[c[0] for c in BAD_PACK])
def test_pack_header_rejects(name, override, exc, text):
    fields = dict(msg_type=4, flags=0, seq=0, data_size=0, serializer_id=1, annotations_size=0)
    fields.update(override)
    with pytest.raises(exc, match=exact(text)):
        p.pack_header(**fields)


# --- annotations ------------------------------------------------------------------------------------

def test_annotations_roundtrip_keeps_order_and_empty_values():
    anns = {"ZZZZ": b"1", "AAAA": b"", "MMMM": b"x" * 1000}
    encoded = p.encode_annotations(anns)
    assert len(encoded) == p.annotations_size(anns) == 18 + 1001
    decoded = p.decode_annotations(encoded)
    assert decoded == anns and list(decoded) == list(anns)
    assert all(type(v) is bytes for v in decoded.values())


def test_encode_annotations_accepts_bytearray_and_memoryview():
    assert p.encode_annotations({"ABCD": bytearray(b"x"), "EFGH": memoryview(b"yz")}) == (
        chunk(b"ABCD", b"x") + chunk(b"EFGH", b"yz"))


def test_duplicate_key_on_receive_last_wins():
    assert p.decode_annotations(chunk(b"AAAA", b"1") + chunk(b"AAAA", b"22")) == {"AAAA": b"22"}


def test_largest_single_annotation_fits():
    value = b"v" * (0xFFFF - 6)
    assert len(p.encode_annotations({"BIGG": value})) == 0xFFFF


BAD_SEND_ANNOTATIONS = [
    ("short_key", {"ABC": b"x"}, "annotation key must be of length 4"),
    ("long_key", {"ABCDE": b"x"}, "annotation key must be of length 4"),
    ("empty_key", {"": b"x"}, "annotation key must be of length 4"),
    ("non_ascii_key", {"ABC\u00e9": b"x"}, "annotation key must be ASCII: 'ABC\u00e9'"),
    ("bytes_key", {b"ABCD": b"x"}, "annotation key must be a str, not bytes"),
    ("str_value", {"ABCD": "text"}, "annotation 'ABCD' value must be bytes, not str"),
    ("none_value", {"ABCD": None}, "annotation 'ABCD' value must be bytes, not NoneType"),
    ("value_too_large", {"ABCD": b"x" * 65530}, "annotation 'ABCD' value too large: 65530 bytes (max 65529)"),
    ("value_over_u16", {"ABCD": b"x" * 70000}, "annotation 'ABCD' value too large: 70000 bytes (max 65529)"),
    ("total_too_large", {"AAAA": b"x" * 40000, "BBBB": b"y" * 40000},
     "annotations too large: 80012 bytes in total (max 65535)"),
]


@pytest.mark.parametrize("name, anns, text", BAD_SEND_ANNOTATIONS, ids=[c[0] for c in BAD_SEND_ANNOTATIONS])
def test_encode_annotations_rejects(name, anns, text):
    with pytest.raises(ProtocolError, match=exact(text)):
        p.encode_annotations(anns)
    with pytest.raises(ProtocolError, match=exact(text)):
        Message(p.MSG_INVOKE, b"", 1, 0, 0, anns).to_bytes()


BAD_RECEIVED_ANNOTATIONS = [
    ("chunk_header_3_bytes", b"ABC", "annotation chunk header truncated at offset 0 (3 bytes left of 3)"),
    ("second_chunk_header_cut", chunk(b"AAAA", b"1") + b"BBBB\x00",
     "annotation chunk header truncated at offset 7 (5 bytes left of 12)"),
    ("value_runs_past", chunk(b"AAAA", b"12", length=3),
     "annotation 'AAAA' at offset 0 has length 3, running past the end of the annotations area (8 bytes)"),
    ("huge_length", chunk(b"AAAA", b"", length=0xFFFF),
     "annotation 'AAAA' at offset 0 has length 65535, running past the end of the annotations area (6 bytes)"),
    ("second_value_runs_past", chunk(b"AAAA", b"") + chunk(b"BBBB", b"x", length=2),
     "annotation 'BBBB' at offset 6 has length 2, running past the end of the annotations area (13 bytes)"),
    ("non_ascii_key", chunk(b"AB\xffD", b"x"), "annotation key at offset 0 is not ASCII: b'AB\\xffD'"),
]


@pytest.mark.parametrize("name, data, text", BAD_RECEIVED_ANNOTATIONS,
                         ids=[c[0] for c in BAD_RECEIVED_ANNOTATIONS])
def test_decode_annotations_rejects(name, data, text):
    with pytest.raises(ProtocolError, match=exact(text)):
        p.decode_annotations(data)


# --- HMAC -------------------------------------------------------------------------------------------

def test_hmac_covers_payload_and_other_values_sorted_by_key():
    anns = {"ZZZZ": b"z", "AAAA": b"a", "HMAC": b"ignored"}
    expected = hmac.new(b"key", b"data" + b"a" + b"z", hashlib.sha1).digest()
    assert p.compute_hmac(b"key", b"data", anns) == expected
    assert p.with_hmac({"ZZZZ": b"z", "AAAA": b"a"}, b"key", b"data")["HMAC"] == expected


def test_with_hmac_adds_last_and_copies():
    original = {"CORR": b"c"}
    result = p.with_hmac(original, b"k", b"d")
    assert list(result) == ["CORR", "HMAC"] and original == {"CORR": b"c"}
    assert p.with_hmac(original, None, b"d") == original
    assert p.with_hmac(None, b"", b"d") == {}


GOOD_MAC = p.compute_hmac(b"key", b"data", {})
HMAC_CASES = [
    ("no_key_no_hmac", None, {}, None),
    ("empty_key_no_hmac", b"", {"CORR": b"c"}, None),
    ("key_and_valid_hmac", b"key", {"HMAC": GOOD_MAC}, None),
    ("key_and_wrong_hmac", b"key", {"HMAC": b"\x00" * 20}, "message hmac mismatch"),
    ("other_key", b"other", {"HMAC": GOOD_MAC}, "message hmac mismatch"),
    ("short_hmac", b"key", {"HMAC": b"x"}, "message hmac mismatch"),
    ("key_without_hmac", b"key", {}, "hmac key config not symmetric"),
    ("hmac_without_key", None, {"HMAC": GOOD_MAC}, "hmac key config not symmetric"),
    ("hmac_with_empty_key", b"", {"HMAC": GOOD_MAC}, "hmac key config not symmetric"),
]


@pytest.mark.parametrize("name, key, anns, problem", HMAC_CASES, ids=[c[0] for c in HMAC_CASES])
def test_hmac_checks(name, key, anns, problem):
    assert p.hmac_problem(key, b"data", anns) == problem


def test_secure_compare_is_hmac_compare_digest():
    assert p.secure_compare is hmac.compare_digest


# --- compression ------------------------------------------------------------------------------------

COMPRESS_CASES = [
    ("not_asked", b"a" * 1000, False, False),
    ("below_threshold", b"a" * 199, True, False),
    ("at_threshold", b"a" * 200, True, True),
    ("incompressible", bytes(range(256)), True, False),
    ("empty", b"", True, False),
]


@pytest.mark.parametrize("name, data, asked, compressed", COMPRESS_CASES, ids=[c[0] for c in COMPRESS_CASES])
def test_compress_payload_rules(name, data, asked, compressed):
    result, flag = p.compress_payload(data, asked)
    assert flag is compressed
    if compressed:
        assert len(result) < len(data) and zlib.decompress(result) == data
    else:
        assert result is data


BOMB = zlib.compress(b"\0" * 20_000_000)
DECOMPRESS_OK = [
    ("unbounded", ABC600_COMPRESSED, None, b"abc" * 200),
    ("bound_exact", ABC600_COMPRESSED, 600, b"abc" * 200),
    ("trailing_garbage_ignored", ABC600_COMPRESSED + b"junk", 600, b"abc" * 200),
    ("empty_stream", zlib.compress(b""), 0, b""),
]


@pytest.mark.parametrize("name, data, bound, expected", DECOMPRESS_OK, ids=[c[0] for c in DECOMPRESS_OK])
def test_decompress_payload(name, data, bound, expected):
    assert p.decompress_payload(data, bound) == expected


DECOMPRESS_BAD = [
    ("bound_minus_one", ABC600_COMPRESSED, 599, MessageTooLargeError, "decompressed data larger than 599 bytes"),
    ("bound_zero", ABC600_COMPRESSED, 0, MessageTooLargeError, "decompressed data larger than 0 bytes"),
    ("bomb", BOMB, 1000, MessageTooLargeError, "decompressed data larger than 1000 bytes"),
    ("garbage", b"not zlib at all", None, ProtocolError,
     "invalid compressed data: Error -3 while decompressing data: incorrect header check"),
    ("truncated", ABC600_COMPRESSED[:-4], None, ProtocolError,
     "invalid compressed data: incomplete or truncated stream"),
    ("truncated_bounded", ABC600_COMPRESSED[:-4], 1000, ProtocolError,
     "invalid compressed data: incomplete or truncated stream"),
    ("empty", b"", None, ProtocolError, "invalid compressed data: incomplete or truncated stream"),
]


@pytest.mark.parametrize("name, data, bound, exc, text", DECOMPRESS_BAD, ids=[c[0] for c in DECOMPRESS_BAD])
def test_decompress_payload_rejects(name, data, bound, exc, text):
    with pytest.raises(exc, match=exact(text)):
        p.decompress_payload(data, bound)


# --- size limit and sending -------------------------------------------------------------------------

SIZE_CASES = [(10, 0, 0, None), (10, 5, 15, None), (10, 6, 15, "max message size exceeded (16 where max=15)"),
              (0x7FFFFFFF, 0xFFFF, 0, None), (16, 0, 15, "max message size exceeded (16 where max=15)"),
              (100, 0, -1, None)]


@pytest.mark.parametrize("data_size, anns_size, max_size, text", SIZE_CASES)
def test_check_message_size(data_size, anns_size, max_size, text):
    if text is None:
        p.check_message_size(data_size, anns_size, max_size)
    else:
        with pytest.raises(MessageTooLargeError, match=exact(text)):
            p.check_message_size(data_size, anns_size, max_size)


def test_wire_chunks_joins_small_and_splits_large():
    head = b"H" * 24
    small = b"s" * 100
    assert p.wire_chunks(head, small) == [head + small]
    large = memoryview(b"L" * p.SEND_JOIN_LIMIT)
    chunks = p.wire_chunks(head, large)
    assert chunks[0] is head and chunks[1] is large
    assert p.wire_chunks(head, b"xy", join_limit=2) == [head, b"xy"]


def test_large_memoryview_payload_is_sent_without_conversion():
    payload = memoryview(b"L" * p.SEND_JOIN_LIMIT)
    sent = []

    class Connection:
        def send_buffers(self, buffers):
            sent.extend(buffers)

    msg = Message(p.MSG_RESULT, payload, 1, 0, 1)
    msg.send(Connection())
    assert sent[1] is payload
    assert sent[0] + bytes(payload) == msg.to_bytes()


# --- frame reader -----------------------------------------------------------------------------------

STREAM = b"".join(bytes.fromhex(case[2]) for case in GOLDEN)


def drain(reader):
    return list(_frames.iter_frames(reader))


def test_reader_byte_by_byte_equals_all_at_once():
    whole = _frames.FrameReader()
    whole.feed(STREAM)
    expected = drain(whole)
    assert len(expected) == len(GOLDEN)
    trickle = _frames.FrameReader()
    got = []
    for i in range(len(STREAM)):
        trickle.feed(STREAM[i:i + 1])
        got.extend(drain(trickle))
    assert got == expected
    assert trickle.buffered == 0 and trickle.bytes_needed == p.HEADER_SIZE


def test_reader_bytes_needed_progression():
    data = bytes.fromhex(GOLDEN[1][2])  # connect_corr: 22 bytes of annotations, 21 of payload
    reader = _frames.FrameReader()
    assert reader.bytes_needed == 24 and reader.pending_header is None
    reader.feed(data[:10])
    assert reader.next_frame() is _frames.NEED_DATA and reader.bytes_needed == 14
    reader.feed(data[10:30])
    assert reader.next_frame() is _frames.NEED_DATA
    assert reader.pending_header.annotations_size == 22
    assert reader.bytes_needed == len(data) - 30
    reader.feed(data[30:])
    assert reader.bytes_needed == 0
    assert reader.next_frame().payload == b"{'handshake':'hello'}"
    assert reader.pending_header is None


def test_reader_never_allocates_what_the_header_claims():
    reader = _frames.FrameReader()
    reader.feed(raw_header(data_size=0x7FFFFFFF) + b"abc")
    assert reader.next_frame() is _frames.NEED_DATA
    assert reader.buffered == 27
    assert reader.gathering
    assert len(reader._buffer) + sum(map(len, reader._pieces)) == 3  # only what arrived (header parsed)
    assert reader.bytes_needed == 0x7FFFFFFF - 3


def test_large_payload_fed_as_one_bytes_object_is_used_without_a_copy():
    payload = bytes(range(256)) * 300    # a piece of 64 KiB or more is kept as it is
    head = Message(p.MSG_RESULT, payload, 1, 0, 7, {"CORR": b"x" * 16}).to_bytes()[:-len(payload)]
    reader = _frames.FrameReader(gather_from=len(payload))
    reader.feed(head)
    assert reader.next_frame() is _frames.NEED_DATA
    assert reader.gathering and reader.bytes_needed == len(payload)
    reader.feed(payload)
    assert not reader.gathering and reader.bytes_needed == 0
    frame = reader.next_frame()
    assert frame.payload is payload
    assert frame.annotations == {"CORR": b"x" * 16}
    assert reader.next_frame() is _frames.NEED_DATA and reader.buffered == 0


def test_gathered_payload_copies_reused_buffers_and_keeps_the_next_frame():
    first = Message(p.MSG_INVOKE, b"A" * 100, 1, 0, 1).to_bytes()
    second = Message(p.MSG_INVOKE, b"B" * 5, 1, 0, 2).to_bytes()
    stream = first + second
    reader = _frames.FrameReader(gather_from=50)
    shared = bytearray(40)  # like the multiplex server's one receive buffer, reused for every recv
    frames = []
    for start in range(0, len(stream), len(shared)):
        piece = stream[start:start + len(shared)]
        shared[:len(piece)] = piece
        reader.feed(memoryview(shared)[:len(piece)])
        frames.extend(_frames.iter_frames(reader))
    assert [(f.header.seq, f.payload) for f in frames] == [(1, b"A" * 100), (2, b"B" * 5)]
    assert reader.buffered == 0


def test_trickled_payload_is_gathered_into_one_buffer_not_an_object_per_piece():
    payload = bytes(range(256)) * 8
    message = Message(p.MSG_INVOKE, payload, 1, 0, 3).to_bytes()
    reader = _frames.FrameReader(gather_from=1000)
    frames = []
    for index in range(len(message)):
        reader.feed(message[index:index + 1])
        frames.extend(_frames.iter_frames(reader))
        assert len(reader._pieces) <= 1
    assert [f.payload for f in frames] == [payload]
    assert type(frames[0].payload) is bytes


def test_small_payloads_are_never_gathered():
    reader = _frames.FrameReader()
    message = Message(p.MSG_INVOKE, b"x" * 1000, 1, 0, 1).to_bytes()
    reader.feed(message[:-10])
    assert reader.next_frame() is _frames.NEED_DATA
    assert not reader.gathering and reader.bytes_needed == 10


MAX_SIZE_CASES = [
    ("data_over", raw_header(data_size=11), 10, "max message size exceeded (11 where max=10)"),
    ("anns_over", raw_header(anns_size=11), 10, "max message size exceeded (11 where max=10)"),
    ("both_over", raw_header(data_size=6, anns_size=6), 10, "max message size exceeded (12 where max=10)"),
    ("huge_claim", raw_header(data_size=0x7FFFFFFF), 1000, "max message size exceeded (2147483647 where max=1000)"),
]


@pytest.mark.parametrize("name, header, max_size, text", MAX_SIZE_CASES, ids=[c[0] for c in MAX_SIZE_CASES])
def test_reader_max_message_size_checked_at_the_header(name, header, max_size, text):
    reader = _frames.FrameReader(max_message_size=max_size)
    reader.feed(header)  # no body yet: the claim alone is enough to refuse
    with pytest.raises(MessageTooLargeError, match=exact(text)):
        reader.next_frame()


def test_reader_max_message_size_boundary_accepted():
    reader = _frames.FrameReader(max_message_size=10)
    reader.feed(raw_header(data_size=4, anns_size=6) + chunk(b"AAAA", b"") + b"data")
    frame = reader.next_frame()
    assert frame.annotations == {"AAAA": b""} and frame.payload == b"data"


BAD_STREAMS = [
    ("http_first_byte", b"G", "invalid data or unsupported protocol version"),
    ("wrong_tag_prefix", b"PYRX", "invalid data or unsupported protocol version"),
    ("wrong_version_prefix", b"PYRO\x00\x2f", "invalid data or unsupported protocol version"),
    ("pyro5_version", raw_header(version=502), "invalid data or unsupported protocol version"),
    ("checksum", raw_header(chk=0), "header checksum mismatch"),
    ("negative_size", raw_header(data_size=-5), "invalid message size (outside range 0..2Gb)"),
    ("anns_truncated_chunk", raw_header(anns_size=4) + b"ABCD", "annotation chunk header truncated at offset 0 "
                                                               "(4 bytes left of 4)"),
    ("anns_overrun", raw_header(anns_size=7) + chunk(b"AAAA", b"x", length=9),
     "annotation 'AAAA' at offset 0 has length 9, running past the end of the annotations area (7 bytes)"),
    ("anns_bad_key", raw_header(anns_size=6) + chunk(b"\x80AAA", b""),
     "annotation key at offset 0 is not ASCII: b'\\x80AAA'"),
    ("garbage_after_good_frame", bytes.fromhex(GOLDEN[0][2]) + b"XYZ",
     "invalid data or unsupported protocol version"),
]


@pytest.mark.parametrize("name, data, text", BAD_STREAMS, ids=[c[0] for c in BAD_STREAMS])
def test_reader_rejects_malformed_streams(name, data, text):
    reader = _frames.FrameReader()
    reader.feed(data)
    with pytest.raises(ProtocolError, match=exact(text)):
        drain(reader)
    with pytest.raises(ProtocolError, match=exact(text)):  # stays broken, same error
        reader.next_frame()


def test_reader_annotation_error_raised_before_payload_arrives():
    reader = _frames.FrameReader()
    reader.feed(raw_header(anns_size=7, data_size=1000) + chunk(b"AAAA", b"x", length=9))
    with pytest.raises(ProtocolError, match="running past the end"):
        reader.next_frame()


def test_reader_accepts_unknown_msg_type_like_pyro4_from_header():
    reader = _frames.FrameReader()
    reader.feed(raw_header(msg_type=99, data_size=1) + b"x")
    assert reader.next_frame().header.msg_type == 99


def test_need_data_repr():
    assert repr(_frames.NEED_DATA) == "NEED_DATA"


def test_frame_reader_in_frame_while_a_message_is_part_way():
    """What the multiplex server's COMMTIMEOUT sweep asks: is a sender part-way through a message?"""
    whole = Message(p.MSG_INVOKE, b"x" * 100, 1, 0, 1).to_bytes()
    reader = _frames.FrameReader()
    assert not reader.in_frame
    for cut in (1, p.HEADER_SIZE, len(whole) - 1):
        reader = _frames.FrameReader()
        reader.feed(whole[:cut])
        assert reader.next_frame() is _frames.NEED_DATA
        assert reader.in_frame, cut
    reader.feed(whole[len(whole) - 1:])
    assert reader.next_frame().payload == b"x" * 100
    assert not reader.in_frame


def test_frame_fed_whole_is_taken_apart_at_once_and_handed_out_in_order():
    """A frame fed whole into an empty reader skips the buffer; what follows it still queues behind it."""
    first = Message(p.MSG_INVOKE, b"one", 1, 0, 1, {"CORR": b"c" * 16}).to_bytes()
    second = Message(p.MSG_INVOKE, b"two", 1, 0, 2).to_bytes()
    reader = _frames.FrameReader()
    reader.feed(memoryview(bytearray(first)))     # a server's reusable receive buffer
    assert not reader._buffer and reader.bytes_needed == 0 and reader.buffered == len(first)
    assert not reader.in_frame                    # whole: nothing for the COMMTIMEOUT sweep to wait for
    reader.feed(second[:5])
    assert reader.next_frame().payload == b"one"
    assert reader.next_frame() is _frames.NEED_DATA and reader.in_frame
    reader.feed(second[5:])
    frame = reader.next_frame()
    assert (frame.payload, frame.header.seq, frame.annotations) == (b"two", 2, {})
    assert reader.next_frame() is _frames.NEED_DATA and reader.buffered == 0


@pytest.mark.parametrize("data, error", [
    (raw_header(tag=b"PYRX"), p.ERR_BAD_TAG),
    (raw_header(chk=1), p.ERR_CHECKSUM),
    (raw_header(anns_size=6, data_size=1) + chunk(b"CO\xffR", b"") + b"x", "not ASCII"),
])
def test_whole_frame_that_fails_a_check_raises_as_when_buffered(data, error):
    reader = _frames.FrameReader()
    reader.feed(data)
    with pytest.raises(ProtocolError, match=error):
        reader.next_frame()


def test_whole_frame_over_the_limit_is_still_refused_on_its_header():
    reader = _frames.FrameReader(10, discard_oversized=True)
    reader.feed(Message(p.MSG_INVOKE, b"x" * 11, 1, 0, 3).to_bytes())
    event = reader.next_frame()
    assert type(event) is _frames.Oversized and event.header.seq == 3 and event.in_step
    assert reader.next_frame() is _frames.NEED_DATA and reader.buffered == 0


# --- the reader's pull form (blocking callers) -------------------------------------------------------

class ExactRecv:
    """``recv(n)`` returning exactly n bytes of ``data`` and remembering each size and object asked."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos, self.sizes, self.returned = data, 0, [], []

    def __call__(self, size: int) -> bytes:
        chunk = self.data[self.pos:self.pos + size]
        assert len(chunk) == size, "read past the test's bytes"
        self.pos += size
        self.sizes.append(size)
        self.returned.append(chunk)
        return chunk


@pytest.mark.parametrize("name, args, expected", GOLDEN, ids=GOLDEN_IDS)
def test_reader_receive_equals_feeding(name, args, expected):
    raw = bytes.fromhex(expected)
    pushed = _frames.FrameReader()
    pushed.feed(raw)
    recv = ExactRecv(raw + b"next")
    pulled = _frames.FrameReader().receive(recv)
    assert pulled == pushed.next_frame()
    assert recv.pos == len(raw)   # not a byte of what follows


def test_reader_receive_asks_header_annotations_payload_and_keeps_a_large_payload_object():
    size = _frames._ONE_RECEIVE_BELOW
    raw = Message(p.MSG_RESULT, b"x" * size, 1, 0, 3, {"CORR": b"c" * 16}).to_bytes()
    recv = ExactRecv(raw)
    reader = _frames.FrameReader()
    frame = reader.receive(recv)
    assert recv.sizes == [24, 22, size]
    assert frame.payload is recv.returned[-1]     # never copied
    assert not reader.in_frame and reader.buffered == 0


def test_reader_receive_takes_a_small_payload_with_its_annotations():
    raw = Message(p.MSG_RESULT, b"x" * 40, 1, 0, 3, {"CORR": b"c" * 16}).to_bytes()
    recv = ExactRecv(raw + b"next")
    reader = _frames.FrameReader()
    frame = reader.receive(recv)
    assert recv.sizes == [24, 22 + 40]      # one receive less per reply
    assert frame.annotations == {"CORR": b"c" * 16} and frame.payload == b"x" * 40
    assert type(frame.payload) is bytes and not reader.in_frame and reader.buffered == 0


def test_reader_receive_without_payload_or_annotations_asks_only_the_header():
    recv = ExactRecv(Message(p.MSG_PING, b"", 1, 0, 3).to_bytes())
    assert _frames.FrameReader().receive(recv).payload == b""
    assert recv.sizes == [24]


@pytest.mark.parametrize("name, data, text", BAD_STREAMS[3:8], ids=[c[0] for c in BAD_STREAMS[3:8]])
def test_reader_receive_rejects_what_feeding_rejects(name, data, text):
    reader = _frames.FrameReader()
    with pytest.raises(ProtocolError, match=exact(text)):
        reader.receive(ExactRecv(data + b"\0" * 64))


def test_reader_receive_refuses_an_oversized_header_before_its_body():
    recv = ExactRecv(raw_header(data_size=11))   # no body at all: the header alone is refused
    with pytest.raises(MessageTooLargeError, match=exact("max message size exceeded (11 where max=10)")):
        _frames.FrameReader(max_message_size=10).receive(recv)
    assert recv.sizes == [24]


def test_reader_receive_oversized_in_discard_mode_reports_then_drops_the_body():
    raw = Message(p.MSG_INVOKE, b"x" * 30, 1, 0, 5).to_bytes() + Message(p.MSG_PING, b"", 1, 0, 6).to_bytes()
    recv = ExactRecv(raw)
    reader = _frames.FrameReader(max_message_size=10, discard_oversized=True)
    event = reader.receive(recv)
    assert isinstance(event, _frames.Oversized) and event.in_step and event.header.seq == 5
    assert reader.bytes_needed == 30
    reader.feed(recv(reader.bytes_needed))
    assert reader.next_frame() is _frames.NEED_DATA and not reader.in_frame
    assert reader.receive(recv).header.seq == 6   # in step again


def test_reader_receive_beyond_the_discard_limit_breaks_the_reader():
    reader = _frames.FrameReader(max_message_size=10, discard_oversized=True)
    event = reader.receive(ExactRecv(raw_header(data_size=p.discard_limit(10) + 1)))
    assert isinstance(event, _frames.Oversized) and not event.in_step
    with pytest.raises(MessageTooLargeError):
        reader.receive(ExactRecv(b""))
