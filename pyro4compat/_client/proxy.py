"""The client proxy: attribute access on it becomes a remote call.

Theory of operation
-------------------
A proxy connects lazily, on the first call (or ``_pyroBind()``), through :mod:`.connect`,
which also fetches the remote object's metadata (its exposed methods, oneway methods and
attributes) in the handshake. Every call runs under the proxy's one ``RLock``
(``_Proxy__pyroConnLock``): a proxy shared by threads makes their calls one after another on
its single connection, each waiting for its own reply, so sequence numbers and replies can't
interleave. The lock is re-entrant because metadata fetching and stream closing call back
into ``_pyroInvoke`` while it is held.

Any ``CommunicationError`` (or ``KeyboardInterrupt``) in a call releases the connection:
after a failed read the stream position is unknown, and a later call could otherwise read
a stale reply. The next call reconnects. One exception: when sending a request fails because
the daemon closed the connection (EPIPE, ECONNRESET), the reply it may have sent first (a
daemon answers a request over its ``MAX_MESSAGE_SIZE`` on the header, before the body) is read
and its error raised (``MessageTooLargeError``), as HTTP clients honour an early 413.

Configuration is read per call where Pyro4 reads it (``SERIALIZER``, ``COMPRESSION``,
``METADATA``, ``LOGWIRE``) and at construction for ``COMMTIMEOUT`` and ``MAX_RETRIES``.
"""

from __future__ import annotations

import base64
import logging
import marshal
import ssl
import threading
import time
from typing import Any, Callable, Dict, Optional, Set, Union

from .. import constants, errors, socketutil
from .._busypoll import begin_work, end_work
from .._protocol import hmac_key_bytes
from .._context import current_context
from .._serializers import get_serializer, get_serializer_by_id, wirenames
from .._uri import URI
from ..configuration import config
from ..message import (FLAGS_BATCH, FLAGS_COMPRESSED, FLAGS_EXCEPTION, FLAGS_ITEMSTREAMRESULT,
                       FLAGS_KEEPSERIALIZED, FLAGS_ONEWAY, MSG_INVOKE, MSG_RESULT, Message, log_wiredata,
                       plain_message_bytes, read_reply)
from .blob import SerializedBlob
from .calls import _AsyncRemoteMethod, _BatchProxyAdapter, _RemoteMethod, _StreamResultIterator
from .connect import metadata_sets, open_connection

__all__ = ["Proxy"]

log = logging.getLogger("Pyro4.core")

RECONNECT_DELAY = 2.0
_RESULT_TYPES = frozenset([MSG_RESULT])  # what a call's reply may be


