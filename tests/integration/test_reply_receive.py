"""A proxy's reply receive (``message.read_reply``): one receive for a whole reply, the full path otherwise.

Every case runs over a real socket pair; what matters is that the shortcut hands out the same
message, or raises the same error, as the general :func:`message.read_message` would, and that
bytes it could not use are not lost.
"""

from __future__ import annotations

import socket
import threading
from typing import Any, Iterator, Tuple

import pytest

from pyro4compat import _protocol as proto
from pyro4compat.configuration import config
from pyro4compat.errors import MessageTooLargeError, ProtocolError, SecurityError
from pyro4compat.message import MSG_RESULT, Message, read_message, read_reply
from pyro4compat.socketutil import SocketConnection

RESULT = [MSG_RESULT]

pytestmark = pytest.mark.timeout(20)


def reply(seq: int, payload: bytes = b"result", key: Any = None, msg_type: int = MSG_RESULT,
          annotations: Any = None) -> bytes:
    anns = {"CORR": b"0123456789abcdef"} if annotations is None else annotations
    return Message(msg_type, payload, 3, 0, seq, anns, key).to_bytes()


@pytest.fixture
def pair() -> Iterator[Tuple[SocketConnection, socket.socket]]:
    ours, theirs = socket.socketpair()
    connection = SocketConnection(ours)
    connection.read_ahead = True
    yield connection, theirs
    connection.close()
    theirs.close()


class _Signalling:
    """A socket that sets an event after each ``recv_into``: the test then sends what comes next."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.received = threading.Event()

    def recv_into(self, *args: Any) -> int:
        count = self._sock.recv_into(*args)
        self.received.set()
        return count

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def test_a_whole_reply_comes_from_one_receive(pair):
    connection, theirs = pair
    theirs.sendall(reply(7, b"x" * 300))
    msg = read_reply(connection, RESULT, None)
    assert (msg.type, msg.seq, msg.data, msg.annotations) == (MSG_RESULT, 7, b"x" * 300,
                                                              {"CORR": b"0123456789abcdef"})
    assert msg.data_size == 300 and type(msg.data) is bytes
    assert connection.buffered == 0


def test_a_reply_in_pieces_is_completed_from_the_socket(pair):
    connection, theirs = pair
    signalling = _Signalling(connection.sock)
    connection.sock = signalling
    data = reply(8, b"y" * 1000)
    theirs.sendall(data[:30])           # the header and part of the annotations only
    result = []
    reader = threading.Thread(target=lambda: result.append(read_reply(connection, RESULT, None)))
    reader.start()
    assert signalling.received.wait(10)
    theirs.sendall(data[30:])
    reader.join(10)
    assert not reader.is_alive()
    assert result[0].seq == 8 and result[0].data == b"y" * 1000
    assert connection.buffered == 0


def test_two_replies_at_once_are_both_handed_out(pair):
    connection, theirs = pair
    theirs.sendall(reply(1, b"first") + reply(2, b"second"))
    assert read_reply(connection, RESULT, None).data == b"first"
    assert connection.buffered == len(reply(2, b"second"))
    assert read_reply(connection, RESULT, None).data == b"second"
    assert connection.buffered == 0


def test_read_ahead_off_gives_the_same_message(pair):
    connection, theirs = pair
    connection.read_ahead = False
    theirs.sendall(reply(3))
    assert read_reply(connection, RESULT, None).data == b"result"


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",                          # not Pyro at all
    reply(4)[:22] + b"\x00\x00" + reply(4)[24:],                    # a wrong checksum
    proto.pack_header(MSG_RESULT, 0, 4, 0, 3, 9) + b"\xff" * 9,    # junk where the annotations belong
])
def test_bad_bytes_raise_what_the_general_path_raises(data):
    errors = []
    for receive in (read_reply, lambda c, allowed, key: read_message(c, allowed, key)):
        ours, theirs = socket.socketpair()
        connection = SocketConnection(ours)
        connection.read_ahead = True
        theirs.sendall(data)
        theirs.shutdown(socket.SHUT_WR)
        with pytest.raises(Exception) as caught:
            receive(connection, RESULT, None)
        errors.append((type(caught.value), str(caught.value)))
        connection.close()
        theirs.close()
    assert errors[0] == errors[1]
    assert issubclass(errors[0][0], ProtocolError)


def test_unexpected_type_and_bad_hmac(pair):
    connection, theirs = pair
    theirs.sendall(reply(5, msg_type=proto.MSG_PING))
    with pytest.raises(ProtocolError, match="invalid msg type %d received" % proto.MSG_PING) as caught:
        read_reply(connection, RESULT, None)
    assert caught.value.pyroMsg.seq == 5
    theirs.sendall(reply(6, key=b"their key"))
    with pytest.raises(SecurityError, match="message hmac mismatch") as caught:
        read_reply(connection, RESULT, b"our key")
    assert caught.value.pyroMsg.seq == 6
    theirs.sendall(reply(7, key=b"our key"))
    assert read_reply(connection, RESULT, b"our key").seq == 7   # the stream stayed in step


def test_a_reply_over_the_size_limit_closes_the_connection(pair, monkeypatch):
    connection, theirs = pair
    data = reply(9, b"z" * 200)
    monkeypatch.setattr(config, "MAX_MESSAGE_SIZE", 100)
    theirs.sendall(data)
    with pytest.raises(MessageTooLargeError, match="max message size exceeded"):
        read_reply(connection, RESULT, None)
    assert connection.sock.fileno() == -1


def test_a_connection_subclass_or_wrapper_reads_through_its_own_recv(pair):
    connection, theirs = pair

    class Counting(SocketConnection):
        asked = 0

        def recv(self, size: int) -> bytes:
            Counting.asked += size
            return super().recv(size)

    counting = Counting(connection.sock, keep_open=True)
    counting.read_ahead = True
    data = reply(11, b"w" * 50)
    theirs.sendall(data)
    assert read_reply(counting, RESULT, None).data == b"w" * 50
    assert Counting.asked == len(data)     # every byte went through the override
