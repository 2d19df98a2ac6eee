"""Persistent storages of the name server: ``sql:<file>`` (SQLite) and ``dbm:<file>``.

The shared ``postgresql://`` storage lives in :mod:`pyro4compat._naming_postgresql` and is
re-exported here as ``PostgresqlStorage``.

A storage is a mutable mapping ``name -> (uri_string, metadata_set)`` plus the extra methods
the name server calls (``optimized_prefix_list``, ``optimized_regex_list``,
``optimized_metadata_search``, ``everything``, ``remove_items``, ``close``). The in-memory
storage lives in :mod:`pyro4compat._naming_memory`.

Theory of operation
-------------------
``SqlStorage`` keeps Pyro4 4.82's file format (tables ``pyro_names(id, name UNIQUE, uri)`` and
``pyro_metadata(object, metadata)``), so a database written by either name server opens in
the other. What it does differently, keeping that format:

* **One connection, one lock.** A ``sqlite3`` connection may not be used by two threads at
  once, and the name server serves from many threads; every method takes ``self._lock`` for
  its whole duration. SQLite itself serialises writers of different processes (file locks,
  waited for up to ``_BUSY_TIMEOUT`` seconds).
* **Durable.** Each mutating call runs in its own ``BEGIN IMMEDIATE ... COMMIT`` and returns
  only after the commit. The journal stays SQLite's default rollback journal (WAL would be
  recorded in the file and needs shared memory beside it, which breaks network filesystems
  and older readers); ``synchronous=FULL`` makes the commit reach the disk, so an
  acknowledged registration survives the process being killed and the machine losing power.
* **Bounded work.** Lookups and prefix listings use the index of the ``UNIQUE`` name column
  (a range query, never ``LIKE``, whose ``_``/``%`` wildcards and ASCII case folding would
  not be Pyro4's ``str.startswith``); two indexes on ``pyro_metadata`` (added if missing, an
  addition Pyro4 ignores) keep metadata joins and foreign-key checks off full scans;
  listings with metadata are one joined query instead of one query per name.
* ``optimized_regex_list`` answers (Pyro4's returns None, making the name server fetch every
  row one query at a time) with the name server's own semantics: ``re.match`` on the name.

Kept from Pyro4 on purpose: deleting an unknown name from ``SqlStorage`` is silently
ignored; its metadata comes back as a ``set``, ``DbmStorage``'s as an empty ``frozenset``;
``:memory:`` is refused with Pyro4's ``ValueError``; an unreadable file fails the
constructor with ``sqlite3.DatabaseError``, later failures are ``NamingError("sqlite error
in <operation>: ...")``. Not kept: Pyro4's ``__getattr__`` that raises NotImplementedError for
any unknown attribute (it breaks ``hasattr``, ``copy`` and mocks, and no caller relies on it).

``DbmStorage`` is Pyro4's: no metadata (metadata given is dropped with a logged warning, a
metadata search with tags is a :class:`NamingError`), the dbm file opened per operation
under a lock (dbm files allow no concurrent use), regexes matched with an appended ``$``.
"""

from __future__ import annotations

import dbm
import importlib
import logging
import re
import sqlite3
import sys
import threading
import weakref
from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import closing, contextmanager
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from ._naming_postgresql import PostgresqlStorage
from .errors import NamingError

# Pyro4's module has no __all__, so its star-import also yields what it imported: the second line.
# PostgresqlStorage (ours) is importable by name but left out, so the star surface stays Pyro4's.
__all__ = ["SqlStorage", "DbmStorage",
           "MutableMapping", "NamingError", "closing", "dbm", "log", "logging", "re", "sqlite3", "sys", "threading"]

log = logging.getLogger("Pyro4.naming_storage")

_BUSY_TIMEOUT = 10.0  # seconds to wait for another process's lock on the database
_MAX_CODEPOINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)