class Proxy:
    """A stand-in for a remote object, addressed by a ``PYRO:``, ``PYRONAME:`` or ``PYROMETA:`` URI."""

    __pyroAttributes = frozenset([
        "__getnewargs__", "__getnewargs_ex__", "__getinitargs__", "_pyroConnection", "_pyroUri",
        "_pyroOneway", "_pyroMethods", "_pyroAttrs", "_pyroTimeout", "_pyroSeq", "_pyroHmacKey",
        "_pyroRawWireResponse", "_pyroHandshake", "_pyroMaxRetries", "_pyroSerializer", "_Proxy__async",
        "_Proxy__pyroHmacKey", "_Proxy__pyroTimeout", "_Proxy__pyroConnLock"])

    # instance attributes, set in __init__
    _pyroUri: URI
    _pyroConnection: Any
    _pyroSerializer: Optional[str]
    _pyroMethods: Set[str]
    _pyroAttrs: Set[str]
    _pyroOneway: Set[str]
    _pyroSeq: int
    _pyroRawWireResponse: bool
    _pyroHandshake: Any
    _pyroMaxRetries: int

    def __init__(self, uri: Any, connected_socket: Any = None) -> None:
        if connected_socket:
            uri = URI("PYRO:" + uri + "@<<connected-socket>>:0")
        if isinstance(uri, str):
            uri = URI(uri)
        elif not isinstance(uri, URI):
            raise TypeError("expected Pyro URI")
        # straight into __dict__: these are all proxy-side names, and __setattr__ per name costs
        # a frozenset lookup and a super() call each, on every proxy made
        self.__dict__.update({
            "_pyroUri": uri, "_pyroConnection": None, "_pyroSerializer": None,
            "_pyroMethods": set(), "_pyroAttrs": set(), "_pyroOneway": set(), "_pyroSeq": 0,
            "_pyroRawWireResponse": False, "_pyroHandshake": "hello", "_pyroMaxRetries": config.MAX_RETRIES,
            "_Proxy__pyroHmacKey": None, "_Proxy__pyroTimeout": config.COMMTIMEOUT,
            "_Proxy__pyroConnLock": threading.RLock(), "_Proxy__async": False})
        get_serializer(config.SERIALIZER)  # fail now, not on the first call, if it is unavailable
        current_context.annotations = {}
        current_context.response_annotations = {}
        if connected_socket:
            self.__pyroCreateConnection(False, connected_socket)

    # --- properties ----------------------------------------------------------------------------

    @property
    def _pyroHmacKey(self) -> Optional[bytes]:
        """The HMAC key (bytes) of this proxy; a str is stored utf-8 encoded."""
        return self.__pyroHmacKey

    @_pyroHmacKey.setter
    def _pyroHmacKey(self, value: Any) -> None:
        self.__pyroHmacKey = hmac_key_bytes(value)

    @property
    def _pyroTimeout(self) -> Any:
        """Seconds a call may take (``None``/0: no limit); changes apply to the live socket too."""
        return self.__pyroTimeout

    @_pyroTimeout.setter
    def _pyroTimeout(self, timeout: Any) -> None:
        self.__pyroTimeout = timeout
        if self._pyroConnection is not None:
            self._pyroConnection.timeout = timeout

    # --- attribute protocol --------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        if name in Proxy.__pyroAttributes:
            raise AttributeError(name)  # not set yet: e.g. during unpickling
        if config.METADATA and not self._pyroMethods and not self._pyroAttrs:
            self._pyroGetMetadata()
        if name in self._pyroAttrs:
            return self._pyroInvoke("__getattr__", (name,), None)
        if config.METADATA and name not in self._pyroMethods:
            raise AttributeError("remote object '%s' has no exposed attribute or method '%s'" % (self._pyroUri, name))
        if self.__async:
            return _AsyncRemoteMethod(self, name, self._pyroMaxRetries)
        return _RemoteMethod(self._pyroInvoke, name, self._pyroMaxRetries)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in Proxy.__pyroAttributes:
            return super().__setattr__(name, value)
        if config.METADATA and not self._pyroMethods and not self._pyroAttrs:
            self._pyroGetMetadata()
        if name in self._pyroAttrs:
            self._pyroInvoke("__setattr__", (name, value), None)
            return None
        if config.METADATA:
            raise AttributeError("remote object '%s' has no exposed attribute '%s'" % (self._pyroUri, name))
        return super().__setattr__(name, value)

    def __dir__(self) -> list:
        names = set(dir(type(self))) | set(self.__dict__)
        return sorted(names | self._pyroMethods | self._pyroAttrs)

    def __repr__(self) -> str:
        connected = "connected " + self._pyroConnection.family() if self._pyroConnection else "not connected"
        module = "Pyro4.core" if type(self) is Proxy else type(self).__module__
        return "<%s.%s at 0x%x; %s; for %s>" % (module, type(self).__name__, id(self), connected, self._pyroUri)

    def __del__(self) -> None:
        if "_pyroConnection" in self.__dict__:
            self._pyroRelease()

    def __enter__(self) -> "Proxy":
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        self._pyroRelease()

    def __eq__(self, other: Any) -> bool:
        return other is self or (isinstance(other, Proxy) and other._pyroUri == self._pyroUri)

    def __ne__(self, other: Any) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(self._pyroUri)

    # --- copying and serialization -------------------------------------------------------------

    def __copy__(self) -> "Proxy":
        duplicate = type(self)(URI(self._pyroUri))
        duplicate._pyroOneway = set(self._pyroOneway)
        duplicate._pyroMethods = set(self._pyroMethods)
        duplicate._pyroAttrs = set(self._pyroAttrs)
        duplicate._pyroSerializer = self._pyroSerializer
        duplicate._pyroTimeout = self._pyroTimeout
        duplicate._pyroHandshake = self._pyroHandshake
        duplicate._pyroHmacKey = self._pyroHmacKey
        duplicate._pyroRawWireResponse = self._pyroRawWireResponse
        duplicate._pyroMaxRetries = self._pyroMaxRetries
        duplicate.__async = self.__async
        return duplicate

    def __getstate__(self) -> tuple:
        return (self._pyroUri, self._pyroOneway, self._pyroMethods, self._pyroAttrs, self.__pyroTimeout,
                self._pyroHmacKey, self._pyroHandshake, self._pyroMaxRetries, self._pyroSerializer)

    def __setstate__(self, state: Any) -> None:
        # The sender's timeout and retry count travel for compatibility; local config wins, as in Pyro4.
        (self._pyroUri, self._pyroOneway, self._pyroMethods, self._pyroAttrs, _,
         self._pyroHmacKey, self._pyroHandshake) = state[:7]
        self._pyroSerializer = state[8] if len(state) > 8 else None
        self.__pyroTimeout = config.COMMTIMEOUT
        self._pyroMaxRetries = config.MAX_RETRIES
        self._pyroConnection = None
        self._pyroSeq = 0
        self._pyroRawWireResponse = False
        self.__pyroConnLock = threading.RLock()
        self.__async = False

    def __getstate_for_dict__(self) -> tuple:
        hmac_text = None
        if self._pyroHmacKey is not None:
            hmac_text = "b64:" + base64.b64encode(self._pyroHmacKey).decode("ascii")
        return (self._pyroUri.asString(), tuple(self._pyroOneway), tuple(self._pyroMethods),
                tuple(self._pyroAttrs), self.__pyroTimeout, hmac_text, self._pyroHandshake,
                self._pyroMaxRetries, self._pyroSerializer)

    def __setstate_from_dict__(self, state: Any) -> None:
        if not isinstance(state, (list, tuple)) or len(state) < 8:
            raise errors.SerializeError("invalid serialized proxy state")
        hmac_key = state[5]
        if hmac_key:
            if not isinstance(hmac_key, str) or not hmac_key.startswith("b64:"):
                raise errors.ProtocolError("hmac encoding error")
            hmac_key = base64.b64decode(hmac_key[4:].encode("ascii"))
        serializer = state[8] if len(state) > 8 else None
        self.__setstate__((URI(state[0]), set(state[1]), set(state[2]), set(state[3]), state[4],
                           hmac_key, state[6], state[7], serializer))

    # --- connection management -----------------------------------------------------------------

    def _pyroRelease(self) -> None:
        """Close the connection; the proxy reconnects on its next call."""
        with self.__pyroConnLock:
            conn = self._pyroConnection
            if conn is not None and not conn.keep_open:
                conn.close()
                self._pyroConnection = None
                log.debug("connection released")

    def _pyroBind(self) -> bool:
        """Connect now and pin the proxy to the resolved ``PYRO:`` URI; True if newly connected."""
        return self.__pyroCreateConnection(True)

    def _pyroReconnect(self, tries: int = 100000000) -> None:
        """Drop the connection and retry connecting (every 2 s) until it works or ``tries`` run out."""
        self._pyroRelease()
        while tries:
            try:
                self.__pyroCreateConnection()
                return
            except errors.CommunicationError:
                tries -= 1
                if tries:
                    time.sleep(RECONNECT_DELAY)
        log.error("failed to reconnect")
        raise errors.ConnectionClosedError("failed to reconnect")

    def __pyroCreateConnection(self, replaceUri: bool = False, connected_socket: Any = None) -> bool:
        with self.__pyroConnLock:
            if self._pyroConnection is not None:
                return False
            if connected_socket:
                uri = self._pyroUri
                self._pyroConnection = _existing_connection(connected_socket, uri.object)
            else:
                from .resolve import _resolve  # the one upward import: resolving needs a name server proxy
                uri = _resolve(self._pyroUri, self._pyroHmacKey)
                log.debug("connecting to %s", uri)
                serializer = get_serializer(self._pyroSerializer or config.SERIALIZER)
                made = open_connection(uri, serializer, self._pyroHandshake, self._pyroHmacKey,
                                       self.__pyroTimeout, self._pyroSeq, self.__annotations(clear=False))
                if made.metadata is not None:
                    try:
                        self.__processMetadata(made.metadata)
                    except errors.PyroError:
                        made.connection.close()  # never adopted: nobody else would close it
                        raise
                self._pyroConnection = made.connection
                if replaceUri:
                    self._pyroUri = uri
                try:
                    self._pyroValidateHandshake(made.response)
                except BaseException:
                    self._pyroRelease()  # refused by us: unlike Pyro4, never keep using it
                    raise
                if made.annotations:
                    self._pyroResponseAnnotations(made.annotations, 2)
            if config.METADATA and not self._pyroMethods and not self._pyroAttrs:
                self._pyroGetMetadata(uri.object)
            return True

    # --- metadata ------------------------------------------------------------------------------

    def _pyroGetMetadata(self, objectId: Optional[str] = None, known_metadata: Any = None) -> None:
        """Learn the remote object's methods, oneway methods and attributes (normally from the handshake)."""
        objectId = objectId or self._pyroUri.object
        log.debug("getting metadata for object %s", objectId)
        if self._pyroConnection is None and not known_metadata:
            try:
                self.__pyroCreateConnection()
            except errors.PyroError:
                log.error("problem getting metadata: cannot connect")
                raise
            if self._pyroMethods or self._pyroAttrs:
                return
        try:
            result = known_metadata or self._pyroInvoke("get_metadata", [objectId], {},
                                                        objectId=constants.DAEMON_NAME)
            self.__processMetadata(result)
        except errors.PyroError:
            log.exception("problem getting metadata")
            raise

    def __processMetadata(self, metadata: Any) -> None:
        if metadata:
            self._pyroOneway, self._pyroMethods, self._pyroAttrs = metadata_sets(metadata)

    # --- calls ---------------------------------------------------------------------------------

    def _pyroInvoke(self, methodname: str, vargs: Any, kwargs: Any, flags: int = 0,
                    objectId: Optional[str] = None) -> Any:
        """Send one call and return its result (``None`` for oneway calls)."""
        current_context.response_annotations = {}
        with self.__pyroConnLock:
            if self._pyroConnection is None:
                self.__pyroCreateConnection()
            serializer = get_serializer(self._pyroSerializer or config.SERIALIZER)
            objectId = objectId or self._pyroConnection.objectId
            annotations = request_annotations(self._pyroAnnotations)   # (self.__annotations(), inlined)
            if vargs and isinstance(vargs[0], SerializedBlob):
                payload, compressed, flags = blob_payload(serializer, vargs, kwargs, annotations, flags,
                                                          objectId, methodname)
            elif config.COMPRESSION:
                payload, compressed = serializer.serializeCall(objectId, methodname, vargs, kwargs, compress=True)
            else:   # (serializeCall without compression, minus a call)
                payload, compressed = serializer.dumpsCall(objectId, methodname, vargs, kwargs), False
            if compressed:
                flags |= FLAGS_COMPRESSED
            if methodname in self._pyroOneway:
                flags |= FLAGS_ONEWAY
            seq = (self._pyroSeq + 1) & 0xffff
            object.__setattr__(self, "_pyroSeq", seq)   # (no remote-attribute check)
            hmac_key = self.__pyroHmacKey
            request: Union[bytes, Message, None] = plain_message_bytes(
                MSG_INVOKE, payload, serializer.serializer_id, flags, seq, annotations, hmac_key)
            if request is None:
                request = Message(MSG_INVOKE, payload, serializer.serializer_id, flags, seq,
                                  annotations=annotations, hmac_key=hmac_key)
            del payload
            begin_work(None)
            try:
                return self.__exchange(request, flags, hmac_key, serializer)
            except (errors.CommunicationError, KeyboardInterrupt):
                self._pyroRelease()  # the stream position is unknown now: never reuse it
                raise
            finally:
                end_work()

    def __exchange(self, request: Union[bytes, Message], flags: int, hmac_key: Optional[bytes],
                   serializer: Any) -> Any:
        """Send ``request`` (its wire bytes, or the Message for anything unusual), then take the reply."""
        try:
            if type(request) is bytes:
                self._pyroConnection.send(request)
            else:
                if config.LOGWIRE:
                    log_wiredata(log, "proxy wiredata sending", request)
                request.send(self._pyroConnection)
                request.data = b""  # _pyroInvoke still holds the request: let a large payload go now
        except errors.ConnectionClosedError as exc:
            if flags & FLAGS_ONEWAY or not isinstance(exc.__cause__, _SEND_REFUSED):
                raise
            if type(request) is Message:
                request.data = b""
            reply = _early_reply(self._pyroConnection, self._pyroSeq, hmac_key)
            if reply is None:
                raise
            return self.__result(reply, serializer)
        if flags & FLAGS_ONEWAY:
            return None
        del request
        reply = read_reply(self._pyroConnection, _RESULT_TYPES, hmac_key)
        return self.__result(reply, serializer)

    def __result(self, reply: Message, serializer: Any) -> Any:
        """The call's result from its reply (raising the remote exception it carries)."""
        if config.LOGWIRE:
            log_wiredata(log, "proxy wiredata received", reply)
        if reply.seq != self._pyroSeq:
            text = "invoke: reply sequence out of sync, got %d expected %d" % (reply.seq, self._pyroSeq)
            log.error(text)
            raise errors.ProtocolError(text)
        serializer = prepare_reply(reply, serializer, self._pyroResponseAnnotations)
        if self._pyroRawWireResponse:
            return reply
        data = serializer.loads(reply.data)   # (deserializeData: prepare_reply inflated it already)
        if reply.flags & FLAGS_ITEMSTREAMRESULT:
            return _StreamResultIterator(stream_id_of(reply), self)
        if reply.flags & FLAGS_EXCEPTION:
            raise data  # the remote exception; its _pyroTraceback holds the remote traceback
        return data

    def _pyroInvokeBatch(self, calls: Any, oneway: bool = False) -> Any:
        flags = FLAGS_BATCH | (FLAGS_ONEWAY if oneway else 0)
        return self._pyroInvoke("<batch>", calls, None, flags)

    def _pyroBatch(self) -> _BatchProxyAdapter:
        """A batch adapter: record calls on it, then call it to send them in one message."""
        return _BatchProxyAdapter(self)

    def _pyroAsync(self, asynchronous: bool = True) -> None:
        """Switch this proxy (only) to asynchronous calls returning FutureResults, or back."""
        self.__async = asynchronous

    # --- hooks users override ------------------------------------------------------------------

    def _pyroAnnotations(self) -> Dict[str, bytes]:
        """Extra annotations for every request (older style than ``current_context.annotations``)."""
        return {}

    def _pyroResponseAnnotations(self, annotations: Dict[str, bytes], msgtype: int) -> None:
        """Called with the annotations of every response."""

    def _pyroValidateHandshake(self, response: Any) -> None:
        """Check the daemon's handshake reply; raise to refuse the connection."""

    def __annotations(self, clear: bool = True) -> Dict[str, bytes]:
        return request_annotations(self._pyroAnnotations, clear)


