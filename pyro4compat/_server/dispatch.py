"""Request dispatch: one received message in, one reply (or none) out.

Theory of operation
-------------------
A transport server owns the sockets and their threads. For every client it calls
``daemon._handshake(conn)`` once, then ``daemon.handleRequest(conn)`` per incoming message,
on every server type, so a subclass overriding ``handleRequest`` sees every request. Both land
here. The socket servers read without blocking and call the daemon only once a whole message
(or a receive error) is there, left in ``conn._pyroReceived``; :func:`receive_message` takes it
from there. Every exception reply goes out through ``daemon._sendExceptionResponse`` (Pyro4's
name and signature), so an override of that takes effect too. Everything a call needs travels as arguments or in the thread-local
``current_context`` (set here, before user code runs, so the called method can read it).

Locks: none are taken here. Requests of one connection arrive one at a time (the transport
guarantees it), so per-connection state (``conn.pyroInstances``) needs no lock; shared daemon
state is guarded where it lives (object table reads are atomic dict lookups, instances and
streams have their own locks).

Errors: anything a call raises is sent back as an exception reply, except communication
failures (there is nobody to tell) and oneway calls (nobody listens). Communication and
security errors, and errors from ``@callback`` methods, are re-raised so the transport drops
the connection (security) or logs them (callbacks), as Pyro4 does; a payload that does not decode
at all is answered with a SerializeError and the connection kept, as Pyro4 keeps it after its
serializer library's error (``_UNDECODABLE``). Replies are only ever
encoded with a serializer the daemon accepts; before the request's serializer is known, or
when it is not accepted, marshal is used.

Size limits: a message over ``MAX_MESSAGE_SIZE`` is read off and thrown away when it is no
larger than ``_protocol.discard_limit`` allows (:func:`receive_message`, or the socket
servers' frame readers), and answered: ``MessageTooLargeError`` as an exception reply after the
handshake (the connection stays usable), CONNECTFAIL before it. The socket servers answer on
the header, before the body arrived; a larger message is answered too, and then its connection
is closed. A compressed request is inflated here, bounded by ``MAX_MESSAGE_SIZE`` too, so a
zlib bomb gets the same reply instead of costing the daemon its memory.
"""

from __future__ import annotations

import collections
import logging
import marshal
import os
import socket
import sys
import threading
import uuid
from types import MethodType
from typing import Any, Deque, Dict, Optional, Tuple

from .. import constants, errors
from .._client.blob import SerializedBlob
from .._context import current_context
from .._serializers import get_serializer_by_id
from .._serializers.exception_wrapper import _ExceptionWrapper
from .._tracebacks import formatTraceback
from .._workers import WorkerPool, report_uncaught
from ..configuration import config
from ..message import (FLAGS_BATCH, FLAGS_COMPRESSED, FLAGS_EXCEPTION, FLAGS_ITEMSTREAMRESULT,
                       FLAGS_KEEPSERIALIZED, FLAGS_META_ON_CONNECT, FLAGS_ONEWAY, MSG_CONNECT,
                       MSG_CONNECTFAIL, MSG_CONNECTOK, MSG_INVOKE, MSG_PING, MSG_RESULT, Message,
                       _take_received, log_wiredata, plain_message_bytes, read_message)
from .exposure import get_exposed_property_value, getAttribute, lookup_exposed_attribute, set_exposed_property_value
from .streams import is_stream_result

__all__ = ["handshake", "handle_request", "send_exception_reply", "receive_message", "answer_oversized",
           "MARSHAL_ID"]

log = logging.getLogger("Pyro4.core")

MARSHAL_ID = 3  # the serializer of replies sent before the request's own serializer is known
REQUEST_TYPES = (MSG_INVOKE, MSG_PING)
ONEWAY_THREAD_NAME = "oneway-call"  # what threading.current_thread().name says inside a oneway call


# --- receiving, with the daemon's answer to oversized messages --------------------------------------

