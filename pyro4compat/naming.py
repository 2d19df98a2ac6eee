"""``Pyro4.naming``: the name server, its daemon, discovery responder, cleaner and command line.

Theory of operation
-------------------
:class:`NameServer` maps logical names to URI strings (plus a set of metadata tags) in a
pluggable *storage* (:class:`MemoryStorage`, ``sql:<file>``, ``dbm:<file>`` or any object with
the documented storage interface). It is an ordinary exposed Pyro object, served by
:class:`NameServerDaemon` under the id ``Pyro.NameServer``, and it registers itself in its own
table, tagged ``class:Pyro4.naming.NameServer`` (Pyro4's literal class name: clients search
for that tag).

Locking: with the thread server, requests arrive on many threads at once. Single storage
operations are atomic in every storage we ship (see :mod:`._naming_memory` and
:mod:`.naming_storage`), so ``lookup`` and ``count`` take no lock. ``NameServer.lock`` (an
RLock, Pyro4's attribute) is held for every compound operation: check-then-set
(``register(safe=True)``), read-modify-write (``set_metadata``), check-then-delete and
list-then-delete (``remove``), and the listing filters, so a custom storage that is not itself
thread-safe is still used by one thread at a time for those.

That lock is per process. A storage shared by several name servers (``postgresql://``) offers
optional methods that do a compound step atomically in the storage itself, and the name server
uses them when present: ``insert_new(name, value) -> bool`` for ``register(safe=True)``,
``replace_metadata(name, tags) -> bool`` for ``set_metadata``, and ``cleaning()`` for one
autoclean round at a time across name servers (see :class:`AutoCleaner`).

Discovery (``GET_NSURI`` over UDP) lives in :mod:`._naming_broadcast`; finding a name server
from the client side lives in :mod:`._client.resolve` and is re-exported here as
``locateNS``/``resolve``.
"""

from __future__ import annotations

import logging
import optparse
import os
import re
import socket
import sys
import threading
import time
import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import constants, socketutil
from ._client.resolve import _locateNS as locateNS
from ._client.resolve import _resolve as resolve
from ._naming_broadcast import BroadcastServer
from ._naming_memory import MemoryStorage
from ._server.daemon import Daemon
from ._server.exposure import expose
from ._uri import URI
from .configuration import config
from .errors import NamingError, ProtocolError, PyroError
from .naming_storage import DbmStorage, PostgresqlStorage, SqlStorage

__all__ = ["locateNS", "resolve", "type_meta", "startNSloop", "startNS"]

log = logging.getLogger("Pyro4.naming")

NAMESERVER_TAG = "class:Pyro4.naming.NameServer"
_STR_TAGS_TEXT = "%s should not be a str, but another iterable (set, list, etc)"


def _check_tags(tags: Any, what: str) -> None:
    """Pyro4's validation of a metadata argument: an iterable of strings, never a plain str."""
    if isinstance(tags, str):
        raise TypeError(_STR_TAGS_TEXT % what)
    if tags:
        iter(tags)  # TypeError for anything that is not iterable


def _lists_for_metadata(result: Dict[str, Any], return_metadata: bool) -> Dict[str, Any]:
    """Tags travel as lists: sets are not portable across every serializer (and Python 2)."""
    if not return_metadata:
        return result
    return {name: (uri, list(tags)) for name, (uri, tags) in result.items()}


def _filtered(entries: Dict[str, Tuple[str, Any]], accept: Callable[[str, Any], Any],
              return_metadata: bool) -> Dict[str, Any]:
    """The entries ``accept(name, tags)`` keeps, in the shape ``list()`` returns."""
    return {name: (uri, tags) if return_metadata else uri
            for name, (uri, tags) in entries.items() if accept(name, tags)}


