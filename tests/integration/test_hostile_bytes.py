"""Hostile bytes against a daemon and a name server, on both server types (issue 8, item 1).

Every attack is sent by hand on a raw socket, either as the connection's first message or after
a proper handshake. Each gets Pyro4's error where the protocol allows a reply (CONNECTFAIL before
the handshake, an exception RESULT after it), otherwise that one connection is closed. Meanwhile
a well-behaved proxy, connected before the attack, keeps being served promptly, and afterwards
the process is back to its idle thread and file descriptor counts.

One served target per (kind, server type) for the whole module, so the 100+ cases stay fast.
"""

from __future__ import annotations

import marshal
import socket
import struct
from typing import Any, Tuple

import pytest

from pyro4compat import _protocol as proto
from pyro4compat import core, errors
from pyro4compat.configuration import config
from pyro4compat.message import Message

from hostile_support import (TARGETS, RawClient, assert_idle, connect_bytes, header, invoke_bytes, served_target,
                             settled)

pytestmark = [pytest.mark.timeout(30), pytest.mark.filterwarnings("ignore:Pyro protocol error occurred")]

BAD_TAG = "invalid data or unsupported protocol version"
HALF_CLOSE = object()   # marker in a byte sequence: shut down our sending side here


# --- the served targets -----------------------------------------------------------------------------

@pytest.fixture(scope="module", params=[(kind, st) for kind in TARGETS for st in ("thread", "multiplex")],
                ids=lambda p: "%s-%s" % p)
def target(request):
    kind, servertype = request.param
    saved = config.asDict()
    config.SERVERTYPE = servertype
    config.SERIALIZERS_ACCEPTED = {"serpent", "json", "marshal", "msgpack"}
    config.THREADPOOL_SIZE_MIN = 2
    try:
        context = served_target(kind)
        tgt = context.__enter__()
    finally:
        for item, value in saved.items():
            setattr(config, item, value)
    tgt.well_behaved_call()
    tgt.idle = settled()
    yield tgt
    context.__exit__(None, None, None)


@pytest.fixture
def bystander(target):
    """A proxy connected before the attack; it must still be served promptly afterwards."""
    proxy = core.Proxy(target.uri)
    proxy._pyroTimeout = 10
    proxy._pyroBind()
    yield proxy
    if target.kind == "nameserver":
        assert proxy.count() >= 1
    else:
        assert proxy.echo("bystander") == "bystander"
    proxy._pyroRelease()
    target.well_behaved_call()
    assert_idle(target.idle)


def send(client: RawClient, parts: Tuple[Any, ...]) -> None:
    for part in parts:
        if part is HALF_CLOSE:
            client.sock.shutdown(socket.SHUT_WR)
        else:
            client.send(part)


# --- before the handshake: CONNECTFAIL with Pyro4's text, or just closed ----------------------------------

def _chunk(key: bytes, length: int, value: bytes) -> bytes:
    return key + struct.pack("!H", length) + value


def _with_annotations(area: bytes, data: bytes = b"", msg_type: int = proto.MSG_CONNECT) -> bytes:
    return header(msg_type, data_size=len(data), anns_size=len(area)) + area + data