def receive_message(daemon: Any, conn: Any, required_types: Any) -> Message:
    """``Message.recv`` as the daemon does it: an oversized message is read off, not fatal.

    Raises ``MessageTooLargeError`` (with ``pyroMsg``, the header) when the message is over
    ``MAX_MESSAGE_SIZE``; its bytes have been received and dropped when ``_pyroDiscarded`` is set
    on the error (the stream is still in step), otherwise the caller must close the connection.
    A message the transport already received for ``conn`` (see ``message._take_received``) is
    taken without touching the socket.
    """
    received = _take_received(conn)
    if received is not None:
        return received
    return read_message(conn, required_types, daemon._pyroHmacKey, discard_oversized=True)


def answer_oversized(daemon: Any, conn: Any, exc: errors.MessageTooLargeError) -> None:
    """Reply ``MessageTooLargeError`` to an oversized request; re-raise unless it was read off.

    A transport that reads without blocking knows the header before the body: it has the reply
    sent at once (``_pyroEarly``), also when the body is too large to be read off and the
    connection must close afterwards; the client finds the answer waiting when its send fails.
    """
    msg = getattr(exc, "pyroMsg", None)
    discarded = getattr(exc, "_pyroDiscarded", False)
    if msg is None or not (discarded or getattr(exc, "_pyroEarly", False)):
        raise exc
    if msg.type not in REQUEST_TYPES:
        raise errors.ProtocolError("invalid msg type %d received" % msg.type)
    if not msg.flags & FLAGS_ONEWAY:
        _reply_too_large(daemon, conn, msg.seq, msg.serializer_id, str(exc))
    if not discarded:
        raise exc


def _reply_too_large(daemon: Any, conn: Any, seq: int, serializer_id: int, text: str) -> None:
    reply = errors.MessageTooLargeError(text)  # a fresh one: no received message attached to it
    daemon._sendExceptionResponse(conn, seq, serializer_id, reply, formatTraceback(type(reply), reply, None))


def _inflate(msg: Message) -> None:
    """Decompress a compressed request in place, never beyond ``MAX_MESSAGE_SIZE`` (a zlib bomb)."""
    try:
        msg.decompress_if_needed()
    except errors.MessageTooLargeError as exc:
        raise errors.MessageTooLargeError(str(exc)) from None  # without the pyroMsg attached to exc


_ID_BATCH = 256     # fresh correlation ids drawn from one os.urandom call
_fresh_ids: Deque[bytes] = collections.deque()
# byte 6 carries the UUID version (4), byte 8 the RFC 4122 variant (binary 10)
_VERSION_4 = bytes((value & 0x0F) | 0x40 for value in range(256))
_VARIANT_RFC_4122 = bytes((value & 0x3F) | 0x80 for value in range(256))


def _random_correlation_bytes() -> bytes:
    """16 random bytes shaped as ``uuid.uuid4().bytes``, without building a UUID object.

    They come from ``os.urandom`` like uuid4's, drawn for 256 ids at a time: the system call
    per request was a tenth of a small call's server CPU. (``deque.popleft`` is atomic, so
    threads never share an id; a forked child drops the parent's unused ones.)
    """
    try:
        return _fresh_ids.popleft()
    except IndexError:
        block = bytearray(os.urandom(16 * _ID_BATCH))
        block[6::16] = block[6::16].translate(_VERSION_4)
        block[8::16] = block[8::16].translate(_VARIANT_RFC_4122)
        raw = bytes(block)
        _fresh_ids.extend([raw[start:start + 16] for start in range(16, len(raw), 16)])
        return raw[:16]


def _set_correlation_id(annotations: Dict[str, bytes]) -> None:
    """The request's CORR (or a fresh id) becomes the call's id; the UUID is built only if read."""
    corr = annotations.get("CORR")
    if not corr:
        try:
            fresh = _fresh_ids.popleft()    # (_random_correlation_bytes' usual case, without the call)
        except IndexError:
            fresh = _random_correlation_bytes()
        current_context._set_correlation_bytes(fresh)
        return
    corr = bytes(corr)
    if len(corr) != 16:
        uuid.UUID(bytes=corr)  # raises uuid's own ValueError, as building it eagerly did
    current_context._set_correlation_bytes(corr)


def _send(daemon: Any, conn: Any, msg: Message, what: str) -> None:
    if config.LOGWIRE:
        log_wiredata(log, what, msg)
    msg.send(conn)


