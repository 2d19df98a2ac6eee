"""The shortcuts small messages take produce exactly what the general paths do (bytes only)."""
from __future__ import annotations

import pytest

from pyro4compat import _protocol as proto
from pyro4compat import errors, message
from pyro4compat._serializers import get_serializer
from pyro4compat._serializers.base import SerializerBase
from pyro4compat.configuration import config

CORR = bytes(range(16))


@pytest.mark.parametrize("annotations", [{}, {"CORR": CORR}, {"CORR": CORR, "XTRA": b"x"}, {"XTRA": b"abc"}])
@pytest.mark.parametrize("payload", [b"", b"p" * 100])
def test_plain_message_bytes_are_what_a_message_sends(annotations, payload):
    wire = message.plain_message_bytes(message.MSG_INVOKE, payload, 3, 0x40, 77, annotations, None)
    built = message.Message(message.MSG_INVOKE, payload, 3, 0x40, 77, annotations=annotations)
    assert wire == built.to_bytes()


def test_plain_message_bytes_leave_the_unusual_to_message(monkeypatch):
    plain = (message.MSG_RESULT, b"data", 3, 0, 1, {"CORR": CORR})
    assert message.plain_message_bytes(*plain, b"secret") is None          # HMAC: Message adds the chunk
    large = b"x" * proto.SEND_JOIN_LIMIT
    assert message.plain_message_bytes(message.MSG_RESULT, large, 3, 0, 1, {}, None) is None
    monkeypatch.setattr(config, "LOGWIRE", True)
    assert message.plain_message_bytes(*plain, None) is None
    monkeypatch.setattr(config, "LOGWIRE", False)
    monkeypatch.setattr(config, "MAX_MESSAGE_SIZE", 30)     # 4 bytes of payload + 22 of CORR fit, 40 don't
    assert message.plain_message_bytes(*plain, None) is not None
    assert message.plain_message_bytes(message.MSG_RESULT, b"d" * 40, 3, 0, 1, {"CORR": CORR}, None) is None
    with pytest.raises(errors.MessageTooLargeError):
        message.Message(message.MSG_RESULT, b"d" * 40, 3, 0, 1, annotations={"CORR": CORR})


@pytest.mark.parametrize("area", [proto.encode_annotations({"CORR": CORR}),
                                  proto.encode_annotations({"CORX": CORR}),
                                  proto.encode_annotations({"CORR": CORR[:15] + b"!!"}),
                                  proto.encode_annotations({"CORR": CORR, "XTRA": b""})])
def test_a_lone_corr_decodes_as_the_chunk_loop_does(area):
    expected = {}
    offset = 0
    while offset < len(area):   # the format, spelled out: 4-byte key, 2-byte length, value
        key, length = proto.CHUNK_STRUCT.unpack_from(area, offset)
        start = offset + proto.CHUNK_HEADER_SIZE
        expected[key.decode()] = area[start:start + length]
        offset = start + length
    assert proto.decode_annotations(area) == expected
    assert proto.decode_annotations(bytearray(area)) == expected
    assert all(type(value) is bytes for value in proto.decode_annotations(memoryview(area)).values())


@pytest.mark.parametrize("field", range(5))
@pytest.mark.parametrize("bad", [-1, 0x10000, 1 << 40])
def test_pack_header_still_refuses_every_out_of_range_short(field, bad):
    values = [message.MSG_INVOKE, 0, 1, 3, 0]   # msg_type, flags, seq, serializer_id, annotations_size
    values[field] = bad
    msg_type, flags, seq, serializer_id, anns_size = values
    with pytest.raises(errors.ProtocolError, match="out of range"):
        proto.pack_header(msg_type, flags, seq, 10, serializer_id, anns_size)


def test_pack_header_accepts_the_edges_and_unpack_header_reads_them_back():
    head = proto.pack_header(0xFFFF, 0xFFFF, 0xFFFF, proto.MAX_DATA_SIZE, 0xFFFF, 0xFFFF)
    header = proto.unpack_header(head)
    assert type(header) is proto.Header
    assert tuple(header) == (0xFFFF, 0xFFFF, 0xFFFF, proto.MAX_DATA_SIZE, 0xFFFF, 0xFFFF)
    assert proto.header_fields(head) == header


class _Text(str):
    pass


@pytest.mark.parametrize("call", [("obj", "m", [1], {}), ("obj", "m", (1,), None), ["obj", "m", [], {}],
                                  (_Text("obj"), "m", [], {})])
def test_check_call_accepts_calls_of_exact_and_sub_types(call):
    assert tuple(SerializerBase._check_call(call)) == tuple(call)


@pytest.mark.parametrize("call", [("obj", "m", [1]), ("obj", 5, [], {}), ("obj", "m", "args", {}),
                                  ("obj", "m", [], []), ("obj", "m", {1: 2}, None)])
def test_check_call_refuses_malformed_calls(call):
    with pytest.raises(errors.SerializeError, match="invalid call data"):
        SerializerBase._check_call(call)


def test_marshal_still_recreates_classes_it_finds_by_name():
    serializer = get_serializer("marshal")
    error = serializer.loads(serializer.dumps(ValueError("boom")))
    assert type(error) is ValueError and error.args == ("boom",)
    assert serializer.loads(serializer.dumps({"text": "no class here"})) == {"text": "no class here"}
