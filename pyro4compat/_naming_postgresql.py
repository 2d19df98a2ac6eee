"""The name server's ``postgresql://`` storage: one registry that several name servers share.

Re-exported as ``pyro4compat.naming_storage.PostgresqlStorage``; opened by
``startNS(storage="postgresql://user@host:port/dbname")`` and ``-s postgresql://...``. Needs
psycopg 3 (``pip install pyro4compat[postgresql]``); without it, opening one is a
:class:`NamingError` that names the extra, and nothing else in pyro4compat notices.

Theory of operation
-------------------
* **The database is the registry.** Every storage call is one SQL statement (or one short
  transaction) against table ``pyro4compat_registry(name text COLLATE "C" PRIMARY KEY, uri,
  tags text[])``; nothing is cached, so whatever one name server writes, every other name
  server on the same database answers at once. Autocommit: a write returns only after
  PostgreSQL's ``COMMIT`` (``synchronous_commit`` is raised to ``on`` if the server has it
  ``off``), so an acknowledged registration survives a SIGKILL of the name server and a
  restart of PostgreSQL.
* **Atomic where the name server needs it.** ``insert_new`` (``register(safe=True)``) is
  ``INSERT ... ON CONFLICT DO NOTHING``: of two name servers registering one name at once,
  the primary key lets exactly one in. ``replace_metadata`` is one ``UPDATE`` (no
  read-modify-write that could undo another name server's re-registration).
* **Pyro4's semantics, not SQL's.** Prefixes are ``str.startswith``: ``starts_with()`` on a
  ``"C"``-collated column is a byte comparison of UTF-8, never ``LIKE`` (``_``/``%``) and
  never a locale's collation; the server must use UTF-8 (checked when opening). Regexes are
  matched by Python's ``re.match`` here, not by PostgreSQL's ``~`` (unanchored, POSIX
  flavour, other ``$``/``\\d``/lookaround rules); SQL only narrows the rows by the
  regex's literal leading text, and only when that text provably starts every match.
* **Pyro.NameServer.** Each name server writes its own entry at start (the last one
  started wins in the table, and ``count()`` sees one entry), but remembers its own value
  and answers every read of ``Pyro.NameServer`` with *its own* URI, so a client talking to
  name server A never gets a URI of a name server B that may be gone.
* **Threads and connections.** The name server serves from many threads. A small pool
  (``POOL_SIZE`` connections, made on demand) lets lookups run side by side without one
  slow statement holding up every other thread, at a bounded cost to PostgreSQL's
  ``max_connections`` per name server. A connection is used by one thread at a time
  (taken from the pool and returned to it); the pool's own lock guards only its list.
* **Honest failures.** ``connect_timeout``, TCP keepalives, ``tcp_user_timeout`` and a
  ``statement_timeout`` bound every call; any psycopg failure becomes a
  :class:`NamingError` naming the storage. A connection that failed, or that the server
  closed while it sat in the pool (a restart), is dropped, so the next call reconnects:
  the name server recovers by itself when PostgreSQL is back.
* **Autoclean.** :meth:`PostgresqlStorage.cleaning` runs a clean in one transaction under
  ``pg_try_advisory_xact_lock``: one name server cleans at a time, the others skip that
  round, and a name server that dies mid-clean has its transaction (and lock) rolled back.
"""

from __future__ import annotations

import importlib
import logging
import re
import select
import threading
import weakref
from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple

from . import constants
from .errors import NamingError

# psycopg is an optional extra and takes ~0.1 s to import: loaded by the first storage opened,
# so neither ``import pyro4compat.naming`` nor a name server with another storage pays for it.
psycopg: Any = None

__all__ = ["PostgresqlStorage"]

log = logging.getLogger("Pyro4.naming_storage")