def _send_result(daemon: Any, conn: Any, payload: Any, serializer_id: int, flags: int, seq: int) -> None:
    """Send a call's RESULT with the response annotations, then clear those for the next call.

    What ``Message(...).send(conn)`` sends; the usual small reply (no HMAC, no wire logging,
    no size limit in reach) is encoded straight to bytes, without building the Message.
    """
    annotations = daemon._response_annotations()
    current_context.response_annotations = {}
    hmac_key = daemon._pyroHmacKey
    wire = plain_message_bytes(MSG_RESULT, payload, serializer_id, flags, seq, annotations, hmac_key)
    if wire is not None:
        conn.send(wire)
        return
    reply = Message(MSG_RESULT, payload, serializer_id, flags, seq, annotations=annotations, hmac_key=hmac_key)
    _send(daemon, conn, reply, "daemon wiredata sending")


# --- connection handshake ------------------------------------------------------------------------

def handshake(daemon: Any, conn: Any, msg: Optional[Message] = None,
              denied_reason: Optional[str] = None) -> bool:
    """Answer a client's CONNECT with CONNECTOK (and metadata) or CONNECTFAIL; True when accepted."""
    serializer_id, seq = MARSHAL_ID, 0
    try:
        if msg is None:
            msg = receive_message(daemon, conn, [MSG_CONNECT])
        seq = msg.seq
        if denied_reason:
            raise errors.CommunicationError(denied_reason)
        if config.LOGWIRE:
            log_wiredata(log, "daemon handshake received", msg)
        if msg.serializer_id not in daemon._accepted_serializer_ids:
            raise errors.SerializeError("message used serializer that is not accepted: %d" % msg.serializer_id)
        _set_correlation_id(msg.annotations)
        serializer_id = msg.serializer_id
        serializer = get_serializer_by_id(serializer_id)
        _inflate(msg)
        data = serializer.deserializeData(msg.data)
        if not isinstance(data, dict) or "handshake" not in data:
            raise errors.ProtocolError("invalid handshake data")
        response = daemon.validateHandshake(conn, data["handshake"])
        flags = 0
        if msg.flags & FLAGS_META_ON_CONNECT:
            flags = FLAGS_META_ON_CONNECT
            daemon_object = daemon.objectsById[constants.DAEMON_NAME]
            response = {"handshake": response,
                        "meta": daemon_object.get_metadata(data.get("object"), as_lists=True)}
        payload, compressed = serializer.serializeData(response, config.COMPRESSION)
        msg_type = MSG_CONNECTOK
        if compressed:
            flags |= FLAGS_COMPRESSED
    except errors.ConnectionClosedError:
        log.debug("handshake failed, connection closed early")
        return False
    except Exception as exc:
        log.debug("handshake failed, reason:", exc_info=True)
        serializer = get_serializer_by_id(serializer_id)
        payload, compressed = serializer.serializeData(str(exc), False)
        msg_type, flags = MSG_CONNECTFAIL, (FLAGS_COMPRESSED if compressed else 0)
    reply = Message(msg_type, payload, serializer_id, flags, seq,
                    annotations=daemon._response_annotations(), hmac_key=daemon._pyroHmacKey)
    _send(daemon, conn, reply, "daemon handshake response")
    return msg_type == MSG_CONNECTOK


# --- one request ------------------------------------------------------------------------------------

def _blob_call(msg: Message) -> Tuple[str, str, tuple, dict]:
    info = msg.annotations.get("BLBI")
    if info is None:
        raise errors.ProtocolError("blob call without BLBI annotation")
    try:
        blobinfo, object_id, method = marshal.loads(bytes(info))
    except (EOFError, ValueError, TypeError) as exc:
        raise errors.ProtocolError("invalid BLBI annotation: %s" % exc) from None
    return object_id, method, (SerializedBlob(blobinfo, msg, is_blob=True),), {}


def _peer_address(conn: Any) -> Any:
    """The client's address; a SocketConnection asks the OS once, not on every request."""
    try:
        cached = getattr(conn, "peer_address", None)
        return cached() if cached is not None else conn.sock.getpeername()
    except (OSError, AttributeError):
        return None


