"""Payloads above ``_frames.GATHER_FROM``: byte-exact on both server types, and a large message
that arrives in pieces never stops the multiplex server from serving others meanwhile."""

from __future__ import annotations

import base64
import os

import pytest

from pyro4compat import _frames, core
from pyro4compat._serializers import get_serializer_by_id
from pyro4compat.configuration import config

from hostile_support import RawClient, invoke_bytes, served_target
from remote_helpers import WAIT

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["thread", "multiplex"])
def target(request):
    config.SERVERTYPE = request.param
    config.SERIALIZERS_ACCEPTED = {"serpent", "marshal", "pickle", "json"}
    with served_target("daemon") as tgt:
        yield tgt


@pytest.mark.parametrize("serializer", ["serpent", "marshal", "pickle", "json"])
def test_large_payload_echoes_exactly(target, serializer):
    value = os.urandom(3 * _frames.GATHER_FROM + 123)
    if serializer == "json":
        value = value.hex()             # json has no bytes type
    with core.Proxy(target.uri) as proxy:
        proxy._pyroTimeout = WAIT
        proxy._pyroSerializer = serializer
        echoed = proxy.echo(value)
        if serializer == "serpent":     # serpent turns bytes into its base64 dict, as in Pyro4
            echoed = base64.b64decode(echoed["data"])
        assert echoed == value
        assert proxy.echo("small") == "small"   # the stream is still in step after it


def test_pipelined_large_and_small_requests_are_answered_in_order(target):
    big = os.urandom(2 * _frames.GATHER_FROM)
    with RawClient(target.port) as client:
        client.handshake("marshal")
        client.send(invoke_bytes("thing", "echo", (big,), serializer="marshal", seq=1)
                    + invoke_bytes("thing", "echo", ("next",), serializer="marshal", seq=2))
        assert client.result() == big
        assert client.result() == "next"


def test_half_sent_large_message_does_not_hold_up_multiplex_server():
    config.SERVERTYPE = "multiplex"
    big = os.urandom(4 * _frames.GATHER_FROM)
    message = invoke_bytes("thing", "echo", (big,), serializer="marshal", seq=7)
    with served_target("daemon") as tgt, RawClient(tgt.port) as slow:
        slow.handshake("marshal")
        slow.send(message[:len(message) // 2])   # the server is now gathering this payload
        tgt.well_behaved_call()                  # and still serves everyone else promptly
        slow.send(message[len(message) // 2:])
        reply = slow.reply()
        assert reply.seq == 7
        assert get_serializer_by_id(reply.serializer_id).deserializeData(reply.data) == big
