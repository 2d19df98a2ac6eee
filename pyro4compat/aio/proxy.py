"""``pyro4compat.aio.Proxy``: awaitable remote calls over Pyro4's protocol 48.

Theory of operation
-------------------
A proxy belongs to the event loop it first connects on; all of its state is touched only by
coroutines on that loop, so it needs no thread lock. ``_connect_lock`` (an ``asyncio.Lock``)
makes concurrent first calls share one connection attempt.

Concurrency choice: **one connection, pipelined.** Many tasks may await calls on one proxy at
once. Each call takes the next sequence number, writes its whole request to the transport
without awaiting in between (so requests never interleave) and awaits its own reply future.
Daemons answer one connection's requests in order (Pyro4 4.82's servers and ours), so replies
are matched first-in-first-out and checked by sequence number (:mod:`._stream`). A call never
waits for another call's round trip, only for the daemon to get to it. Compared with a pool of
connections this keeps Pyro4's "one proxy, one connection" footprint on the daemon (a thread
server gives each connection a worker); a task that needs calls to *run* in parallel on the
server uses more proxies.

Cancellation: a request is either written whole or not at all. A cancelled caller (or one
whose ``asyncio.wait_for`` expired) leaves its reply future behind; the stream reads that reply
off and drops it when it comes, so the next call gets its own. ``_pyroTimeout`` is different:
as in the synchronous proxy, a call past it raises Pyro's ``TimeoutError`` and the connection is
released (the daemon may be stuck); calls still waiting on it get ``ConnectionClosedError`` and
are retried like any other (``_pyroMaxRetries``).

The call context is thread-local, and every task on a loop shares the thread: a call reads
``current_context.annotations``/``correlation_id`` synchronously when it is made (before its
first ``await``), so "set, then await the call" works per task. ``response_annotations`` is
set when a reply arrives; with concurrent tasks use the ``_pyroResponseAnnotations`` hook.

Autoproxy: a daemon sends a registered Pyro object as a proxy (``Pyro4.core.Proxy`` on the wire),
which every serializer revives as a ``core.Proxy``, a blocking proxy. A call's result that *is*
such a proxy (a plain result, a batch result, a remote iterator's item) is handed over as an
``aio.Proxy`` with the same state, so the object it names is awaited like everything else here;
proxies inside containers stay ``core.Proxy`` (no walk over every result), ``aio.Proxy(p)``
wraps one. An ``aio.Proxy`` is pickled and copied with the same state as a ``core.Proxy``, and
comes back unconnected.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

from .. import constants, errors
from .._client.calls import batch_results
from .._client.connect import (client_ssl_context, connect_failed, connect_request, decode_connect_reply,
                               metadata_sets, split_connect_reply)
from .._client.blob import SerializedBlob
from .._client.proxy import Proxy as CoreProxy
from .._client.proxy import blob_payload, prepare_reply, request_annotations, stream_id_of
from .._protocol import hmac_key_bytes
from .._serializers import get_serializer
from .._uri import URI
from ..configuration import config
from ..message import (FLAGS_BATCH, FLAGS_COMPRESSED, FLAGS_EXCEPTION, FLAGS_ITEMSTREAMRESULT, FLAGS_ONEWAY,
                       MSG_CONNECTFAIL, MSG_CONNECTOK, MSG_INVOKE, MSG_RESULT, Message, log_wiredata)
from ._stream import ClientStream, reply_problem

__all__ = ["Proxy", "BatchProxy", "RemoteIterator"]

log = logging.getLogger("Pyro4.core")

RECONNECT_DELAY = 2.0
CLOSE_WAIT = 2.0  # seconds async with waits for a released connection to close
_CONNECT_REPLIES = (MSG_CONNECTOK, MSG_CONNECTFAIL)
_RESULT_REPLIES = (MSG_RESULT,)


async def _with_timeout(awaitable: Any, timeout: Optional[float], text: str) -> Any:
    """Await with Pyro's ``TimeoutError`` (not asyncio's) past ``timeout`` seconds (0/None: no limit)."""
    if not timeout:
        return await awaitable
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        raise errors.TimeoutError(text) from None


class _RemoteName:
    """``proxy.name``: call it for a method (``await proxy.name(...)``), await it for an attribute."""

    __slots__ = ("_proxy", "_name")

    def __init__(self, proxy: "Proxy", name: str) -> None:
        self._proxy = proxy
        self._name = name

    def __getattr__(self, name: str) -> "_RemoteName":
        return _RemoteName(self._proxy, "%s.%s" % (self._name, name))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._proxy._pyroCall(self._name, args, kwargs)

    def __await__(self) -> Any:
        return self._proxy._pyroGetAttr(self._name).__await__()


class Proxy:
    """An awaitable stand-in for a remote object (``PYRO:``, ``PYRONAME:`` or ``PYROMETA:`` URI).

    ``await proxy.method(...)`` calls a method; ``await proxy.attr`` or ``await
    proxy._pyroGetAttr("attr")`` reads a remote attribute and ``await proxy._pyroSetAttr("attr",
    value)`` writes one (Python has no awaitable assignment). Use ``async with`` to release it.
    ``uri`` may also be a ``core.Proxy``: the new proxy takes over its state (not its connection).
    """

    def __init__(self, uri: Any) -> None:
        source = None
        if isinstance(uri, CoreProxy):
            source, uri = uri, uri._pyroUri
        if isinstance(uri, str):
            uri = URI(uri)
        elif not isinstance(uri, URI):
            raise TypeError("expected Pyro URI")
        self._pyroUri: URI = uri
        self._pyroConnection: Optional[ClientStream] = None
        self._pyroSerializer: Optional[str] = None
        self._pyroMethods: Set[str] = set()
        self._pyroAttrs: Set[str] = set()
        self._pyroOneway: Set[str] = set()
        self._pyroSeq = 0
        self._pyroRawWireResponse = False
        self._pyroHandshake: Any = "hello"
        self._pyroMaxRetries: int = config.MAX_RETRIES
        self._pyroTimeout: Optional[float] = config.COMMTIMEOUT
        self.__hmac_key: Optional[bytes] = None
        self._connect_lock: Optional[asyncio.Lock] = None
        get_serializer(config.SERIALIZER)  # fail now, not on the first call, if it is unavailable
        if source is not None:
            self._adopt_state(source.__getstate__(), keep_limits=True)

    @property
    def _pyroHmacKey(self) -> Optional[bytes]:
        return self.__hmac_key

    @_pyroHmacKey.setter
    def _pyroHmacKey(self, value: Any) -> None:
        self.__hmac_key = hmac_key_bytes(value)

    def __getattr__(self, name: str) -> _RemoteName:
        if name.startswith("_pyro") or name.startswith("__"):
            raise AttributeError(name)
        return _RemoteName(self, name)

    def __repr__(self) -> str:
        state = "connected" if self._pyroConnection is not None and self._pyroConnection.usable else "not connected"
        return "<%s.%s at 0x%x; %s; for %s>" % (type(self).__module__, type(self).__name__, id(self), state,
                                                 self._pyroUri)

    async def __aenter__(self) -> "Proxy":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._pyroReleaseAndWait()

    async def _pyroReleaseAndWait(self, timeout: float = CLOSE_WAIT) -> None:
        """``_pyroRelease``, then wait (at most ``timeout`` s) until the socket is closed, TLS goodbye included."""
        conn = self._pyroConnection
        self._pyroRelease()
        if conn is not None:
            await conn.wait_closed(timeout)

    def __copy__(self) -> "Proxy":
        """An unconnected proxy with this one's settings (``copy.copy``), as ``core.Proxy`` copies."""
        duplicate = type(self)(self._pyroUri)
        duplicate._adopt_state(self.__getstate__(), keep_limits=True)
        duplicate._pyroRawWireResponse = self._pyroRawWireResponse
        return duplicate

    def __getstate__(self) -> tuple:
        """``core.Proxy``'s state tuple: uri, oneway, methods, attrs, timeout, hmac key, handshake,
        max retries, serializer (so pickles of both proxies carry the same settings)."""
        return (self._pyroUri, self._pyroOneway, self._pyroMethods, self._pyroAttrs, self._pyroTimeout,
                self._pyroHmacKey, self._pyroHandshake, self._pyroMaxRetries, self._pyroSerializer)

    def __setstate__(self, state: tuple) -> None:
        """Unpickling: an unconnected proxy; timeout and retries come from the local config, as in core."""
        Proxy.__init__(self, state[0])
        self._adopt_state(state, keep_limits=False)

    def _adopt_state(self, state: tuple, keep_limits: bool) -> None:
        """Take the settings of a ``__getstate__`` tuple (ours or a ``core.Proxy``'s); the URI is set already."""
        (_, oneway, methods, attrs, timeout, self._pyroHmacKey, self._pyroHandshake, max_retries) = state[:8]
        self._pyroOneway, self._pyroMethods, self._pyroAttrs = set(oneway), set(methods), set(attrs)
        self._pyroSerializer = state[8] if len(state) > 8 else None
        if keep_limits:
            self._pyroTimeout, self._pyroMaxRetries = timeout, max_retries

    # --- hooks users override (same names as core.Proxy) -------------------------------------

    def _pyroAnnotations(self) -> Dict[str, bytes]:
        """Extra annotations for every request."""
        return {}

    def _pyroResponseAnnotations(self, annotations: Dict[str, bytes], msgtype: int) -> None:
        """Called with the annotations of every response (the handshake's too)."""

    def _pyroValidateHandshake(self, response: Any) -> None:
        """Check the daemon's handshake reply; raise to refuse the connection."""

    # --- connection management ---------------------------------------------------------------

    def _pyroRelease(self) -> None:
        """Close the connection now (plain method: closing never waits); the next call reconnects."""
        conn, self._pyroConnection = self._pyroConnection, None
        if conn is not None:
            conn.close()
            log.debug("connection released")

    async def _pyroBind(self) -> bool:
        """Connect now and pin the proxy to the resolved ``PYRO:`` URI; True if newly connected."""
        return await self._pyroConnect(replace_uri=True)

    async def _pyroReconnect(self, tries: int = 100000000) -> None:
        """Drop the connection and reconnect (every 2 s) until it works or ``tries`` run out."""
        self._pyroRelease()
        while tries:
            try:
                await self._pyroConnect()
                return
            except errors.CommunicationError:
                tries -= 1
                if tries:
                    await asyncio.sleep(RECONNECT_DELAY)
        log.error("failed to reconnect")
        raise errors.ConnectionClosedError("failed to reconnect")

    async def _pyroConnect(self, replace_uri: bool = False) -> bool:
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:
            conn = self._pyroConnection
            if conn is not None and conn.usable:
                return False
            self._pyroConnection = None
            from .naming import resolve  # naming builds proxies of this module: the one upward import
            uri = await resolve(self._pyroUri, self._pyroHmacKey)
            annotations = self._request_annotations()
            conn, response, metadata, reply_annotations = await _with_timeout(
                self._open(uri, annotations), self._pyroTimeout, "connecting: timeout")
            try:
                if metadata is not None:
                    self._process_metadata(metadata)
                self._pyroValidateHandshake(response)
                if reply_annotations:
                    self._pyroResponseAnnotations(reply_annotations, MSG_CONNECTOK)
            except BaseException:
                conn.close()  # refused by us: never used
                raise
            conn.objectId = uri.object
            self._pyroConnection = conn
            if replace_uri:
                self._pyroUri = uri
        if config.METADATA and not self._pyroMethods and not self._pyroAttrs:
            await self._pyroGetMetadata(uri.object)
        return True

    async def _open(self, uri: URI, annotations: Dict[str, bytes]) -> Tuple[ClientStream, Any, Any, Dict[str, bytes]]:
        """Open the socket (TLS when configured) and complete the CONNECT handshake."""
        location = uri.sockname or (uri.host, uri.port)
        loop = asyncio.get_running_loop()
        hmac_key = self._pyroHmacKey
        conn: Optional[ClientStream] = None
        try:
            ssl_context = client_ssl_context()
            if uri.sockname:
                _, conn = await loop.create_unix_connection(lambda: ClientStream(hmac_key), uri.sockname,
                                                            ssl=ssl_context,
                                                            server_hostname="" if ssl_context else None)
            else:
                _, conn = await loop.create_connection(lambda: ClientStream(hmac_key), uri.host, uri.port,
                                                       ssl=ssl_context)
            serializer = get_serializer(self._pyroSerializer or config.SERIALIZER)
            msg = connect_request(uri, serializer, self._pyroHandshake, hmac_key, self._pyroSeq, annotations)
            future = conn.expect(self._pyroSeq)  # type: ignore[union-attr]
            msg.send(conn)
            reply = await future
            problem = reply_problem(reply, _CONNECT_REPLIES, hmac_key)
            if problem is not None:
                raise problem
            response = decode_connect_reply(reply)
        except Exception as exc:
            if conn is not None:
                conn.close()
            failure = connect_failed(exc, location)
            if failure is exc:
                raise
            raise failure from exc
        except BaseException:   # cancelled while connecting
            if conn is not None:
                conn.close()
            raise
        try:
            response, metadata = split_connect_reply(reply, response, location)
        except errors.PyroError:
            conn.close()
            raise
        log.debug("connected to %s", uri)
        return conn, response, metadata, reply.annotations

    # --- metadata ------------------------------------------------------------------------------

    async def _pyroGetMetadata(self, objectId: Optional[str] = None) -> None:
        """Ask the daemon for the object's methods, oneway methods and attributes."""
        objectId = objectId or self._pyroUri.object
        result = await self._pyroInvoke("get_metadata", [objectId], {}, objectId=constants.DAEMON_NAME)
        self._process_metadata(result)

    def _process_metadata(self, metadata: Any) -> None:
        if metadata:
            self._pyroOneway, self._pyroMethods, self._pyroAttrs = metadata_sets(metadata)

    async def _ensure_metadata(self) -> None:
        if self._pyroConnection is None or not self._pyroConnection.usable:
            await self._pyroConnect()
        elif config.METADATA and not self._pyroMethods and not self._pyroAttrs:
            await self._pyroGetMetadata()

    # --- calls ---------------------------------------------------------------------------------

    async def _pyroCall(self, name: str, args: tuple, kwargs: dict) -> Any:
        """A method call with ``_pyroMaxRetries`` retries on lost connections, as core's _RemoteMethod."""
        annotations = self._request_annotations()  # now, before any await: this task's context
        for attempt in range(self._pyroMaxRetries + 1):
            try:
                await self._ensure_metadata()
                if config.METADATA and name not in self._pyroMethods:
                    raise AttributeError("remote object '%s' has no exposed attribute or method '%s'"
                                         % (self._pyroUri, name))
                return await self._pyroInvoke(name, args, kwargs, annotations=dict(annotations))
            except (errors.ConnectionClosedError, errors.TimeoutError):
                if attempt >= self._pyroMaxRetries:
                    raise
        return None  # unreachable

    async def _pyroGetAttr(self, name: str) -> Any:
        """The value of an exposed remote attribute (property)."""
        await self._ensure_metadata()
        if config.METADATA and name not in self._pyroAttrs:
            raise AttributeError("remote object '%s' has no exposed attribute '%s'" % (self._pyroUri, name))
        return await self._pyroInvoke("__getattr__", (name,), None)

    async def _pyroSetAttr(self, name: str, value: Any) -> None:
        """Set an exposed remote attribute (property with a setter)."""
        await self._ensure_metadata()
        if config.METADATA and name not in self._pyroAttrs:
            raise AttributeError("remote object '%s' has no exposed attribute '%s'" % (self._pyroUri, name))
        await self._pyroInvoke("__setattr__", (name, value), None)

    def _pyroBatch(self) -> "BatchProxy":
        """Record calls on the returned object, then ``await batch()`` sends them in one message."""
        return BatchProxy(self)

    def _request_annotations(self) -> Dict[str, bytes]:
        return request_annotations(self._pyroAnnotations)

    async def _pyroInvoke(self, methodname: str, vargs: Any, kwargs: Any, flags: int = 0,
                          objectId: Optional[str] = None, annotations: Optional[Dict[str, bytes]] = None,
                          stream_item: bool = False) -> Any:
        """Send one call and return its result (``None`` for oneway calls, once sent)."""
        if annotations is None:
            annotations = self._request_annotations()
        conn = self._pyroConnection
        if conn is None or not conn.usable:
            await self._pyroConnect()
            conn = self._pyroConnection
        serializer = get_serializer(self._pyroSerializer or config.SERIALIZER)
        if vargs and isinstance(vargs[0], SerializedBlob):
            payload, compressed, flags = blob_payload(serializer, vargs, kwargs, annotations, flags,
                                                      objectId or conn.objectId, methodname)
        else:
            payload, compressed = serializer.serializeCall(objectId or conn.objectId, methodname, vargs, kwargs,
                                                           compress=config.COMPRESSION)
        if compressed:
            flags |= FLAGS_COMPRESSED
        if methodname in self._pyroOneway:
            flags |= FLAGS_ONEWAY
        self._pyroSeq = seq = (self._pyroSeq + 1) & 0xffff
        request = Message(MSG_INVOKE, payload, serializer.serializer_id, flags, seq,
                          annotations=annotations, hmac_key=self._pyroHmacKey)
        if config.LOGWIRE:
            log_wiredata(log, "proxy wiredata sending", request)
        future = None if flags & FLAGS_ONEWAY else conn.expect(seq)  # type: ignore[union-attr]
        try:
            request.send(conn)
        except errors.CommunicationError:
            self._forget(conn)
            raise
        if future is None:
            return None
        del request, payload
        try:
            reply = await _with_timeout(future, self._pyroTimeout, "receiving: timeout")
        except (errors.CommunicationError, errors.ProtocolError):
            self._forget(conn)  # the stream position is unknown now: never reuse it
            raise
        return self._result(reply, serializer, stream_item)

    def _forget(self, conn: Any) -> None:
        conn.close()
        if self._pyroConnection is conn:
            self._pyroConnection = None

    def _result(self, reply: Message, serializer: Any, stream_item: bool) -> Any:
        problem = reply_problem(reply, _RESULT_REPLIES, self._pyroHmacKey)
        if problem is not None:
            self._pyroRelease()
            raise problem
        if config.LOGWIRE:
            log_wiredata(log, "proxy wiredata received", reply)
        serializer = prepare_reply(reply, serializer, self._pyroResponseAnnotations)
        if self._pyroRawWireResponse:
            return reply
        data = serializer.deserializeData(reply.data)
        if reply.flags & FLAGS_ITEMSTREAMRESULT:
            return RemoteIterator(stream_id_of(reply), self)
        if reply.flags & FLAGS_EXCEPTION:
            if stream_item and isinstance(data, StopIteration):
                return _STREAM_END
            raise data
        return _awaitable(data)


