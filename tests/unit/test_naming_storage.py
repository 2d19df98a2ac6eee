"""The name server storages: in-memory, ``sql:<file>`` and ``dbm:<file>``.

The common interface is tested table-driven over all three. Where a storage's
``optimized_*`` method returns None, :func:`listing` does what the name server then does, so
every storage is held to what a name server client would see.
"""

from __future__ import annotations

import logging
import re
import sqlite3

import pytest

from pyro4compat._naming_memory import MemoryStorage
from pyro4compat.errors import NamingError
from pyro4compat.naming_storage import DbmStorage, SqlStorage, _prefix_upper_bound

pytestmark = pytest.mark.timeout(30)

ENTRIES = {
    "a.b": ("PYRO:ab@localhost:9001", {"t1", "t2"}),
    "a_c": ("PYRO:ac@localhost:9002", set()),
    "abc": ("PYRO:abc@localhost:9003", {"t1"}),
    "A.x": ("PYRO:Ax@localhost:9004", {"t2", "t3"}),
    "a%d": ("PYRO:apd@localhost:9005", {"t3"}),
    "ä.ü": ("PYRO:uml@localhost:9006", {"tag ü"}),
    "b": ("PYRO:b@localhost:9007", {"t1", "t2", "t3"}),
    "a\U0010ffffz": ("PYRO:max@localhost:9008", set()),
}

STORAGES = {
    "memory": lambda tmp: MemoryStorage(),
    "sql": lambda tmp: SqlStorage(str(tmp / "ns.sqlite")),
    "dbm": lambda tmp: DbmStorage(str(tmp / "ns.dbm")),
}
KEEPS_METADATA = {"memory": True, "sql": True, "dbm": False}
# A regex must match the whole name in Pyro4's DbmStorage (it appends "$"); elsewhere re.match.
REGEX_RULE = {"memory": lambda rx: re.compile(rx).match, "sql": lambda rx: re.compile(rx).match,
              "dbm": lambda rx: re.compile(rx + "$").match}


@pytest.fixture(params=sorted(STORAGES))
def kind(request):
    return request.param


@pytest.fixture
def storage(kind, tmp_path):
    store = STORAGES[kind](tmp_path)
    yield store
    store.close()


@pytest.fixture
def filled(storage):
    for name, value in ENTRIES.items():
        storage[name] = value
    return storage


def expected_value(kind, name):
    uri, tags = ENTRIES[name]
    return uri, set(tags) if KEEPS_METADATA[kind] else set()


def expected(kind, names, return_metadata):
    if return_metadata:
        return {name: expected_value(kind, name) for name in names}
    return {name: ENTRIES[name][0] for name in names}


def normalised(result):
    """Metadata sets of any kind (set, frozenset) compared as plain sets."""
    return {name: (v[0], set(v[1])) if isinstance(v, tuple) else v for name, v in result.items()}


def listing(storage, how, arg, return_metadata):
    """The storage's optimized answer, or the name server's fallback when it has none."""
    if how == "prefix":
        result = storage.optimized_prefix_list(arg, return_metadata)
        accept = lambda name, value: name.startswith(arg)  # noqa: E731
    elif how == "regex":
        result = storage.optimized_regex_list(arg, return_metadata)
        accept = lambda name, value: re.compile(arg).match(name)  # noqa: E731
    else:
        result = storage.optimized_metadata_search(return_metadata=return_metadata, **{how: arg})
        wanted = frozenset(arg)
        test = wanted.issubset if how == "metadata_all" else wanted.intersection
        accept = lambda name, value: test(value[1])  # noqa: E731
    if result is None:
        everything = storage.everything(return_metadata=True)
        result = {n: (v if return_metadata else v[0]) for n, v in everything.items() if accept(n, v)}
    return normalised(result)


# -- the mapping ---------------------------------------------------------------------------------


