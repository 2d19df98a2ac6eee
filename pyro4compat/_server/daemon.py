"""The Pyro daemon: object registry, URIs, lifecycle, and the hooks users override.

Theory of operation
-------------------
A ``Daemon`` owns a transport server (thread pool, multiplex or existing connection) chosen
from ``config.SERVERTYPE`` when it is built. The transport owns sockets and threads and calls
back into the daemon: ``_handshake(conn)`` for a new client, ``handleRequest(conn)`` per
message (on every server type, so overriding it works everywhere, as in Pyro4; the socket
servers leave the message they already read in ``conn._pyroReceived``), ``_clientDisconnect(conn)``
when a client goes, ``_housekeeping()`` now and then. Exception replies go out through
``_sendExceptionResponse``, which subclasses may override as well.
Request handling itself lives in :mod:`.dispatch`.

Shared state and its guards: ``objectsById`` is a dict changed by ``register``/``unregister``
and read per request (single dict operations are atomic in CPython); singleton instances
and remote-iterator streams have their own locks (:mod:`.instances`, :mod:`.streams`);
``housekeeper_lock`` keeps housekeeping runs from overlapping. ``shutdown()`` may be called
from any thread, including from inside a remote call served by this daemon.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
import uuid
from typing import Any, Callable, Dict, Optional

from .. import _tunings, constants, errors, socketutil
from .._protocol import hmac_key_bytes
from .._client.proxy import Proxy
from .._client.resolve import _locateNS
from .._context import current_context
from .._serializers import _serializers, get_serializer
from .._serializers import wirenames
from .._uri import URI
from ..configuration import config
from ..socketserver.existingconnectionserver import SocketServer_ExistingConnection
from ..socketserver.multiplexserver import SocketServer_Multiplex
from ..socketserver.threadpoolserver import SocketServer_Threadpool
from . import dispatch
from .autoproxy import pyroObjectToAutoProxy
from .daemon_object import DaemonObject
from .exposure import forget_class_lookups, get_exposed_members, reset_exposed_members
from .instances import InstanceFactory
from .streams import StreamRegistry

__all__ = ["Daemon"]

log = logging.getLogger("Pyro4.core")

TRANSPORTS = {"thread": SocketServer_Threadpool, "multiplex": SocketServer_Multiplex}


def _check_nat(host: Any, unixsocket: Any, nathost: Any, natport: Any):
    if host is None:
        host = config.HOST
    if nathost is None:
        nathost = config.NATHOST
    if natport is None and nathost is not None:
        natport = config.NATPORT
    if nathost and unixsocket:
        raise ValueError("cannot use nathost together with unixsocket")
    if (nathost is None) ^ (natport is None):
        raise ValueError("must provide natport with nathost")
    return host, nathost, natport


class Daemon:
    """Serves registered objects to remote proxies."""

    _transportServerClass: Optional[type] = None  # a subclass's own transport (pyro4compat.aio.Daemon)
    _pyroRunAsync: Optional[Callable[[Any], Any]] = None  # wraps async def methods (pyro4compat.aio.Daemon)

    def __init__(self, host: Optional[str] = None, port: int = 0, unixsocket: Optional[str] = None,
                 nathost: Optional[str] = None, natport: Optional[int] = None,
                 interface: type = DaemonObject, connected_socket: Any = None) -> None:
        if connected_socket:
            nathost = natport = None
        else:
            host, nathost, natport = _check_nat(host, unixsocket, nathost, natport)
        self.__mustshutdown = threading.Event()
        self.__mustshutdown.set()
        self.__loopstopped = threading.Event()
        self.__loopstopped.set()
        # Checked before any socket exists, so a bad setting leaks nothing.
        _tunings.check()
        self._accepted_serializer_ids = frozenset(
            get_serializer(name).serializer_id for name in config.SERIALIZERS_ACCEPTED)
        if connected_socket:
            self.transportServer = SocketServer_ExistingConnection()
            self.transportServer.init(self, connected_socket)
        else:
            transport = self._transportServerClass or TRANSPORTS.get(config.SERVERTYPE)
            if transport is None:
                raise errors.PyroError("invalid server type '%s'" % config.SERVERTYPE)
            self.transportServer = transport()
            self.transportServer.init(self, host, port, unixsocket)
        self.locationStr = self.transportServer.locationStr
        log.debug("daemon created on %s - %s (pid %d)", self.locationStr,
                  socketutil.family_str(self.transportServer.sock), os.getpid())
        if natport == 0:  # advertise the internal port (known only now, when port was 0)
            natport = int(self.locationStr.rsplit(":", 1)[1])
        self.natLocationStr = "%s:%d" % (nathost, natport) if nathost else None
        daemon_object = interface(self)
        daemon_object._pyroId = constants.DAEMON_NAME
        self.objectsById: Dict[str, Any] = {constants.DAEMON_NAME: daemon_object}
        self.__pyroHmacKey: Optional[bytes] = None
        self._instances = InstanceFactory()
        self._streams = StreamRegistry()
        self.housekeeper_lock = threading.Lock()
        self.__mustshutdown.clear()

    # --- properties ----------------------------------------------------------------------------

    @property
    def _pyroHmacKey(self) -> Optional[bytes]:
        return self.__pyroHmacKey

    @_pyroHmacKey.setter
    def _pyroHmacKey(self, value: Any) -> None:
        self.__pyroHmacKey = hmac_key_bytes(value)

    @property
    def _pyroInstances(self) -> Dict[type, Any]:
        return self._instances.singletons

    @property
    def streaming_responses(self) -> Dict[str, Any]:
        """Live remote-iterator streams by id (read-only view for inspection)."""
        return self._streams.streams

    @property
    def sock(self) -> Any:
        """The listening socket."""
        return self.transportServer.sock

    @property
    def sockets(self) -> Any:
        """The listening socket and every connected client socket."""
        return self.transportServer.sockets

    @property
    def selector(self) -> Any:
        """The multiplex server's selector (TypeError for the thread pool server)."""
        return self.transportServer.selector

    @property
    def _shutting_down(self) -> bool:
        return self.__mustshutdown.is_set()

    # --- the loop ------------------------------------------------------------------------------

    @staticmethod
    def serveSimple(objects: Dict[Any, Optional[str]], host: Optional[str] = None, port: int = 0,
                    daemon: Optional["Daemon"] = None, ns: bool = True, verbose: bool = True) -> None:
        """Register ``objects`` (optionally in the name server too) and serve until shut down."""
        if daemon is None:
            daemon = Daemon(host, port)
        with daemon:
            nameserver = _locateNS() if ns else None
            for obj, name in objects.items():
                uri = daemon.register(obj, None if nameserver else name)
                if verbose:
                    print("Object {0}:\n    uri = {1}".format(repr(obj), uri))
                if name and nameserver:
                    nameserver.register(name, uri)
                    if verbose:
                        print("    name = {0}".format(name))
            if verbose:
                print("Pyro daemon running.")
            daemon.requestLoop()

    def requestLoop(self, loopCondition: Callable[[], bool] = lambda: True) -> None:
        """Serve requests until :meth:`shutdown` or until ``loopCondition()`` turns false."""
        self.__mustshutdown.clear()
        self._loop_thread = threading.current_thread()
        log.info("daemon %s entering requestloop", self.locationStr)
        self.__loopstopped.clear()
        try:
            self.transportServer.loop(loopCondition=lambda: not self.__mustshutdown.is_set() and loopCondition())
        finally:
            if self.__mustshutdown.is_set():
                self.close()    # after a shutdown() whose grace this loop served
            self.__loopstopped.set()
        log.debug("daemon exits requestloop")

    def events(self, eventsockets: Any) -> Any:
        """Handle pending requests on ``eventsockets`` (for use from an external event loop)."""
        return self.transportServer.events(eventsockets)

    def shutdown(self) -> None:
        """Stop the request loop and close the daemon; safe from any thread, also from a remote call.

        New connections are refused at once. A running ``requestLoop`` still answers the
        connections that are open for up to ``config.SHUTDOWN_GRACE`` seconds, then closes them
        and returns. Called from another thread, this waits for that; called from a request
        this daemon is serving, it returns at once and the loop closes the daemon on its way out.
        """
        log.debug("daemon shutting down")
        self._streams.clear()
        self.__mustshutdown.set()
        transport = self.transportServer
        draining = bool(transport.shutdown()) if transport else False
        in_loop_thread = getattr(self, "_loop_thread", None) is threading.current_thread()
        if draining:
            if in_loop_thread or transport.serving_here():
                return      # our own reply must go out first; requestLoop closes the daemon
            self.__loopstopped.wait(timeout=transport.grace + 5)
        self.close()
        if not in_loop_thread:
            self.__loopstopped.wait(timeout=5)

    def close(self) -> None:
        """Release the sockets (and remove a Unix socket file)."""
        self.__mustshutdown.set()
        self._streams.clear()
        if self.transportServer:
            log.debug("daemon closing")
            self.transportServer.close()
            self.transportServer = None

    def combine(self, daemon: Any) -> None:
        """Serve ``daemon``'s sockets from this daemon's loop (multiplex server only)."""
        log.debug("combining event loop with other daemon")
        self.transportServer.combine_loop(daemon.transportServer)

    def __enter__(self) -> "Daemon":
        if not self.transportServer:
            raise errors.PyroError("cannot reuse this object")
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        self.close()

    # --- called by the transport servers -------------------------------------------------------

    def _handshake(self, conn: Any, denied_reason: Optional[str] = None) -> bool:
        return dispatch.handshake(self, conn, None, denied_reason)

    def handleRequest(self, conn: Any) -> None:
        """Receive one message from ``conn`` and answer it (the socket servers have it waiting there)."""
        try:
            msg = dispatch.receive_message(self, conn, dispatch.REQUEST_TYPES)
        except errors.MessageTooLargeError as exc:
            dispatch.answer_oversized(self, conn, exc)  # re-raises (drop the connection) if not read off
            return
        dispatch.handle_request(self, conn, msg)

    def _clientDisconnect(self, conn: Any) -> None:
        self._streams.client_disconnected(conn, config.ITER_STREAM_LINGER)
        self.clientDisconnect(conn)

    def _housekeeping(self) -> None:
        if self._shutting_down:
            return
        with self.housekeeper_lock:
            self._streams.expire(config.ITER_STREAM_LIFETIME, config.ITER_STREAM_LINGER)
            self.housekeeping()

    def _getInstance(self, clazz: type, conn: Any) -> Any:
        return self._instances.instance_for(clazz, conn)

    def _sendExceptionResponse(self, connection: Any, seq: int, serializer_id: int, exc_value: BaseException,
                               tbinfo: Any, flags: int = 0, annotations: Optional[Dict[str, bytes]] = None) -> None:
        dispatch.send_exception_reply(self, connection, seq, serializer_id, exc_value, tbinfo, flags, annotations)

    def _response_annotations(self) -> Dict[str, bytes]:
        annotations = current_context.response_annotations
        corr = current_context._correlation_bytes()
        if corr:
            annotations["CORR"] = corr
        else:
            annotations.pop("CORR", None)
        extra = self.annotations()
        if extra:
            annotations.update(extra)
        return annotations

    # --- hooks users override ------------------------------------------------------------------

    def validateHandshake(self, conn: Any, data: Any) -> Any:
        """Return the handshake reply for a new client, or raise to refuse it."""
        return "hello"

    def clientDisconnect(self, conn: Any) -> None:
        """Called when a client connection ends."""

    def housekeeping(self) -> None:
        """Called every few seconds from the request loop."""

    def annotations(self) -> Dict[str, bytes]:
        """Extra annotations for every response message."""
        return {}

    # --- registration --------------------------------------------------------------------------

    def register(self, obj_or_class: Any, objectId: Optional[str] = None, force: bool = False) -> URI:
        """Make an object (shared by all clients) or a class (instanced per ``@behavior``) callable."""
        if objectId:
            if not isinstance(objectId, str):
                raise TypeError("objectId must be a string or None")
        else:
            objectId = "obj_" + uuid.uuid4().hex
        if inspect.isclass(obj_or_class) and not hasattr(obj_or_class, "_pyroInstancing"):
            obj_or_class._pyroInstancing = ("session", None)
        if not force:
            if getattr(obj_or_class, "_pyroId", ""):
                raise errors.DaemonError("object or class already has a Pyro id")
            if objectId in self.objectsById:
                raise errors.DaemonError("an object or class is already registered with that id")
        obj_or_class._pyroId = objectId
        obj_or_class._pyroDaemon = self
        forget_class_lookups(obj_or_class)  # a class changed before (re)registering is judged afresh
        if config.AUTOPROXY:
            clazz = obj_or_class if inspect.isclass(obj_or_class) else type(obj_or_class)
            for serializer in _serializers.values():
                serializer.register_type_replacement(clazz, pyroObjectToAutoProxy)
        self.objectsById[objectId] = obj_or_class
        return self.uriFor(objectId)

    def unregister(self, objectOrId: Any) -> None:
        """Remove a registered object or class (by itself or by id); ``Pyro.Daemon`` stays."""
        if objectOrId is None:
            raise ValueError("object or objectid argument expected")
        if isinstance(objectOrId, str):
            objectId, obj = objectOrId, None
        else:
            objectId, obj = getattr(objectOrId, "_pyroId", None), objectOrId
            if objectId is None:
                raise errors.DaemonError("object isn't registered")
        if objectId == constants.DAEMON_NAME:
            return
        if self.objectsById.pop(objectId, None) is not None and obj is not None:
            del obj._pyroId
            del obj._pyroDaemon

    def uriFor(self, objectOrId: Any, nat: bool = True) -> URI:
        """The URI clients use for a registered object, or for any id string."""
        if not isinstance(objectOrId, str):
            objectOrId = getattr(objectOrId, "_pyroId", None)
            if objectOrId is None or objectOrId not in self.objectsById:
                raise errors.DaemonError("object isn't registered in this daemon")
        location = (self.natLocationStr or self.locationStr) if nat else self.locationStr
        return URI("PYRO:%s@%s" % (objectOrId, location))

    def proxyFor(self, objectOrId: Any, nat: bool = True) -> Proxy:
        """A proxy for a registered object, with its metadata already filled in."""
        uri = self.uriFor(objectOrId, nat)
        registered = self.objectsById.get(uri.object)
        if registered is None:
            raise errors.DaemonError("object isn't registered in this daemon")
        proxy = Proxy(uri)
        proxy._pyroGetMetadata(known_metadata=get_exposed_members(registered, only_exposed=config.REQUIRE_EXPOSE))
        return proxy

    def resetMetadataCache(self, objectOrId: Any, nat: bool = True) -> None:
        """Forget cached exposure info after the object's class changed at run time."""
        uri = self.uriFor(objectOrId, nat)
        registered = self.objectsById.get(uri.object)
        if registered is not None:
            reset_exposed_members(registered, config.REQUIRE_EXPOSE, as_lists=True)
            reset_exposed_members(registered, config.REQUIRE_EXPOSE, as_lists=False)

    # --- representation and serialization ------------------------------------------------------

    def __repr__(self) -> str:
        module = "Pyro4.core" if type(self) is Daemon else type(self).__module__
        if getattr(self, "transportServer", None) is not None:
            return "<%s.%s at 0x%x; %s - %s; %d objects>" % (
                module, type(self).__name__, id(self), self.locationStr,
                socketutil.family_str(self.sock), len(self.objectsById))
        return "<%s.%s at 0x%x; unusable>" % (module, type(self).__name__, id(self))

    def __getstate__(self) -> dict:
        # Objects that refer to their daemon can be serialized; the daemon itself comes back unusable.
        return {}

    def __setstate__(self, state: Any) -> None:
        pass

    def __getstate_for_dict__(self) -> tuple:
        return ()

    def __setstate_from_dict__(self, state: Any) -> None:
        pass


wirenames.register_wire_class("Pyro4.core.Daemon", Daemon)
