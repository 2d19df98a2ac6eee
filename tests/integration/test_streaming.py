"""Remote iterators and generators (item streaming) on both server types.

Covers: streaming items, ``ITER_STREAMING`` off (the clear client error), ``ITER_STREAM_LIFETIME``,
``ITER_STREAM_LINGER`` (resume after reconnecting, or the stream is gone), ``close()`` and garbage
collection closing the remote stream (the daemon's ``streaming_responses`` empties), and what
happens to dict views. Closing is a oneway call (run in its own thread with ONEWAY_THREADED), so
tests wait for the daemon's table with :func:`wait_until`.
"""

from __future__ import annotations

import gc
import threading
from typing import Any

import pytest

import pyro4compat as Pyro4
from pyro4compat import errors
from pyro4compat._server.streams import StreamRegistry
from pyro4compat.configuration import config

from calls_support import daemon_serving, wait_until

pytestmark = pytest.mark.timeout(30)


@Pyro4.expose
class Streamer:
    def __init__(self) -> None:
        self.finished = threading.Event()

    def numbers(self, count: int):
        for i in range(count):
            yield i

    def tracked(self, count: int):
        """A generator that notes when it is closed or finishes."""
        try:
            for i in range(count):
                yield i
        finally:
            self.finished.set()

    def iterator(self):
        return iter([10, 20, 30])

    def key_iterator(self) -> Any:
        return iter({"a": 1, "b": 2}.keys())

    def keys(self) -> Any:
        return {"a": 1, "b": 2}.keys()

    def values(self) -> Any:
        return {"a": 1, "b": 2}.values()

    def items(self) -> Any:
        return {"a": 1, "b": 2}.items()

    def broken(self):
        yield 1
        raise ValueError("generator broke")


@pytest.fixture
def served(servertype, serve):
    streamer = Streamer()
    with daemon_serving({"streamer": streamer}, serve) as (daemon, uris):
        yield daemon, streamer, uris["streamer"]


def test_generators_and_iterators_stream_all_items(served):
    daemon, _, uri = served
    with Pyro4.Proxy(uri) as proxy:
        stream = proxy.numbers(5)
        assert type(stream).__name__ == "_StreamResultIterator"
        assert len(daemon.streaming_responses) == 1
        assert list(stream) == [0, 1, 2, 3, 4]
        assert list(proxy.iterator()) == [10, 20, 30]
        assert list(proxy.key_iterator()) == ["a", "b"]
        assert daemon.streaming_responses == {}  # exhausted streams are dropped at once


def test_error_inside_the_generator_reaches_the_client_and_ends_the_stream(served):
    daemon, _, uri = served
    with Pyro4.Proxy(uri) as proxy:
        stream = proxy.broken()
        assert next(stream) == 1
        with pytest.raises(ValueError, match="generator broke"):
            next(stream)
        assert daemon.streaming_responses == {}
        with pytest.raises(errors.PyroError, match="item stream terminated"):
            next(stream)


def test_close_drops_the_remote_stream(served):
    daemon, streamer, uri = served
    with Pyro4.Proxy(uri) as proxy:
        stream = proxy.tracked(100)
        assert [next(stream), next(stream)] == [0, 1]
        stream.close()
        wait_until(lambda: not daemon.streaming_responses, what="stream closed on the server")
        assert streamer.finished.wait(5)  # the dropped generator was closed (its finally ran)
        with pytest.raises(StopIteration):
            next(stream)  # a closed stream just ends, as in Pyro4
        assert proxy.numbers(1) is not None  # the proxy itself is fine


def test_close_after_the_proxy_moved_on_uses_a_copy(served):
    daemon, _, uri = served
    with Pyro4.Proxy(uri) as proxy:
        first = proxy.numbers(10)
        second = proxy.numbers(10)
        assert next(first) == 0
        assert next(second) == 0  # the proxy's sequence number is past first's now
        first.close()
        wait_until(lambda: len(daemon.streaming_responses) == 1, what="one stream closed")
        assert list(second) == list(range(1, 10))
        assert daemon.streaming_responses == {}


def test_garbage_collection_closes_the_remote_stream(served):
    daemon, _, uri = served
    with Pyro4.Proxy(uri) as proxy:
        stream = proxy.numbers(100)
        assert next(stream) == 0
        del stream
        gc.collect()
        wait_until(lambda: not daemon.streaming_responses, what="stream closed by GC")