def test_set_get_contains_len_iter(kind, filled):
    assert len(filled) == len(ENTRIES)
    assert sorted(filled) == sorted(ENTRIES)
    for name in ENTRIES:
        assert name in filled
        uri, tags = filled[name]
        assert (uri, set(tags)) == expected_value(kind, name)
    assert "a" not in filled and "A.X" not in filled
    with pytest.raises(KeyError):
        filled["a"]
    assert filled.get("nope") is None


def test_overwrite_replaces_uri_and_metadata(kind, filled):
    filled["a.b"] = ("PYRO:new@localhost:1", {"fresh"})
    assert filled["a.b"][0] == "PYRO:new@localhost:1"
    assert set(filled["a.b"][1]) == ({"fresh"} if KEEPS_METADATA[kind] else set())
    filled["a.b"] = ("PYRO:new@localhost:2", None)
    assert filled["a.b"] == ("PYRO:new@localhost:2", set()) and len(filled) == len(ENTRIES)


@pytest.mark.parametrize("metadata", [None, set(), frozenset(), [], {"x"}, ["x", "y", "x"], ("é", "☃")])
def test_metadata_round_trip(kind, storage, metadata):
    storage["n"] = ("PYRO:n@localhost:1", metadata)
    uri, tags = storage["n"]
    assert isinstance(tags, (set, frozenset)) and all(isinstance(t, str) for t in tags)
    assert set(tags) == (set(metadata or ()) if KEEPS_METADATA[kind] else set())


# Deleting an unknown name: Pyro4's SqlStorage silently ignores it, the others raise KeyError.
DELETE_MISSING_RAISES = {"memory": True, "sql": False, "dbm": True}


def test_delete(kind, filled):
    del filled["a.b"]
    assert "a.b" not in filled and len(filled) == len(ENTRIES) - 1
    if DELETE_MISSING_RAISES[kind]:
        with pytest.raises(KeyError):
            del filled["a.b"]
    else:
        del filled["a.b"]
    assert len(filled) == len(ENTRIES) - 1


def test_mutable_mapping_mixins(kind, filled):
    assert filled.pop("b")[0] == ENTRIES["b"][0]
    assert "b" not in filled
    assert dict(filled.items())["abc"][0] == ENTRIES["abc"][0]
    assert sorted(filled.keys()) == sorted(set(ENTRIES) - {"b"})


# -- listings ------------------------------------------------------------------------------------

PREFIXES = ["a", "a.", "a_", "a%", "A", "ä", "b", "zzz", "a\U0010ffff", "abc", "abcd"]


@pytest.mark.parametrize("return_metadata", [False, True])
@pytest.mark.parametrize("prefix", PREFIXES)
def test_prefix_list_is_startswith(kind, filled, prefix, return_metadata):
    names = [n for n in ENTRIES if n.startswith(prefix)]
    assert listing(filled, "prefix", prefix, return_metadata) == expected(kind, names, return_metadata)


REGEXES = ["a", "a.", r"a\.", "a.c", ".*", "[aA]", "b", "x", "ä", r"a.\w"]


@pytest.mark.parametrize("return_metadata", [False, True])
@pytest.mark.parametrize("regex", REGEXES)
def test_regex_list(kind, filled, regex, return_metadata):
    names = [n for n in ENTRIES if REGEX_RULE[kind](regex)(n)]
    assert listing(filled, "regex", regex, return_metadata) == expected(kind, names, return_metadata)


@pytest.mark.parametrize("kind_", ["sql", "dbm"])
def test_invalid_regex_is_a_naming_error(kind_, tmp_path):
    store = STORAGES[kind_](tmp_path)
    try:
        with pytest.raises(NamingError, match=r"^invalid regex: (missing \), )?unterminated subpattern"):
            store.optimized_regex_list("a(")
    finally:
        store.close()