FIRST_MESSAGE = [
    # (case, bytes to send, expected CONNECTFAIL text or None for "closed without a reply")
    ("http request", (b"GET / HTTP/1.0\r\nHost: x\r\n\r\n" + b"x" * 30,), BAD_TAG),
    ("random binary", (bytes(range(256)) * 2,), BAD_TAG),
    ("wrong magic", (header(tag=b"PYRX"),), BAD_TAG),
    ("wrong version", (header(version=47),), BAD_TAG),
    ("future version", (header(version=502),), BAD_TAG),
    ("wrong checksum", (header(checksum=0x1234),), "header checksum mismatch"),
    ("negative length", (header(data_size=-1),), "invalid message size (outside range 0..2Gb)"),
    ("most negative length", (header(data_size=-2 ** 31),), "invalid message size (outside range 0..2Gb)"),
    ("truncated header", (connect_bytes()[:11], HALF_CLOSE), None),
    ("truncated annotations", (header(anns_size=300) + b"CORR", HALF_CLOSE), None),
    ("truncated payload", (connect_bytes()[:proto.HEADER_SIZE + 5], HALF_CLOSE), None),
    ("absurd length, then silence", (header(data_size=2 ** 31 - 1) + b"x" * 1000, HALF_CLOSE), None),
    ("annotation past its area", (_with_annotations(_chunk(b"CORR", 500, b"abcd")),), "running past the end"),
    ("annotation chunk header cut", (_with_annotations(b"COR"),), "annotation chunk header truncated"),
    ("annotation key not ascii", (_with_annotations(_chunk(b"\xff\xfe\xfd\xfc", 1, b"x")),), "is not ASCII"),
    ("invoke before connect", (invoke_bytes("thing", "echo", ["x"], seq=5),), "invalid msg type 4 received"),
    ("result before connect", (Message(proto.MSG_RESULT, b"", 1, 0, 0).to_bytes(),),
     "invalid msg type 5 received"),
    ("unknown message type", (Message(77, b"", 1, 0, 0).to_bytes(),), "invalid msg type 77 received"),
    ("unknown serializer id", (Message(proto.MSG_CONNECT, b"x", 99, 0, 0).to_bytes(),),
     "message used serializer that is not accepted: 99"),
    ("pickle not accepted", (Message(proto.MSG_CONNECT, b"\x80\x04N.", 4, 0, 0).to_bytes(),),
     "message used serializer that is not accepted: 4"),
    ("handshake not a dict", (connect_bytes(payload=b"42"),), "invalid handshake data"),
    ("compressed garbage", (connect_bytes(flags=proto.FLAGS_COMPRESSED, payload=b"not zlib"),),
     "invalid compressed data"),
] + [
    ("undecodable %s" % name, (connect_bytes(name, payload=junk),), "invalid %s data" % label)
    for name, label, junk in [("serpent", "serpent", b"{{{\xff"), ("json", "json", b"{\"a\":"),
                              ("marshal", "marshal", b"c" + b"\x00" * 30), ("msgpack", "msgpack", b"\xc1")]
]


@pytest.mark.parametrize("case, parts, expected", FIRST_MESSAGE, ids=[c[0] for c in FIRST_MESSAGE])
def test_bad_first_message(target, bystander, case, parts, expected):
    with RawClient(target.port) as client:
        send(client, parts)
        if expected is None:
            assert client.closed()
            return
        reply = client.reply()
        assert reply.type == proto.MSG_CONNECTFAIL
        text = _connectfail_text(reply)
        assert expected in text, text
        assert client.closed()


def _connectfail_text(reply: Any) -> str:
    from pyro4compat._serializers import get_serializer_by_id
    return get_serializer_by_id(reply.serializer_id).deserializeData(reply.data)


@pytest.mark.parametrize("junk", [b"\x01\x02\x03", b"PYRO\x00\x31"], ids=["3 bytes of junk", "tag, wrong version"])
def test_short_junk_then_half_close(target, bystander, junk):
    """Fewer than a header's bytes: the multiplex server refuses at once, the thread server on EOF."""
    with RawClient(target.port) as client:
        send(client, (junk, HALF_CLOSE))
        try:
            reply = client.reply()
        except errors.ConnectionClosedError:
            return      # the thread server waited for 24 bytes, then saw the end: nothing to answer
        assert (reply.type, _connectfail_text(reply)) == (proto.MSG_CONNECTFAIL, BAD_TAG)
        assert client.closed()


# --- after the handshake: an exception reply where possible, else closed -------------------------------

def _call(target: Any, method: str, vargs: Any, **kwargs: Any) -> bytes:
    return invoke_bytes(target.object_id, method, vargs, **kwargs)


def _valid_call(target: Any) -> Tuple[str, list]:
    return ("count", []) if target.kind == "nameserver" else ("echo", ["again"])


