"""Batched and asynchronous calls against a real daemon, on both server types.

Batches: results in call order, the server stops at the first failing call, ``oneway``,
``asynchronous``, reuse, ``with`` and ``copy``. Asynchronous proxies: ``FutureResult``'s API,
call chains, retries (``MAX_RETRIES``), the "no free workers" reconnect loop, and a bounded
number of client threads under load.
"""

from __future__ import annotations

import copy
import socket
import threading
from typing import Any, List

import pytest

import pyro4compat as Pyro4
from pyro4compat import errors, futures
from pyro4compat.configuration import config
from pyro4compat.socketserver import threadpoolserver

from calls_support import daemon_serving

pytestmark = pytest.mark.timeout(30)


@Pyro4.expose
class Recorder:
    """Remembers the calls it ran, so tests can see where the server stopped a batch."""

    def __init__(self) -> None:
        self.ran: List[Any] = []
        self.lock = threading.Lock()
        self.ran_event = threading.Event()
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.drops = 0

    def add(self, a: int, b: int = 0) -> int:
        with self.lock:
            self.ran.append(("add", a, b))
        self.ran_event.set()
        return a + b

    def fail(self, text: str) -> None:
        with self.lock:
            self.ran.append(("fail", text))
        raise ValueError(text)

    def numbers(self, count: int):
        return (i for i in range(count))

    def wait_for_gate(self) -> str:
        self.entered.set()
        self.gate.wait(10)
        return "through"

    def drop_my_connection(self) -> str:
        """Cut the caller's connection mid-call: it sees ConnectionClosedError."""
        with self.lock:
            self.drops += 1
        Pyro4.current_context.client.sock.shutdown(socket.SHUT_RDWR)
        return "never arrives"


@pytest.fixture
def served(servertype, serve):
    recorder = Recorder()
    with daemon_serving({"recorder": recorder}, serve) as (daemon, uris):
        yield recorder, uris["recorder"]


# --- batches ----------------------------------------------------------------------------------------

def test_batch_results_come_in_call_order(served):
    recorder, uri = served
    with Pyro4.Proxy(uri) as proxy:
        batch = Pyro4.batch(proxy)
        for i in range(5):
            batch.add(i, b=10)
        assert list(batch()) == [10, 11, 12, 13, 14]
    assert [call[1] for call in recorder.ran] == [0, 1, 2, 3, 4]


def test_exception_in_the_middle_stops_the_batch_on_the_server(served):
    recorder, uri = served
    with Pyro4.Proxy(uri) as proxy:
        batch = proxy._pyroBatch()
        batch.add(1, 2)
        batch.fail("second call fails")
        batch.add(3, 4)  # never runs: the server stops at the failure
        results = batch()
        assert next(results) == 3
        with pytest.raises(ValueError, match="second call fails") as info:
            next(results)
        assert "second call fails" in "".join(info.value._pyroTraceback)  # the remote traceback
        with pytest.raises(StopIteration):
            next(results)
    assert recorder.ran == [("add", 1, 2), ("fail", "second call fails")]


def test_oneway_batch_returns_none_and_still_runs(served):
    recorder, uri = served
    with Pyro4.Proxy(uri) as proxy:
        batch = Pyro4.batch(proxy)
        batch.add(20, 22)
        assert batch(oneway=True) is None
        assert recorder.ran_event.wait(5)
        assert recorder.ran == [("add", 20, 22)]


def test_asynchronous_batch_gives_a_future_of_the_result_generator(served):
    recorder, uri = served
    with Pyro4.Proxy(uri) as proxy:
        batch = Pyro4.batch(proxy)
        batch.add(1, 1)
        batch.add(2, 2)
        result = batch(asynchronous=True)
        assert isinstance(result, futures.FutureResult)
        assert result.wait(5) and result.ready
        assert list(result.value) == [2, 4]
        # As in Pyro4 the asynchronous batch runs on a copy: this adapter keeps its calls.
        assert list(batch()) == [2, 4]
        assert list(batch()) == []


def test_oneway_and_asynchronous_together_is_refused(served):
    _, uri = served
    with Pyro4.Proxy(uri) as proxy:
        batch = Pyro4.batch(proxy)
        batch.add(1)
        with pytest.raises(errors.PyroError, match="async oneway calls make no sense"):
            batch(oneway=True, asynchronous=True)


def test_batch_is_reusable_works_with_with_and_copies_independently(served):
    _, uri = served
    with Pyro4.Proxy(uri) as proxy:
        with Pyro4.batch(proxy) as batch:
            batch.add(1)
            assert list(batch()) == [1]
            batch.add(2)  # reuse: only the new calls go out
            batch.add(3)
            duplicate = copy.copy(batch)
            duplicate.add(4)
            assert list(batch()) == [2, 3]
            assert list(duplicate()) == [2, 3, 4]
            assert list(batch()) == []


def test_streams_are_refused_inside_a_batch_as_pyro4_does(served):
    # Pyro4 doesn't stream in batches: the generator reaches the serializer, which refuses it.
    _, uri = served
    with Pyro4.Proxy(uri) as proxy:
        batch = Pyro4.batch(proxy)
        batch.numbers(3)
        with pytest.raises(TypeError, match="don't know how to serialize class <class 'generator'>"):
            list(batch())
        assert proxy.add(1, 1) == 2  # the connection is still fine


# --- asynchronous proxies ---------------------------------------------------------------------------

