"""``pyro4compat.aio.Daemon``: a ``core.Daemon`` served by an asyncio loop, with ``async def`` methods.

Theory of operation
-------------------
The daemon *is* a ``core.Daemon`` (same constructor, registry, URIs, hooks, dispatch); only its
transport differs: :class:`~pyro4compat.aio.server.AsyncioServer`, which makes the listening
socket in the constructor (so ``register``/``uriFor`` work before serving) and serves it from
``await daemon.serve()`` on the caller's running loop. ``requestLoop()`` runs that on a new
loop in the calling thread, for code (and tests) written against the synchronous API.

Who runs what: the loop reads, frames and writes; each request is dispatched on a worker thread
(plain methods run there, as on the thread server). When dispatch finds an ``async def``
method it calls :meth:`Daemon._pyroRunAsync`, which returns a stand-in that schedules the
coroutine on the serving loop and waits for it; an async generator becomes a remote iterator
whose items are produced on the loop.

The call context: ``pyro4compat.current_context`` is thread-local. A coroutine gets the calling
worker's context in two ways: the loop thread's ``current_context`` is filled in when the
coroutine starts (reliable until its first ``await``, since other tasks on the loop overwrite
it), and :data:`current_context` of this package is a per-task view (a ``contextvars``
variable) that stays right across awaits; use that one in ``async def`` methods.
``response_annotations`` set through either reach the reply.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import threading
from typing import Any, Callable, Dict, Optional, Set, Tuple

from .. import errors
from .._context import _CallContext
from .._context import current_context as _thread_context
from .._server.daemon import Daemon as _CoreDaemon
from .server import AsyncioServer

__all__ = ["Daemon", "current_context"]

_task_context: "contextvars.ContextVar[Optional[_TaskContext]]" = contextvars.ContextVar(
    "pyro4compat_aio_call_context", default=None)


class _TaskContext:
    """A call context owned by one task: ``_CallContext``'s fields and methods, not thread-local."""

    correlation_id = _CallContext.correlation_id
    _set_correlation_bytes = _CallContext._set_correlation_bytes
    _correlation_bytes = _CallContext._correlation_bytes
    _snapshot = _CallContext._snapshot
    _restore = _CallContext._restore
    to_global = _CallContext.to_global
    track_resource = _CallContext.track_resource
    untrack_resource = _CallContext.untrack_resource

    def __init__(self, snapshot: Tuple[Any, ...]) -> None:
        self._restore(snapshot)


class _ContextView:
    """``aio.current_context``: the call context of the running task, else of the running thread."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        return getattr(_task_context.get() or _thread_context, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(_task_context.get() or _thread_context, name, value)


current_context = _ContextView()


def _kind(func: Any) -> int:
    """0: plain, 1: ``async def``, 2: async generator function; looked up once per function."""
    target = getattr(func, "__func__", func)
    try:
        return _KINDS[target]
    except (KeyError, TypeError):
        pass
    kind = 1 if inspect.iscoroutinefunction(target) else 2 if inspect.isasyncgenfunction(target) else 0
    try:
        _KINDS[target] = kind
    except TypeError:
        pass
    return kind


_KINDS: Dict[Any, int] = {}


async def _in_context(coro: Any, snapshot: Tuple[Any, ...], context: _TaskContext, running: Set[Any]) -> Any:
    """Run ``coro`` as its own task with the worker's call context (both forms, see the module).

    ``running`` is the transport's set of calls in progress, which a shutdown lets finish first.
    """
    _task_context.set(context)
    _thread_context._restore(snapshot)
    token = object()
    running.add(token)
    try:
        return await coro
    finally:
        running.discard(token)


class _AsyncGenIterator:
    """A sync iterator over an async generator whose steps run on the loop (a remote iterator)."""

    def __init__(self, agen: Any, loop: asyncio.AbstractEventLoop, transport: AsyncioServer) -> None:
        self._agen, self._loop, self._transport = agen, loop, transport

    def __iter__(self) -> "_AsyncGenIterator":
        return self

    def __next__(self) -> Any:
        try:
            future = asyncio.run_coroutine_threadsafe(self._agen.__anext__(), self._loop)
            with self._transport.blocking():
                return future.result()
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._agen.aclose(), self._loop)


class Daemon(_CoreDaemon):
    """Serves registered objects from an asyncio loop: ``await daemon.serve()`` or ``async with``.

    Same constructor arguments and registry API as ``core.Daemon``; ``SERVERTYPE`` is ignored.
    """

    _transportServerClass = AsyncioServer
    transportServer: Any

    # --- serving --------------------------------------------------------------------------------

    async def serve(self, loopCondition: Callable[[], bool] = lambda: True) -> None:
        """Serve requests on the running loop until :meth:`shutdown` (or ``loopCondition()`` is false)."""
        transport = self.transportServer
        if transport is None:
            raise errors.PyroError("cannot serve a closed daemon")
        self._loop_thread = threading.current_thread()
        try:
            await transport.serve(loopCondition)
        finally:
            self.close()

    def requestLoop(self, loopCondition: Callable[[], bool] = lambda: True) -> None:
        """Serve on a new event loop in this thread (``asyncio.run(daemon.serve())``)."""
        asyncio.run(self.serve(loopCondition))

    def shutdown(self) -> None:
        """Stop serving: new connections are refused now, calls in flight get ``SHUTDOWN_GRACE`` seconds.

        Safe from any thread and from inside a call (an ``async def`` one included). From a thread
        other than the loop's and its workers', it waits until ``serve()`` has returned.
        """
        transport = self.transportServer
        if transport is None:
            return
        self._streams.clear()
        if not transport.begin_shutdown():
            self.close()
            return
        if not transport.on_loop() and not transport.serving_here():
            transport.stopped.wait(transport.grace + 5)

    async def __aenter__(self) -> "Daemon":
        return self.__enter__()

    async def __aexit__(self, *exc_info: Any) -> None:
        self.shutdown()
        self.close()

    # --- async def methods ---------------------------------------------------------------------

    def _pyroRunAsync(self, func: Any) -> Any:  # type: ignore[override]
        """Dispatch's hook: ``func`` itself when plain, else a blocking stand-in that runs it on the loop."""
        kind = _kind(func)
        if not kind:
            return func
        transport = self.transportServer
        loop = transport.evloop if transport is not None else None
        if loop is None:
            raise errors.DaemonError("async method called while the daemon is not being served")
        if kind == 2:
            return lambda *args, **kwargs: _AsyncGenIterator(func(*args, **kwargs), loop, transport)

        @functools.wraps(func)
        def run_on_loop(*args: Any, **kwargs: Any) -> Any:
            snapshot = _thread_context._snapshot()
            context = _TaskContext(snapshot)
            future = asyncio.run_coroutine_threadsafe(_in_context(func(*args, **kwargs), snapshot, context, transport.running), loop)
            with transport.blocking():   # queued work gets another worker meanwhile
                result = future.result()
            _thread_context.response_annotations = context.response_annotations
            return result

        return run_on_loop
