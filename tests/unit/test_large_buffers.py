"""The glibc threshold nudge for large messages (``_large_buffers``), with a recording release."""

from __future__ import annotations

import pytest

from pyro4compat import _large_buffers, _protocol as proto, errors
from pyro4compat.configuration import config
from pyro4compat.message import Message

MIB = 1 << 20


@pytest.mark.parametrize("message_size, block", [
    (MIB, 3 * MIB), (MIB + 1, 4 * MIB), (10_000_000, 21 * MIB), (15 * MIB, 31 * MIB), (2 ** 31, 31 * MIB),
])
def test_block_size_is_twice_the_message_in_whole_mib_capped(message_size, block):
    assert _large_buffers.block_size(message_size) == block


def test_keeper_frees_one_block_per_new_high_water_mark():
    freed = []
    keeper = _large_buffers.Keeper(True, freed.append)
    for size in (MIB, MIB, 10_000_000, 2 * MIB, 10_000_000, 2 ** 31, 50 * MIB):
        keeper.expect(size)
    assert freed == [3 * MIB, 21 * MIB, 31 * MIB]


def test_keeper_off_glibc_never_frees():
    freed = []
    keeper = _large_buffers.Keeper(False, freed.append)
    keeper.expect(2 ** 31)
    assert freed == []


def test_keep_large_buffers_can_be_switched_at_run_time():
    freed = []
    keeper = _large_buffers.Keeper(True, freed.append)
    config.KEEP_LARGE_BUFFERS = False
    keeper.expect(MIB)
    assert freed == []                      # off: the allocator is left alone
    config.KEEP_LARGE_BUFFERS = True
    keeper.expect(MIB)
    assert freed == [3 * MIB]               # on again: the next large message raises the thresholds


@pytest.mark.parametrize("value", ["yes", "maybe", 2, None, 1.0])
def test_a_bad_value_in_use_leaves_the_allocator_alone_and_warns_once(value, caplog):
    """Refused at the edges (tests/unit/test_tunings.py); a send or receive never raises for it."""
    freed = []
    keeper = _large_buffers.Keeper(True, freed.append)
    config.KEEP_LARGE_BUFFERS = value
    with caplog.at_level("WARNING", logger="Pyro4.core"):
        keeper.expect(MIB)
        keeper.expect(2 * MIB)
    assert freed == []
    assert [r.getMessage() for r in caplog.records] == [
        "config.KEEP_LARGE_BUFFERS (PYRO_KEEP_LARGE_BUFFERS) must be True or False, not %r; "
        "treated as off until it is fixed" % (value,)]


class Sink:
    def __init__(self):
        self.sent = []

    def send(self, data):
        self.sent.append(bytes(data))

    def send_buffers(self, buffers):
        self.sent.append(b"".join(bytes(b) for b in buffers))


@pytest.mark.parametrize("size, expected", [(MIB - 1, []), (MIB, [MIB]), (5 * MIB, [5 * MIB])])
def test_messages_sent_and_received_report_large_payloads(monkeypatch, size, expected):
    seen = []
    monkeypatch.setattr(_large_buffers, "expect", seen.append)
    sink = Sink()
    Message(proto.MSG_RESULT, b"x" * size, 3, 0, 1).send(sink)
    Message.recv(Source(b"".join(sink.sent)))
    assert seen == expected * 2


class Source:
    def __init__(self, data):
        self.data = memoryview(data)

    def recv(self, size):
        chunk, self.data = self.data[:size].tobytes(), self.data[size:]
        return chunk

    def close(self):
        pass


def test_no_tuning_for_a_header_over_the_size_limit(monkeypatch):
    """A 24-byte header claiming 2 GiB must not retune the allocator of a daemon limited to 1 MiB."""
    seen = []
    monkeypatch.setattr(_large_buffers, "expect", seen.append)
    monkeypatch.setattr(config, "MAX_MESSAGE_SIZE", MIB)
    with pytest.raises(errors.MessageTooLargeError):
        Message.recv(Source(proto.pack_header(proto.MSG_RESULT, 0, 1, (2 << 30) - 1, 3)))
    assert seen == []
