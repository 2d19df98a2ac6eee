"""Protocol 48 against real Pyro4 4.82: same bytes, both directions, same errors."""

from __future__ import annotations

import random
import struct
import zlib

import pytest

from pyro4compat import _frames, _protocol
from pyro4compat.configuration import config
from pyro4compat.errors import ConnectionClosedError, PyroError
from pyro4compat.message import Message

pytestmark = pytest.mark.interop

CHILD_HELPERS = """
from Pyro4.message import Message

class FakeConnection(object):
    def __init__(self, data):
        self.data = data
        self.closed = False
    def recv(self, size):
        if len(self.data) < size:
            raise Pyro4.errors.ConnectionClosedError("receiving: not enough data")
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk
    def send(self, data):
        pass
    def close(self):
        self.closed = True

def fields(msg):
    return (msg.type, msg.flags, msg.seq, msg.serializer_id, bytes(msg.data), msg.data_size,
            dict(msg.annotations), msg.annotations_size)

def outcome(func):
    try:
        return ("ok", func())
    except Exception as exc:
        return (type(exc).__name__, str(exc))
"""


class FakeConnection:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.closed = False

    def recv(self, size: int) -> bytes:
        if len(self.data) < size:
            raise ConnectionClosedError("receiving: not enough data")
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk

    def send(self, data) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def fields(msg):
    return (msg.type, msg.flags, msg.seq, msg.serializer_id, bytes(msg.data), msg.data_size,
            dict(msg.annotations), msg.annotations_size)


def outcome(func):
    try:
        return ("ok", func())
    except PyroError as exc:
        return (type(exc).__name__, str(exc))


def make_cases() -> list:
    """Hand-picked messages plus seeded random ones: (type, data, serializer, flags, seq, annotations, key)."""
    cases = [
        (6, b"ping", 42, 0, 0, None, None),
        (1, b"handshake", 1, 0x10, 0, {"CORR": bytes(range(16))}, None),
        (5, b"x" * 1000, 4, 0x7F, 0xFFFF, {"STRM": b"a" * 36, "CORR": b"c" * 16}, b"key"),
        (2, b"", 3, 0, 1, None, b"k"),
        (4, b"call", 2, 0, 2, {"HMAC": b"stale", "ZZZZ": b"z"}, b"kk"),
        (4, zlib.compress(b"abc" * 500), 1, 0x02, 3, {"USER": b""}, None),
        (3, b"rejected", 3, 0, 4, {}, b"\x00\xff" * 20),
    ]
    rnd = random.Random(4882)
    for _ in range(40):
        anns = {"".join(rnd.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4)): rnd.randbytes(rnd.randint(0, 30))
                for _ in range(rnd.randint(0, 3))}
        key = rnd.choice([None, rnd.randbytes(rnd.randint(1, 16))])
        cases.append((rnd.randint(1, 6), rnd.randbytes(rnd.randint(0, 500)), rnd.randint(0, 0xFFFF),
                      rnd.randint(0, 0x7F), rnd.randint(0, 0xFFFF), anns, key))
    return cases


CASES = make_cases()


@pytest.fixture
def no_max_size(monkeypatch):
    monkeypatch.setattr(config, "MAX_MESSAGE_SIZE", 0)


def test_to_bytes_identical_and_parsed_both_ways(pyro4, no_max_size):
    ours = [Message(t, d, s, f, q, annotations=a, hmac_key=k).to_bytes() for t, d, s, f, q, a, k in CASES]
    theirs = pyro4(CHILD_HELPERS + """
built, parsed = [], []
for (t, d, s, f, q, a, k), ours in INPUT:
    built.append(Message(t, d, s, f, q, annotations=a, hmac_key=k).to_bytes())
    parsed.append(outcome(lambda: fields(Message.recv(FakeConnection(ours), [t], hmac_key=k))))
OUTPUT = (built, parsed)
""", [(case, raw) for case, raw in zip(CASES, ours)])
    built, parsed_by_pyro4 = theirs
    assert [b.hex() for b in built] == [o.hex() for o in ours]
    for case, raw, (status, their_fields) in zip(CASES, ours, parsed_by_pyro4):
        t, d, s, f, q, a, k = case
        assert status == "ok"
        mine = fields(Message.recv(FakeConnection(raw), [t], hmac_key=k))
        assert tuple(their_fields) == mine
        assert mine[:5] == (t, f, q, s, d)
        assert Message(t, d, s, f, q, a, k).to_bytes() == raw


def test_pyro4_stream_through_frame_reader(pyro4, no_max_size):
    stream = pyro4(CHILD_HELPERS + """
OUTPUT = b"".join(Message(t, d, s, f, q, annotations=a, hmac_key=k).to_bytes() for t, d, s, f, q, a, k in INPUT)
""", CASES)
    reader = _frames.FrameReader()
    frames = []
    for start in range(0, len(stream), 97):
        reader.feed(stream[start:start + 97])
        frames.extend(_frames.iter_frames(reader))
    assert len(frames) == len(CASES)
    for frame, (t, d, s, f, q, a, k) in zip(frames, CASES):
        assert (frame.header.msg_type, frame.header.flags, frame.header.seq, frame.payload) == (t, f, q, d)
        assert _protocol.hmac_problem(k, frame.payload, frame.annotations) is None


