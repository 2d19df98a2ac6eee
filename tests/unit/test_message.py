"""Pyro4's ``Message`` API over an in-memory connection (Pyro4's SocketConnection contract)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import zlib

import pytest

from pyro4compat import _protocol, message
from pyro4compat.configuration import config
from pyro4compat.errors import ConnectionClosedError, MessageTooLargeError, ProtocolError, SecurityError
from pyro4compat.message import Message

PING_BYTES = bytes.fromhex("5059524f003000060000000000000004002a00000000354d") + b"ping"


class FakeConnection:
    """``recv(size)`` returns exactly ``size`` bytes or raises, like Pyro4's SocketConnection."""

    def __init__(self, incoming: bytes = b"") -> None:
        self.incoming = bytearray(incoming)
        self.sent: list = []
        self.recv_sizes: list = []
        self.closed = False

    def send(self, data) -> None:
        self.sent.append(data)

    def recv(self, size: int) -> bytes:
        self.recv_sizes.append(size)
        if len(self.incoming) < size:
            raise ConnectionClosedError("receiving: not enough data")
        data = bytes(self.incoming[:size])
        del self.incoming[:size]
        return data

    def close(self) -> None:
        self.closed = True

    def __str__(self) -> str:
        return "<FakeConnection>"


def exact(text: str) -> str:
    return "^" + re.escape(text) + "$"


@pytest.fixture
def max_size(monkeypatch):
    def setter(value: int) -> None:
        monkeypatch.setattr(config, "MAX_MESSAGE_SIZE", value)
    setter(0)
    return setter


@pytest.fixture
def msglog(caplog):
    caplog.set_level(logging.DEBUG, logger="Pyro4.message")
    return caplog


# --- module surface ---------------------------------------------------------------------------------

def test_module_constants_and_class_attributes():
    expected = {"MSG_CONNECT": 1, "MSG_CONNECTOK": 2, "MSG_CONNECTFAIL": 3, "MSG_INVOKE": 4, "MSG_RESULT": 5,
                "MSG_PING": 6, "FLAGS_EXCEPTION": 1, "FLAGS_COMPRESSED": 2, "FLAGS_ONEWAY": 4, "FLAGS_BATCH": 8,
                "FLAGS_META_ON_CONNECT": 16, "FLAGS_ITEMSTREAMRESULT": 32, "FLAGS_KEEPSERIALIZED": 64}
    assert {name: getattr(message, name) for name in expected} == expected
    assert (Message.header_format, Message.header_size, Message.checksum_magic) == ("!4sHHHHiHHHH", 24, 0x34E9)
    assert message.__all__ == ["Message", "secure_compare"]
    assert message.secure_compare is hmac.compare_digest
    assert message.log.name == "Pyro4.message"


def test_message_has_pyro4_slots():
    msg = Message(message.MSG_INVOKE, b"x", 1, 0, 0)
    with pytest.raises(AttributeError):
        msg.something_else = 1


# --- construction -----------------------------------------------------------------------------------

def test_constructor_attributes(max_size):
    anns = {"CORR": b"c" * 16}
    msg = Message(message.MSG_RESULT, b"data", 4, message.FLAGS_BATCH, 12, annotations=anns)
    assert (msg.type, msg.flags, msg.seq, msg.data, msg.data_size, msg.serializer_id) == (5, 8, 12, b"data", 4, 4)
    assert msg.annotations == anns and msg.annotations is not anns
    assert msg.annotations_size == 22
    assert msg.hmac_key is None


def test_constructor_adds_hmac_last(max_size):
    msg = Message(message.MSG_INVOKE, b"data", 1, 0, 0, annotations={"ZZZZ": b"z", "AAAA": b"a"}, hmac_key=b"k")
    assert list(msg.annotations) == ["ZZZZ", "AAAA", "HMAC"]
    assert msg.annotations["HMAC"] == hmac.new(b"k", b"data" + b"a" + b"z", hashlib.sha1).digest()
    assert msg.hmac() == msg.annotations["HMAC"]
    assert msg.annotations_size == 7 + 7 + 26


def test_constructor_enforces_max_message_size(max_size):
    max_size(10)
    Message(message.MSG_INVOKE, b"x" * 4, 1, 0, 0, annotations={"AAAA": b""})  # exactly 10
    with pytest.raises(MessageTooLargeError, match=exact("max message size exceeded (11 where max=10)")):
        Message(message.MSG_INVOKE, b"x" * 5, 1, 0, 0, annotations={"AAAA": b""})