def _awaitable(result: Any) -> Any:
    """A result that is a (blocking) ``core.Proxy``, autoproxy's usual product, as an ``aio.Proxy``."""
    return Proxy(result) if isinstance(result, CoreProxy) else result


_STREAM_END = object()


class RemoteIterator:
    """A remote iterator or generator's client end: ``async for item in await proxy.method()``."""

    def __init__(self, streamId: str, proxy: Proxy) -> None:
        self.streamId = streamId
        self.proxy: Optional[Proxy] = proxy

    def __aiter__(self) -> "RemoteIterator":
        return self

    async def __anext__(self) -> Any:
        proxy = self.proxy
        if proxy is None:
            raise StopAsyncIteration
        if proxy._pyroConnection is None:
            raise errors.ConnectionClosedError("the proxy for this stream result has been closed")
        item = await proxy._pyroInvoke("get_next_stream_item", [self.streamId], {},
                                       objectId=constants.DAEMON_NAME, stream_item=True)
        if item is _STREAM_END:
            self.proxy = None  # the server already dropped its end
            raise StopAsyncIteration
        return item

    async def aclose(self) -> None:
        """Tell the server to drop the stream (oneway); the iterator then ends."""
        proxy, self.proxy = self.proxy, None
        if proxy is not None and proxy._pyroConnection is not None:
            await proxy._pyroInvoke("close_stream", [self.streamId], {}, flags=FLAGS_ONEWAY,
                                    objectId=constants.DAEMON_NAME)