# Pyro4's tables, column for column: both name servers read and write the same files.
_CREATE_NAMES = (
    "CREATE TABLE pyro_names (id integer PRIMARY KEY, name nvarchar NOT NULL UNIQUE, uri nvarchar NOT NULL)"
)
_CREATE_METADATA = (
    "CREATE TABLE pyro_metadata (object integer NOT NULL, metadata nvarchar NOT NULL,"
    " FOREIGN KEY(object) REFERENCES pyro_names(id))"
)
# Indexes Pyro4 never made: harmless to it, they keep per-name metadata work logarithmic.
_INDEXES = {
    "pyro4compat_metadata_object": "CREATE INDEX IF NOT EXISTS pyro4compat_metadata_object ON pyro_metadata(object)",
    "pyro4compat_metadata_value": "CREATE INDEX IF NOT EXISTS pyro4compat_metadata_value ON pyro_metadata(metadata)",
}
# A database of Pyro4 before metadata existed has pyro_names only: move its rows over.
_MIGRATE_OLD_SCHEMA = (
    "ALTER TABLE pyro_names RENAME TO pyro_names_premetadata",
    _CREATE_NAMES,
    _CREATE_METADATA,
    "INSERT INTO pyro_names(name, uri) SELECT name, uri FROM pyro_names_premetadata",
    "DROP TABLE pyro_names_premetadata",
)

_DELETE_METADATA_OF = "DELETE FROM pyro_metadata WHERE object IN (SELECT id FROM pyro_names WHERE name=?)"
_DELETE_NAME = "DELETE FROM pyro_names WHERE name=?"
_SELECT_PLAIN = "SELECT n.name, n.uri FROM pyro_names AS n"
_SELECT_WITH_METADATA = (
    "SELECT n.name, n.uri, m.metadata FROM pyro_names AS n LEFT JOIN pyro_metadata AS m ON m.object = n.id"
)
_REGEX_FUNCTION = "pyro4compat_regex_match"

_Value = Tuple[str, Any]


def _prefix_upper_bound(prefix: str) -> Optional[str]:
    """The least string greater than every string that starts with ``prefix`` (None: no bound).

    With SQLite's BINARY collation over UTF-8, ``prefix <= name < bound`` is exactly
    ``name.startswith(prefix)`` and is answered from the index on ``name``.
    """
    stem = prefix.rstrip(chr(_MAX_CODEPOINT))
    if not stem:
        return None
    successor = ord(stem[-1]) + 1
    if successor in _SURROGATES:  # not encodable; the next code point SQLite can hold
        successor = _SURROGATES.stop
    return stem[:-1] + chr(successor)


def _regex_matches(pattern: str, name: Any) -> bool:
    return isinstance(name, str) and re.match(pattern, name) is not None


def _fold_metadata(rows: Iterable[Sequence[Any]]) -> Dict[str, Tuple[str, Set[str]]]:
    """Rows of ``(name, uri, tag_or_None)`` from the metadata join -> ``{name: (uri, tags)}``."""
    result: Dict[str, Tuple[str, Set[str]]] = {}
    for name, uri, tag in rows:
        entry = result.get(name)
        if entry is None:
            entry = result[name] = (uri, set())
        if tag is not None:
            entry[1].add(tag)
    return result