def request_annotations(hook: Callable[[], Dict[str, bytes]], clear: bool = True) -> Dict[str, bytes]:
    """A request's annotations: this thread's ``current_context.annotations`` (consumed unless
    ``clear`` is false), its ``correlation_id`` as CORR, and what the proxy's ``_pyroAnnotations``
    hook adds."""
    context = current_context  # one thread-local object, read once
    annotations = context.annotations
    corr = context._correlation_bytes()
    if corr:
        annotations["CORR"] = corr
    elif annotations:
        annotations.pop("CORR", None)
    extra = hook()
    if extra:
        annotations.update(extra)
    if clear:
        context.annotations = {}
    return annotations


def _existing_connection(sock: Any, object_id: str) -> Any:
    if config.SSL and not isinstance(sock, ssl.SSLSocket):
        raise OSError("SSL configured for Pyro but existing socket is not a SSL socket")
    return socketutil.SocketConnection(sock, object_id, True)


def prepare_reply(reply: Message, serializer: Any, response_hook: Callable[[Dict[str, bytes], int], None]) -> Any:
    """Ready a RESULT for decoding; returns the serializer to decode it with.

    Its annotations become ``current_context.response_annotations`` and go to the proxy's
    ``_pyroResponseAnnotations`` hook; the payload is inflated, bounded by ``MAX_MESSAGE_SIZE``
    (a zlib bomb can't inflate here).
    """
    if reply.serializer_id != serializer.serializer_id:
        serializer = _error_reply_serializer(reply, serializer)
    if reply.annotations:
        current_context.response_annotations = reply.annotations
        response_hook(reply.annotations, reply.type)
    if reply.flags & FLAGS_COMPRESSED:
        reply.decompress_if_needed()
    return serializer


