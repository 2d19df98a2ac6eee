"""Opening a proxy's connection: socket, optional TLS, and the CONNECT handshake.

Kept apart from :mod:`.proxy` so the proxy only decides *when* to connect; this module knows
*how*, and maps every failure to the ``CommunicationError`` texts Pyro4 users match on.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, NamedTuple, Optional

from .. import _tunings, errors, socketutil
from .._serializers import get_serializer_by_id
from .._uri import URI
from ..configuration import config
from ..message import (FLAGS_COMPRESSED, FLAGS_META_ON_CONNECT, MSG_CONNECT, MSG_CONNECTFAIL,
                       MSG_CONNECTOK, Message, log_wiredata)

__all__ = ["Handshake", "open_connection", "client_ssl_context"]

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
        request: Dict[str, Any] = {"handshake": handshake}
        flags = 0
        if config.METADATA:
            request["object"] = uri.object
            flags = FLAGS_META_ON_CONNECT
        payload, compressed = serializer.serializeData(request, config.COMPRESSION)
        if compressed:
            flags |= FLAGS_COMPRESSED
        msg = Message(MSG_CONNECT, payload, serializer.serializer_id, flags, seq,
                      annotations=annotations, hmac_key=hmac_key)
        if config.LOGWIRE:
            log_wiredata(log, "proxy connect sending", msg)
        msg.send(conn)
        msg = Message.recv(conn, [MSG_CONNECTOK, MSG_CONNECTFAIL], hmac_key=hmac_key)
        if config.LOGWIRE:
            log_wiredata(log, "proxy connect response received", msg)
        response = "?"
        msg.decompress_if_needed()  # bounded by MAX_MESSAGE_SIZE
        if msg.data:
            response = get_serializer_by_id(msg.serializer_id).deserializeData(msg.data)
    except Exception as exc:
        if conn is not None:
            conn.close()
        text = "cannot connect to %s: %s" % (location, exc)
        log.error(text)
        if isinstance(exc, errors.CommunicationError):
            raise
        raise errors.CommunicationError(text) from exc
    if msg.type == MSG_CONNECTFAIL:
        conn.close()
        text = "connection to %s rejected: %s" % (location, response)
        log.error(text)
        raise errors.CommunicationError(text)
    metadata = None
    if msg.flags & FLAGS_META_ON_CONNECT:
        try:
            metadata, response = response["meta"], response["handshake"]
        except (TypeError, KeyError):
            conn.close()
            raise errors.ProtocolError("cannot connect to %s: invalid handshake response" % (location,)) from None
    log.debug("connected to %s - %s - %s", uri, conn.family(), "SSL" if config.SSL else "unencrypted")
    return Handshake(conn, response, metadata, msg.annotations)
