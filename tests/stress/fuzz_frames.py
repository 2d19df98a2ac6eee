"""Longer fuzz run of the protocol core, the deserializers and live daemons, bounded in time.

    python tests/stress/fuzz_frames.py --budget 300 [--examples 2000]

Rounds of hypothesis searches, each with many examples, until ``--budget`` seconds are used (a
round that started may run a few seconds past it):

* the frame reader (plain and discarding) on random and mutated streams, any split: only
  ``ProtocolError``, and the same outcome whatever the split;
* every safe deserializer on random, mutated and compressed payloads: only ``PyroError``;
* live daemons (thread and multiplex server, loopback, port 0) fed random mutations of valid
  messages on fresh connections: after every example a well-behaved call must still succeed.

Prints a summary (examples run per target, failures) and exits 1 on the first failure, with
hypothesis's falsifying example. Not collected by pytest (no ``test_`` prefix);
``tests/integration/test_stress_scripts.py`` runs it for a few seconds as a smoke test.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any, Callable, List

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import pyro4compat as Pyro4  # noqa: E402
from pyro4compat import _frames  # noqa: E402
from pyro4compat import _protocol as p  # noqa: E402
from pyro4compat import _serializers as S  # noqa: E402
from pyro4compat import errors  # noqa: E402
from pyro4compat.message import Message  # noqa: E402

HOST = "127.0.0.1"
SAFE = ["serpent", "json", "marshal", "msgpack"]
RUN: Counter = Counter()


def _settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, database=None, derandomize=False,
                    suppress_health_check=list(HealthCheck))


def _valid_stream(ser_name: str = "serpent") -> bytes:
    ser = S.get_serializer(ser_name)
    connect = Message(p.MSG_CONNECT, ser.dumps({"handshake": "hi", "object": "svc"}),
                                    ser.serializer_id, 0, 0, {"CORR": b"0123456789abcdef"}).to_bytes()
    call = Message(p.MSG_INVOKE, ser.dumpsCall("svc", "echo", [1, "two", {"k": 3.0}], {}),
                                 ser.serializer_id, 0, 1).to_bytes()
    return connect + call


mutations = st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=6)


def _mutate(data: bytes, changes: Any) -> bytes:
    out = bytearray(data)
    for position, byte in changes:
        out[position % len(out)] = byte
    return bytes(out)


def _reader_outcome(pieces: List[bytes], limit: int, discard: bool) -> Any:
    reader = _frames.FrameReader(limit, discard_oversized=discard)
    seen = []
    try:
        for piece in pieces:
            reader.feed(piece)
            seen.extend(repr(event) for event in _frames.iter_frames(reader))
    except errors.ProtocolError as exc:
        seen.append("error %s: %s" % (type(exc).__name__, exc))
    return seen


def frame_reader_target(examples: int) -> None:
    @_settings(examples)
    @given(st.one_of(st.binary(max_size=400), mutations.map(lambda m: _mutate(_valid_stream(), m))),
           st.lists(st.integers(min_value=0), max_size=12), st.integers(0, 500), st.booleans())
    def check(data: bytes, cuts: List[int], limit: int, discard: bool) -> None:
        RUN["frame reader"] += 1
        points = sorted({c % (len(data) + 1) for c in cuts})
        pieces = [data[a:b] for a, b in zip([0] + points, points + [len(data)])]
        assert _reader_outcome([data], limit, discard) == _reader_outcome(pieces, limit, discard)

    check()


def deserializer_target(examples: int) -> None:
    @_settings(examples)
    @given(st.sampled_from(SAFE), st.binary(max_size=300), mutations, st.booleans())
    def check(name: str, junk: bytes, changes: Any, compress: bool) -> None:
        RUN["deserializers"] += 1
        ser = S.get_serializer(name)
        valid = ser.dumpsCall("obj", "m", [1, "x", [2.5, {"k": None}]], {"a": (1, 2)})
        for data in (junk, _mutate(valid, changes)):
            if compress:
                data = p.compress_payload(data, True)[0]
            for load in (ser.deserializeData, ser.deserializeCall):
                try:
                    load(data, compress)
                except errors.PyroError:
                    pass

    check()


@Pyro4.expose
class Service(object):
    def echo(self, value: Any) -> Any:
        return value


class LiveTarget(object):
    """A daemon serving ``svc``; each example sends its bytes on a fresh connection."""

    def __init__(self, servertype: str) -> None:
        Pyro4.config.SERVERTYPE = servertype
        Pyro4.config.SERIALIZERS_ACCEPTED = set(SAFE)
        self.daemon = Pyro4.Daemon(host=HOST, port=0)
        self.uri = self.daemon.register(Service(), "svc")
        self.thread = threading.Thread(target=self.daemon.requestLoop, daemon=True)
        self.thread.start()
        self.proxy = Pyro4.Proxy(self.uri)
        self.proxy._pyroTimeout = 10

    def attack(self, data: bytes) -> None:
        with socket.create_connection((HOST, self.uri.port), timeout=2) as sock:
            try:    # the daemon may refuse and hang up before we are done: that is fine
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(65536):
                    pass
            except OSError:
                pass
        assert self.proxy.echo("alive") == "alive"

    def close(self) -> None:
        self.proxy._pyroRelease()
        self.daemon.shutdown()
        self.thread.join(10)


def live_target(examples: int, servertype: str) -> None:
    live = LiveTarget(servertype)
    try:
        @_settings(examples)
        @given(st.sampled_from(SAFE), mutations, st.integers(min_value=0))
        def check(name: str, changes: Any, cut: int) -> None:
            RUN["live %s" % servertype] += 1
            data = _mutate(_valid_stream(name), changes)
            live.attack(data[:cut % (len(data) + 1)] if cut % 4 == 0 else data)

        check()
    finally:
        live.close()


TARGETS: List[Any] = [
    ("frame reader", lambda n: frame_reader_target(n)),
    ("deserializers", lambda n: deserializer_target(n)),
    ("live thread", lambda n: live_target(max(n // 10, 10), "thread")),
    ("live multiplex", lambda n: live_target(max(n // 10, 10), "multiplex")),
]


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=120.0, help="seconds to keep fuzzing")
    parser.add_argument("--examples", type=int, default=2000, help="examples per target per round")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.budget
    rounds = 0
    try:
        while time.monotonic() < deadline:
            for name, run in TARGETS:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                examples = args.examples if remaining > 20 else max(int(remaining * 20), 5)
                runner: Callable[[int], None] = run
                runner(examples)
            rounds += 1
    except Exception as exc:        # noqa: BLE001 - reported with the falsifying example above it
        traceback.print_exc()
        print("fuzz FAILED: %s: %s" % (type(exc).__name__, exc))
        print("examples run: %s" % dict(RUN))
        return 1
    print("fuzz OK: %d rounds, examples run: %s" % (rounds, ", ".join("%s %d" % kv for kv in sorted(RUN.items()))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
