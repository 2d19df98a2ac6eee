"""Storage files are shared with real Pyro4 4.82: each side reads what the other wrote.

Real Pyro4 runs in a child process (the ``pyro4`` fixture); sets cross that boundary as
sorted lists.
"""

from __future__ import annotations

import sqlite3

import pytest

from pyro4compat.naming_storage import DbmStorage, SqlStorage

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

ENTRIES = [
    ("Pyro.NameServer", "PYRO:Pyro.NameServer@localhost:9090", ["class:Pyro4.naming.NameServer"]),
    ("example.greeting", "PYRO:obj_1@localhost:50001", ["class:Greeter", "lang:en"]),
    ("example.other", "PYRO:obj_2@localhost:50002", []),
    ("exampleX", "PYRO:obj_3@localhost:50003", ["lang:en"]),
    ("ünïcode.näme", "PYRO:obj_4@localhost:50004", ["tag ☃", "lang:de"]),
    ("other", "PYRO:obj_5@localhost:50005", ["class:Greeter", "lang:de", "lang:en"]),
]
# Prefixes and tag searches on which Pyro4's LIKE-based prefix listing agrees with startswith.
PREFIXES = ["example.", "example", "ünïcode", "Pyro.", "zzz"]
SEARCHES = [
    ("metadata_all", ["lang:en"]), ("metadata_all", ["class:Greeter", "lang:en"]), ("metadata_all", ["nope"]),
    ("metadata_any", ["lang:de"]), ("metadata_any", ["tag ☃", "class:Greeter"]), ("metadata_any", ["nope"]),
]

# Under real Pyro4: write INPUT["write"] files, read INPUT["read"] files, report both.
PYRO4_SIDE = """
from Pyro4.naming_storage import SqlStorage, DbmStorage

def plain(result):
    return {name: (v[0], sorted(v[1])) if isinstance(v, tuple) else v for name, v in result.items()}

def report(store, with_queries):
    out = {"everything": plain(store.everything(return_metadata=True)), "len": len(store),
           "names": sorted(store), "items": {n: plain({n: store[n]})[n] for n in store}}
    if with_queries:
        out["prefix"] = [plain(store.optimized_prefix_list(p, True)) for p in INPUT["prefixes"]]
        out["search"] = [plain(store.optimized_metadata_search(return_metadata=True, **{how: tags}))
                         for how, tags in INPUT["searches"]]
    return out

OUTPUT = {}
for kind, path in INPUT["write"]:
    store = SqlStorage(path) if kind == "sql" else DbmStorage(path)
    for name, uri, tags in INPUT["entries"]:
        store[name] = (uri, set(tags) if kind == "sql" else None)
    store.close()
for kind, path in INPUT["read"]:
    store = SqlStorage(path) if kind == "sql" else DbmStorage(path)
    OUTPUT[kind] = report(store, kind == "sql")
"""

OPENERS = {"sql": SqlStorage, "dbm": DbmStorage}


def plain(result):
    return {name: (v[0], sorted(v[1])) if isinstance(v, tuple) else v for name, v in result.items()}


def expected_everything(kind):
    return {name: (uri, sorted(tags) if kind == "sql" else []) for name, uri, tags in ENTRIES}


def pyro4_input(write=(), read=()):
    return {"write": list(write), "read": list(read), "entries": ENTRIES, "prefixes": PREFIXES,
            "searches": SEARCHES}


@pytest.mark.parametrize("kind", ["sql", "dbm"])
def test_we_read_what_pyro4_wrote(pyro4, tmp_path, kind):
    path = str(tmp_path / ("ns." + kind))
    pyro4(PYRO4_SIDE, pyro4_input(write=[(kind, path)]))
    store = OPENERS[kind](path)
    try:
        assert plain(store.everything(return_metadata=True)) == expected_everything(kind)
        assert sorted(store) == sorted(name for name, _, _ in ENTRIES)
        for name, uri, tags in ENTRIES:
            assert store[name][0] == uri and sorted(store[name][1]) == (sorted(tags) if kind == "sql" else [])
        # and it stays writable: a change is visible, the rest untouched
        store["example.other"] = ("PYRO:moved@localhost:1", {"moved"} if kind == "sql" else None)
        assert store["example.other"][0] == "PYRO:moved@localhost:1" and len(store) == len(ENTRIES)
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["sql", "dbm"])
def test_pyro4_reads_what_we_wrote(pyro4, tmp_path, kind):
    path = str(tmp_path / ("ns." + kind))
    store = OPENERS[kind](path)
    try:
        for name, uri, tags in ENTRIES:
            store[name] = (uri, set(tags) if kind == "sql" else None)
        ours = {"everything": plain(store.everything(return_metadata=True)), "len": len(store),
                "names": sorted(store), "items": {n: plain({n: store[n]})[n] for n in store}}
        if kind == "sql":
            ours["prefix"] = [plain(store.optimized_prefix_list(p, True)) for p in PREFIXES]
            ours["search"] = [plain(store.optimized_metadata_search(return_metadata=True, **{how: tags}))
                              for how, tags in SEARCHES]
    finally:
        store.close()
    theirs = pyro4(PYRO4_SIDE, pyro4_input(read=[(kind, path)]))[kind]
    assert theirs["everything"] == expected_everything(kind)
    assert theirs == ours