@expose
class NameServer(object):
    """A flat name space: logical names to Pyro URIs, each with optional metadata tags."""

    def __init__(self, storageProvider: Any = None) -> None:
        self.storage = storageProvider
        if storageProvider is None:
            self.storage = MemoryStorage()
            log.debug("using volatile in-memory dict storage")
        self.lock = threading.RLock()

    def count(self) -> int:
        """The number of registrations (the name server's own included)."""
        return len(self.storage)

    def lookup(self, name: str, return_metadata: bool = False) -> Any:
        """The URI registered under ``name``, or ``(uri, [tags])`` with ``return_metadata``."""
        try:
            uri, tags = self.storage[name]
        except KeyError:
            raise NamingError("unknown name: " + name) from None
        if return_metadata:
            return URI(uri), list(tags) if tags else []
        return URI(uri)

    def register(self, name: str, uri: Any, safe: bool = False, metadata: Any = None) -> None:
        """Bind ``name`` to ``uri``; with ``safe`` an existing name is an error, not replaced."""
        if isinstance(uri, URI):
            uri = uri.asString()
        elif not isinstance(uri, str):
            raise TypeError("only URIs or strings can be registered")
        else:
            URI(uri)  # refuses malformed text with Pyro4's PyroError
        if not isinstance(name, str):
            raise TypeError("name must be a str")
        _check_tags(metadata, "metadata")
        tags = set(metadata) if metadata else None
        with self.lock:
            if safe:
                # A storage shared with other name servers checks-and-sets in one atomic step.
                insert_new = getattr(self.storage, "insert_new", None)
                if insert_new is not None:
                    if not insert_new(name, (uri, tags)):
                        raise NamingError("name already registered: " + name)
                    return
                if name in self.storage:
                    raise NamingError("name already registered: " + name)
            self.storage[name] = uri, tags

    def set_metadata(self, name: str, metadata: Any) -> None:
        """Replace the tags of an existing registration (empty or None clears them)."""
        if not isinstance(name, str):
            raise TypeError("name must be a str")
        _check_tags(metadata, "metadata")
        tags = set(metadata) if metadata else None
        with self.lock:
            replace_metadata = getattr(self.storage, "replace_metadata", None)
            if replace_metadata is not None:  # one atomic update in a shared storage
                if not replace_metadata(name, tags):
                    raise NamingError("unknown name: " + name)
                return
            try:
                uri, _ = self.storage[name]
            except KeyError:
                raise NamingError("unknown name: " + name) from None
            self.storage[name] = uri, tags

    def remove(self, name: Optional[str] = None, prefix: Optional[str] = None,
               regex: Optional[str] = None) -> int:
        """Remove one name, or every name with ``prefix`` or matching ``regex``; returns the count.

        The name server's own registration is never removed.
        """
        with self.lock:
            if name and name != constants.NAMESERVER_NAME and name in self.storage:
                del self.storage[name]
                return 1
            if prefix:
                doomed = list(self.list(prefix=prefix))
            elif regex:
                doomed = list(self.list(regex=regex))
            else:
                return 0
            if constants.NAMESERVER_NAME in doomed:
                doomed.remove(constants.NAMESERVER_NAME)
            self.storage.remove_items(doomed)
            return len(doomed)

    def list(self, prefix: Optional[str] = None, regex: Optional[str] = None, metadata_all: Any = None,
             metadata_any: Any = None, return_metadata: bool = False) -> Dict[str, Any]:
        """Registrations as ``{name: uri_string}`` (or ``{name: (uri_string, [tags])}``).

        At most one filter: a name prefix, a regex (``re.match``, anchored at the start), all
        of some tags, or any of some tags. No filter lists everything.
        """
        if sum(1 for given in (prefix, regex, metadata_all, metadata_any) if given is not None) > 1:
            raise ValueError("you can only filter on one thing at a time")
        with self.lock:
            if prefix:
                result = self._list_prefix(prefix, return_metadata)
            elif regex:
                result = self._list_regex(regex, return_metadata)
            elif metadata_all:
                result = self._list_tags(metadata_all, "metadata_all", return_metadata)
            elif metadata_any:
                result = self._list_tags(metadata_any, "metadata_any", return_metadata)
            else:
                result = self.storage.everything(return_metadata)
        return _lists_for_metadata(result, return_metadata)

    def _list_prefix(self, prefix: str, return_metadata: bool) -> Dict[str, Any]:
        result = self.storage.optimized_prefix_list(prefix, return_metadata)
        if result is not None:
            return result
        return _filtered(self.storage.everything(return_metadata=True),
                         lambda name, tags: name.startswith(prefix), return_metadata)

    def _list_regex(self, regex: str, return_metadata: bool) -> Dict[str, Any]:
        result = self.storage.optimized_regex_list(regex, return_metadata)
        if result is not None:
            return result
        try:
            pattern = re.compile(regex)
        except re.error as exc:
            raise NamingError("invalid regex: " + str(exc)) from None
        return _filtered(self.storage.everything(return_metadata=True),
                         lambda name, tags: pattern.match(name), return_metadata)

    def _list_tags(self, wanted: Any, what: str, return_metadata: bool) -> Dict[str, Any]:
        _check_tags(wanted, what)
        result = self.storage.optimized_metadata_search(return_metadata=return_metadata, **{what: wanted})
        if result is not None:
            return result
        wanted = frozenset(wanted)
        if what == "metadata_all":
            def accept(name: str, tags: Any) -> bool:
                return wanted.issubset(tags)
        else:
            def accept(name: str, tags: Any) -> bool:
                return bool(wanted.intersection(tags))
        return _filtered(self.storage.everything(return_metadata=True), accept, return_metadata)

    def ping(self) -> None:
        """Does nothing: a successful call proves the name server is alive."""