def test_repr(max_size):
    msg = Message(message.MSG_PING, b"ping", 42, 3, 7, annotations={"AAAA": b""})
    assert re.fullmatch(r"<pyro4compat\.message\.Message at [0-9a-f]+; type=6 flags=3 seq=7 datasize=4 #ann=1>",
                        repr(msg))


# --- sending ----------------------------------------------------------------------------------------

def test_to_bytes_ping_golden(max_size):
    assert Message(message.MSG_PING, b"ping", 42, 0, 0).to_bytes() == PING_BYTES


def test_to_bytes_uses_current_attribute_values(max_size):
    msg = Message(message.MSG_INVOKE, b"x", 1, 0, 0)
    msg.seq = 9
    msg.flags = message.FLAGS_ONEWAY
    assert _protocol.unpack_header(msg.to_bytes()[:24])[:3] == (4, 4, 9)


def test_to_bytes_memoryview_payload(max_size):
    msg = Message(message.MSG_RESULT, memoryview(b"abcdef")[1:3], 1, 0, 0)
    assert msg.data_size == 2 and msg.to_bytes().endswith(b"bc")


SEND_ERRORS = [
    ({"ABC": b"x"}, "annotation key must be of length 4"),
    ({"ABCD": "str"}, "annotation 'ABCD' value must be bytes, not str"),
    ({"ABCD": b"x" * 70000}, "annotation 'ABCD' value too large: 70000 bytes (max 65529)"),
]


@pytest.mark.parametrize("anns, text", SEND_ERRORS)
def test_to_bytes_and_send_reject_bad_annotations(max_size, anns, text):
    msg = Message(message.MSG_INVOKE, b"x", 1, 0, 0, annotations=anns)
    with pytest.raises(ProtocolError, match=exact(text)):
        msg.to_bytes()
    conn = FakeConnection()
    with pytest.raises(ProtocolError, match=exact(text)):
        msg.send(conn)
    assert conn.sent == []


def test_send_small_message_in_one_piece(max_size):
    conn = FakeConnection()
    msg = Message(message.MSG_INVOKE, b"payload", 1, 0, 3, annotations={"CORR": b"c" * 16})
    msg.send(conn)
    assert conn.sent == [msg.to_bytes()]


def test_send_large_payload_without_copying_it(max_size):
    payload = b"p" * (_protocol.SEND_JOIN_LIMIT + 1)
    conn = FakeConnection()
    msg = Message(message.MSG_RESULT, payload, 1, 0, 3)
    msg.send(conn)
    assert len(conn.sent) == 2 and conn.sent[1] is payload
    assert b"".join(conn.sent) == msg.to_bytes()


# --- from_header ------------------------------------------------------------------------------------

def test_from_header(max_size):
    raw = Message(message.MSG_RESULT, b"data", 2, 1, 99, annotations={"AAAA": b"12"}).to_bytes()
    msg = Message.from_header(raw[:24])
    assert (msg.type, msg.flags, msg.seq, msg.serializer_id) == (5, 1, 99, 2)
    assert (msg.data, msg.data_size, msg.annotations, msg.annotations_size, msg.hmac_key) == (b"", 4, {}, 8, None)


FROM_HEADER_ERRORS = [
    (None, "header data size mismatch"),
    (b"", "header data size mismatch"),
    (PING_BYTES[:23], "header data size mismatch"),
    (b"PYRX" + PING_BYTES[4:24], "invalid data or unsupported protocol version"),
    (PING_BYTES[:22] + b"\x00\x00", "header checksum mismatch"),
]


@pytest.mark.parametrize("data, text", FROM_HEADER_ERRORS)
def test_from_header_errors(data, text):
    with pytest.raises(ProtocolError, match=exact(text)):
        Message.from_header(data)


# --- recv -------------------------------------------------------------------------------------------

def test_recv_roundtrip_with_annotations_and_hmac(max_size):
    sent = Message(message.MSG_RESULT, b"result", 4, message.FLAGS_EXCEPTION, 17,
                   annotations={"CORR": b"c" * 16, "USER": b"u"}, hmac_key=b"secret")
    conn = FakeConnection(sent.to_bytes() + b"next")
    got = Message.recv(conn, [message.MSG_RESULT], hmac_key=b"secret")
    assert (got.type, got.flags, got.seq, got.serializer_id, got.data) == (5, 1, 17, 4, b"result")
    assert got.annotations == sent.annotations and got.hmac_key == b"secret"
    assert got.annotations_size == sent.annotations_size
    assert conn.recv_sizes == [24, sent.annotations_size + 6]   # header; annotations with the small payload
    assert bytes(conn.incoming) == b"next"


