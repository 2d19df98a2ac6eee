"""Shared pieces of the reliability and security tests: raw wire clients, targets, idle checks,
child-process servers.

A *target* is a daemon or a name server daemon, in this process (so its threads and file
descriptors can be counted) on either server type. A raw client speaks protocol 48 by hand, so
it can send what no proxy would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple

from pyro4compat import _protocol as proto
from pyro4compat import core, errors, naming
from pyro4compat._serializers import get_serializer
from pyro4compat.configuration import config
from pyro4compat.message import Message

from daemons import serving
from remote_helpers import HOST, WAIT, Thing, open_fds, wait_until

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("child_server.py")
TARGETS = ["daemon", "nameserver"]
PROMPT = 2.0     # seconds a well-behaved client's call may take while the server is under attack
SER_IDS = {"serpent": 1, "json": 2, "marshal": 3, "pickle": 4, "dill": 5, "msgpack": 6, "cloudpickle": 7}


# --- raw protocol -----------------------------------------------------------------------------------

def header(msg_type: int = proto.MSG_CONNECT, flags: int = 0, seq: int = 0, data_size: int = 0,
           serializer_id: int = 1, anns_size: int = 0, tag: bytes = b"PYRO", version: int = 48,
           checksum: Optional[int] = None) -> bytes:
    """24 header bytes with any field values, valid or not (checksum right unless given)."""
    if checksum is None:
        checksum = proto.checksum(msg_type, flags, seq, data_size, serializer_id, anns_size)
    return struct.pack("!4sHHHHiHHHH", tag, version, msg_type, flags, seq, data_size, serializer_id,
                       anns_size, 0, checksum)


def connect_bytes(serializer: str = "serpent", seq: int = 0, flags: int = 0,
                  annotations: Optional[Dict[str, bytes]] = None, payload: Optional[bytes] = None) -> bytes:
    ser = get_serializer(serializer)
    if payload is None:
        payload = ser.dumps({"handshake": "hello", "object": "x"})
    return Message(proto.MSG_CONNECT, payload, ser.serializer_id, flags, seq, annotations).to_bytes()


def invoke_bytes(object_id: str, method: str, vargs: Any = (), kwargs: Any = None, serializer: str = "serpent",
                 seq: int = 1, flags: int = 0, payload: Optional[bytes] = None, serializer_id: Optional[int] = None,
                 annotations: Optional[Dict[str, bytes]] = None) -> bytes:
    ser = get_serializer(serializer)
    if payload is None:
        payload = ser.dumpsCall(object_id, method, vargs, kwargs or {})
    sid = ser.serializer_id if serializer_id is None else serializer_id
    return Message(proto.MSG_INVOKE, payload, sid, flags, seq, annotations).to_bytes()


class RawClient(object):
    """A socket that speaks protocol 48 by hand."""

    def __init__(self, port: int, timeout: float = WAIT) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=timeout)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def handshake(self, serializer: str = "serpent") -> None:
        self.send(connect_bytes(serializer))
        reply = self.reply()
        assert reply.type == proto.MSG_CONNECTOK, reply.data

    def reply(self) -> Message:
        """The next message from the server (ConnectionClosedError when it hung up instead)."""
        from pyro4compat.socketutil import SocketConnection
        conn = SocketConnection(self.sock, keep_open=True)
        return Message.recv(conn)

    def result(self) -> Any:
        """The next reply, deserialized: the value, or the exception object the server sent."""
        msg = self.reply()
        assert msg.type == proto.MSG_RESULT
        ser = _serializer_by_id(msg.serializer_id)
        value = ser.deserializeData(msg.data, msg.flags & proto.FLAGS_COMPRESSED)
        assert bool(msg.flags & proto.FLAGS_EXCEPTION) == isinstance(value, BaseException)
        return value

    def closed(self) -> bool:
        """True when the server closed the connection (reads until EOF, within the timeout)."""
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "RawClient":
        return self

    def __exit__(self, *args: Any) -> None:
        self.close()


def _serializer_by_id(serializer_id: int) -> Any:
    from pyro4compat._serializers import get_serializer_by_id
    return get_serializer_by_id(serializer_id)


# --- targets ------------------------------------------------------------------------------------------

class Target(object):
    """A served daemon or name server: ``port``, ``object_id`` and ``uri`` of something callable."""

    def __init__(self, kind: str, daemon: Any, object_id: str, thing: Any) -> None:
        self.kind = kind
        self.daemon = daemon
        self.object_id = object_id
        self.thing = thing
        self.uri = daemon.uriFor(object_id)
        self.port = self.uri.port

    def well_behaved_call(self) -> None:
        """One real proxy call that must succeed promptly."""
        start = time.monotonic()
        with core.Proxy(self.uri) as proxy:
            proxy._pyroTimeout = WAIT
            if self.kind == "nameserver":
                assert proxy.lookup("Pyro.NameServer").object == "Pyro.NameServer"
            else:
                assert proxy.echo("fine") == "fine"
        elapsed = time.monotonic() - start
        assert elapsed < PROMPT, "a well-behaved call took %.2f s" % elapsed


@contextlib.contextmanager
def served_target(kind: str, thing: Any = None) -> Iterator[Target]:
    """A daemon (with a Thing) or a name server daemon on loopback port 0, serving in a thread."""
    if kind == "nameserver":
        daemon: Any = naming.NameServerDaemon(host=HOST, port=0)
        target = Target(kind, daemon, "Pyro.NameServer", daemon.nameserver)
    else:
        daemon = core.Daemon(host=HOST, port=0)
        thing = Thing() if thing is None else thing
        daemon.register(thing, "thing")
        target = Target(kind, daemon, "thing", thing)
    with serving(daemon):
        yield target


# --- idle levels ------------------------------------------------------------------------------------

def counts() -> Tuple[int, int]:
    return threading.active_count(), open_fds()


def settled() -> Tuple[int, int]:
    """Threads and fds once they stopped moving (earlier clients' traces gone)."""
    previous: list = [None]

    def stable() -> bool:
        now = counts()
        same, previous[0] = now == previous[0], now
        return same

    wait_until(stable, interval=0.05)
    return previous[0]


def assert_idle(idle: Tuple[int, int]) -> None:
    ok = wait_until(lambda: all(now <= then for now, then in zip(counts(), idle)))
    assert ok, "threads/fds %s, idle was %s: %s" % (counts(), idle, [t.name for t in threading.enumerate()])


# --- a server in a child process ----------------------------------------------------------------------

class ChildServer(object):
    """``child_server.py`` in a subprocess: kill it, restart it, read its memory."""

    def __init__(self, kind: str = "daemon", servertype: str = "thread", port: int = 0,
                 storage: Optional[str] = None, **config_items: Any) -> None:
        self.kind, self.servertype, self.port, self.storage = kind, servertype, port, storage
        self.config_items = config_items
        self.proc: Optional[subprocess.Popen] = None
        self.uri: Optional[str] = None

    def start(self) -> "ChildServer":
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   PYRO_SERVERTYPE=self.servertype, PYRO_COMMTIMEOUT="0")
        env.pop("PYRO_MAX_MESSAGE_SIZE", None)
        for item, value in self.config_items.items():
            env["PYRO_" + item] = str(value)
        args = [sys.executable, str(CHILD), self.kind, str(self.port)] + ([self.storage] if self.storage else [])
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                                     cwd=str(ROOT))
        line = self.proc.stdout.readline().strip()
        assert line.startswith("URI "), "child server did not start: %r" % line
        self.uri = line[4:]
        self.port = int(self.uri.rsplit(":", 1)[1])
        return self

    def target_uri(self) -> str:
        return "PYRO:target@%s:%d" % (HOST, self.port)

    def wait_entered(self) -> None:
        assert self.proc.stdout.readline().strip() == "ENTERED"

    def peak_kb(self) -> int:
        return _status(self.proc.pid)["VmHWM"]

    def rss_kb(self) -> int:
        return _status(self.proc.pid)["VmRSS"]

    def reset_peak(self) -> None:
        """Start a new high-water mark at the current RSS (Linux: clear_refs 5)."""
        with open("/proc/%d/clear_refs" % self.proc.pid, "w") as refs:
            refs.write("5")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(WAIT)
        self.proc.stdout.close()
        self.proc.stdin.close()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.stdin.close()
        try:
            self.proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(WAIT)
        self.proc.stdout.close()

    def __enter__(self) -> "ChildServer":
        return self.start()

    def __exit__(self, *args: Any) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()


def _status(pid: int) -> Dict[str, int]:
    values = {}
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                values[key] = int(rest.split()[0])
    return values


def expect_remote(exc_type: type, call: Any) -> BaseException:
    try:
        call()
    except exc_type as exc:
        return exc
    raise AssertionError("no %s" % exc_type.__name__)


__all__ = ["header", "connect_bytes", "invoke_bytes", "RawClient", "Target", "served_target", "counts",
           "settled", "assert_idle", "ChildServer", "TARGETS", "SER_IDS", "PROMPT", "expect_remote",
           "config", "errors"]