def test_streaming_off_gives_the_clear_client_error(served):
    daemon, _, uri = served
    config.ITER_STREAMING = False
    with Pyro4.Proxy(uri) as proxy:
        with pytest.raises(errors.ProtocolError,
                           match="result of call is an iterator, but the server is not configured to allow streaming"):
            proxy.numbers(3)
        assert daemon.streaming_responses == {}


DICT_VIEW_RESULTS = [
    # serializer, method, expected value or exception text (as real Pyro4 4.82 answers)
    ("serpent", "keys", ["a", "b"]),
    ("serpent", "items", [("a", 1), ("b", 2)]),
    ("json", "values", "don't know how to serialize class <class 'dict_values'>"),
    ("marshal", "keys", "don't know how to serialize class <class 'dict_keys'>"),
]


@pytest.mark.parametrize("serializer, method, expected", DICT_VIEW_RESULTS)
def test_dict_views_are_never_streamed(served, serializer, method, expected):
    # Views aren't iterators, so (as in Pyro4) they go to the serializer instead of a stream.
    daemon, _, uri = served
    config.SERIALIZERS_ACCEPTED = {"serpent", "json", "marshal"}
    config.SERIALIZER = serializer
    with Pyro4.Proxy(uri) as proxy:
        if isinstance(expected, str):
            with pytest.raises(errors.SerializeError, match=expected.replace("(", r"\(").replace(")", r"\)")):
                getattr(proxy, method)()
        else:
            assert getattr(proxy, method)() == expected
    assert daemon.streaming_responses == {}


@pytest.mark.parametrize("view", [{}.keys(), {}.values(), {}.items()])
def test_stream_registry_refuses_lazy_dict_views(view):
    with pytest.raises(errors.PyroError, match="won't serialize or stream lazy dict iterators"):
        StreamRegistry().add(object(), view)


def test_stream_lifetime_expires_streams(servertype, serve):
    config.POLLTIMEOUT = 0.05  # housekeeping cadence
    config.ITER_STREAM_LIFETIME = 0.2
    with daemon_serving({"streamer": Streamer()}, serve) as (daemon, uris):
        with Pyro4.Proxy(uris["streamer"]) as proxy:
            stream = proxy.numbers(10)
            assert next(stream) == 0
            wait_until(lambda: not daemon.streaming_responses, what="stream lifetime expiry")
            with pytest.raises(errors.PyroError, match="item stream terminated"):
                next(stream)


def test_stream_resumes_after_reconnect_within_linger_time(served):
    daemon, _, uri = served
    config.ITER_STREAM_LINGER = 30
    with Pyro4.Proxy(uri) as proxy:
        stream = proxy.numbers(5)
        assert [next(stream), next(stream)] == [0, 1]
        proxy._pyroRelease()
        with pytest.raises(errors.ConnectionClosedError, match="proxy for this stream result has been closed"):
            next(stream)
        proxy._pyroReconnect()
        assert list(stream) == [2, 3, 4]
        assert daemon.streaming_responses == {}


@pytest.mark.parametrize("linger", [0, 0.1])
def test_stream_is_dropped_after_disconnect_without_linger(servertype, serve, linger):
    config.POLLTIMEOUT = 0.05
    config.ITER_STREAM_LINGER = linger
    with daemon_serving({"streamer": Streamer()}, serve) as (daemon, uris):
        with Pyro4.Proxy(uris["streamer"]) as proxy:
            stream = proxy.numbers(5)
            assert next(stream) == 0
            proxy._pyroRelease()
            wait_until(lambda: not daemon.streaming_responses, what="stream dropped after disconnect")
            proxy._pyroReconnect()
            with pytest.raises(errors.PyroError, match="item stream terminated"):
                next(stream)


def test_daemon_shutdown_clears_streams(servertype, serve):
    with daemon_serving({"streamer": Streamer()}, serve) as (daemon, uris):
        with Pyro4.Proxy(uris["streamer"]) as proxy:
            stream = proxy.numbers(5)
            assert next(stream) == 0
            assert len(daemon.streaming_responses) == 1
    assert daemon.streaming_responses == {}
