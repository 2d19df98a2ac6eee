"""A Pyro name server served from an asyncio loop (no second process needed, e.g. in tests).

Theory of operation
-------------------
:class:`NameServerDaemon` is ``naming.NameServerDaemon`` (storage, registration of the
``NameServer`` object, its protocol-error handling) on ``aio.Daemon``'s transport: by the
method resolution order the asyncio ``serve``/``shutdown`` come from :class:`~.daemon.Daemon`
and everything else from the name server daemon. The name server's methods are plain, so they
run on the daemon's worker threads; the storage backends are used exactly as on the thread
server.

Broadcast discovery: with ``enableBroadcast`` the daemon owns a :class:`BroadcastServer`, the
UDP responder of ``naming.BroadcastServer`` (same binding rules, same answers: the functions of
``pyro4compat._naming_broadcast``) as an ``asyncio.DatagramProtocol``. Its socket is bound in the
constructor, so its port is known before serving, like the daemon's own; ``serve()`` puts it on
the running loop and it closes with the daemon. A datagram is answered right on the loop: the
answer is a string format (plus one ``connect()`` of a UDP socket for a ``0.0.0.0`` URI).
:func:`startNS` decides whether to start one as ``naming.startNS`` does (not for a Unix socket,
not for a name server bound to 127.x).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any, Callable, Optional, Tuple

from .. import naming
from .._naming_broadcast import answer_request, open_responder_socket
from .._uri import URI
from .daemon import Daemon

__all__ = ["NameServerDaemon", "BroadcastServer", "startNS"]

log = logging.getLogger("Pyro4.naming")


class BroadcastServer(asyncio.DatagramProtocol):
    """Answers ``GET_NSURI`` datagrams with the name server's URI, from an event loop.

    The asyncio twin of ``naming.BroadcastServer`` (``nsUri``, ``sock``, ``locationStr``,
    ``getPort()``, ``close()``); ``await start()`` serves it on the running loop.
    """

    def __init__(self, nsUri: Any, bchost: Optional[str] = None, bcport: Optional[int] = None,
                 ipv6: bool = False) -> None:
        self.nsUri = nsUri
        self.sock, self.locationStr = open_responder_socket(nsUri, bchost, bcport, ipv6, timeout=0)
        self._port: int = self.sock.getsockname()[1]
        self._transport: Optional[asyncio.DatagramTransport] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._closed: Optional[asyncio.Future] = None

    def getPort(self) -> int:
        return self._port

    async def start(self) -> None:
        """Serve on the running loop until :meth:`close`."""
        if self._transport is not None or self.sock.fileno() < 0:
            return
        loop = asyncio.get_running_loop()
        self._loop, self._closed = loop, loop.create_future()
        await loop.create_datagram_endpoint(lambda: self, sock=self.sock)

    # --- asyncio.DatagramProtocol -------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self._transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        reply = answer_request(self.nsUri, data, addr[0])
        if reply is not None and self._transport is not None:
            self._transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("ns broadcast server: %s", exc)   # e.g. an ICMP error for an earlier answer

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._transport = None
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    # --- closing -------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop answering and release the socket; safe from any thread."""
        transport, loop = self._transport, self._loop
        if transport is None or loop is None:
            self.sock.close()
            return
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            transport.close()
            return
        try:
            loop.call_soon_threadsafe(transport.close)
        except RuntimeError:   # the loop is closed: nobody will close the transport for us
            self.sock.close()

    async def wait_closed(self) -> None:
        """Wait (on the serving loop) until the socket is really closed after :meth:`close`."""
        if self._closed is not None:
            await self._closed


class NameServerDaemon(Daemon, naming.NameServerDaemon):
    """``naming.NameServerDaemon`` served by ``await daemon.serve()``; same constructor arguments.

    With ``enableBroadcast=True`` it also answers broadcast lookups (``locateNS()`` without a
    host) on ``bchost``/``bcport`` (default ``NS_BCHOST``/``NS_BCPORT``) while it serves; the
    responder is ``daemon.bcserver`` (None without one).
    """

    def __init__(self, host: Optional[str] = None, port: Optional[int] = None, unixsocket: Optional[str] = None,
                 nathost: Optional[str] = None, natport: Optional[int] = None, storage: Any = None, *,
                 enableBroadcast: bool = False, bchost: Optional[str] = None, bcport: Optional[int] = None) -> None:
        self.bcserver: Optional[BroadcastServer] = None
        super().__init__(host, port, unixsocket, nathost=nathost, natport=natport, storage=storage)
        if enableBroadcast:
            self._open_broadcast(bchost, bcport)

    def _open_broadcast(self, bchost: Optional[str], bcport: Optional[int]) -> None:
        """Bind the broadcast responder now (served from ``serve()``); on failure the daemon is closed."""
        try:
            # the internal URI: whoever hears our broadcast is on our side of any NAT
            self.bcserver = BroadcastServer(self.uriFor(self.nameserver, nat=False), bchost, bcport,
                                            ipv6=self.sock.family == socket.AF_INET6)
        except BaseException:
            self.close()
            raise

    async def serve(self, loopCondition: Callable[[], bool] = lambda: True) -> None:
        """Serve the name server (and its broadcast responder) on the running loop until shutdown."""
        bcserver = self.bcserver
        try:
            if bcserver is not None:
                await bcserver.start()
            await super().serve(loopCondition)
        finally:
            self.close()   # as aio.Daemon.serve: serving ends with the daemon (and responder) closed
            if bcserver is not None:
                await bcserver.wait_closed()

    def close(self) -> None:
        """Close the daemon's sockets, storage and broadcast responder."""
        bcserver, self.bcserver = self.bcserver, None
        if bcserver is not None:
            bcserver.close()
        super().close()


def startNS(host: Optional[str] = None, port: Optional[int] = None, unixsocket: Optional[str] = None,
            nathost: Optional[str] = None, natport: Optional[int] = None, storage: Any = None,
            hmac: Any = None, *, enableBroadcast: bool = True, bchost: Optional[str] = None,
            bcport: Optional[int] = None) -> Tuple[URI, NameServerDaemon]:
    """A name server daemon for your loop: ``(nsUri, daemon)``; then ``await daemon.serve()``.

    ``enableBroadcast``, ``bchost`` and ``bcport`` mean what they mean for ``naming.startNS``: a
    broadcast responder (``daemon.bcserver``) is served with the daemon, except for a Unix socket
    or a name server bound to a 127.x address.
    """
    daemon = NameServerDaemon(host, port, unixsocket, nathost=nathost, natport=natport, storage=storage)
    daemon._pyroHmacKey = hmac
    if enableBroadcast and not unixsocket and not daemon.sock.getsockname()[0].startswith("127."):
        daemon._open_broadcast(bchost, bcport)
    return daemon.uriFor(daemon.nameserver), daemon