def test_async_proxy_future_result_api(served, servertype):
    recorder, uri = served
    with Pyro4.Proxy(uri) as proxy:
        Pyro4.asyncproxy(proxy)
        blocked = proxy.wait_for_gate()
        assert isinstance(blocked, futures.FutureResult)
        assert recorder.entered.wait(5)
        assert not blocked.ready
        assert blocked.wait(0.05) is False
        if servertype == "thread":
            # each async call runs on its own connection: not stuck behind the blocked one
            quick = proxy.add(2, 3)
            assert quick.wait(5) is True and quick.value == 5
        recorder.gate.set()
        assert blocked.value == "through" and blocked.ready
        assert blocked.wait(0) is True


def test_async_call_chains_and_iferror(served):
    _, uri = served
    with Pyro4.Proxy(uri) as proxy:
        proxy._pyroAsync()
        chained = proxy.add(1, 2).then(lambda v: v * 10).then(lambda v, extra: v + extra, 7)
        assert chained.value == 37
        seen: List[Exception] = []
        failed = proxy.fail("async boom").iferror(seen.append)
        assert failed.wait(5)
        with pytest.raises(ValueError, match="async boom"):
            _ = failed.value
        assert len(seen) == 1 and isinstance(seen[0], ValueError)
        # a chain whose step makes another remote call (on a sync copy of the proxy)
        sync = copy.copy(proxy)
        sync._pyroAsync(False)
        nested = proxy.add(1, 1).then(lambda v: sync.add(v, 100))
        assert nested.value == 102
        sync._pyroRelease()
        proxy._pyroAsync(False)
        assert proxy.add(4, 4) == 8  # back to synchronous


@pytest.mark.parametrize("max_retries, asynchronous", [(0, False), (2, False), (0, True), (3, True)])
def test_max_retries_on_lost_connections(served, max_retries, asynchronous):
    recorder, uri = served
    config.MAX_RETRIES = max_retries
    with Pyro4.Proxy(uri) as proxy:
        proxy._pyroAsync(asynchronous)
        if asynchronous:
            result = proxy.drop_my_connection()
            assert result.wait(10)
            with pytest.raises(errors.ConnectionClosedError):
                _ = result.value
        else:
            with pytest.raises(errors.ConnectionClosedError):
                proxy.drop_my_connection()
    assert recorder.drops == max_retries + 1


@pytest.fixture
def one_busy_worker(serve, monkeypatch):
    """A thread-pool daemon with one worker, kept busy by a call waiting on ``recorder.gate``.

    With ``NEW_CONNECTION_BACKLOG`` at 0 our server refuses new connections at once when every
    worker is busy, as Pyro4's does (by default it queues a backlog first).
    """
    monkeypatch.setattr(threadpoolserver, "NEW_CONNECTION_BACKLOG", 0)
    config.SERVERTYPE = "thread"
    config.THREADPOOL_SIZE = config.THREADPOOL_SIZE_MIN = 1
    recorder = Recorder()
    with daemon_serving({"recorder": recorder}, serve) as (daemon, uris):
        caller = Pyro4.Proxy(uris["recorder"])
        caller._pyroBind()  # metadata now, while a worker is free (attribute access needs it)
        caller._pyroRelease()
        with copy.copy(caller) as holder:  # has the metadata: its async call connects in the background
            holder._pyroAsync()
            held = holder.wait_for_gate()
            assert recorder.entered.wait(5)
            try:
                yield recorder, caller
            finally:
                caller._pyroRelease()
                recorder.gate.set()
                assert held.value == "through"


def test_async_proxy_retries_while_the_server_has_no_free_workers(one_busy_worker):
    recorder, proxy = one_busy_worker
    with proxy:
        Pyro4.asyncproxy(proxy)
        result = proxy.add(5, 6)
        assert result.wait(0.3) is False  # its copy keeps getting "no free workers" and retries
        recorder.gate.set()  # frees the worker; a later retry gets in
        assert result.wait(10)
        assert result.value == 11


def test_no_free_workers_gives_up_after_half_the_comm_timeout(one_busy_worker):
    recorder, proxy = one_busy_worker
    config.COMMTIMEOUT = 0.4  # read by the retry loop: give up once the delay passes 0.2 s
    with proxy:
        Pyro4.asyncproxy(proxy)
        result = proxy.add(1, 1)
        assert result.wait(10)
        with pytest.raises(errors.CommunicationError, match="no free workers"):
            _ = result.value
    assert recorder.ran == []


def _futures_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith(futures._executor.name))


def test_many_async_calls_on_one_proxy_use_a_bounded_number_of_threads(served, servertype):
    if servertype == "thread":
        config.THREADPOOL_SIZE = 200  # the in-process server must not refuse the copies' connections
    _, uri = served
    peak = [0]
    lock = threading.Lock()

    def note_threads(value: int) -> int:
        with lock:
            peak[0] = max(peak[0], _futures_threads())
        return value

    with Pyro4.Proxy(uri) as proxy:
        Pyro4.asyncproxy(proxy)
        results = [proxy.add(i, 1).then(note_threads) for i in range(200)]
        with lock:
            peak[0] = max(peak[0], _futures_threads())
        assert [r.value for r in results] == [i + 1 for i in range(200)]
    # Pyro4 would have started 200 threads; the shared pool stays near its soft limit.
    assert 1 <= peak[0] <= futures.SOFT_LIMIT + 8, peak[0]