# --- storages by name ----------------------------------------------------------------------------

def _dbm_storage(filename: str) -> Any:
    log.debug("using persistent dbm storage in file %s", filename)
    storage = DbmStorage(filename)
    warning = "Warning: the DbmStorage doesn't support metadata."
    log.warning(warning)
    print(warning)
    return storage


def _sql_storage(filename: str) -> Any:
    log.debug("using persistent sql storage in file %s", filename)
    return SqlStorage(filename)


def _postgresql_storage(url: str) -> Any:
    storage = PostgresqlStorage(url)
    log.debug("using shared postgresql storage at %s", storage.location)
    return storage


_PERSISTENT_STORAGES: Dict[str, Callable[[str], Any]] = {"dbm": _dbm_storage, "sql": _sql_storage}
# Storages given by a URL: the opener gets the whole URL (libpq accepts both schemes).
_URL_STORAGES: Dict[str, Callable[[str], Any]] = {"postgresql": _postgresql_storage, "postgres": _postgresql_storage}


def _open_storage(spec: Optional[str]) -> Any:
    """A storage from its command-line form: ``memory``, ``dbm:<file>``, ``sql:<file>`` or
    ``postgresql://user@host:port/dbname``."""
    spec = spec or "memory"
    if spec == "memory":
        log.debug("using volatile in-memory dict storage")
        return MemoryStorage()
    kind, _, filename = spec.partition(":")
    if kind in _URL_STORAGES and filename.startswith("//"):
        return _URL_STORAGES[kind](spec)
    opener = _PERSISTENT_STORAGES.get(kind)
    if opener is None or not filename:
        raise ValueError("invalid storage type '%s'" % spec)
    return opener(filename)


# --- the daemon ----------------------------------------------------------------------------------