CLOSES = [
    # (case, build(target) -> bytes): the connection is closed without a reply
    ("garbage", lambda t: b"\x00" * 64),
    ("wrong checksum", lambda t: header(proto.MSG_INVOKE, checksum=7)),
    ("other protocol version", lambda t: header(proto.MSG_PING, version=9999, data_size=9) + b"something"),
    ("negative length", lambda t: header(proto.MSG_INVOKE, data_size=-5)),
    ("annotation past its area", lambda t: _with_annotations(_chunk(b"CORR", 900, b"x"), b"", proto.MSG_INVOKE)),
    ("annotation key not ascii", lambda t: _with_annotations(_chunk(b"\x80abc", 0, b""), b"", proto.MSG_INVOKE)),
    ("connect again", lambda t: connect_bytes(seq=1)),
    ("result message", lambda t: Message(proto.MSG_RESULT, b"", 1, 0, 1).to_bytes()),
    ("blob without BLBI", lambda t: _call(t, "echo", ["x"], flags=proto.FLAGS_KEEPSERIALIZED)),
    ("blob with junk BLBI", lambda t: _call(t, "echo", ["x"], flags=proto.FLAGS_KEEPSERIALIZED,
                                            annotations={"BLBI": b"\xff\x00junk"})),
    ("compressed garbage", lambda t: _call(t, "echo", ["x"], flags=proto.FLAGS_COMPRESSED, payload=b"not zlib")),
]


@pytest.mark.parametrize("case, build", CLOSES, ids=[c[0] for c in CLOSES])
def test_bad_request_closes_only_that_connection(target, bystander, case, build):
    with RawClient(target.port) as client:
        client.handshake()
        client.send(build(target))
        assert client.closed()


def _json_call(target: Any, arg: Any) -> bytes:
    method = "lookup" if target.kind == "nameserver" else "echo"
    return invoke_bytes(target.object_id, method, [arg], serializer="json")


REPLIES = [
    # (case, build(target) -> bytes, exception type, text in its message, connection stays usable)
    # A payload that does not decode keeps the connection, as in Pyro4 (whose serializer libraries
    # raise their own errors there); a decoded payload that is refused closes it, as in Pyro4.
    ("undecodable serpent", lambda t: _call(t, "x", [], payload=b"{{{\xff"), errors.SerializeError,
     "invalid serpent data", True),
    ("undecodable json", lambda t: _call(t, "x", [], serializer="json", payload=b"[1,"), errors.SerializeError,
     "invalid json data", True),
    ("undecodable marshal", lambda t: _call(t, "x", [], serializer="marshal", payload=b"(" + b"\xff" * 4),
     errors.SerializeError, "invalid marshal data", True),
    ("marshal huge count", lambda t: _call(t, "x", [], serializer="marshal",
                                           payload=b"(" + struct.pack("<i", 2 ** 31 - 1)),
     errors.SerializeError, "exceeds the payload", True),
    ("marshal code object", lambda t: _call(t, "x", [], serializer="marshal",
                                            payload=marshal.dumps(compile("1", "f", "eval"))),
     errors.SerializeError, "unsupported type code", True),
    ("empty marshal payload", lambda t: _call(t, "x", [], serializer="marshal", payload=b""),
     errors.SerializeError, "invalid marshal data", True),
    ("undecodable msgpack", lambda t: _call(t, "x", [], serializer="msgpack", payload=b"\xc1\xc1"),
     errors.SerializeError, "invalid msgpack data", True),
    ("call tuple malformed", lambda t: _call(t, "x", [], payload=b"(1,2,3)"), errors.SerializeError,
     "invalid call data", True),
    ("unknown serializer id", lambda t: _call(t, "x", [], serializer_id=99), errors.SerializeError,
     "message used serializer that is not accepted: 99", False),
    ("serpent names a class", lambda t: _call(t, "lookup" if t.kind == "nameserver" else "echo",
                                              [{"__class__": "subprocess.Popen", "args": ["ls"]}]),
     errors.SerializeError, "unsupported serialized class: subprocess.Popen", False),
    ("json names a class", lambda t: _json_call(t, {"__class__": "os.system", "command": "true"}),
     errors.SerializeError, "unsupported serialized class: os.system", False),
    ("serpent names a dunder", lambda t: _call(t, "echo", [{"__class__": "builtins.__import__"}]),
     errors.SecurityError, "refused to deserialize types with double underscores", False),
    ("json exception of any class", lambda t: _json_call(t, {"__class__": "mymodule.Evil", "__exception__": True,
                                                             "args": [], "attributes": {}}),
     errors.SerializeError, "unsupported serialized class: mymodule.Evil", False),
    ("unknown object", lambda t: invoke_bytes("no-such-object", "echo", ["x"]), errors.DaemonError,
     "unknown object", True),
    ("private method", lambda t: _call(t, "_private", []), AttributeError,
     "attempt to access private attribute '_private'", True),
    ("mangled name", lambda t: _call(t, "_Thing__secret", []), AttributeError, "attempt to access private", True),
    ("dunder init", lambda t: _call(t, "__init__", []), AttributeError, "attempt to access private attribute", True),
    ("dunder class", lambda t: _call(t, "__class__", []), AttributeError, "attempt to access private attribute",
     True),
    ("dunder reduce_ex", lambda t: _call(t, "__reduce_ex__", [2]), AttributeError,
     "attempt to access private attribute", True),
    ("dotted name", lambda t: _call(t, "echo.__globals__", []), AttributeError, "echo.__globals__", True),
    ("getattr of __dict__", lambda t: _call(t, "__getattr__", ["__dict__"]), AttributeError,
     "'__dict__'", True),
    ("getattr of private", lambda t: _call(t, "__getattr__", ["_value"]), AttributeError, "'_value'", True),
    ("setattr of private", lambda t: _call(t, "__setattr__", ["_pyroId", "hijacked"]), AttributeError,
     "'_pyroId'", True),
    ("method name not a string", lambda t: _call(t, "x", [], payload=get_ser("serpent").dumps(
        (t.object_id, 42, [], {}))), errors.SerializeError, "invalid call data", True),
    ("batch of junk", lambda t: _call(t, "<batch>", [42], flags=proto.FLAGS_BATCH), TypeError, "", True),
]


