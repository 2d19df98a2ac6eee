"""The per-message fast paths: read-ahead receive on SocketConnection, and the inlined header and
annotation codecs, checked against the general (validating) code paths with bytes only."""

from __future__ import annotations

import struct

import pytest

from pyro4compat import _protocol as proto
from pyro4compat import _sockio, socketutil
from pyro4compat.errors import ConnectionClosedError, ProtocolError
from pyro4compat.message import Message

from test_socketutil_unit import ScriptedSocket


class ClosableSocket(ScriptedSocket):
    def shutdown(self, how):
        pass

    def close(self):
        pass


def _conn(script, read_ahead=True):
    conn = socketutil.SocketConnection(ClosableSocket(script))
    conn.read_ahead = read_ahead
    return conn


def _wire(payload=b"data", annotations=None, seq=7):
    return Message(proto.MSG_RESULT, payload, 3, 0, seq, annotations=annotations).to_bytes()


# --- read-ahead receive ------------------------------------------------------------------------------

@pytest.mark.parametrize("script, sizes, expected, syscalls", [
    # a whole message in one recv_into: the header read brings the rest along
    ([b"0123456789"], [4, 2, 4], [b"0123", b"45", b"6789"], 1),
    # two messages arrive together: the surplus of the first serves the second
    ([b"abcdefgh"], [3, 1, 4], [b"abc", b"d", b"efgh"], 1),
    # less than asked arrives: the rest is read exactly
    ([b"ab", b"cdef"], [6], [b"abcdef"], 2),
    # a buffered tail shorter than the next request: tail first, then the socket
    ([b"abcd", b"efgh"], [3, 5], [b"abc", b"defgh"], 2),
    # a zero-size read touches nothing
    ([b"xy"], [0, 2], [b"", b"xy"], 1),
])
def test_read_ahead_serves_exact_sizes(script, sizes, expected, syscalls):
    conn = _conn(script)
    assert [conn.recv(size) for size in sizes] == expected
    assert len(conn.sock.calls) == syscalls
    assert conn.buffered == 0
    assert all(type(chunk) is bytes for chunk in expected)


def test_without_read_ahead_nothing_past_the_request_is_read():
    conn = _conn([b"abcdefgh"], read_ahead=False)
    assert conn.recv(3) == b"abc"
    assert conn.sock.script == [b"defgh"]     # still in the "socket"
    assert conn.buffered == 0


def test_read_ahead_keeps_surplus_and_reports_it():
    conn = _conn([b"abcdefgh"])
    assert conn.recv(2) == b"ab"
    assert conn.buffered == 6
    conn.release_buffer()                      # must not drop bytes still buffered
    assert conn.recv(6) == b"cdefgh"
    conn.release_buffer()
    assert conn._rbuf is None


@pytest.mark.parametrize("script, size, partial", [
    ([b""], 4, b""),
    ([b"ab", b""], 4, b"ab"),
    ([b"abcdef", b""], 10, b"abcdef"),
])
def test_read_ahead_premature_close_keeps_partial_data(script, size, partial):
    conn = _conn(script)
    with pytest.raises(ConnectionClosedError, match="not enough data") as info:
        conn.recv(size)
    assert info.value.partialData == partial


def test_buffered_then_premature_close_reports_all_partial_data():
    conn = _conn([b"abcdef", b"gh", b""])
    assert conn.recv(3) == b"abc"
    with pytest.raises(ConnectionClosedError) as info:
        conn.recv(8)
    assert info.value.partialData == b"defgh"


def test_large_payload_after_read_ahead_is_complete():
    payload = bytes(range(256)) * 1000
    pieces = [payload[i:i + 50_000] for i in range(0, len(payload), 50_000)]
    conn = _conn(pieces)
    assert conn.recv(10) == payload[:10]
    assert conn.recv(len(payload) - 10) == payload[10:]


def test_after_a_large_payload_the_next_header_is_read_exactly():
    big = _wire(b"L" * (_sockio._PREALLOC_LIMIT + 10))
    small = _wire(b"s" * 10, seq=8)
    conn = _conn([big + big + small + small + small])
    assert Message.recv(conn, [proto.MSG_RESULT]).data_size > _sockio._PREALLOC_LIMIT
    recvs_before = len(conn.sock.calls)
    second = Message.recv(conn, [proto.MSG_RESULT])
    assert second.data == b"L" * (_sockio._PREALLOC_LIMIT + 10)
    # the header exactly, then the payload whole: nothing of it pulled into the read-ahead buffer
    assert [size for _, size, _ in conn.sock.calls[recvs_before:]] == [proto.HEADER_SIZE, len(second.data)]
    assert [Message.recv(conn, [proto.MSG_RESULT]).data for _ in range(3)] == [b"s" * 10] * 3
    # small messages went on: reading ahead resumed (one recv_into brought the last message)
    assert conn.sock.calls[-1][0] == "recv_into"


def test_read_ahead_connection_rejects_negative_size():
    conn = _conn([b"abcdef"])
    with pytest.raises(ValueError):
        conn.recv(-1)
    assert conn.sock.calls == []


def test_recv_into_uses_buffered_bytes_first():
    conn = _conn([b"abcdef", b"ghij"])
    assert conn.recv(2) == b"ab"
    target = bytearray(8)
    conn.recv_into(target)
    assert target == b"cdefghij"


@pytest.mark.parametrize("annotations, payload", [
    (None, b""), (None, b"x" * 100), ({"CORR": b"c" * 16}, b"p"), ({"CORR": b"c" * 16, "ABCD": b""}, b"pp"),
])
def test_message_recv_over_read_ahead(annotations, payload):
    wire = _wire(payload, annotations) + _wire(b"next", seq=8)
    conn = _conn([wire])
    first = Message.recv(conn, [proto.MSG_RESULT])
    second = Message.recv(conn, [proto.MSG_RESULT])
    assert (first.data, first.annotations, first.seq) == (payload, annotations or {}, 7)
    assert (second.data, second.seq) == (b"next", 8)
    assert len(conn.sock.calls) == 1


