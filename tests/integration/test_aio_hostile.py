"""The reliability and security scenarios of the thread and multiplex servers, on aio.Daemon.

The scenario functions are imported from their modules and collected here again; the fixtures
below (same names) give them asyncio-served targets instead: in this process for the
hostile-client and hostile-byte tests, in a child process (``PYRO_SERVERTYPE=asyncio`` makes
``child_server.py`` build ``aio`` daemons) for the size-limit and memory tests.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import pytest

from pyro4compat import aio
from pyro4compat.configuration import config

import test_hostile_bytes
import test_hostile_clients
import test_memory_bombs
import test_size_limits
from daemons import serving
from hostile_support import TARGETS, ChildServer, Target, settled
from remote_helpers import HOST, Thing

from test_hostile_bytes import (test_bad_first_message, test_bad_request_closes_only_that_connection,  # noqa: F401
                                test_bad_request_gets_pyro4_error, test_many_attacks_in_a_row_on_one_connection_each,
                                test_pipelined_valid_calls_after_a_reply_error, test_short_junk_then_half_close,
                                test_unaccepted_serializer_reply_is_marshal)
from test_hostile_clients import (test_client_vanishing_mid_reply, test_clients_vanishing_mid_call,  # noqa: F401
                                  test_connection_storm, test_many_idle_connections,
                                  test_slow_reader_of_a_large_reply, test_slow_senders_do_not_hold_up_others)
from test_memory_bombs import (test_header_claiming_2gib_with_limit_is_refused_at_once,  # noqa: F401
                               test_zlib_bomb_call_gets_message_too_large, test_zlib_bomb_handshake_gets_connectfail)
from test_size_limits import (test_beyond_the_discard_bound_the_connection_is_closed,  # noqa: F401
                              test_call_over_the_limit_gets_message_too_large, test_compressed_call_inflating_over_the_limit,
                              test_handshake_over_the_limit_is_refused_with_the_reason,
                              test_name_server_call_over_the_limit, test_oneway_over_the_limit_is_dropped_silently,
                              test_server_keeps_the_connection_in_step, test_several_oversized_calls_in_a_row,
                              test_unaccepted_serializer_oversized_reply_is_marshal)
from test_size_limits import proxy  # noqa: F401

pytestmark = [pytest.mark.timeout(90), pytest.mark.filterwarnings("ignore:Pyro protocol error occurred")]


@contextlib.contextmanager
def aio_target(kind: str) -> Iterator[Target]:
    """hostile_support.served_target, on aio daemons."""
    if kind == "nameserver":
        daemon: Any = aio.NameServerDaemon(host=HOST, port=0)
        target = Target(kind, daemon, "Pyro.NameServer", daemon.nameserver)
    else:
        daemon = aio.Daemon(host=HOST, port=0)
        thing = Thing()
        daemon.register(thing, "thing")
        target = Target(kind, daemon, "thing", thing)
    with serving(daemon):
        yield target


@pytest.fixture(params=TARGETS)
def target(request) -> Iterator[Target]:
    config.THREADPOOL_SIZE_MIN = 2
    if request.function.__module__ == test_hostile_bytes.__name__:
        config.SERIALIZERS_ACCEPTED = {"serpent", "json", "marshal", "msgpack"}
    with aio_target(request.param) as tgt:
        tgt.well_behaved_call()
        tgt.idle = settled()
        yield tgt


@pytest.fixture
def bystander(target):
    yield from test_hostile_bytes.bystander.__wrapped__(target)  # type: ignore[attr-defined]


@pytest.fixture(params=["daemon", "ns"])
def child(request) -> Iterator[ChildServer]:
    if request.function.__module__ == test_memory_bombs.__name__:
        settings = dict(MAX_MESSAGE_SIZE=test_memory_bombs.LIMIT, SERIALIZERS_ACCEPTED=test_memory_bombs.ACCEPTED)
    else:
        settings = dict(MAX_MESSAGE_SIZE=test_size_limits.LIMIT)
    with ChildServer(request.param, "asyncio", **settings) as server:
        server.object_id = "Pyro.NameServer" if request.param == "ns" else "target"
        yield server


def test_the_scenarios_are_the_same_ones():
    """Every scenario of the modules above that takes these fixtures is collected here too."""
    here = {name for name in globals() if name.startswith("test_")}
    for module in (test_hostile_clients,):
        wanted = {name for name in vars(module) if name.startswith("test_")}
        assert wanted <= here, wanted - here
