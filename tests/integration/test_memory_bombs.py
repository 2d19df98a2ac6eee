"""Memory bombs (issue 8, item 2): what a header or a payload claims is never what the server pays.

The server runs in a child process (``child_server.py``) so its memory can be read from
``/proc/<pid>/status``: before each attack the high-water mark is reset to the current RSS
(``/proc/<pid>/clear_refs``), afterwards ``VmHWM - VmRSS(before)`` is the peak growth the attack
cost. Cases:

* a header claiming 2 GiB, then 8 MiB of body, then silence: nothing is reserved up front, memory
  follows the bytes that arrived, and other clients are served meanwhile;
* the same with ``MAX_MESSAGE_SIZE`` set: refused from the header alone;
* a zlib bomb (about 260 KB inflating to 256 MiB) against ``MAX_MESSAGE_SIZE = 1 MiB``: the
  inflation stops at the limit and the client gets ``MessageTooLargeError`` (CONNECTFAIL when
  it is the handshake);
* a few bytes of marshal declaring billions of elements, and other small payloads: each costs a
  bounded multiple of its size.
"""

from __future__ import annotations

import functools
import os
import socket
import struct
import zlib
from typing import Any, Dict

import pytest

from pyro4compat import _protocol as proto
from pyro4compat import core, errors

from hostile_support import ChildServer, RawClient, connect_bytes, header, invoke_bytes