def stream_id_of(reply: Message) -> str:
    """The remote iterator id a streamed result carries (ProtocolError when streaming is off)."""
    stream_id = bytes(reply.annotations.get("STRM", b"")).decode()
    if not stream_id:
        raise errors.ProtocolError("result of call is an iterator, but the server is not configured to allow streaming")
    return stream_id


_SEND_REFUSED = (BrokenPipeError, ConnectionResetError)  # the server closed on us mid-request
_EARLY_REPLY_WAIT = 1.0  # seconds to look for an answer the server sent before it closed


def _early_reply(conn: Any, seq: int, hmac_key: Optional[bytes]) -> Optional[Message]:
    """The exception reply a server sent before closing on a request it refused on its header.

    A daemon answers a header over its ``MAX_MESSAGE_SIZE`` at once (``MessageTooLargeError``)
    and may close the connection while the request is still being sent; the answer is then
    waiting in our receive buffer, as an early HTTP 413 is. None when there is no such answer.
    """
    try:
        timeout = conn.getTimeout()
        conn.setTimeout(_EARLY_REPLY_WAIT if timeout is None else min(timeout, _EARLY_REPLY_WAIT))
        reply = Message.recv(conn, _RESULT_TYPES, hmac_key=hmac_key)
    except (errors.PyroError, OSError):
        return None
    if reply.seq != seq or not reply.flags & FLAGS_EXCEPTION:
        return None
    return reply