METADATA_SEARCHES = [
    ("metadata_all", ["t1"]), ("metadata_all", ["t1", "t2"]), ("metadata_all", {"t1", "t2", "t3"}),
    ("metadata_all", ["t1", "t1"]), ("metadata_all", ["nope"]), ("metadata_all", ["t1", "nope"]),
    ("metadata_all", ["tag ü"]),
    ("metadata_any", ["t1"]), ("metadata_any", ["t3", "nope"]), ("metadata_any", ["nope"]),
    ("metadata_any", ("t1", "t2", "t3")),
]


@pytest.mark.parametrize("return_metadata", [False, True])
@pytest.mark.parametrize("how, tags", METADATA_SEARCHES)
def test_metadata_search(kind, filled, how, tags, return_metadata):
    if not KEEPS_METADATA[kind]:
        with pytest.raises(NamingError, match="^DbmStorage doesn't support metadata$"):
            filled.optimized_metadata_search(return_metadata=return_metadata, **{how: tags})
        return
    wanted = set(tags)
    test = wanted.issubset if how == "metadata_all" else wanted.intersection
    names = [n for n, (uri, meta) in ENTRIES.items() if test(meta)]
    assert listing(filled, how, tags, return_metadata) == expected(kind, names, return_metadata)


@pytest.mark.parametrize("return_metadata", [False, True])
def test_everything(kind, filled, return_metadata):
    result = filled.everything(return_metadata)
    assert type(result) is dict
    assert normalised(result) == expected(kind, ENTRIES, return_metadata)
    filled["later"] = ("PYRO:later@localhost:1", None)
    assert "later" not in result  # a snapshot, not a view


def test_remove_items_skips_unknown_names(kind, filled):
    filled.remove_items(["a.b", "nope", "b", "b"])
    assert sorted(filled) == sorted(set(ENTRIES) - {"a.b", "b"})
    filled.remove_items(iter([]))
    assert len(filled) == len(ENTRIES) - 2


def test_clear_then_reuse(kind, filled):
    filled.clear()
    assert len(filled) == 0 and list(filled) == [] and filled.everything() == {}
    filled["x"] = ("PYRO:x@localhost:1", {"t"})
    assert filled["x"][0] == "PYRO:x@localhost:1"


def test_close_keeps_the_storage_usable(kind, filled):
    """Pyro4's ``close`` is a no-op: a storage is still usable afterwards (ours reopens)."""
    filled.close()
    filled.close()
    assert len(filled) == len(ENTRIES)
    filled["x"] = ("PYRO:x@localhost:1", None)
    assert "x" in filled


@pytest.mark.parametrize("kind_", ["sql", "dbm"])
def test_persistent_storages_reopen_with_the_same_contents(kind_, tmp_path):
    first = STORAGES[kind_](tmp_path)
    for name, value in ENTRIES.items():
        first[name] = value
    first.close()
    second = STORAGES[kind_](tmp_path)
    try:
        assert normalised(second.everything(True)) == expected(kind_, ENTRIES, True)
    finally:
        second.close()


# -- memory specifics ----------------------------------------------------------------------------


def test_memory_storage_leaves_filtering_to_the_name_server():
    store = MemoryStorage()
    store["a"] = ("PYRO:a@localhost:1", {"t"})
    assert store.optimized_prefix_list("a") is None
    assert store.optimized_regex_list("a", True) is None
    assert store.optimized_metadata_search(metadata_all={"t"}) is None
    assert isinstance(store, dict)


def test_memory_storage_stores_an_immutable_copy_of_the_metadata():
    tags = {"t1"}
    store = MemoryStorage(a=("PYRO:a@localhost:1", tags), b=("PYRO:b@localhost:1", None))
    tags.add("t2")
    assert store["a"] == ("PYRO:a@localhost:1", frozenset({"t1"}))
    assert store["b"] == ("PYRO:b@localhost:1", frozenset())
    store.update({"c": ("PYRO:c@localhost:1", ["x"])})
    assert store["c"][1] == frozenset({"x"})