class NameServerDaemon(Daemon):
    """A daemon serving a :class:`NameServer` under ``Pyro.NameServer``."""

    def __init__(self, host: Optional[str] = None, port: Optional[int] = None, unixsocket: Optional[str] = None,
                 nathost: Optional[str] = None, natport: Optional[int] = None, storage: Any = None) -> None:
        if host is None:
            host = config.HOST
        if port is None:
            port = config.NS_PORT
        if nathost is None:
            nathost = config.NATHOST
        if natport is None:
            natport = config.NATPORT or None
        if config.NS_AUTOCLEAN > 0:
            AutoCleaner.check_period()
        self.cleaner_thread: Optional[AutoCleaner] = None
        self.nameserver: Optional[NameServer] = NameServer(_open_storage(storage))
        try:
            existing = self.nameserver.count()
            if existing > 0:
                log.debug("number of existing entries in storage: %d", existing)
            super().__init__(host, port, unixsocket, nathost=nathost, natport=natport)
        except BaseException:
            self.nameserver.storage.close()
            raise
        self.register(self.nameserver, constants.NAMESERVER_NAME)
        self.nameserver.register(constants.NAMESERVER_NAME, self.uriFor(self.nameserver),
                                 metadata={NAMESERVER_TAG})
        if config.NS_AUTOCLEAN > 0:
            log.debug("autoclean enabled")
            self.cleaner_thread = AutoCleaner(self.nameserver)
            self.cleaner_thread.start()
        else:
            log.debug("autoclean not enabled")
        log.info("nameserver daemon created")

    def _release_nameserver(self) -> None:
        nameserver, self.nameserver = self.nameserver, None
        if nameserver is not None:
            nameserver.storage.close()
        cleaner, self.cleaner_thread = self.cleaner_thread, None
        if cleaner is not None:
            cleaner.stop = True
            if cleaner is not threading.current_thread():
                cleaner.join()

    def close(self) -> None:
        """Close the sockets, then the storage, and stop the cleaner."""
        super().close()
        self._release_nameserver()

    def __enter__(self) -> "NameServerDaemon":
        if not self.nameserver:
            raise PyroError("cannot reuse this object")
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        self._release_nameserver()
        super().__exit__(exc_type, exc_value, traceback)

    # Protocol errors (a client with the wrong serializer, most often) are shown on the name
    # server's console as well, as Pyro4 does: they are the usual reason a client gets nowhere.

    def handleRequest(self, conn: Any) -> None:
        try:
            super().handleRequest(conn)
        except ProtocolError as exc:
            warnings.warn("Pyro protocol error occurred: " + str(exc))
            raise


# --- autoclean -----------------------------------------------------------------------------------

class AutoCleaner(threading.Thread):
    """Removes registrations whose server has not accepted a connection for ~20 seconds.

    Every ``NS_AUTOCLEAN`` seconds each registered URI's address is probed with a TCP (or Unix
    socket) connect; one that stays unreachable for ``max_unreachable_time`` is removed.
    """

    min_autoclean_value = 3
    max_unreachable_time = 20.0
    loop_delay = 2.0
    override_autoclean_min = False  # lets tests use a shorter period

    def __init__(self, nameserver: NameServer) -> None:
        assert config.NS_AUTOCLEAN > 0
        self.check_period()
        super().__init__(name="Pyro4-ns-autoclean", daemon=True)
        self.nameserver = nameserver
        self._stopped = threading.Event()
        self.last_cleaned = time.time()
        self.unreachable: Dict[str, float] = {}  # name -> time it was first found unreachable

    @classmethod
    def check_period(cls) -> None:
        if not cls.override_autoclean_min and config.NS_AUTOCLEAN < cls.min_autoclean_value:
            raise ValueError("NS_AUTOCLEAN cannot be smaller than " + str(cls.min_autoclean_value))

    @property
    def stop(self) -> bool:
        """Set to True to end the thread (it wakes at once, not after its sleep)."""
        return self._stopped.is_set()

    @stop.setter
    def stop(self, value: bool) -> None:
        if value:
            self._stopped.set()
        else:
            self._stopped.clear()

    def run(self) -> None:
        while not self._stopped.wait(self.loop_delay):
            if time.time() - self.last_cleaned < config.NS_AUTOCLEAN:
                continue
            self.clean_once()
            self.last_cleaned = time.time()

    def clean_once(self) -> None:
        """Probe every registration once; remove those unreachable for too long.

        A storage shared by several name servers offers ``cleaning()``: a context that yields
        None while another name server is cleaning (we skip the round), or a function that
        removes ``{name: uri}`` entries that still have that uri, committed as one when the
        round ends, or not at all.
        """
        cleaning = getattr(self.nameserver.storage, "cleaning", None)
        if cleaning is None:
            self._clean(self._remove_each)
            return
        with cleaning() as remove_stale:
            if remove_stale is None:
                log.debug("autoclean: another name server is cleaning; skipped")
                return
            self._clean(remove_stale)

    def _remove_each(self, stale: Dict[str, str]) -> int:
        for name in stale:
            self.nameserver.remove(name)
        return len(stale)

    def _clean(self, remove: Callable[[Dict[str, str]], int]) -> None:
        stale: Dict[str, str] = {}
        for name, uri in self.nameserver.list().items():
            if name in (constants.DAEMON_NAME, constants.NAMESERVER_NAME):
                continue
            if _reachable(uri):
                self.unreachable.pop(name, None)
                continue
            since = self.unreachable.setdefault(name, time.time())
            if time.time() - since >= self.max_unreachable_time:
                log.info("autoclean: unregistering %s; cannot connect uri %s for %d sec",
                         name, uri, self.max_unreachable_time)
                stale[name] = uri
        if stale:
            remove(stale)
            for name in stale:
                del self.unreachable[name]
        if self.unreachable:
            log.debug("autoclean: %d/%d names currently unreachable", len(self.unreachable), self.nameserver.count())