SCHEMA_VERSION = 1
POOL_SIZE = 4
POOL_WAIT = 10.0  # seconds a call waits for a free connection before failing
STATEMENT_TIMEOUT_MS = 5000
# libpq settings that keep a call from hanging on an unreachable server; the URL may override them.
CONNECT_DEFAULTS = {
    "connect_timeout": "3", "keepalives": "1", "keepalives_idle": "5", "keepalives_interval": "2",
    "keepalives_count": "2", "tcp_user_timeout": "5000", "application_name": "pyro4compat-nameserver",
}
NO_PSYCOPG = ("the postgresql storage needs psycopg 3, which is not installed: "
              "pip install 'pyro4compat[postgresql]'")

_LOCK_SPACE = 0x50793472  # advisory lock namespace ("Py4r"); the second key says what is locked
_SCHEMA_LOCK, _CLEAN_LOCK = 1, 2
_TABLE = "pyro4compat_registry"
_MIGRATIONS: Dict[int, Tuple[str, ...]] = {  # schema version -> statements that reach it
    1: (
        'CREATE TABLE pyro4compat_registry (name text COLLATE "C" PRIMARY KEY, uri text NOT NULL,'
        " tags text[] NOT NULL DEFAULT '{}')",
        "CREATE INDEX pyro4compat_registry_tags ON pyro4compat_registry USING gin (tags)",
    ),
}
_SELECT = "SELECT name, uri, tags FROM " + _TABLE
_UPSERT = ("INSERT INTO " + _TABLE + " (name, uri, tags) VALUES (%s, %s, %s)"
           " ON CONFLICT (name) DO UPDATE SET uri = EXCLUDED.uri, tags = EXCLUDED.tags")
_INSERT_NEW = "INSERT INTO " + _TABLE + " (name, uri, tags) VALUES (%s, %s, %s) ON CONFLICT (name) DO NOTHING"
_PREFIX_WHERE = ' WHERE name >= %s COLLATE "C" AND starts_with(name, %s)'
_DELETE_STALE = ("DELETE FROM " + _TABLE + " AS r USING unnest(%s::text[], %s::text[]) AS d(name, uri)"
                 " WHERE r.name = d.name AND r.uri = d.uri")
_REGEX_LITERAL = re.compile(r"[A-Za-z0-9_]*")  # characters that are themselves at any place of a regex
_QUANTIFIERS = ("*", "+", "?", "{")

Entry = Tuple[str, FrozenSet[str]]
Row = Tuple[str, str, List[str]]
Accept = Callable[[str, FrozenSet[str]], Any]


def _load_psycopg() -> None:
    global psycopg
    if psycopg is None:
        try:
            psycopg = importlib.import_module("psycopg")
        except ImportError as exc:
            raise NamingError(NO_PSYCOPG + " (%s)" % exc) from None


def _storable(name: Any) -> bool:
    """PostgreSQL text holds no NUL: such a name (or a non-str) can't be registered, so isn't."""
    return isinstance(name, str) and "\x00" not in name


def _tags(metadata: Any) -> List[str]:
    return sorted(set(metadata)) if metadata else []


def regex_literal_prefix(regex: str) -> str:
    """Text every ``re.match`` of ``regex`` starts with (possibly ''), for narrowing in SQL.

    Conservative: only plain letters, digits and ``_`` at the very start count, none when
    the regex has an alternation or an inline flag anywhere (``(?i)`` once applied to the
    whole pattern), and a last character followed by a quantifier is dropped.
    """
    if "|" in regex or "(?" in regex:
        return ""
    prefix = _REGEX_LITERAL.match(regex).group()  # type: ignore[union-attr]
    if regex[len(prefix):len(prefix) + 1] in _QUANTIFIERS:
        prefix = prefix[:-1]
    return prefix


def describe_url(url: str) -> str:
    """``postgresql://user@host:port/dbname`` without a password, for messages and logs."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return "postgresql://(invalid url)"
    location = params.get("host") or "localhost"
    if params.get("port"):
        location += ":%s" % params["port"]
    user = "%s@" % params["user"] if params.get("user") else ""
    return "postgresql://%s%s/%s" % (user, location, params.get("dbname", ""))


def _conninfo(url: str) -> str:
    """``url`` with :data:`CONNECT_DEFAULTS` added where it doesn't set them itself."""
    params = psycopg.conninfo.conninfo_to_dict(url)
    for key, value in CONNECT_DEFAULTS.items():
        params.setdefault(key, value)
    return psycopg.conninfo.make_conninfo("", **params)