def test_recv_without_annotations_reads_no_annotation_bytes(max_size):
    conn = FakeConnection(PING_BYTES)
    msg = Message.recv(conn)
    assert msg.data == b"ping" and msg.annotations == {}
    assert conn.recv_sizes == [24, 4]


def test_recv_empty_payload_reads_zero_bytes(max_size):
    conn = FakeConnection(Message(message.MSG_CONNECTOK, b"", 1, 0, 0).to_bytes())
    assert Message.recv(conn).data == b""
    assert conn.recv_sizes == [24]   # the header is the whole message: no empty receive


def test_recv_unexpected_type(max_size, msglog):
    conn = FakeConnection(Message(message.MSG_RESULT, b"r", 1, 0, 0, annotations={"AAAA": b"a"}).to_bytes() + b"next")
    with pytest.raises(ProtocolError, match=exact("invalid msg type 5 received")) as info:
        Message.recv(conn, [message.MSG_INVOKE, message.MSG_PING])
    assert info.value.pyroMsg.type == 5
    assert bytes(conn.incoming) == b"next"  # the whole frame was read: the stream stays in step
    assert ("Pyro4.message", logging.ERROR, "invalid msg type 5 received") in msglog.record_tuples


def test_recv_any_type_when_required_types_empty(max_size):
    conn = FakeConnection(Message(99, b"x", 1, 0, 0).to_bytes())
    assert Message.recv(conn, []).type == 99


def test_recv_too_large_closes_connection(max_size, msglog):
    conn = FakeConnection(Message(message.MSG_INVOKE, b"x" * 20, 1, 0, 0).to_bytes())
    max_size(10)
    with pytest.raises(MessageTooLargeError, match=exact("max message size exceeded (20 where max=10)")) as info:
        Message.recv(conn, [message.MSG_INVOKE])
    assert conn.closed and conn.recv_sizes == [24]
    assert info.value.pyroMsg.data_size == 20
    assert ("Pyro4.message", logging.ERROR, "max message size exceeded (20 where max=10) (seq 0)") in msglog.record_tuples


def test_recv_size_checked_before_type(max_size):
    conn = FakeConnection(Message(message.MSG_RESULT, b"x" * 20, 1, 0, 0).to_bytes())
    max_size(10)
    with pytest.raises(MessageTooLargeError):
        Message.recv(conn, [message.MSG_INVOKE])


HMAC_RECV_CASES = [
    ("mismatch", b"sender", b"receiver", "message hmac mismatch"),
    ("receiver_has_no_key", b"sender", None, "hmac key config not symmetric"),
    ("sender_has_no_key", None, b"receiver", "hmac key config not symmetric"),
]


@pytest.mark.parametrize("name, send_key, recv_key, text", HMAC_RECV_CASES, ids=[c[0] for c in HMAC_RECV_CASES])
def test_recv_hmac_errors(max_size, msglog, name, send_key, recv_key, text):
    conn = FakeConnection(Message(message.MSG_INVOKE, b"data", 1, 0, 0, hmac_key=send_key).to_bytes())
    with pytest.raises(SecurityError, match=exact(text)) as info:
        Message.recv(conn, hmac_key=recv_key)
    assert info.value.pyroMsg.data == b"data"
    warned = ("Pyro4.message", logging.WARNING, text) in msglog.record_tuples
    assert warned == (text == "hmac key config not symmetric")


def test_recv_tampered_payload_fails_hmac(max_size):
    raw = bytearray(Message(message.MSG_INVOKE, b"data", 1, 0, 0, hmac_key=b"k").to_bytes())
    raw[-1] ^= 1
    with pytest.raises(SecurityError, match=exact("message hmac mismatch")):
        Message.recv(FakeConnection(bytes(raw)), hmac_key=b"k")


def test_recv_malformed_annotations(max_size):
    header = _protocol.pack_header(message.MSG_INVOKE, 0, 0, 0, 1, 7)
    conn = FakeConnection(header + b"AAAA\x00\x09x")
    with pytest.raises(ProtocolError, match="annotation 'AAAA' at offset 0 has length 9, running past") as info:
        Message.recv(conn)
    assert info.value.pyroMsg.annotations_size == 7


def test_recv_connection_closed_midway(max_size):
    with pytest.raises(ConnectionClosedError):
        Message.recv(FakeConnection(PING_BYTES[:-1]))
    with pytest.raises(ConnectionClosedError):
        Message.recv(FakeConnection(PING_BYTES[:10]))


class KeepingConnection(FakeConnection):
    """A connection that keeps its FrameReader between receives, as SocketConnection does."""

    _pyroFrameReader = None


