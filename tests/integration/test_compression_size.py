"""COMPRESSION (zlib, Pyro4's rules) and MAX_MESSAGE_SIZE on both ends, on both server types.

The compressed flag is checked on the wire: a tap between the proxy and its socket records the
raw bytes of every request and reply, and their headers are decoded with ``Message.from_header``.
"""

from __future__ import annotations

import os
from typing import Any, List

import pytest

import pyro4compat as Pyro4
from pyro4compat import errors
from pyro4compat.configuration import config
from pyro4compat._serializers import get_serializer_by_id
from pyro4compat.message import FLAGS_COMPRESSED, FLAGS_EXCEPTION, MSG_INVOKE, MSG_RESULT, Message

from calls_support import daemon_serving

pytestmark = pytest.mark.timeout(30)


@Pyro4.expose
class Store:
    def echo(self, value: Any) -> Any:
        return value

    def request_was_compressed(self, value: Any) -> bool:
        return bool(Pyro4.current_context.msg_flags & FLAGS_COMPRESSED)

    def make(self, size: int) -> str:
        return "z" * size


class WireTap:
    """Sits in place of a proxy's connection and keeps the raw bytes both ways."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self.sent: List[bytes] = []
        self.received = bytearray()

    def send(self, data: Any) -> None:
        self.sent.append(bytes(data))
        self._conn.send(data)

    def recv(self, size: int) -> bytes:
        data = self._conn.recv(size)
        self.received += data
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def request_flags(self) -> int:
        raw = b"".join(self.sent)
        return Message.from_header(raw[:Message.header_size]).flags

    def reply_flags(self) -> int:
        return Message.from_header(bytes(self.received[:Message.header_size])).flags


@pytest.fixture
def store_uri(servertype, serve):
    with daemon_serving({"store": Store()}, serve) as (daemon, uris):
        yield uris["store"]


def tapped_call(proxy: Any, method: str, arg: Any) -> Any:
    """Make one call through a fresh tap; returns ``(result, request flags, reply flags)``."""
    proxy._pyroBind()
    tap = WireTap(proxy._pyroConnection)
    proxy._pyroConnection = tap
    try:
        result = getattr(proxy, method)(arg)
    finally:
        proxy._pyroConnection = tap._conn
    return result, tap.request_flags() & FLAGS_COMPRESSED, tap.reply_flags() & FLAGS_COMPRESSED


COMPRESSION_CASES = [
    # (COMPRESSION, serializer, value, request compressed?, reply compressed?)
    (True, "serpent", "a" * 400, True, True),      # >= 200 bytes and zlib shrinks it
    (True, "serpent", "short", False, False),       # payloads under 200 bytes are never compressed
    (True, "marshal", os.urandom(600), False, False),  # incompressible (marshal sends bytes raw)
    (True, "marshal", b"b" * 600, True, True),
    (False, "serpent", "a" * 400, False, False),    # compression off
]


@pytest.mark.parametrize("compression, serializer, value, request_flag, reply_flag", COMPRESSION_CASES)
def test_compression_flag_on_the_wire(store_uri, compression, serializer, value, request_flag, reply_flag):
    config.COMPRESSION = compression
    config.SERIALIZER = serializer
    with Pyro4.Proxy(store_uri) as proxy:
        result, sent_compressed, reply_compressed = tapped_call(proxy, "echo", value)
        assert result == value
        assert bool(sent_compressed) is request_flag
        assert bool(reply_compressed) is reply_flag
        assert proxy.request_was_compressed(value) is request_flag  # what the daemon received


def test_compressed_reply_to_a_small_request(store_uri):
    config.COMPRESSION = True
    with Pyro4.Proxy(store_uri) as proxy:
        result, sent_compressed, reply_compressed = tapped_call(proxy, "make", 5000)
        assert result == "z" * 5000
        assert not sent_compressed and reply_compressed


def test_client_refuses_to_send_a_message_over_the_limit(store_uri):
    config.MAX_MESSAGE_SIZE = 1000
    with Pyro4.Proxy(store_uri) as proxy:
        with pytest.raises(errors.MessageTooLargeError, match=r"max message size exceeded \(\d+ where max=1000\)"):
            proxy.echo("y" * 2000)
        assert proxy.echo("small") == "small"  # nothing was sent: the connection is fine


def test_server_reply_over_the_limit_drops_the_connection_as_pyro4_does(store_uri):
    config.MAX_MESSAGE_SIZE = 1000
    with Pyro4.Proxy(store_uri) as proxy:
        with pytest.raises(errors.ConnectionClosedError):
            proxy.make(2000)
        assert proxy.make(10) == "z" * 10  # a new connection serves the next call


def test_server_answers_a_too_large_message_and_keeps_the_connection(store_uri):
    config.MAX_MESSAGE_SIZE = 1000
    with Pyro4.Proxy(store_uri) as proxy:
        proxy._pyroBind()
        config.MAX_MESSAGE_SIZE = 0  # build an oversized request by hand, bypassing our own check
        proxy._pyroSeq += 1
        oversized = Message(MSG_INVOKE, b"x" * 5000, 1, 0, proxy._pyroSeq).to_bytes()
        config.MAX_MESSAGE_SIZE = 1000
        proxy._pyroConnection.send(oversized)
        reply = Message.recv(proxy._pyroConnection, [MSG_RESULT])  # read off and answered, not a hang-up
        assert reply.seq == proxy._pyroSeq and reply.flags & FLAGS_EXCEPTION
        error = get_serializer_by_id(reply.serializer_id).deserializeData(reply.data)
        assert isinstance(error, errors.MessageTooLargeError)
        assert proxy.echo("still serving") == "still serving"  # same connection, still in step


def test_limit_also_bounds_the_decompressed_payload(store_uri):
    # Unlike Pyro4 4.82, MAX_MESSAGE_SIZE also bounds what a compressed payload inflates to:
    # 50 kB of one letter compresses far below 5000 bytes, and is still refused.
    config.MAX_MESSAGE_SIZE = 5000
    config.COMPRESSION = True
    with Pyro4.Proxy(store_uri) as proxy:
        assert proxy.echo("q" * 2000) == "q" * 2000
        with pytest.raises(errors.MessageTooLargeError):
            proxy.echo("q" * 50000)
        config.COMPRESSION = False
        with pytest.raises(errors.MessageTooLargeError):
            proxy.echo("q" * 50000)
