"""Faults (issue 8, item 6): a server killed mid-call, coming back on the same address, streams,
MAX_RETRIES exactly as documented, and the name server's ``sql:`` storage across SIGKILL.

Servers that get killed run in a child process (``child_server.py``), which prints ``ENTERED``
when a slow call starts: the test kills it then, without sleeping. ``SqlStorage`` durability at
the storage level is in ``test_naming_storage_durability.py``; here it is proved through a name
server daemon over the wire.
"""

from __future__ import annotations

import signal
import threading
from typing import Any, List

import pytest

from pyro4compat import core, errors
from pyro4compat._context import current_context
from pyro4compat.configuration import config

from hostile_support import ChildServer
from remote_helpers import WAIT, served

pytestmark = [pytest.mark.timeout(60),
              pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")]

KINDS = [("daemon", "thread"), ("daemon", "multiplex"), ("ns", "thread"), ("ns", "multiplex")]


@pytest.mark.parametrize("kind, servertype", KINDS, ids=["%s-%s" % k for k in KINDS])
def test_server_killed_mid_call_then_back_on_the_same_port(kind, servertype):
    server = ChildServer(kind, servertype).start()
    try:
        proxy = core.Proxy(server.target_uri())
        proxy._pyroTimeout = WAIT
        assert proxy.echo("before") == "before"
        outcome: List[BaseException] = []

        def call() -> None:
            try:
                proxy.slow(60)
            except BaseException as exc:
                outcome.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        server.wait_entered()
        server.kill()
        caller.join(WAIT)
        assert len(outcome) == 1 and type(outcome[0]) is errors.ConnectionClosedError, outcome
        assert proxy._pyroConnection is None
        with pytest.raises(errors.CommunicationError):
            proxy.echo("nobody home")               # refused while the server is down
        server = ChildServer(kind, servertype, port=server.port).start()
        assert proxy.echo("after") == "after"       # the next call reconnects by itself
        proxy._pyroRelease()
        proxy._pyroReconnect(tries=3)               # and the explicit way works too
        assert proxy.echo("again") == "again"
        proxy._pyroRelease()
    finally:
        server.stop()


def test_stream_of_a_killed_server_ends_with_an_error():
    """A stream lives in the server process: after a kill and restart it is gone, loudly."""
    config.ITER_STREAM_LINGER = 30
    server = ChildServer("daemon", "thread").start()
    try:
        with core.Proxy(server.target_uri()) as proxy:
            items = proxy.numbers(100)
            assert [next(items), next(items)] == [0, 1]
            server.kill()
            server = ChildServer("daemon", "thread", port=server.port).start()
            with pytest.raises(errors.PyroError):
                next(items)
            assert proxy.echo("served") == "served"
    finally:
        server.stop()


def test_stream_survives_a_lost_connection_within_linger(servertype, serve):
    """The server keeps the stream ITER_STREAM_LINGER seconds after its client vanished: resume."""
    config.ITER_STREAM_LINGER = 30

    @core.expose
    class Source(object):
        def numbers(self, count: int) -> Any:
            return iter(range(count))

    with served(serve, obj=Source()) as (daemon, uri, _):
        with core.Proxy(uri) as proxy:
            items = proxy.numbers(10)
            assert next(items) == 0
            proxy._pyroConnection.sock.shutdown(2)  # the connection dies under the stream
            with pytest.raises(errors.ConnectionClosedError):
                next(items)
            assert len(daemon.streaming_responses) == 1    # lingering, not dropped
            proxy._pyroReconnect(tries=3)
            assert list(items) == list(range(1, 10))     # nothing lost, nothing repeated
            assert daemon.streaming_responses == {}


# --- MAX_RETRIES ------------------------------------------------------------------------------------------

@core.expose
class Flaky(object):
    """Counts every run; ``cut_first`` of them lose their connection after doing the work."""

    def __init__(self, cut_first: int) -> None:
        self.runs = 0
        self.cut_first = cut_first
        self.lock = threading.Lock()
        self.release = threading.Event()

    def work(self) -> int:
        with self.lock:
            self.runs += 1
            runs = self.runs
        if runs <= self.cut_first:
            current_context.client.sock.shutdown(2)     # the reply can't go out: the client sees a drop
        return runs

    def fail(self) -> None:
        with self.lock:
            self.runs += 1
        raise ValueError("not a connection problem")

    def hang(self) -> int:
        with self.lock:
            self.runs += 1
        self.release.wait(WAIT)
        return self.runs


RETRY_CASES = [
    # (MAX_RETRIES, connections cut, expected result or error, runs on the server)
    (0, 1, errors.ConnectionClosedError, 1),
    (1, 1, 2, 2),                   # retried once: succeeds, but the work ran twice (docs warn)
    (2, 1, 2, 2),
    (2, 2, 3, 3),
    (2, 3, errors.ConnectionClosedError, 3),    # 1 + MAX_RETRIES attempts, then the error
    (3, 10, errors.ConnectionClosedError, 4),
]


@pytest.mark.parametrize("retries, cuts, expected, runs", RETRY_CASES)
def test_max_retries_on_connection_closed(servertype, serve, retries, cuts, expected, runs):
    config.MAX_RETRIES = retries
    flaky = Flaky(cuts)
    with served(serve, obj=flaky) as (daemon, uri, _):
        with core.Proxy(uri) as proxy:
            assert proxy._pyroMaxRetries == retries
            if isinstance(expected, type):
                with pytest.raises(expected):
                    proxy.work()
            else:
                assert proxy.work() == expected
    assert flaky.runs == runs


def test_max_retries_does_not_retry_remote_errors(servertype, serve):
    config.MAX_RETRIES = 3
    flaky = Flaky(0)
    with served(serve, obj=flaky) as (daemon, uri, _):
        with core.Proxy(uri) as proxy:
            with pytest.raises(ValueError):
                proxy.fail()
    assert flaky.runs == 1


def test_max_retries_on_timeout(serve):
    """A TimeoutError is retried too: the server ends up running the call 1 + MAX_RETRIES times."""
    config.SERVERTYPE = "thread"
    config.MAX_RETRIES = 2
    flaky = Flaky(0)
    with served(serve, obj=flaky) as (daemon, uri, _):
        try:
            with core.Proxy(uri) as proxy:
                proxy._pyroTimeout = 0.2
                with pytest.raises(errors.TimeoutError):
                    proxy.hang()
        finally:
            flaky.release.set()
    assert flaky.runs == 3


def test_max_retries_is_read_when_the_proxy_is_made():
    config.MAX_RETRIES = 4
    proxy = core.Proxy("PYRO:x@127.0.0.1:1")
    config.MAX_RETRIES = 0
    assert proxy._pyroMaxRetries == 4


# --- the name server's sql storage across SIGKILL ------------------------------------------------------

@pytest.mark.parametrize("servertype", ["thread", "multiplex"])
def test_name_server_sql_storage_survives_sigkill(tmp_path, servertype):
    storage = "sql:" + str(tmp_path / "names.sqlite")
    server = ChildServer("ns", servertype, storage=storage).start()
    acknowledged = []
    try:
        with core.Proxy(server.uri) as ns:
            for n in range(40):
                ns.register("app.%02d" % n, "PYRO:obj%d@localhost:%d" % (n, 5000 + n), metadata={"n%d" % (n % 3)})
                acknowledged.append(n)      # the call returned: the registration is acknowledged
        server.kill()
        server = ChildServer("ns", servertype, port=server.port, storage=storage).start()
        with core.Proxy(server.uri) as ns:
            names = ns.list(prefix="app.", return_metadata=True)
        assert sorted(names) == ["app.%02d" % n for n in acknowledged]
        assert names["app.07"] == ("PYRO:obj7@localhost:5007", ["n1"])
    finally:
        server.stop()