def test_recv_reuses_the_connection_reader_only_after_a_whole_message(max_size):
    second = Message(message.MSG_RESULT, b"two", 1, 0, 2, {"CORR": b"c" * 16}).to_bytes()
    conn = KeepingConnection(PING_BYTES + second)
    assert Message.recv(conn).data == b"ping"
    reader = conn._pyroFrameReader
    assert reader is not None and reader.bytes_needed == 24 and reader.buffered == 0
    max_size(3)    # read again for each receive, also by a kept reader
    with pytest.raises(MessageTooLargeError):
        Message.recv(conn)
    assert conn._pyroFrameReader is None and conn.closed      # never handed back half-used
    max_size(0)
    conn = KeepingConnection(PING_BYTES[:10])
    with pytest.raises(ConnectionClosedError):
        Message.recv(conn)
    assert conn._pyroFrameReader is None
    conn.incoming = bytearray(PING_BYTES + second)    # (a proxy would reconnect)
    assert [Message.recv(conn).data for _ in range(2)] == [b"ping", b"two"]


# --- ping -------------------------------------------------------------------------------------------

def test_ping_sends_golden_ping_and_reads_pong(max_size):
    pong = Message(message.MSG_PING, b"pong", 42, 0, 0).to_bytes()
    conn = FakeConnection(pong)
    assert Message.ping(conn) is None
    assert conn.sent == [PING_BYTES] and not conn.incoming


def test_ping_with_hmac_key_signs_request_but_reply_checked_without_key(max_size):
    conn = FakeConnection(Message(message.MSG_PING, b"pong", 42, 0, 0).to_bytes())
    Message.ping(conn, hmac_key=b"k")
    sent = Message.recv(FakeConnection(conn.sent[0]), hmac_key=b"k")
    assert sent.data == b"ping" and "HMAC" in sent.annotations


def test_ping_rejects_other_reply_type(max_size):
    conn = FakeConnection(Message(message.MSG_RESULT, b"x", 42, 0, 0).to_bytes())
    with pytest.raises(ProtocolError, match=exact("invalid msg type 5 received")):
        Message.ping(conn)


# --- decompression ----------------------------------------------------------------------------------

def test_decompress_if_needed(max_size):
    msg = Message(message.MSG_RESULT, zlib.compress(b"abc" * 200), 1,
                  message.FLAGS_COMPRESSED | message.FLAGS_BATCH, 0)
    assert msg.decompress_if_needed() is msg
    assert (msg.data, msg.data_size, msg.flags) == (b"abc" * 200, 600, message.FLAGS_BATCH)


def test_decompress_if_needed_leaves_uncompressed_alone(max_size):
    msg = Message(message.MSG_RESULT, b"plain", 1, 0, 0)
    assert msg.decompress_if_needed() is msg and msg.data == b"plain"


def test_decompress_bounded_by_max_message_size(max_size):
    max_size(20_000)  # the 10 MB of zeros compress to under 10 kB
    msg = Message(message.MSG_RESULT, zlib.compress(b"\0" * 10_000_000), 1, message.FLAGS_COMPRESSED, 0,
                  annotations={"AAAA": b"1234"})
    text = "max message size exceeded (decompressed data larger than 19990 bytes where max=20000)"
    with pytest.raises(MessageTooLargeError, match=exact(text)) as info:
        msg.decompress_if_needed()
    assert info.value.pyroMsg is msg and msg.flags & message.FLAGS_COMPRESSED


def test_decompress_bound_boundary(max_size):
    max_size(610)
    msg = Message(message.MSG_RESULT, zlib.compress(b"abc" * 200), 1, message.FLAGS_COMPRESSED, 0,
                  annotations={"AAAA": b"1234"})
    assert msg.decompress_if_needed().data_size == 600


def test_decompress_corrupt_payload(max_size):
    msg = Message(message.MSG_RESULT, b"garbage!", 1, message.FLAGS_COMPRESSED, 0)
    with pytest.raises(ProtocolError, match="^invalid compressed data: "):
        msg.decompress_if_needed()


# --- wire logging helper ----------------------------------------------------------------------------

def test_log_wiredata(max_size, msglog):
    msg = Message(message.MSG_INVOKE, b"d", 3, 2, 5, annotations={"CORR": bytes(range(16))})
    message.log_wiredata(logging.getLogger("Pyro4.message"), "proxy wiredata sending", msg)
    text = msglog.records[-1].getMessage()
    assert text.startswith("proxy wiredata sending: msgtype=4 flags=0x2 ser=3 seq=5 "
                           "corr=00010203-0405-0607-0809-0a0b0c0d0e0f\nannotations=")
    assert text.endswith("\ndata=b'd'")