def _record_context(conn: Any, msg: Message, flags: int) -> None:
    context = current_context
    if context.client is not conn:  # (a thread's next request mostly comes on the same connection)
        context.client = conn
        context.client_sock_addr = _peer_address(conn)  # kept apart from conn: a oneway may outlive the socket
    context.seq = msg.seq
    context.annotations = msg.annotations
    context.msg_flags = flags  # as received (inflating cleared COMPRESSED on msg)
    context.serializer_id = msg.serializer_id


def _run_batch(obj: Any, calls: Any, run_async: Any = None) -> list:
    """Pyro4's batch semantics: stop at the first failing call, which is returned wrapped.

    ``run_async`` is the daemon's ``_pyroRunAsync`` hook (None on the socket servers): through it an
    ``async def`` method in a batch is awaited on the daemon's loop before the next call starts,
    exactly as a single call of it is, so its result (or exception) takes its place in the batch.
    """
    results = []
    for method, vargs, kwargs in calls:
        try:
            func = getAttribute(obj, method)
            if run_async is not None:
                func = run_async(func)
            results.append(func(*vargs, **(kwargs or {})))
        except Exception as exc:
            log.debug("Exception occurred while handling batched request: %s", exc)
            exc._pyroTraceback = formatTraceback(detailed=config.DETAILED_TRACEBACK)
            results.append(_ExceptionWrapper(exc))
            break
    return results


class _OnewayCallThread(threading.Thread):
    """Pyro4's thread for one oneway call, with a copy of the caller's call context.

    Kept for code that reaches ``Pyro4.core._OnewayCallThread``; the daemon itself runs oneway
    calls on a worker pool (:func:`_start_oneway`).
    """

    def __init__(self, target: Any, args: Any, kwargs: Any) -> None:
        super().__init__(target=target, args=args, kwargs=kwargs, name=ONEWAY_THREAD_NAME, daemon=True)
        self.parent_context = current_context.to_global()

    def run(self) -> None:
        current_context.from_global(self.parent_context)
        super().run()


# Oneway calls run on a worker pool of their own (limits as the futures pool's, see
# :mod:`.._workers` for why apart): its workers give up after a short idle time, so a daemon at
# rest has no oneway threads left soon after a burst (Pyro4's per-call threads ended with their
# call). The pool counts each oneway call as busy for the busy-poll gate.
ONEWAY_IDLE_TIMEOUT = 0.1
ONEWAY_SOFT_LIMIT = 32      # runnable workers before queued oneway calls wait for a free one
ONEWAY_HARD_LIMIT = 256     # never more, whatever blocks
ONEWAY_STALL_INTERVAL = 0.1


def _new_oneway_pool() -> WorkerPool:
    return WorkerPool("pyro4compat-oneway", ONEWAY_SOFT_LIMIT, hard_limit=ONEWAY_HARD_LIMIT,
                      idle_timeout=ONEWAY_IDLE_TIMEOUT, one_wakeup=True, counts_busy=True,
                      stall_interval=ONEWAY_STALL_INTERVAL)


_oneway_pool = _new_oneway_pool()


def _fresh_oneway_pool_after_fork() -> None:
    global _oneway_pool
    _oneway_pool = _new_oneway_pool()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_oneway_pool_after_fork)
    os.register_at_fork(after_in_child=_fresh_ids.clear)    # ids the parent may still hand out


def _start_oneway(func: Any, vargs: Any, kwargs: Any) -> None:
    """Run a oneway call concurrently (ONEWAY_THREADED), with a copy of this call's context.

    Pyro4 starts a thread per oneway call; a pool gives the same concurrency (a slow oneway
    never holds up the connection, the pool grows when its workers are all stuck) without the
    cost of a thread start per call. What the call raises goes to ``threading.excepthook``, as
    it did in Pyro4's per-call thread.
    """
    snapshot = current_context._snapshot()

    def run_oneway() -> None:
        worker = threading.current_thread()
        pool_name, worker.name = worker.name, ONEWAY_THREAD_NAME  # the name Pyro4's thread has
        current_context._restore(snapshot)
        try:
            func(*vargs, **kwargs)
        except BaseException:
            report_uncaught()   # while the thread still has that name
        finally:  # the worker serves other work next: don't leave this client in its context
            current_context._restore((None, None, 0, 0, 0, {}, {}, None, None))
            worker.name = pool_name

    _oneway_pool.submit(run_oneway)