@contextmanager
def _sqlite_errors(operation: str) -> Iterator[None]:
    """Database failures reach the name server's client as Pyro4's NamingError text."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise NamingError("sqlite error in %s: %s" % (operation, exc)) from exc


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` takes the write lock up front (no lock-upgrade deadlock between
    processes); the caller returns only after ``COMMIT``."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _missing_schema_parts(conn: sqlite3.Connection) -> List[str]:
    present = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
    if "pyro_names" not in present:
        return ["create"] + list(_INDEXES)
    missing = [] if "pyro_metadata" in present else ["migrate"]
    return missing + [index for index in _INDEXES if index not in present]


_SCHEMA_STEPS = {"create": (_CREATE_NAMES, _CREATE_METADATA), "migrate": _MIGRATE_OLD_SCHEMA}
_SCHEMA_STEPS.update({index: (sql,) for index, sql in _INDEXES.items()})


def _prepare_schema(conn: sqlite3.Connection) -> None:
    """Create Pyro4's tables, migrate a pre-metadata database, add our indexes.

    Checked first without a write lock, so a read-only database that already has
    everything opens; rechecked under the lock because another process may be doing
    the same at the same moment.
    """
    if not _missing_schema_parts(conn):
        return
    try:
        with _transaction(conn):
            for part in _missing_schema_parts(conn):
                for statement in _SCHEMA_STEPS[part]:
                    conn.execute(statement)
    except sqlite3.OperationalError:
        if any(part not in _INDEXES for part in _missing_schema_parts(conn)):
            raise
        log.warning("could not add indexes to the name server database (read-only?); continuing without")


class SqlStorage(MutableMapping):
    """Name server storage in an SQLite database file, in Pyro4 4.82's format.

    Thread-safe and durable, see the module docstring. Deleting an unknown name is not an
    error, as in Pyro4. ``close()`` releases the connection; a later call reopens it.
    """

    def __init__(self, dbfile: str) -> None:
        if dbfile == ":memory:":
            raise ValueError(
                "We don't support the sqlite :memory: database type. Just use the default volatile in-memory store."
            )
        self.dbfile = dbfile
        self._lock = threading.Lock()
        self._conn: Optional[sqlite3.Connection] = None
        self._closer: Optional[weakref.finalize] = None
        self._utf8 = True
        with self._lock:
            conn = self._connection()
            try:
                self._utf8 = conn.execute("PRAGMA encoding").fetchone()[0] == "UTF-8"
                _prepare_schema(conn)
            except BaseException:
                self._disconnect()
                raise

    def __repr__(self) -> str:
        return "<%s.%s %r>" % (type(self).__module__, type(self).__name__, self.dbfile)

    # -- connection ------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        """The open connection (opened on first use and after ``close``); call with the lock held."""
        if self._conn is None:
            conn = sqlite3.connect(self.dbfile, timeout=_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
            try:
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("PRAGMA synchronous=FULL")
                conn.create_function(_REGEX_FUNCTION, 2, _regex_matches, deterministic=True)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
            self._closer = weakref.finalize(self, conn.close)  # no leaked connection if never closed
        return self._conn

    def _disconnect(self) -> None:
        if self._closer is not None:
            self._closer()
        self._conn = self._closer = None

    @contextmanager
    def _reading(self, operation: str) -> Iterator[sqlite3.Connection]:
        with self._lock, _sqlite_errors(operation):
            yield self._connection()

    @contextmanager
    def _writing(self, operation: str) -> Iterator[sqlite3.Connection]:
        with self._lock, _sqlite_errors(operation), _transaction(self._connection()) as conn:
            yield conn

    # -- mapping ---------------------------------------------------------------------------------

    def __getitem__(self, item: str) -> Tuple[str, Set[str]]:
        with self._reading("getitem") as conn:
            rows = conn.execute(_SELECT_WITH_METADATA + " WHERE n.name=?", (item,)).fetchall()
        if not rows:
            raise KeyError(item)
        return _fold_metadata(rows)[rows[0][0]]

    def __setitem__(self, key: str, value: _Value) -> None:
        uri, metadata = value
        tags = set(metadata) if metadata else ()
        with self._writing("setitem") as conn:
            conn.execute(_DELETE_METADATA_OF, (key,))
            conn.execute(_DELETE_NAME, (key,))
            object_id = conn.execute("INSERT INTO pyro_names(name, uri) VALUES (?, ?)", (key, uri)).lastrowid
            rows = [(object_id, tag) for tag in tags]
            conn.executemany("INSERT INTO pyro_metadata(object, metadata) VALUES (?, ?)", rows)

    def __delitem__(self, key: str) -> None:
        with self._writing("delitem") as conn:
            conn.execute(_DELETE_METADATA_OF, (key,))
            conn.execute(_DELETE_NAME, (key,))

    def __len__(self) -> int:
        with self._reading("len") as conn:
            return conn.execute("SELECT count(*) FROM pyro_names").fetchone()[0]

    def __contains__(self, item: object) -> bool:
        with self._reading("contains") as conn:
            return conn.execute("SELECT 1 FROM pyro_names WHERE name=?", (item,)).fetchone() is not None

    def __iter__(self) -> Iterator[str]:
        with self._reading("iter") as conn:
            names = [name for (name,) in conn.execute("SELECT name FROM pyro_names")]
        return iter(names)

    def clear(self) -> None:
        with self._writing("clear") as conn:
            conn.execute("DELETE FROM pyro_metadata")
            conn.execute("DELETE FROM pyro_names")
        with self._reading("clear") as conn:
            conn.execute("VACUUM")  # give the space back, as Pyro4 does; not allowed inside a transaction

    # -- the name server's extra methods ---------------------------------------------------------

    def _select(self, operation: str, where: str, params: Sequence[Any], return_metadata: bool) -> Dict[str, Any]:
        with self._reading(operation) as conn:
            if return_metadata:
                return _fold_metadata(conn.execute(_SELECT_WITH_METADATA + where, params))
            return dict(conn.execute(_SELECT_PLAIN + where, params))

    def optimized_prefix_list(self, prefix: str, return_metadata: bool = False) -> Dict[str, Any]:
        """Registrations whose name starts with ``prefix`` (``str.startswith``, case-sensitive)."""
        where, params = " WHERE substr(n.name, 1, ?) = ?", [len(prefix), prefix]
        upper = _prefix_upper_bound(prefix)
        if self._utf8:  # byte order is code point order only in UTF-8: then the index can narrow it
            where += " AND n.name >= ?" + ("" if upper is None else " AND n.name < ?")
            params += [prefix] if upper is None else [prefix, upper]
        return self._select("optimized_prefix_list", where, params, return_metadata)

    def optimized_regex_list(self, regex: str, return_metadata: bool = False) -> Dict[str, Any]:
        """Registrations whose name ``re.match``-es ``regex``: the name server's own fallback rule."""
        try:
            re.compile(regex)
        except re.error as exc:
            raise NamingError("invalid regex: " + str(exc)) from None
        where = " WHERE %s(?, n.name)" % _REGEX_FUNCTION
        return self._select("optimized_regex_list", where, [regex], return_metadata)

    def optimized_metadata_search(
        self,
        metadata_all: Optional[Iterable[str]] = None,
        metadata_any: Optional[Iterable[str]] = None,
        return_metadata: bool = False,
    ) -> Dict[str, Any]:
        """Registrations having every tag of ``metadata_all``, or (if given) any of ``metadata_any``.

        ``metadata_any`` wins when both are given, as in Pyro4; no tags at all to require
        means every registration qualifies.
        """
        if metadata_any:
            tags = list(set(metadata_any))
            where = " WHERE n.id IN (SELECT object FROM pyro_metadata WHERE metadata IN (%s))"
        else:
            tags = list(set(metadata_all or ()))
            if not tags:
                return self.everything(return_metadata)
            where = (
                " WHERE n.id IN (SELECT object FROM pyro_metadata WHERE metadata IN (%s)"
                " GROUP BY object HAVING count(DISTINCT metadata) = ?)"
            )
        params = tags if metadata_any else tags + [len(tags)]
        where = where % ",".join("?" * len(tags))
        return self._select("optimized_metadata_search", where, params, return_metadata)

    def everything(self, return_metadata: bool = False) -> Dict[str, Any]:
        return self._select("everything", "", (), return_metadata)

    def remove_items(self, items: Iterable[str]) -> None:
        names = [(name,) for name in items]
        with self._writing("remove_items") as conn:
            conn.executemany(_DELETE_METADATA_OF, names)
            conn.executemany(_DELETE_NAME, names)

    def close(self) -> None:
        with self._lock:
            self._disconnect()


