"""Call objects a proxy hands out: plain, batched, asynchronous, and remote-iterator results.

Each is tied to one proxy and calls back into its ``_pyroInvoke``; none holds a lock of its
own, the proxy's lock serialises them. Asynchronous calls run on a *copy* of the proxy (its
own connection), so they overlap with other calls of the original proxy, as in Pyro4.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from typing import Any, Callable, Iterator, List, Tuple

from .. import constants, errors
from .._serializers.exception_wrapper import _ExceptionWrapper
from ..configuration import config
from ..futures import FutureResult, _submit
from ..message import FLAGS_ONEWAY

__all__ = ["_RemoteMethod", "_BatchedRemoteMethod", "_BatchProxyAdapter", "_AsyncRemoteMethod",
           "_StreamResultIterator", "batch", "asyncproxy", "batch_results"]

log = logging.getLogger("Pyro4.core")

NO_FREE_WORKERS = "no free workers"


class _RemoteMethod:
    """``proxy.name(...)``: one remote call, retried on lost connections up to ``max_retries``."""

    __slots__ = ("__send", "__name", "__max_retries")

    def __init__(self, send: Callable[..., Any], name: str, max_retries: int) -> None:
        self.__send = send
        self.__name = name
        self.__max_retries = max_retries

    def __getattr__(self, name: str) -> "_RemoteMethod":
        return _RemoteMethod(self.__send, "%s.%s" % (self.__name, name), self.__max_retries)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        for attempt in range(self.__max_retries + 1):
            try:
                return self.__send(self.__name, args, kwargs)
            except (errors.ConnectionClosedError, errors.TimeoutError):
                if attempt >= self.__max_retries:
                    raise
        return None  # unreachable: the last attempt either returns or raises


class _BatchedRemoteMethod:
    """Records a call in a batch instead of making it."""

    def __init__(self, calls: List[Tuple[str, tuple, dict]], name: str) -> None:
        self.__calls = calls
        self.__name = name

    def __getattr__(self, name: str) -> "_BatchedRemoteMethod":
        return _BatchedRemoteMethod(self.__calls, "%s.%s" % (self.__name, name))

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.__calls.append((self.__name, args, kwargs))


class _BatchProxyAdapter:
    """Collects calls, then sends them all in one message when called itself."""

    def __init__(self, proxy: Any) -> None:
        self.__proxy = proxy
        self.__calls: List[Tuple[str, tuple, dict]] = []

    def __getattr__(self, name: str) -> _BatchedRemoteMethod:
        return _BatchedRemoteMethod(self.__calls, name)

    def __enter__(self) -> "_BatchProxyAdapter":
        return self

    def __exit__(self, *args: Any) -> None:
        pass

    def __copy__(self) -> "_BatchProxyAdapter":
        duplicate = type(self)(self.__proxy)
        duplicate.__calls = list(self.__calls)
        return duplicate

    def __call__(self, oneway: bool = False, asynchronous: bool = False) -> Any:
        if oneway and asynchronous:
            raise errors.PyroError("async oneway calls make no sense")
        if asynchronous:
            # As in Pyro4 the batch runs on a copy, so this adapter keeps its recorded calls;
            # copying here (not in the worker) fixes the batch's contents at the moment of the call.
            return _AsyncRemoteMethod(self.__copy__(), "<asyncbatch>", self.__proxy._pyroMaxRetries)()
        results = self.__proxy._pyroInvokeBatch(self.__calls, oneway)
        self.__calls = []
        if not oneway:
            return batch_results(results)
        return None

    def _pyroInvoke(self, name: str, args: Any, kwargs: Any) -> Any:
        # Used by the asynchronous path: the arguments are ignored, the batch is the call.
        results = self.__proxy._pyroInvokeBatch(self.__calls)
        self.__calls = []
        return batch_results(results)


def batch_results(results: Any) -> Iterator[Any]:
    """A batch's results one by one, raising where the server stopped the batch (Pyro4's rule)."""
    for result in results:
        if isinstance(result, _ExceptionWrapper):
            result.raiseIt()
        else:
            yield result


class _AsyncRemoteMethod:
    """``proxy.name(...)`` on an asynchronous proxy: returns a FutureResult at once."""

    def __init__(self, proxy: Any, name: str, max_retries: int) -> None:
        self.__proxy = proxy
        self.__name = name
        self.__max_retries = max_retries

    def __getattr__(self, name: str) -> "_AsyncRemoteMethod":
        return _AsyncRemoteMethod(self.__proxy, "%s.%s" % (self.__name, name), self.__max_retries)

    def __call__(self, *args: Any, **kwargs: Any) -> FutureResult:
        result = FutureResult()
        _submit(functools.partial(self.__run, result, args, kwargs))
        return result

    def __run(self, result: FutureResult, args: tuple, kwargs: dict) -> None:
        for attempt in range(self.__max_retries + 1):
            try:
                result.value = self.__call_once(args, kwargs)
                return
            except (errors.ConnectionClosedError, errors.TimeoutError) as exc:
                if attempt >= self.__max_retries:
                    result.value = _ExceptionWrapper(exc)
                    return
            except Exception as exc:
                result.value = _ExceptionWrapper(exc)
                return

    def __call_once(self, args: tuple, kwargs: dict) -> Any:
        target = self.__proxy
        if isinstance(target, _BatchProxyAdapter):
            return target._pyroInvoke(self.__name, args, kwargs)
        # A copy has its own connection, so this call does not queue behind the proxy's others.
        with target.__copy__() as proxy:
            _bind_waiting_for_workers(proxy)
            return proxy._pyroInvoke(self.__name, args, kwargs)


def _bind_waiting_for_workers(proxy: Any) -> None:
    """Connect, retrying while a thread-pool daemon answers "no free workers"."""
    delay = 0.1 + random.random() / 5
    while not proxy._pyroConnection:
        try:
            proxy._pyroBind()
        except errors.CommunicationError as exc:
            if NO_FREE_WORKERS not in str(exc):
                raise
            time.sleep(delay)
            delay += 0.4 + random.random() / 2
            if 0 < config.COMMTIMEOUT / 2 < delay:
                raise


class _StreamResultIterator:
    """The client end of a remote iterator: pulls items one call at a time."""

    def __init__(self, streamId: str, proxy: Any) -> None:
        self.streamId = streamId
        self.proxy = proxy
        self.pyroseq = proxy._pyroSeq

    def __iter__(self) -> "_StreamResultIterator":
        return self

    def __next__(self) -> Any:
        if self.proxy is None:
            raise StopIteration
        if self.proxy._pyroConnection is None:
            raise errors.ConnectionClosedError("the proxy for this stream result has been closed")
        self.pyroseq += 1
        try:
            return self.proxy._pyroInvoke("get_next_stream_item", [self.streamId], {},
                                          objectId=constants.DAEMON_NAME)
        except (StopIteration, GeneratorExit):
            self.proxy = None  # the server already dropped its end
            raise

    next = __next__  # the Python 2 spelling Pyro4 kept

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # never raise from garbage collection
            log.debug("could not close remote stream %s", getattr(self, "streamId", "?"), exc_info=True)

    def close(self) -> None:
        """Tell the server to drop the stream (oneway); the iterator then ends."""
        proxy, self.proxy = self.proxy, None
        if proxy is None or proxy._pyroConnection is None:
            return
        if self.pyroseq == proxy._pyroSeq:
            proxy._pyroInvoke("close_stream", [self.streamId], {}, flags=FLAGS_ONEWAY,
                              objectId=constants.DAEMON_NAME)
            return
        # The proxy moved on (we may be running inside GC during another call on it): use a copy.
        try:
            with proxy.__copy__() as closer:
                closer._pyroInvoke("close_stream", [self.streamId], {}, flags=FLAGS_ONEWAY,
                                   objectId=constants.DAEMON_NAME)
        except errors.CommunicationError:
            pass


def batch(proxy: Any) -> _BatchProxyAdapter:
    """A batch adapter for ``proxy`` (same as ``proxy._pyroBatch()``)."""
    return proxy._pyroBatch()


def asyncproxy(proxy: Any, asynchronous: bool = True) -> None:
    """Switch ``proxy`` to asynchronous mode, or back (same as ``proxy._pyroAsync()``)."""
    proxy._pyroAsync(asynchronous)