class _BatchedCall:
    __slots__ = ("_calls", "_name")

    def __init__(self, calls: List[Tuple[str, tuple, dict]], name: str) -> None:
        self._calls, self._name = calls, name

    def __getattr__(self, name: str) -> "_BatchedCall":
        return _BatchedCall(self._calls, "%s.%s" % (self._name, name))

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self._calls.append((self._name, args, kwargs))


class BatchProxy:
    """Collects calls (``batch.method(...)``, no await), then ``await batch()`` sends them as one message.

    The result iterates over the calls' results and raises where the daemon stopped the batch
    (Pyro4's rule); ``await batch(oneway=True)`` returns None once sent.
    """

    def __init__(self, proxy: Proxy) -> None:
        self.__proxy = proxy
        self.__calls: List[Tuple[str, tuple, dict]] = []

    def __getattr__(self, name: str) -> _BatchedCall:
        if name.startswith("__"):
            raise AttributeError(name)
        return _BatchedCall(self.__calls, name)

    async def __call__(self, oneway: bool = False) -> Optional[Iterator[Any]]:
        calls, self.__calls = self.__calls, []
        proxy = self.__proxy
        await proxy._ensure_metadata()
        results = await proxy._pyroInvoke("<batch>", calls, None, FLAGS_BATCH | (FLAGS_ONEWAY if oneway else 0))
        return None if oneway else map(_awaitable, batch_results(results))