def handle_request(daemon: Any, conn: Any, msg: Message) -> None:
    """Execute one INVOKE (or answer one PING) and send the reply, following Pyro4's rules."""
    flags, seq, serializer_id = msg.flags, msg.seq, msg.serializer_id
    callback = [False]  # set by _call once the target method is known
    try:
        _set_correlation_id(msg.annotations)
        if config.LOGWIRE:
            log_wiredata(log, "daemon wiredata received", msg)
        if msg.type == MSG_PING:
            pong = Message(MSG_PING, b"pong", msg.serializer_id, 0, msg.seq,
                           annotations=daemon._response_annotations(), hmac_key=daemon._pyroHmacKey)
            _send(daemon, conn, pong, "daemon wiredata sending")
            return
        if serializer_id not in daemon._accepted_serializer_ids:
            raise errors.SerializeError("message used serializer that is not accepted: %d" % serializer_id)
        serializer = get_serializer_by_id(serializer_id)
        if flags & FLAGS_COMPRESSED:
            try:
                _inflate(msg)
            except errors.MessageTooLargeError as exc:
                if not flags & FLAGS_ONEWAY:
                    _reply_too_large(daemon, conn, seq, serializer_id, str(exc))
                return
        if flags & FLAGS_KEEPSERIALIZED:
            object_id, method, vargs, kwargs = _blob_call(msg)  # the blob keeps msg and its data
        else:
            try:
                object_id, method, vargs, kwargs = serializer.loadsCall(msg.data)   # (inflated above)
            except errors.SerializeError as exc:
                if not str(exc).startswith(_UNDECODABLE):
                    raise
                _handle_failure(daemon, conn, exc, flags, seq, serializer_id)
                return  # the frame was whole and the stream is in step: the connection goes on
            msg.data = b""  # the caller still holds msg: let a large payload go before the call
        _record_context(conn, msg, flags)
        del msg
        outcome = _call(daemon, conn, object_id, method, vargs, kwargs or {}, flags, callback)
        if outcome is _NO_REPLY:
            return
        if outcome is _STREAM:
            _send_stream_reply(daemon, conn, seq, serializer_id, callback[1])
            return
        data, reply_flags = outcome
        if config.COMPRESSION:
            payload, compressed = serializer.serializeData(data, compress=True)
            if compressed:
                reply_flags |= FLAGS_COMPRESSED
        else:
            payload = serializer.dumps(data)    # (serializeData without compression, minus a call)
        _send_result(daemon, conn, payload, serializer_id, reply_flags, seq)
    except Exception as exc:
        _handle_failure(daemon, conn, exc, flags, seq, serializer_id)
        if callback[0] or isinstance(exc, (errors.CommunicationError, errors.SecurityError)):
            raise


# A request payload that does not decode at all ("invalid json data: ...", "invalid call data: ...").
# Pyro4's serializer libraries raise their own errors for it, which Pyro4 answers and then keeps
# serving that connection; we answer with a SerializeError and keep it too. A payload that decodes
# but is refused (a class it names, a dunder) still closes the connection, as in Pyro4.
_UNDECODABLE = "invalid "

_NO_REPLY = object()
_STREAM = object()
# exact types of results that can't be iterators: no need to ask is_stream_result
_PLAIN_RESULTS = frozenset({type(None), bool, int, float, complex, str, bytes, bytearray,
                            list, tuple, dict, set, frozenset})