def test_memory_storage_iteration_survives_changes():
    store = MemoryStorage()
    for i in range(5):
        store["n%d" % i] = ("PYRO:x@localhost:1", None)
    seen = []
    for name in store:
        seen.append(name)
        store.remove_items([name])
        store["new" + name] = ("PYRO:y@localhost:1", None)
    assert sorted(seen) == ["n0", "n1", "n2", "n3", "n4"]


# -- sql specifics -------------------------------------------------------------------------------


def test_sql_refuses_an_in_memory_database():
    with pytest.raises(ValueError) as info:
        SqlStorage(":memory:")
    assert str(info.value) == (
        "We don't support the sqlite :memory: database type. Just use the default volatile in-memory store."
    )


def columns(path, table):
    conn = sqlite3.connect(path)
    try:
        return [(c[1], c[2].lower(), c[3], c[5]) for c in conn.execute("PRAGMA table_info(%s)" % table)]
    finally:
        conn.close()


def test_sql_schema_is_pyro4s(tmp_path):
    path = str(tmp_path / "ns.sqlite")
    SqlStorage(path).close()
    assert columns(path, "pyro_names") == [("id", "integer", 0, 1), ("name", "nvarchar", 1, 0),
                                           ("uri", "nvarchar", 1, 0)]
    assert columns(path, "pyro_metadata") == [("object", "integer", 1, 0), ("metadata", "nvarchar", 1, 0)]


def test_sql_migrates_a_database_without_metadata(tmp_path):
    path = str(tmp_path / "old.sqlite")
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE pyro_names (id integer PRIMARY KEY, name nvarchar NOT NULL UNIQUE,"
                 " uri nvarchar NOT NULL)")
    conn.executemany("INSERT INTO pyro_names(name, uri) VALUES (?, ?)", [("x", "PYRO:x@h:1"), ("y", "PYRO:y@h:2")])
    conn.commit()
    conn.close()
    store = SqlStorage(path)
    try:
        assert store.everything(True) == {"x": ("PYRO:x@h:1", set()), "y": ("PYRO:y@h:2", set())}
        store["x"] = ("PYRO:x@h:1", {"now"})
        assert store.optimized_metadata_search(metadata_any=["now"]) == {"x": "PYRO:x@h:1"}
    finally:
        store.close()
    assert [c[0] for c in columns(path, "pyro_metadata")] == ["object", "metadata"]


def test_sql_refuses_a_file_that_is_not_a_database(tmp_path):
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not an sqlite database, not even close" * 100)
    with pytest.raises(sqlite3.DatabaseError):
        SqlStorage(str(path))


def test_sql_database_errors_become_naming_errors(tmp_path):
    path = str(tmp_path / "ns.sqlite")
    store = SqlStorage(path)
    try:
        vandal = sqlite3.connect(path)
        vandal.execute("DROP TABLE pyro_metadata")
        vandal.execute("DROP TABLE pyro_names")
        vandal.commit()
        vandal.close()
        with pytest.raises(NamingError, match=r"^sqlite error in getitem: no such table: pyro_names$"):
            store["x"]
        with pytest.raises(NamingError, match=r"^sqlite error in setitem: no such table: pyro_metadata$"):
            store["x"] = ("PYRO:x@h:1", None)
        with pytest.raises(NamingError, match=r"^sqlite error in len: "):
            len(store)
    finally:
        store.close()


@pytest.mark.parametrize("prefix, bound", [
    ("a", "b"), ("", None), ("ab", "ac"), ("a\U0010ffff", "b"), ("\U0010ffff\U0010ffff", None),
    ("x\ud7ff", "x\ue000"), ("z\U0010ffffq", "z\U0010ffffr"),
])
def test_prefix_upper_bound(prefix, bound):
    assert _prefix_upper_bound(prefix) == bound


def vm_steps(store, operation):
    """SQLite virtual-machine steps one call costs: a measure of work independent of the clock."""
    count = [0]

    def tick():
        count[0] += 1
        return 0

    store._conn.set_progress_handler(tick, 1)
    try:
        operation(store)
    finally:
        store._conn.set_progress_handler(None, 1)
    return count[0]


