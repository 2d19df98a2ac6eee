"""Opening a proxy's connection: socket, optional TLS, and the CONNECT handshake.

Kept apart from :mod:`.proxy` so the proxy only decides *when* to connect; this module knows
*how*, and maps every failure to the ``CommunicationError`` texts Pyro4 users match on.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, NamedTuple, Optional, Set, Tuple

from .. import _tunings, errors, socketutil
from .._serializers import get_serializer_by_id
from .._uri import URI
from ..configuration import config
from ..message import (FLAGS_COMPRESSED, FLAGS_META_ON_CONNECT, MSG_CONNECT, MSG_CONNECTFAIL,
                       MSG_CONNECTOK, Message, log_wiredata, read_reply)

__all__ = ["Handshake", "open_connection", "client_ssl_context", "connect_request", "decode_connect_reply",
           "split_connect_reply", "metadata_sets", "connect_failed"]

log = logging.getLogger("Pyro4.core")


class Handshake(NamedTuple):
    """What a successful CONNECT produced."""

    connection: Any
    response: Any
    metadata: Optional[Dict[str, Any]]
    annotations: Dict[str, bytes]


def client_ssl_context() -> Any:
    """The process-wide client TLS context, when ``config.SSL`` is on."""
    if not config.SSL:
        return None
    return socketutil.getSSLcontext(clientcert=config.SSL_CLIENTCERT, clientkey=config.SSL_CLIENTKEY,
                                    keypassword=config.SSL_CLIENTKEYPASSWD, cacerts=config.SSL_CACERTS)


def _location(uri: URI) -> Any:
    return uri.sockname or (uri.host, uri.port)


def connect_request(uri: URI, serializer: Any, handshake: Any, hmac_key: Optional[bytes], seq: int,
                    annotations: Dict[str, bytes]) -> Message:
    """The CONNECT message (asking for the object's metadata when ``config.METADATA`` is on)."""
    request: Dict[str, Any] = {"handshake": handshake}
    flags = 0
    if config.METADATA:
        request["object"] = uri.object
        flags = FLAGS_META_ON_CONNECT
    payload, compressed = serializer.serializeData(request, config.COMPRESSION)
    if compressed:
        flags |= FLAGS_COMPRESSED
    msg = Message(MSG_CONNECT, payload, serializer.serializer_id, flags, seq, annotations=annotations, hmac_key=hmac_key)
    if config.LOGWIRE:
        log_wiredata(log, "proxy connect sending", msg)
    return msg


def decode_connect_reply(msg: Message) -> Any:
    """The daemon's CONNECTOK/CONNECTFAIL payload, decoded (``"?"`` when empty)."""
    if config.LOGWIRE:
        log_wiredata(log, "proxy connect response received", msg)
    msg.decompress_if_needed()  # bounded by MAX_MESSAGE_SIZE
    if msg.data:
        return get_serializer_by_id(msg.serializer_id).deserializeData(msg.data)
    return "?"


def split_connect_reply(msg: Message, response: Any, location: Any) -> Tuple[Any, Optional[Dict[str, Any]]]:
    """``(handshake response, metadata or None)``; Pyro4's errors for a refusal or a malformed reply.

    The caller closes the connection when this raises.
    """
    if msg.type == MSG_CONNECTFAIL:
        text = "connection to %s rejected: %s" % (location, response)
        log.error(text)
        raise errors.CommunicationError(text)
    if not msg.flags & FLAGS_META_ON_CONNECT:
        return response, None
    try:
        return response["handshake"], response["meta"]
    except (TypeError, KeyError):
        raise errors.ProtocolError("cannot connect to %s: invalid handshake response" % (location,)) from None


def metadata_sets(metadata: Any) -> Tuple[Set[str], Set[str], Set[str]]:
    """``(oneway, methods, attrs)`` from a daemon's metadata; PyroError when nothing is exposed."""
    oneway, methods, attrs = set(metadata["oneway"]), set(metadata["methods"]), set(metadata["attrs"])
    if not methods and not attrs:
        raise errors.PyroError("remote object doesn't expose any methods or attributes. "
                               "Did you forget setting @expose on them?")
    return oneway, methods, attrs


def connect_failed(exc: Exception, location: Any) -> errors.CommunicationError:
    """What a failure while connecting surfaces as (Pyro4's "cannot connect to ..." text)."""
    text = "cannot connect to %s: %s" % (location, exc)
    log.error(text)
    return exc if isinstance(exc, errors.CommunicationError) else errors.CommunicationError(text)


def open_connection(uri: URI, serializer: Any, handshake: Any, hmac_key: Optional[bytes], timeout: Any,
                    seq: int, annotations: Dict[str, bytes]) -> Handshake:
    """Connect to ``uri``'s daemon and complete the handshake; raises CommunicationError on failure.

    A bad tuning in ``config`` raises its own ValueError first (see :mod:`.._tunings`).
    """
    _tunings.check()
    location = _location(uri)
    conn = None
    try:
        ssl_context = client_ssl_context()
        sock = socketutil.createSocket(connect=location, reuseaddr=config.SOCK_REUSE, timeout=timeout,
                                       nodelay=config.SOCK_NODELAY, sslContext=ssl_context)
        conn = socketutil.SocketConnection(sock, uri.object)
        conn.read_ahead = True  # a reply's header, annotations and small payload in one recv
        connect_request(uri, serializer, handshake, hmac_key, seq, annotations).send(conn)
        msg = read_reply(conn, [MSG_CONNECTOK, MSG_CONNECTFAIL], hmac_key)
        response = decode_connect_reply(msg)
    except Exception as exc:
        if conn is not None:
            conn.close()
        failure = connect_failed(exc, location)
        if failure is exc:
            raise
        raise failure from exc
    try:
        response, metadata = split_connect_reply(msg, response, location)
    except errors.PyroError:
        conn.close()
        raise
    log.debug("connected to %s - %s - %s", uri, conn.family(), "SSL" if config.SSL else "unencrypted")
    return Handshake(conn, response, metadata, msg.annotations)