def _call(daemon: Any, conn: Any, object_id: str, method: str, vargs: Any, kwargs: dict,
          flags: int, callback: list) -> Any:
    """Run the requested method; returns ``(data, reply_flags)``, ``_NO_REPLY`` or ``_STREAM``."""
    obj = daemon.objectsById.get(object_id)
    if obj is None:
        log.debug("unknown object requested: %s", object_id)
        raise errors.DaemonError("unknown object")
    if isinstance(obj, type):
        obj = daemon._getInstance(obj, conn)
    if flags & FLAGS_BATCH:
        data = _run_batch(obj, vargs, daemon._pyroRunAsync)
        return _NO_REPLY if flags & FLAGS_ONEWAY else (data, FLAGS_BATCH)
    if method == "__getattr__":
        data = get_exposed_property_value(obj, vargs[0], only_exposed=config.REQUIRE_EXPOSE)
    elif method == "__setattr__":
        data = set_exposed_property_value(obj, vargs[0], vargs[1], only_exposed=config.REQUIRE_EXPOSE)
    else:
        func = lookup_exposed_attribute(obj, method, config.REQUIRE_EXPOSE)   # (getAttribute, minus a call)
        if daemon._pyroRunAsync is not None:  # pyro4compat.aio: async def methods run on the daemon's loop
            func = daemon._pyroRunAsync(func)
        if flags & FLAGS_ONEWAY and config.ONEWAY_THREADED:
            _start_oneway(func, vargs, kwargs)
            return _NO_REPLY
        # a bound method passes a missing attribute on to its function, but only after building
        # and dropping an AttributeError: ask the function itself
        callback[0] = getattr(func.__func__ if type(func) is MethodType else func, "_pyroCallback", False)
        data = func(*vargs, **kwargs)
        if not flags & FLAGS_ONEWAY and type(data) not in _PLAIN_RESULTS and is_stream_result(data):
            callback.append(data)
            return _STREAM
    return _NO_REPLY if flags & FLAGS_ONEWAY else (data, 0)


def _send_stream_reply(daemon: Any, conn: Any, seq: int, serializer_id: int, iterator: Any) -> None:
    """Register the stream and tell the client its id (or that streaming is switched off)."""
    annotations = {}
    if config.ITER_STREAMING:
        annotations["STRM"] = daemon._streams.add(conn, iterator).encode()
    exc = errors.ProtocolError("result of call is an iterator")
    daemon._sendExceptionResponse(conn, seq, serializer_id, exc, None,
                                  flags=FLAGS_ITEMSTREAMRESULT, annotations=annotations)


def _handle_failure(daemon: Any, conn: Any, exc: Exception, flags: int, seq: int, serializer_id: int) -> None:
    received = getattr(exc, "pyroMsg", None)
    if received is not None:
        seq, serializer_id = received.seq, received.serializer_id
    if isinstance(exc, errors.ConnectionClosedError):
        return
    if not isinstance(exc, (StopIteration, GeneratorExit)):
        log.debug("Exception occurred while handling request: %r", exc)
    if flags & FLAGS_ONEWAY:
        return
    if isinstance(exc, errors.SerializeError) or not isinstance(exc, errors.CommunicationError):
        tblines = formatTraceback(*sys.exc_info(), detailed=config.DETAILED_TRACEBACK)
        daemon._sendExceptionResponse(conn, seq, serializer_id, exc, tblines)


def send_exception_reply(daemon: Any, conn: Any, seq: int, serializer_id: int, exc: BaseException,
                         tblines: Any, flags: int = 0, annotations: Optional[Dict[str, bytes]] = None) -> None:
    """Send ``exc`` with its traceback lines as an exception RESULT."""
    if serializer_id not in daemon._accepted_serializer_ids:
        serializer_id = MARSHAL_ID
    serializer = get_serializer_by_id(serializer_id)
    exc._pyroTraceback = tblines
    try:
        payload, compressed = serializer.serializeData(exc)
    except Exception as problem:
        text = "Error serializing exception: %s. Original exception: %s: %s" % (problem, type(exc), exc)
        substitute = errors.PyroError(text)
        substitute._pyroTraceback = tblines
        payload, compressed = serializer.serializeData(substitute)
    flags |= FLAGS_EXCEPTION
    if compressed:
        flags |= FLAGS_COMPRESSED
    all_annotations = dict(annotations or {})
    all_annotations.update(daemon.annotations())
    reply = Message(MSG_RESULT, payload, serializer_id, flags, seq,
                    annotations=all_annotations, hmac_key=daemon._pyroHmacKey)
    try:
        _send(daemon, conn, reply, "daemon wiredata sending (error response)")
    except (OSError, socket.error, errors.CommunicationError):
        log.debug("could not send error reply: connection gone")
        raise errors.ConnectionClosedError("could not send error reply") from None