def test_both_write_the_same_sql_schema(pyro4, tmp_path):
    theirs, ours = str(tmp_path / "theirs.sqlite"), str(tmp_path / "ours.sqlite")
    pyro4(PYRO4_SIDE, pyro4_input(write=[("sql", theirs)]))
    store = SqlStorage(ours)
    for name, uri, tags in ENTRIES:
        store[name] = (uri, set(tags))
    store.close()

    def describe(path):
        conn = sqlite3.connect(path)
        try:
            tables = {t: conn.execute("PRAGMA table_info(%s)" % t).fetchall() for t in ("pyro_names", "pyro_metadata")}
            tables["fk"] = conn.execute("PRAGMA foreign_key_list(pyro_metadata)").fetchall()
            tables["rows"] = sorted(conn.execute(
                "SELECT n.name, n.uri, m.metadata FROM pyro_names n LEFT JOIN pyro_metadata m ON m.object = n.id"
            ).fetchall(), key=repr)
            return tables
        finally:
            conn.close()

    assert describe(ours) == describe(theirs)


OLD_SCHEMA = (
    "CREATE TABLE pyro_names (id integer PRIMARY KEY, name nvarchar NOT NULL UNIQUE, uri nvarchar NOT NULL)"
)

ERRORS_AND_MIGRATION = """
import re, sqlite3
from Pyro4.naming_storage import SqlStorage, DbmStorage
from Pyro4.errors import NamingError

def failure(call):
    try:
        call()
    except Exception as exc:
        return [type(exc).__name__, str(exc)]
    return None

OUTPUT = {}
OUTPUT["memory"] = failure(lambda: SqlStorage(":memory:"))
dbm_store = DbmStorage(INPUT["dbm"])
OUTPUT["dbm_meta"] = failure(lambda: dbm_store.optimized_metadata_search(metadata_any=["x"]))
OUTPUT["dbm_regex"] = failure(lambda: dbm_store.optimized_regex_list("a("))
OUTPUT["dbm_regex_semantics"] = sorted(dbm_store.optimized_regex_list("ab|x"))
sql_store = SqlStorage(INPUT["broken"])
conn = sqlite3.connect(INPUT["broken"]); conn.execute("DROP TABLE pyro_metadata")
conn.execute("DROP TABLE pyro_names"); conn.commit(); conn.close()
OUTPUT["sql_get"] = failure(lambda: sql_store["x"])
OUTPUT["sql_len"] = failure(lambda: len(sql_store))
migrated = SqlStorage(INPUT["old"])
OUTPUT["migrated"] = {n: (v[0], sorted(v[1])) for n, v in migrated.everything(True).items()}
"""


def make_old_schema_file(path):
    conn = sqlite3.connect(path)
    conn.execute(OLD_SCHEMA)
    conn.executemany("INSERT INTO pyro_names(name, uri) VALUES (?, ?)", [(n, u) for n, u, _ in ENTRIES])
    conn.commit()
    conn.close()


def failure(call):
    try:
        call()
    except Exception as exc:
        return [type(exc).__name__, str(exc)]
    return None


def test_errors_and_migration_match_pyro4(pyro4, tmp_path):
    paths = {key: str(tmp_path / key) for key in ("dbm", "broken", "old", "our_dbm", "our_broken", "our_old")}
    for key in ("old", "our_old"):
        make_old_schema_file(paths[key])
    for key in ("dbm", "our_dbm"):
        store = DbmStorage(paths[key])
        for name in ("ab", "abc", "x", "xy"):
            store[name] = ("PYRO:%s@localhost:1" % name, None)
    theirs = pyro4(ERRORS_AND_MIGRATION, paths)

    dbm_store = DbmStorage(paths["our_dbm"])
    sql_store = SqlStorage(paths["our_broken"])
    migrated = SqlStorage(paths["our_old"])
    try:
        conn = sqlite3.connect(paths["our_broken"])
        conn.execute("DROP TABLE pyro_metadata")
        conn.execute("DROP TABLE pyro_names")
        conn.commit()
        conn.close()
        ours = {
            "memory": failure(lambda: SqlStorage(":memory:")),
            "dbm_meta": failure(lambda: dbm_store.optimized_metadata_search(metadata_any=["x"])),
            "dbm_regex": failure(lambda: dbm_store.optimized_regex_list("a(")),
            "dbm_regex_semantics": sorted(dbm_store.optimized_regex_list("ab|x")),
            "sql_get": failure(lambda: sql_store["x"]),
            "sql_len": failure(lambda: len(sql_store)),
            "migrated": plain(migrated.everything(True)),
        }
    finally:
        sql_store.close()
        migrated.close()
    assert ours == theirs
    assert ours["migrated"] == {name: (uri, []) for name, uri, _ in ENTRIES}
    assert ours["sql_get"] == ["NamingError", "sqlite error in getitem: no such table: pyro_names"]