def _connect(conninfo: str) -> Any:
    """A new autocommit connection with bounded statements and durable commits."""
    conn = psycopg.connect(conninfo, autocommit=True)
    try:
        timeout, commit = conn.execute(
            "SELECT current_setting('statement_timeout'), current_setting('synchronous_commit')").fetchone()
        if timeout == "0":
            conn.execute("SELECT set_config('statement_timeout', %s, false)", (str(STATEMENT_TIMEOUT_MS),))
        if commit == "off":
            conn.execute("SET synchronous_commit = on")
    except BaseException:
        conn.close()
        raise
    return conn


def _server_closed(conn: Any) -> bool:
    """True when a pooled connection is dead: the server closed it (or sent something) while idle."""
    if conn.closed or conn.broken:
        return True
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True
    return bool(readable)


def _prepare_schema(conn: Any) -> None:
    """Create or upgrade the tables once, under an advisory lock: name servers may start together."""
    encoding = conn.execute("SHOW server_encoding").fetchone()[0]
    if encoding.upper() not in ("UTF8", "UTF-8"):
        raise NamingError("the postgresql storage needs a UTF8 database, not %s" % encoding)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_SPACE, _SCHEMA_LOCK))
        if conn.execute("SELECT to_regclass('pyro4compat_schema')").fetchone()[0] is None:
            conn.execute("CREATE TABLE pyro4compat_schema (version integer NOT NULL)")
        version = conn.execute("SELECT max(version) FROM pyro4compat_schema").fetchone()[0] or 0
        if version > SCHEMA_VERSION:
            raise NamingError("the name server schema in the database is version %d; this pyro4compat knows "
                              "up to version %d" % (version, SCHEMA_VERSION))
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[step]:
                conn.execute(statement)
        if version < SCHEMA_VERSION:
            conn.execute("DELETE FROM pyro4compat_schema")
            conn.execute("INSERT INTO pyro4compat_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
            log.info("name server schema created/upgraded to version %d", SCHEMA_VERSION)


class _Pool:
    """At most ``size`` connections, made when needed; dead ones are dropped, not handed out."""

    def __init__(self, conninfo: str, size: int) -> None:
        self._conninfo = conninfo
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()  # guards _idle only, never held during I/O
        self._idle: List[Any] = []

    def _take_idle(self) -> Optional[Any]:
        while True:
            with self._lock:
                if not self._idle:
                    return None
                conn = self._idle.pop()
            if not _server_closed(conn):
                return conn
            conn.close()

    @contextmanager
    def connection(self, location: str) -> Iterator[Any]:
        if not self._slots.acquire(timeout=POOL_WAIT):
            raise NamingError("postgresql storage %s: no free connection within %g s" % (location, POOL_WAIT))
        conn = None
        try:
            conn = self._take_idle() or _connect(self._conninfo)
            yield conn
        except BaseException as exc:
            if conn is not None and (conn.closed or conn.broken or isinstance(exc, psycopg.OperationalError)
                                     or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE):
                conn.close()
                conn = None
            if isinstance(exc, psycopg.OperationalError):
                self.close()  # the others are likely as dead as this one was
            raise
        finally:
            if conn is not None:
                with self._lock:
                    self._idle.append(conn)
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class PostgresqlStorage(MutableMapping):
    """Name server storage in a PostgreSQL database, shared by every name server given its URL.

    See the module docstring. Deleting an unknown name is not an error (as with
    ``SqlStorage``); metadata comes back as a ``frozenset``.
    """

    def __init__(self, url: str, pool_size: int = POOL_SIZE) -> None:
        _load_psycopg()
        self.url = url
        self.location = describe_url(url)
        try:
            conninfo = _conninfo(url)
        except psycopg.Error as exc:
            raise NamingError("invalid postgresql storage url %r: %s" % (url, exc)) from None
        self._pool = _Pool(conninfo, pool_size)
        self._closer = weakref.finalize(self, self._pool.close)  # no connection outlives an unclosed storage
        self._own: Optional[Entry] = None  # this name server's own Pyro.NameServer entry
        try:
            with self._session("open") as conn:
                _prepare_schema(conn)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return "<%s.%s %r>" % (type(self).__module__, type(self).__name__, self.location)

    # -- connections and errors ------------------------------------------------------------------

    @contextmanager
    def _session(self, operation: str) -> Iterator[Any]:
        """A connection for one operation; psycopg's failures leave as NamingErrors naming us."""
        try:
            with self._pool.connection(self.location) as conn:
                yield conn
        except psycopg.OperationalError as exc:
            raise NamingError("postgresql storage %s unavailable in %s: %s"
                              % (self.location, operation, _first_line(exc))) from exc
        except psycopg.Error as exc:
            raise NamingError("postgresql storage %s: error in %s: %s"
                              % (self.location, operation, _first_line(exc))) from exc

    def _rows(self, operation: str, sql: str, params: Sequence[Any] = ()) -> List[Any]:
        with self._session(operation) as conn:
            return conn.execute(sql, params).fetchall()

    def _change(self, operation: str, sql: str, params: Sequence[Any]) -> int:
        """Run one statement, committed before this returns; the number of rows it changed."""
        with self._session(operation) as conn:
            return conn.execute(sql, params).rowcount

    def _collect(self, rows: Iterable[Row], return_metadata: bool, accept: Optional[Accept] = None) -> Dict[str, Any]:
        """Rows as the name server lists them, ``Pyro.NameServer`` being our own entry."""
        result: Dict[str, Any] = {}
        own = self._own
        for name, uri, tags in rows:
            if own is not None and name == constants.NAMESERVER_NAME:
                continue
            frozen = frozenset(tags)
            if accept is None or accept(name, frozen):
                result[name] = (uri, frozen) if return_metadata else uri
        if own is not None and (accept is None or accept(constants.NAMESERVER_NAME, own[1])):
            result[constants.NAMESERVER_NAME] = own if return_metadata else own[0]
        return result

    # -- mapping ---------------------------------------------------------------------------------

    def __getitem__(self, item: str) -> Entry:
        if item == constants.NAMESERVER_NAME and self._own is not None:
            return self._own
        if not _storable(item):
            raise KeyError(item)
        rows = self._rows("getitem", "SELECT uri, tags FROM " + _TABLE + " WHERE name = %s", (item,))
        if not rows:
            raise KeyError(item)
        return rows[0][0], frozenset(rows[0][1])

    def __setitem__(self, key: str, value: Tuple[str, Any]) -> None:
        uri, metadata = value
        tags = _tags(metadata)
        self._change("setitem", _UPSERT, (key, uri, tags))
        if key == constants.NAMESERVER_NAME:
            self._own = uri, frozenset(tags)

    def insert_new(self, key: str, value: Tuple[str, Any]) -> bool:
        """Register ``key`` only if no name server has it yet (atomic); False if it exists."""
        uri, metadata = value
        return self._change("insert_new", _INSERT_NEW, (key, uri, _tags(metadata))) == 1

    def replace_metadata(self, key: str, metadata: Any) -> bool:
        """Replace the tags of ``key`` in one statement; False if it isn't registered."""
        tags = _tags(metadata)
        if not _storable(key):
            return False
        changed = self._change("set_metadata", "UPDATE " + _TABLE + " SET tags = %s WHERE name = %s", (tags, key))
        if changed and key == constants.NAMESERVER_NAME and self._own is not None:
            self._own = self._own[0], frozenset(tags)
        return changed == 1

    def __delitem__(self, key: str) -> None:
        if _storable(key):
            self._change("delitem", "DELETE FROM " + _TABLE + " WHERE name = %s", (key,))

    def __len__(self) -> int:
        return self._rows("len", "SELECT count(*) FROM " + _TABLE)[0][0]

    def __contains__(self, item: object) -> bool:
        if item == constants.NAMESERVER_NAME and self._own is not None:
            return True
        if not _storable(item):
            return False
        return bool(self._rows("contains", "SELECT 1 FROM " + _TABLE + " WHERE name = %s", (item,)))

    def __iter__(self) -> Iterator[str]:
        return iter(self.everything())

    def clear(self) -> None:
        self._change("clear", "DELETE FROM " + _TABLE, ())
        self._own = None

    # -- the name server's extra methods ---------------------------------------------------------

    def everything(self, return_metadata: bool = False) -> Dict[str, Any]:
        return self._collect(self._rows("everything", _SELECT), return_metadata)

    def _with_prefix(self, operation: str, prefix: str) -> List[Row]:
        if not prefix:
            return self._rows(operation, _SELECT)
        if "\x00" in prefix:
            return []
        return self._rows(operation, _SELECT + _PREFIX_WHERE, (prefix, prefix))

    def optimized_prefix_list(self, prefix: str, return_metadata: bool = False) -> Dict[str, Any]:
        """Names that ``str.startswith(prefix)``: case-sensitive, no wildcards, no collation."""
        rows = self._with_prefix("optimized_prefix_list", prefix)
        return self._collect(rows, return_metadata, lambda name, tags: name.startswith(prefix))

    def optimized_regex_list(self, regex: str, return_metadata: bool = False) -> Dict[str, Any]:
        """Names that Python's ``re.match(regex, name)`` accepts (the name server's rule)."""
        try:
            pattern = re.compile(regex)
        except re.error as exc:
            raise NamingError("invalid regex: " + str(exc)) from None
        rows = self._with_prefix("optimized_regex_list", regex_literal_prefix(regex))
        return self._collect(rows, return_metadata, lambda name, tags: pattern.match(name))

    def optimized_metadata_search(
        self,
        metadata_all: Optional[Iterable[str]] = None,
        metadata_any: Optional[Iterable[str]] = None,
        return_metadata: bool = False,
    ) -> Dict[str, Any]:
        """Names having every tag of ``metadata_all``, or any of ``metadata_any`` (which wins)."""
        if metadata_any:
            wanted, where = frozenset(metadata_any), " WHERE tags && %s::text[]"

            def accept(name: str, tags: FrozenSet[str]) -> bool:
                return bool(wanted & tags)
        else:
            wanted, where = frozenset(metadata_all or ()), " WHERE tags @> %s::text[]"
            if not wanted:
                return self.everything(return_metadata)

            def accept(name: str, tags: FrozenSet[str]) -> bool:
                return wanted <= tags
        rows = self._rows("optimized_metadata_search", _SELECT + where, (sorted(wanted),))
        return self._collect(rows, return_metadata, accept)

    def remove_items(self, items: Iterable[str]) -> None:
        names = [name for name in items if _storable(name)]
        if names:
            self._change("remove_items", "DELETE FROM " + _TABLE + " WHERE name = ANY(%s)", (names,))

    @contextmanager
    def cleaning(self) -> Iterator[Optional[Callable[[Dict[str, str]], int]]]:
        """One autoclean round: yields ``remove(stale)`` if no other name server is cleaning, else None.

        ``remove`` takes ``{name: uri}`` and deletes each name only while it still has that
        uri (a fresh re-registration stays). Everything commits when the ``with`` ends, or
        not at all.
        """
        with self._session("autoclean") as conn, conn.transaction():
            if not conn.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", (_LOCK_SPACE, _CLEAN_LOCK)).fetchone()[0]:
                yield None
                return

            def remove(stale: Dict[str, str]) -> int:
                names = [name for name in stale if _storable(name)]
                if not names:
                    return 0
                return conn.execute(_DELETE_STALE, (names, [stale[name] for name in names])).rowcount
            yield remove

    def close(self) -> None:
        """Close the pooled connections; a later call opens new ones."""
        self._pool.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