def _error_reply_serializer(reply: Message, serializer: Any) -> Any:
    """Accept a marshal-encoded error from a daemon that refused our serializer; else Pyro4's error."""
    if reply.flags & FLAGS_EXCEPTION and reply.serializer_id == 3:
        return get_serializer_by_id(3)
    text = "invalid serializer in response: %d" % reply.serializer_id
    log.error(text)
    raise errors.SerializeError(text)


def blob_payload(serializer: Any, vargs: Any, kwargs: Any, annotations: Dict[str, bytes], flags: int,
                 objectId: str, methodname: str):
    """Serialize a SerializedBlob call: the blob's data as the arguments, routing info in BLBI.

    Shared by ``core.Proxy`` and ``aio.Proxy``; adds BLBI to ``annotations`` and returns
    ``(payload, compressed, flags)`` with FLAGS_KEEPSERIALIZED set.
    """
    if len(vargs) > 1 or kwargs:
        raise errors.SerializeError("if SerializedBlob is used, it must be the only argument")
    blob = vargs[0]
    annotations["BLBI"] = marshal.dumps((blob.info, objectId, methodname))
    flags |= FLAGS_KEEPSERIALIZED
    if blob._contains_blob:
        msg = blob._data  # forward the received message's payload untouched
        return msg.data, bool(msg.flags & FLAGS_COMPRESSED), flags
    payload, compressed = serializer.serializeCall(objectId, methodname, blob._data, kwargs,
                                                   compress=config.COMPRESSION)
    return payload, compressed, flags


wirenames.register_wire_class("Pyro4.core.Proxy", Proxy)