pytestmark = [pytest.mark.timeout(60),
              pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")]

MiB = 1 << 20
BOMB_SIZE = 256 * MiB
LIMIT = 1 * MiB
ACCEPTED = "serpent,json,marshal,msgpack"
PEAKS: Dict[str, int] = {}      # case -> peak growth in kB (printed with -s, for the report)


@functools.lru_cache(maxsize=None)
def zlib_bomb() -> bytes:
    """256 MiB of zero bytes, compressed a MiB at a time (the test process never holds them)."""
    packer = zlib.compressobj(9)
    zeros = bytes(MiB)
    parts = [packer.compress(zeros) for _ in range(BOMB_SIZE // MiB)]
    parts.append(packer.flush())
    return b"".join(parts)


@pytest.fixture(scope="module", params=[("daemon", "thread"), ("daemon", "multiplex"),
                                        ("ns", "thread"), ("ns", "multiplex")], ids=lambda p: "%s-%s" % p)
def child(request):
    """A server in a child process, with a MAX_MESSAGE_SIZE of 1 MiB."""
    kind, servertype = request.param
    with ChildServer(kind, servertype, MAX_MESSAGE_SIZE=LIMIT, SERIALIZERS_ACCEPTED=ACCEPTED) as server:
        server.object_id = "Pyro.NameServer" if kind == "ns" else "target"
        yield server


class Peak(object):
    """``with Peak(child, case) as peak:`` ... ``peak.growth_kb`` afterwards."""

    def __init__(self, child: ChildServer, case: str) -> None:
        self.child, self.case = child, case
        self.growth_kb = 0

    def __enter__(self) -> "Peak":
        self.child.reset_peak()
        self.start_kb = self.child.rss_kb()
        return self

    def __exit__(self, *args: Any) -> None:
        self.growth_kb = self.child.peak_kb() - self.start_kb
        PEAKS["%s %s/%s" % (self.case, self.child.kind, self.child.servertype)] = self.growth_kb
        print("peak growth %-40s %s/%s: %d kB" % (self.case, self.child.kind, self.child.servertype,
                                                   self.growth_kb))


def served_promptly(child: ChildServer) -> None:
    with core.Proxy(child.target_uri()) as proxy:
        proxy._pyroTimeout = 5
        assert proxy.echo("still here") == "still here"


def _claim_2gib(child: ChildServer, first: bool, limit_expected: bool, claimed: int = 2 ** 31 - 1) -> None:
    """A header claiming ``claimed`` bytes (2 GiB - 1), then 8 MiB of body, another client served, then EOF."""
    with RawClient(child.port) as attacker:
        if not first:
            attacker.handshake()
        msg_type = proto.MSG_CONNECT if first else proto.MSG_INVOKE
        attacker.send(header(msg_type, seq=1, data_size=claimed))
        if limit_expected:
            if first:
                reply = attacker.reply()
                assert reply.type == proto.MSG_CONNECTFAIL
            assert attacker.closed()
            return
        body = bytes(MiB)
        for _ in range(8):
            attacker.send(body)
        served_promptly(child)           # others are served while the attacker is mid-message
        attacker.sock.shutdown(socket.SHUT_WR)
        assert attacker.closed()         # the server read every byte we sent, then saw the end


@pytest.mark.parametrize("first", [True, False], ids=["before handshake", "after handshake"])
@pytest.mark.parametrize("kind", ["daemon", "ns"])
def test_header_claiming_2gib_reserves_nothing(kind, first):
    """No limit configured: memory follows the 8 MiB that arrived, not the 2 GiB claimed."""
    for servertype in ("thread", "multiplex"):
        with ChildServer(kind, servertype) as child:
            with Peak(child, "2 GiB header, no limit, %s" % ("first" if first else "after connect")) as peak:
                _claim_2gib(child, first, limit_expected=False)
            assert peak.growth_kb < 40 * 1024      # 8 MiB arrived; Pyro4 reserves 2 GiB here
            served_promptly(child)


@pytest.mark.parametrize("first", [True, False], ids=["before handshake", "after handshake"])
def test_header_claiming_200mib_commits_only_what_arrived(first):
    """Within the size a blocking receive reserves at once: address space, not RAM, is reserved."""
    for servertype in ("thread", "multiplex"):
        with ChildServer("daemon", servertype) as child:
            with Peak(child, "200 MiB header, no limit, %s" % ("first" if first else "after connect")) as peak:
                _claim_2gib(child, first, limit_expected=False, claimed=200 * MiB)
            assert peak.growth_kb < 40 * 1024      # 8 MiB arrived
            served_promptly(child)


@pytest.mark.parametrize("first", [True, False], ids=["before handshake", "after handshake"])
def test_header_claiming_2gib_with_limit_is_refused_at_once(child, first):
    with Peak(child, "2 GiB header, limit 1 MiB") as peak:
        _claim_2gib(child, first, limit_expected=True)
    assert peak.growth_kb < 4 * 1024
    served_promptly(child)


def test_zlib_bomb_call_gets_message_too_large(child):
    bomb = zlib_bomb()
    assert len(bomb) < 300 * 1024
    with Peak(child, "zlib bomb call (%d KB -> 256 MiB)" % (len(bomb) // 1024)) as peak:
        with RawClient(child.port) as attacker:
            attacker.handshake()
            attacker.send(invoke_bytes(child.object_id, "echo", payload=bomb, flags=proto.FLAGS_COMPRESSED))
            error = attacker.result()
            assert isinstance(error, errors.MessageTooLargeError)
            assert str(error).startswith("max message size exceeded (decompressed data larger than")
            attacker.send(invoke_bytes(child.object_id, "count" if child.kind == "ns" else "echo",
                                        [] if child.kind == "ns" else ["x"], seq=2))
            assert not isinstance(attacker.result(), BaseException)     # the connection goes on
    assert peak.growth_kb < 8 * 1024     # the 1 MiB limit plus the 260 KB payload, not 256 MiB
    served_promptly(child)


def test_zlib_bomb_handshake_gets_connectfail(child):
    with Peak(child, "zlib bomb handshake") as peak:
        with RawClient(child.port) as attacker:
            attacker.send(connect_bytes(payload=zlib_bomb(), flags=proto.FLAGS_COMPRESSED))
            reply = attacker.reply()
            assert reply.type == proto.MSG_CONNECTFAIL
            assert b"decompressed data larger than" in reply.data
            assert attacker.closed()
    assert peak.growth_kb < 8 * 1024
    served_promptly(child)


SMALL_BOMBS = [
    # (case, serializer, payload): a few bytes that claim a lot
    ("marshal tuple of 2**31-1", "marshal", b"(" + struct.pack("<i", 2 ** 31 - 1)),
    ("marshal list of 10**9", "marshal", b"[" + struct.pack("<i", 10 ** 9) + b"N" * 16),
    ("marshal dict then set of 10**9", "marshal", b"{<" + struct.pack("<i", 10 ** 9)),
    ("marshal string of 2 GiB", "marshal", b"s" + struct.pack("<i", 2 ** 31 - 1) + b"abc"),
    ("marshal long of 2**31 digits", "marshal", b"l" + struct.pack("<i", 2 ** 31 - 1)),
    ("msgpack array32 of 4G", "msgpack", b"\x94\xdd\xff\xff\xff\xff"),
    ("msgpack bin32 of 4 GiB", "msgpack", b"\x94\xc6\xff\xff\xff\xff"),
    ("serpent nested 50k deep", "serpent", b"[" * 50000),
    ("json nested 50k deep", "json", b"[" * 50000),
]


def test_small_payloads_cost_a_bounded_multiple(child):
    """Each of these is under 50 kB; together they must not cost the server more than a few MiB."""
    with Peak(child, "small bombs (marshal/msgpack/serpent/json)") as peak:
        for case, serializer, payload in SMALL_BOMBS:
            with RawClient(child.port) as attacker:
                attacker.handshake()
                attacker.send(invoke_bytes(child.object_id, "echo", serializer=serializer, payload=payload))
                error = attacker.result()
                assert isinstance(error, (errors.SerializeError, ValueError)), (case, error)
    assert peak.growth_kb < 12 * 1024
    served_promptly(child)
