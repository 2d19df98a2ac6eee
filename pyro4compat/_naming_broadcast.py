"""The name server's UDP discovery responder (``BroadcastServer``), re-exported by :mod:`.naming`.

Theory of operation
-------------------
Clients that do not know where the name server runs send the datagram ``b"GET_NSURI"`` to
``NS_BCPORT`` (see :mod:`._client.resolve`). The responder answers exactly that datagram with
the name server's URI as ISO-8859-1 text and ignores everything else, so a stray or hostile
packet costs one ``recvfrom`` and nothing more. A URI bound to ``0.0.0.0`` is useless to a
remote client, so the host is replaced by the address of the interface that faces the asker.

It runs either in its own thread (:meth:`BroadcastServer.runInThread`) or inside a daemon's
event loop through ``Daemon.combine(bcserver)`` (the ``transportServer`` adapter). What a
responder binds to and what it answers are plain functions (:func:`open_responder_socket`,
:func:`answer_request`), shared with the asyncio responder of ``pyro4compat.aio``. The socket
has a 2 s timeout, and :meth:`close` wakes a thread blocked in ``recvfrom`` with one datagram
to the loopback address, so stopping never waits for that timeout. ``running`` is the only
state shared with the loop thread: a plain bool written by :meth:`close` and read per round.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any, List, Optional, Tuple

from . import socketutil
from ._uri import URI
from .configuration import config

__all__ = ["BroadcastServer", "NSURI_REQUEST", "open_responder_socket", "answer_request"]

log = logging.getLogger("Pyro4.naming")

NSURI_REQUEST = b"GET_NSURI"
REQUEST_MAX = 100          # bytes read per datagram; a valid request is 9
SOCKET_TIMEOUT = 2.0       # the responder's recvfrom timeout, as in Pyro4
_WAKEUP = b"!"             # sent to ourselves by close(); anything but a request will do
_LOOPBACK = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}


def open_responder_socket(nsUri: Any, bchost: Optional[str], bcport: Optional[int], ipv6: bool,
                          timeout: Optional[float]) -> Tuple[socket.socket, str]:
    """A responder's bound UDP socket and its ``host:port`` text.

    ``bchost``/``bcport`` default to ``NS_BCHOST``/``NS_BCPORT``; the socket is IPv6 when the name
    server's URI (or ``ipv6``) is, since a client asks on the name server's IP version.
    ``timeout=0`` makes it non-blocking (for an event loop).
    """
    if bcport is None:
        bcport = config.NS_BCPORT
    if bchost is None:
        bchost = config.NS_BCHOST
    uri_host = URI(nsUri).host or ""
    if ":" in uri_host or ipv6:
        bchost = bchost or "::"
        bind: Tuple[Any, ...] = (bchost, bcport, 0, 0)
    else:
        bind = (bchost, bcport)
    sock = socketutil.createBroadcastSocket(bind, reuseaddr=config.SOCK_REUSE, timeout=timeout)
    sockaddr = sock.getsockname()
    bchost = bchost or sockaddr[0]
    bcport = bcport or sockaddr[1]
    location = ("[%s]:%d" if ":" in bchost else "%s:%d") % (bchost, bcport)
    log.info("ns broadcast server created on %s - %s", location, socketutil.family_str(sock))
    return sock, location


def answer_request(nsUri: Any, data: bytes, asker: str) -> Optional[bytes]:
    """The answer to one datagram from ``asker``: the name server's URI for ``GET_NSURI``, else None.

    A URI on ``0.0.0.0`` gets the address of our interface that faces the asker instead.
    """
    if data != NSURI_REQUEST:
        return None
    uri = URI(nsUri)
    if uri.host == "0.0.0.0":
        try:
            uri.host = socketutil.getInterfaceAddress(asker)
        except OSError:
            pass
    log.debug("responding to broadcast request from %s: interface %s", asker, uri.host)
    return str(uri).encode("iso-8859-1")


class _TransportServerAdapter:
    """What ``Daemon.combine`` needs from a transport: the sockets to watch and an event handler."""

    def __init__(self, bcserver: "BroadcastServer") -> None:
        self.sockets = [bcserver]

    def events(self, eventobjects: List[Any]) -> None:
        for bcserver in eventobjects:
            bcserver.processRequest()


class BroadcastServer:
    """Answers ``GET_NSURI`` datagrams with the name server's URI."""

    TransportServerAdapter = _TransportServerAdapter

    def __init__(self, nsUri: Any, bchost: Optional[str] = None, bcport: Optional[int] = None,
                 ipv6: bool = False) -> None:
        self.transportServer = self.TransportServerAdapter(self)
        self.nsUri = nsUri
        self.sock, self.locationStr = open_responder_socket(nsUri, bchost, bcport, ipv6, SOCKET_TIMEOUT)
        self._sockaddr = self.sock.getsockname()
        self._thread: Optional[threading.Thread] = None
        self.running = True

    def close(self) -> None:
        """Stop the loop (if it runs in its own thread) and release the socket."""
        log.debug("ns broadcast server closing")
        was_running, self.running = self.running, False
        thread = self._thread
        if was_running and thread is not None and thread is not threading.current_thread():
            self._wake_loop()
            thread.join(SOCKET_TIMEOUT + 1.0)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def _wake_loop(self) -> None:
        """Unblock ``recvfrom`` in the loop thread with a datagram it will ignore."""
        family = self.sock.family
        host = self._sockaddr[0]
        if host in ("", "0.0.0.0", "::"):
            host = _LOOPBACK.get(family, host)
        address = (host, self._sockaddr[1]) + tuple(self._sockaddr[2:])
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as waker:
                waker.sendto(_WAKEUP, address)
        except OSError as exc:
            log.debug("could not wake the broadcast loop: %s", exc)

    def getPort(self) -> int:
        return self.sock.getsockname()[1]

    def fileno(self) -> int:
        return self.sock.fileno()

    def runInThread(self) -> threading.Thread:
        """Serve requests in a daemon thread until :meth:`close`; returns that thread."""
        thread = threading.Thread(target=self._request_loop, name="Pyro4-ns-broadcast", daemon=True)
        self._thread = thread
        thread.start()
        log.debug("broadcast server loop running in own thread")
        return thread

    def _request_loop(self) -> None:
        while self.running:
            self.processRequest()
        log.debug("broadcast server loop terminating")

    def processRequest(self) -> None:
        """Read one datagram; answer it if it is a ``GET_NSURI`` request."""
        try:
            data, addr = self.sock.recvfrom(REQUEST_MAX)
        except OSError:  # timeout, or the socket was closed under us
            return
        reply = answer_request(self.nsUri, data, addr[0])
        if reply is None:
            return
        try:
            self.sock.sendto(reply, 0, addr)
        except OSError as exc:
            log.debug("cannot answer broadcast request from %s: %s", addr[0], exc)

    def __enter__(self) -> "BroadcastServer":
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        self.close()