def bulk_filled(path, size):
    store = SqlStorage(path)
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany("INSERT INTO pyro_names(id, name, uri) VALUES (?, ?, ?)",
                         ((i, "n%06d" % i, "PYRO:o%d@h:1" % i) for i in range(size)))
        conn.executemany("INSERT INTO pyro_metadata(object, metadata) VALUES (?, ?)",
                         ((i, "common") for i in range(size)))
        conn.execute("INSERT INTO pyro_metadata(object, metadata) VALUES (42, 'rare')")
    conn.close()
    return store


BOUNDED_OPERATIONS = {
    "getitem": lambda s: s["n000042"],
    "contains": lambda s: "n000042" in s,
    "prefix": lambda s: s.optimized_prefix_list("n000042", True),
    "metadata_any": lambda s: s.optimized_metadata_search(metadata_any=["rare"], return_metadata=True),
    "metadata_all": lambda s: s.optimized_metadata_search(metadata_all=["rare"]),
    "setitem": lambda s: s.__setitem__("n000042", ("PYRO:x@h:1", {"rare", "common"})),
    "delitem": lambda s: s.__delitem__("n000042"),
}


@pytest.mark.parametrize("operation", sorted(BOUNDED_OPERATIONS))
def test_sql_work_does_not_grow_with_the_table(tmp_path, operation):
    small, large = bulk_filled(str(tmp_path / "small.sqlite"), 100), bulk_filled(str(tmp_path / "large.sqlite"), 5000)
    try:
        steps_small = vm_steps(small, BOUNDED_OPERATIONS[operation])
        steps_large = vm_steps(large, BOUNDED_OPERATIONS[operation])
    finally:
        small.close()
        large.close()
    assert steps_large < 2 * steps_small + 200, (steps_small, steps_large)


def test_sql_full_scan_is_visible_to_the_step_counter(tmp_path):
    """The measure above can fail: a listing of everything grows with the table."""
    small, large = bulk_filled(str(tmp_path / "small.sqlite"), 100), bulk_filled(str(tmp_path / "large.sqlite"), 5000)
    try:
        assert vm_steps(large, lambda s: s.everything()) > 10 * vm_steps(small, lambda s: s.everything())
    finally:
        small.close()
        large.close()


# -- dbm specifics -------------------------------------------------------------------------------


def test_dbm_drops_metadata_with_a_warning(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="Pyro4.naming_storage")
    store = DbmStorage(str(tmp_path / "ns.dbm"))
    store["x"] = ("PYRO:x@h:1", {"t"})
    store["y"] = ("PYRO:y@h:1", None)
    messages = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert messages == [("Pyro4.naming_storage", "WARNING", "DbmStorage doesn't support metadata, silently discarded")]
    assert store["x"] == ("PYRO:x@h:1", frozenset())


@pytest.mark.parametrize("return_metadata", [False, True])
def test_dbm_metadata_search_without_tags_lists_everything(tmp_path, return_metadata):
    store = DbmStorage(str(tmp_path / "ns.dbm"))
    store["x"] = ("PYRO:x@h:1", None)
    expected_result = {"x": ("PYRO:x@h:1", frozenset())} if return_metadata else {"x": "PYRO:x@h:1"}
    assert store.optimized_metadata_search(metadata_all=[], return_metadata=return_metadata) == expected_result
    assert store.optimized_metadata_search(return_metadata=return_metadata) == expected_result


def test_dbm_errors_become_naming_errors(tmp_path):
    store = DbmStorage(str(tmp_path / "ns.dbm"))
    for leftover in tmp_path.iterdir():
        leftover.unlink()
    with pytest.raises(NamingError, match=r"^dbm error in len: "):
        len(store)
    with pytest.raises(NamingError, match=r"^dbm error in setitem: "):
        store["x"] = ("PYRO:x@h:1", None)