class DbmStorage(MutableMapping):
    """Name server storage in a dbm file, as Pyro4 4.82 has it: names and URIs, no metadata.

    Keys and values are stored UTF-8 encoded. dbm files allow no concurrent use, so the file
    is opened for each operation under ``self.lock`` (slow, but other tools can read it
    between operations, and each change is on disk when the call returns).
    """

    def __init__(self, dbmfile: str) -> None:
        self.dbmfile = dbmfile
        dbm.open(self.dbmfile, "c", 0o600).close()
        self.lock = threading.Lock()

    def __repr__(self) -> str:
        return "<%s.%s %r>" % (type(self).__module__, type(self).__name__, self.dbmfile)

    @contextmanager
    def _opened(self, operation: str, flag: str = "r") -> Iterator[Any]:
        with self.lock:
            try:
                db = dbm.open(self.dbmfile, flag)
                try:
                    yield db
                finally:
                    db.close()
            except dbm.error as exc:
                raise NamingError("dbm error in %s: %s" % (operation, exc)) from exc

    def _entries(self, operation: str, accept: Any, return_metadata: bool) -> Dict[str, Any]:
        """Every entry whose decoded name ``accept`` approves, as the name server lists them."""
        result: Dict[str, Any] = {}
        with self._opened(operation) as db:
            for key in db.keys():
                name = key.decode("utf-8")
                if accept(name):
                    uri = db[key].decode("utf-8")
                    result[name] = (uri, frozenset()) if return_metadata else uri
        return result

    def __getitem__(self, item: str) -> Tuple[str, frozenset]:
        key = item.encode("utf-8")
        with self._opened("getitem") as db:
            return db[key].decode("utf-8"), frozenset()

    def __setitem__(self, key: str, value: _Value) -> None:
        uri, metadata = value
        if metadata:
            log.warning("DbmStorage doesn't support metadata, silently discarded")
        encoded_key, encoded_uri = key.encode("utf-8"), uri.encode("utf-8")
        with self._opened("setitem", "w") as db:
            db[encoded_key] = encoded_uri

    def __delitem__(self, key: str) -> None:
        encoded_key = key.encode("utf-8")
        with self._opened("delitem", "w") as db:
            del db[encoded_key]

    def __len__(self) -> int:
        with self._opened("len") as db:
            return len(db)

    def __contains__(self, item: object) -> bool:
        key = item.encode("utf-8")  # type: ignore[attr-defined]
        with self._opened("contains") as db:
            return key in db

    def __iter__(self) -> Iterator[str]:
        with self._opened("iter") as db:
            names = [key.decode("utf-8") for key in db.keys()]
        return iter(names)

    def clear(self) -> None:
        """Empty the file by recreating it in its own dbm flavour (one write, not one per key)."""
        with self.lock:
            flavour = dbm.whichdb(self.dbmfile)
            if flavour:
                try:
                    importlib.import_module(flavour).open(self.dbmfile, "n", 0o600).close()
                except dbm.error as exc:
                    raise NamingError("dbm error in clear: %s" % exc) from exc
                return
        with self._opened("clear", "w") as db:  # unrecognised file: let dbm report it
            for key in list(db.keys()):
                del db[key]

    def optimized_prefix_list(self, prefix: str, return_metadata: bool = False) -> Dict[str, Any]:
        return self._entries("optimized_prefix_list", lambda name: name.startswith(prefix), return_metadata)

    def optimized_regex_list(self, regex: str, return_metadata: bool = False) -> Dict[str, Any]:
        """Names the regex matches up to their end (Pyro4's dbm rule: ``regex + "$"``)."""
        try:
            compiled = re.compile(regex + "$")
        except re.error as exc:
            raise NamingError("invalid regex: " + str(exc)) from None
        return self._entries("optimized_regex_list", compiled.match, return_metadata)

    def optimized_metadata_search(
        self,
        metadata_all: Optional[Iterable[str]] = None,
        metadata_any: Optional[Iterable[str]] = None,
        return_metadata: bool = False,
    ) -> Dict[str, Any]:
        if metadata_all or metadata_any:
            raise NamingError("DbmStorage doesn't support metadata")
        return self.everything(return_metadata)

    def everything(self, return_metadata: bool = False) -> Dict[str, Any]:
        return self._entries("everything", lambda name: True, return_metadata)

    def remove_items(self, items: Iterable[str]) -> None:
        with self._opened("remove_items", "w") as db:
            for item in items:
                try:
                    del db[item.encode("utf-8")]
                except KeyError:
                    pass

    def close(self) -> None:
        """Nothing stays open between operations."""