def _reachable(uri_text: str) -> bool:
    """True when the server behind ``uri_text`` accepts a connection now."""
    try:
        uri = URI(uri_text)
        address: Any = uri.sockname or (uri.host, uri.port)
        sock = socketutil.createSocket(connect=address, timeout=config.COMMTIMEOUT or 5)
    except (OSError, PyroError):
        return False
    sock.close()
    return True


# --- starting a name server ----------------------------------------------------------------------

def _is_loopback(hostip: str) -> bool:
    return hostip.startswith("127.") or hostip == "::1"


def startNSloop(host: Optional[str] = None, port: Optional[int] = None, enableBroadcast: bool = True,
                bchost: Optional[str] = None, bcport: Optional[int] = None, unixsocket: Optional[str] = None,
                nathost: Optional[str] = None, natport: Optional[int] = None, storage: Any = None,
                hmac: Any = None) -> None:
    """Start a name server (and its broadcast responder), print where it runs, and serve forever."""
    daemon = NameServerDaemon(host, port, unixsocket, nathost=nathost, natport=natport, storage=storage)
    daemon._pyroHmacKey = hmac
    nsUri = daemon.uriFor(daemon.nameserver)
    internalUri = daemon.uriFor(daemon.nameserver, nat=False)
    bcserver = None
    if unixsocket:
        hostip = "Unix domain socket"
    else:
        hostip = daemon.sock.getsockname()[0]
        ipv6 = daemon.sock.family == socket.AF_INET6
        if ipv6:  # IPv6 has no broadcast
            print("Not starting broadcast server for IPv6.")
            log.info("Not starting NS broadcast server because NS is using IPv6")
            enableBroadcast = False
        elif _is_loopback(hostip):
            print("Not starting broadcast server for localhost.")
            log.info("Not starting NS broadcast server because NS is bound to localhost")
            enableBroadcast = False
        if enableBroadcast:
            # The internal URI: whoever can hear our broadcast is on our side of any NAT.
            bcserver = BroadcastServer(internalUri, bchost, bcport, ipv6=ipv6)
            print("Broadcast server running on %s" % bcserver.locationStr)
            bcserver.runInThread()
    existing = daemon.nameserver.count()
    if existing > 1:  # our own registration does not count
        print("Persistent store contains %d existing registrations." % existing)
    print("NS running on %s (%s)" % (daemon.locationStr, hostip))
    if not hmac:
        print("Warning: HMAC key not set. Anyone can connect to this server!")
    if daemon.natLocationStr:
        print("internal URI = %s" % internalUri)
        print("external URI = %s" % nsUri)
    else:
        print("URI = %s" % nsUri)
    sys.stdout.flush()  # whoever started us (a script, a test) reads the URI from a pipe
    try:
        daemon.requestLoop()
    finally:
        daemon.close()
        if bcserver is not None:
            bcserver.close()
    print("NS shut down.")