def get_ser(name: str) -> Any:
    from pyro4compat._serializers import get_serializer
    return get_serializer(name)


@pytest.mark.parametrize("case, build, exc_type, text, usable", REPLIES, ids=[c[0] for c in REPLIES])
def test_bad_request_gets_pyro4_error(target, bystander, case, build, exc_type, text, usable):
    with RawClient(target.port) as client:
        client.handshake()
        client.send(build(target))
        result = client.result()
        assert isinstance(result, exc_type), repr(result)
        assert text in str(result), str(result)
        if usable:      # the connection goes on: the next call on it is served
            method, vargs = _valid_call(target)
            client.send(_call(target, method, vargs, seq=2))
            assert not isinstance(client.result(), BaseException)
        else:           # Pyro4 closes after a refusal (SerializeError / SecurityError reply); so do we
            assert client.closed()


def test_unaccepted_serializer_reply_is_marshal(target, bystander):
    """An error about an unaccepted serializer is encoded with marshal, never with the request's."""
    with RawClient(target.port) as client:
        client.handshake()
        client.send(_call(target, "echo", ["x"], serializer="pickle"))
        reply = client.reply()
        assert (reply.type, reply.serializer_id, reply.flags & proto.FLAGS_EXCEPTION) == (
            proto.MSG_RESULT, 3, proto.FLAGS_EXCEPTION)
        error = get_ser("marshal").deserializeData(reply.data)
        assert isinstance(error, errors.SerializeError)
        assert str(error) == "message used serializer that is not accepted: 4"


def test_many_attacks_in_a_row_on_one_connection_each(target, bystander):
    """A mix of everything above, back to back, then the bystander is checked by the fixture."""
    for case, parts, _ in FIRST_MESSAGE:
        with RawClient(target.port) as client:
            send(client, parts)
            client.closed()
    for case, build in CLOSES:
        with RawClient(target.port) as client:
            client.handshake()
            client.send(build(target))
            assert client.closed()


def test_pipelined_valid_calls_after_a_reply_error(target, bystander):
    """An error reply does not desynchronise the stream: pipelined calls get their own replies."""
    method, vargs = _valid_call(target)
    with RawClient(target.port) as client:
        client.handshake()
        client.send(_call(target, "_private", [], seq=10) + _call(target, method, vargs, seq=11)
                    + _call(target, "no_such_method", [], seq=12) + _call(target, method, vargs, seq=13))
        seqs = []
        for _ in range(4):
            msg = client.reply()
            seqs.append((msg.seq, bool(msg.flags & proto.FLAGS_EXCEPTION)))
        assert seqs == [(10, True), (11, False), (12, True), (13, False)]