# --- header and annotation codecs -----------------------------------------------------------------------

def _reference_header(msg_type, flags, seq, data_size, serializer_id, anns_size):
    chk = (msg_type + 48 + data_size + anns_size + serializer_id + flags + seq + 0x34E9) & 0xFFFF
    return struct.pack("!4sHHHHiHHHH", b"PYRO", 48, msg_type, flags, seq, data_size, serializer_id,
                       anns_size, 0, chk)


@pytest.mark.parametrize("fields", [
    (1, 0, 0, 0, 0, 0), (4, 0x7F, 0xFFFF, 0x7FFFFFFF, 0xFFFF, 0xFFFF), (5, 1, 42, 1000, 3, 22),
])
def test_pack_and_parse_header_round_trip(fields):
    raw = proto.pack_header(*fields)
    assert raw == _reference_header(*fields)
    assert proto.header_fields(raw) == fields
    assert tuple(proto.unpack_header(raw)) == fields


@pytest.mark.parametrize("fields, error", [
    ((1, 0, 0, -1, 0, 0), ValueError), ((1, 0, 0, 1 << 31, 0, 0), ValueError),
    ((1, 0x10000, 0, 0, 0, 0), ProtocolError), ((1, 0, -1, 0, 0, 0), ProtocolError),
    ((1, 0, 0, 0, 0, 0x10000), ProtocolError),
])
def test_pack_header_out_of_range_still_raises(fields, error):
    with pytest.raises(error):
        proto.pack_header(*fields)


@pytest.mark.parametrize("raw, text", [
    (_reference_header(1, 0, 0, 0, 0, 0)[:-1] + b"\0", proto.ERR_CHECKSUM),
    (b"PYRX" + _reference_header(1, 0, 0, 0, 0, 0)[4:], proto.ERR_BAD_TAG),
    (b"short", proto.ERR_HEADER_SIZE),
])
def test_header_fields_rejects_bad_headers(raw, text):
    with pytest.raises(ProtocolError, match=text):
        proto.header_fields(raw)


@pytest.mark.parametrize("annotations", [
    {}, {"CORR": b"\x01" * 16}, {"CORR": b"a", "HMAC": b"b" * 20, "XYZ1": b""},
])
def test_annotation_codec_fast_path_matches_layout(annotations):
    encoded = proto.encode_annotations(annotations)
    expected = b"".join(struct.pack("!4sH", key.encode(), len(value)) + value for key, value in annotations.items())
    assert encoded == expected
    for form in (encoded, bytearray(encoded), memoryview(encoded)):
        decoded = proto.decode_annotations(form)
        assert decoded == annotations and all(type(value) is bytes for value in decoded.values())
    # twice: the second pass runs on the key caches and must give the same bytes
    assert proto.encode_annotations(annotations) == encoded


@pytest.mark.parametrize("annotations", [
    {"CORR": "text"}, {"TOOLONG": b""}, {"CÖRR": b""}, {"CORR": b"x" * 0x10000}, {1234: b""},
])
def test_annotation_fast_path_still_validates(annotations):
    for _ in range(2):  # the caches must never let a bad key or value through
        with pytest.raises(ProtocolError):
            proto.encode_annotations(annotations)


def test_small_message_is_sent_as_one_buffer_large_as_head_and_payload():
    class Recorder:
        def __init__(self):
            self.sent, self.buffers = [], []

        def send(self, data):
            self.sent.append(bytes(data))

        def send_buffers(self, buffers):
            self.buffers.append([bytes(b) for b in buffers])

    small, large = Recorder(), Recorder()
    msg = Message(proto.MSG_INVOKE, b"abc", 3, 0, 1, annotations={"CORR": b"c" * 16})
    msg.send(small)
    assert small.sent == [msg.to_bytes()] and small.buffers == []
    big = Message(proto.MSG_INVOKE, b"z" * proto.SEND_JOIN_LIMIT, 3, 0, 1)
    big.send(large)
    assert large.sent == [] and b"".join(large.buffers[0]) == big.to_bytes() and len(large.buffers[0]) == 2


# --- a readiness check that saw bytes spares the receive its own spin --------------------------------

class CountingSpinner:
    def __init__(self, verdict: bool) -> None:
        self.verdict = verdict
        self.waits = 0

    def wait(self, gate=None) -> bool:
        self.waits += 1
        return self.verdict


def _spinning_conn(script, verdict):
    conn = _conn(script)
    spinner = CountingSpinner(verdict)
    conn._spinner = (conn.sock, spinner)
    return conn, spinner


def test_receive_after_a_seen_readiness_does_not_spin_again():
    conn, spinner = _spinning_conn([b"abcd", b"efgh"], verdict=True)
    conn.readable_seen = True              # e.g. the thread server's poll just saw the request
    assert conn.recv(4) == b"abcd"
    assert spinner.waits == 0 and not conn.readable_seen   # one use only
    assert conn.recv(4) == b"efgh"
    assert spinner.waits == 1 and not conn.readable_seen   # the next receive spins as before


@pytest.mark.parametrize("verdict", [True, False])
def test_spin_until_readable_reports_and_remembers_what_it_saw(verdict):
    conn, spinner = _spinning_conn([b"abcd"], verdict)
    assert conn.spin_until_readable() is verdict
    assert conn.readable_seen is verdict
    assert conn.recv(4) == b"abcd"
    assert spinner.waits == (1 if verdict else 2)   # a seen spin is not repeated by the receive