def startNS(host: Optional[str] = None, port: Optional[int] = None, enableBroadcast: bool = True,
            bchost: Optional[str] = None, bcport: Optional[int] = None, unixsocket: Optional[str] = None,
            nathost: Optional[str] = None, natport: Optional[int] = None, storage: Any = None,
            hmac: Any = None) -> Tuple[URI, NameServerDaemon, Optional[BroadcastServer]]:
    """Create a name server daemon for your own loop: ``(nsUri, daemon, broadcastServer_or_None)``."""
    daemon = NameServerDaemon(host, port, unixsocket, nathost=nathost, natport=natport, storage=storage)
    daemon._pyroHmacKey = hmac
    bcserver = None
    nsUri = daemon.uriFor(daemon.nameserver)
    if not unixsocket:
        hostip = daemon.sock.getsockname()[0]
        if hostip.startswith("127."):
            enableBroadcast = False
        if enableBroadcast:
            internalUri = daemon.uriFor(daemon.nameserver, nat=False)
            bcserver = BroadcastServer(internalUri, bchost, bcport, ipv6=daemon.sock.family == socket.AF_INET6)
    return nsUri, daemon, bcserver


def type_meta(class_or_object: Any, prefix: str = "class:") -> Any:
    """Tags naming a class and its bases (``class:module.Name``), for metadata searches by type."""
    if hasattr(class_or_object, "__mro__"):
        return {prefix + cls.__module__ + "." + cls.__name__
                for cls in class_or_object.__mro__ if cls.__module__ not in ("builtins", "__builtin__")}
    if hasattr(class_or_object, "__class__"):
        return type_meta(class_or_object.__class__, prefix)
    return frozenset()


# --- command line --------------------------------------------------------------------------------

KEY_WARNING = ("using -k to supply HMAC key on the command line is a security problem "
               "and is deprecated since Pyro 4.72. See the documentation for an alternative.")
KEY_CONFLICT = "error: don't use -k and PYRO_HMAC_KEY at the same time"


def _tool_hmac_key(key: Optional[str]) -> Optional[str]:
    """The HMAC key of a command-line tool: ``-k`` (warned about) or ``PYRO_HMAC_KEY``, not both."""
    if key:
        warnings.warn(KEY_WARNING)
    if "PYRO_HMAC_KEY" in os.environ:
        if key:
            raise SystemExit(KEY_CONFLICT)
        key = os.environ["PYRO_HMAC_KEY"]
    return key


# (short, long, keyword arguments of optparse's add_option)
_OPTIONS: List[Tuple[str, str, Dict[str, Any]]] = [
    ("-n", "--host", dict(dest="host", help="hostname to bind server on")),
    ("-p", "--port", dict(dest="port", type="int", help="port to bind server on (0=random)")),
    ("-u", "--unixsocket", dict(help="Unix domain socket name to bind server on")),
    ("-s", "--storage", dict(help="Storage system to use (memory, dbm:file, sql:file, "
                                  "postgresql://user@host:port/dbname)", default="memory")),
    ("", "--bchost", dict(dest="bchost", help="hostname to bind broadcast server on (default is \"\")")),
    ("", "--bcport", dict(dest="bcport", type="int", help="port to bind broadcast server on (0=random)")),
    ("", "--nathost", dict(dest="nathost", help="external hostname in case of NAT")),
    ("", "--natport", dict(dest="natport", type="int", help="external port in case of NAT")),
    ("-x", "--nobc", dict(dest="enablebc", action="store_false", default=True,
                          help="don't start a broadcast server")),
    ("-k", "--key", dict(help="the HMAC key to use (deprecated)")),
]


def main(args: Optional[List[str]] = None) -> None:
    """``python -m pyro4compat.naming``: run a name server until interrupted."""
    parser = optparse.OptionParser()
    for short, long, kwargs in _OPTIONS:
        names = [name for name in (short, long) if name]
        parser.add_option(*names, **kwargs)
    options, _ = parser.parse_args(args)
    key = _tool_hmac_key(options.key)
    startNSloop(options.host, options.port, enableBroadcast=options.enablebc,
                bchost=options.bchost, bcport=options.bcport, unixsocket=options.unixsocket,
                nathost=options.nathost, natport=options.natport, storage=options.storage,
                hmac=key)


if __name__ == "__main__":
    main()