def _header(msg_type=4, flags=0, seq=0, size=4, ser=1, anns=0, tag=b"PYRO", version=48, chk=None) -> bytes:
    if chk is None:
        chk = (msg_type + version + size + anns + ser + flags + seq + 0x34E9) & 0xFFFF
    return struct.pack("!4sHHHHiHHHH", tag, version, msg_type, flags, seq, size, ser, anns, 0, chk)


def _signed(key, msg_type=4, data=b"data"):
    return Message(msg_type, data, 1, 0, 0, None, key).to_bytes()


# (name, wire bytes, required types, receiver hmac key, MAX_MESSAGE_SIZE)
ERROR_CASES = [
    ("bad_tag", _header(tag=b"HTTP") + b"data", None, None, 0),
    ("bad_version", _header(version=47) + b"data", None, None, 0),
    ("bad_checksum", _header(chk=1) + b"data", None, None, 0),
    ("wrong_type", _signed(None, msg_type=5), [4, 6], None, 0),
    ("too_large", _signed(None, data=b"x" * 50), [4], None, 40),
    ("too_large_annotations", Message(4, b"", 1, 0, 0, {"AAAA": b"x" * 40}).to_bytes(), None, None, 40),
    ("at_limit", _signed(None, data=b"x" * 40), [4], None, 40),
    ("hmac_mismatch", _signed(b"one"), None, b"two", 0),
    ("hmac_missing", _signed(None), None, b"key", 0),
    ("hmac_unexpected", _signed(b"key"), None, None, 0),
    ("hmac_ok", _signed(b"key"), None, b"key", 0),
    ("truncated", _signed(None)[:-1], None, None, 0),
]


def test_receive_errors_match_pyro4(pyro4):
    theirs = pyro4(CHILD_HELPERS + """
OUTPUT = []
for raw, required, key, max_size in INPUT:
    Pyro4.config.MAX_MESSAGE_SIZE = max_size
    conn = FakeConnection(raw)
    OUTPUT.append((outcome(lambda: fields(Message.recv(conn, required, hmac_key=key))), conn.closed))
""", [case[1:] for case in ERROR_CASES])
    for (name, raw, required, key, max_size), their in zip(ERROR_CASES, theirs):
        config.MAX_MESSAGE_SIZE = max_size
        try:
            conn = FakeConnection(raw)
            mine = (outcome(lambda: fields(Message.recv(conn, required, hmac_key=key))), conn.closed)
        finally:
            config.MAX_MESSAGE_SIZE = 0
        assert (name, mine) == (name, (tuple(their[0]), their[1]))


def test_from_header_and_send_side_errors_match_pyro4(pyro4, no_max_size):
    headers = [None, b"", b"PYRO", _header()[:23], _header(), _header(chk=7)]
    build_cases = [(4, b"x" * 20, None, 10), (4, b"x" * 10, {"AAAA": b""}, 15), (4, b"x", {"ABC": b"x"}, 0),
                   (4, b"x", {"ABCDE": b"x"}, 0)]
    code = CHILD_HELPERS + """
def build(t, d, a, max_size):
    Pyro4.config.MAX_MESSAGE_SIZE = max_size
    try:
        return Message(t, d, 1, 0, 0, annotations=a).to_bytes()
    finally:
        Pyro4.config.MAX_MESSAGE_SIZE = 0
headers, builds = INPUT
OUTPUT = ([outcome(lambda: fields(Message.from_header(h))) for h in headers],
          [outcome(lambda: build(*case)) for case in builds])
"""
    their_headers, their_builds = pyro4(code, (headers, build_cases))

    def build(t, d, a, max_size):
        config.MAX_MESSAGE_SIZE = max_size
        try:
            return Message(t, d, 1, 0, 0, annotations=a).to_bytes()
        finally:
            config.MAX_MESSAGE_SIZE = 0

    assert [outcome(lambda: fields(Message.from_header(h))) for h in headers] == [tuple(o) for o in their_headers]
    assert [outcome(lambda: build(*case)) for case in build_cases] == [tuple(o) for o in their_builds]


def test_compression_rules_match_pyro4_serializers(pyro4):
    values = [b"", "short", "a" * 150, "a" * 300, list(range(200)), bytes(range(256)) * 2, {"k": "v" * 1000}]
    theirs = pyro4("""
ser = Pyro4.util.get_serializer("marshal")
OUTPUT = []
for value in INPUT:
    dumped = ser.dumps(value)
    OUTPUT.append((dumped, ser.serializeData(value, compress=True), ser.serializeData(value, compress=False)))
""", values)
    for dumped, (their_on, flag_on), (their_off, flag_off) in theirs:
        assert _protocol.compress_payload(dumped, True) == (their_on, flag_on)
        assert _protocol.compress_payload(dumped, False) == (their_off, flag_off)
        if flag_on:
            assert _protocol.decompress_payload(their_on, len(dumped)) == dumped
