"""The ``postgresql://`` storage against a real PostgreSQL: every operation, Pyro4's semantics.

Each test gets a fresh database of the session's private cluster (``pg_url``); several
storages or name servers on one URL stand for several name servers on several hosts.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest

from pyro4compat import constants, naming
from pyro4compat._naming_postgresql import SCHEMA_VERSION, regex_literal_prefix
from pyro4compat.errors import NamingError
from pyro4compat.naming_storage import PostgresqlStorage

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
NS_URI = "PYRO:Pyro.NameServer@127.0.0.1:9999"
NAMES = ["a.b", "a_b", "a%b", "aXb", "A.b", "ab", "a.b.c", "é.x", "é", "z\ny", "line\n", "x$", "☃.snow", "a"]


def uri_of(name: str) -> str:
    return "PYRO:obj_%d@localhost:%d" % (NAMES.index(name), 1000 + NAMES.index(name))


@pytest.fixture
def store(pg_url):
    storage = PostgresqlStorage(pg_url)
    yield storage
    storage.close()


@pytest.fixture
def filled(store):
    for number, name in enumerate(NAMES):
        store[name] = (uri_of(name), {"n%d" % (number % 3), "all"} if number % 2 else None)
    return store


def test_mapping_operations(store):
    assert len(store) == 0 and list(store) == [] and "x" not in store
    store["x"] = ("PYRO:x@localhost:1", {"t1", "t2"})
    store["y"] = ("PYRO:y@localhost:2", None)
    assert store["x"] == ("PYRO:x@localhost:1", frozenset({"t1", "t2"}))
    assert store["y"] == ("PYRO:y@localhost:2", frozenset())
    assert len(store) == 2 and sorted(store) == ["x", "y"] and "x" in store
    store["x"] = ("PYRO:x2@localhost:1", ())  # replaces uri and tags
    assert store["x"] == ("PYRO:x2@localhost:1", frozenset())
    del store["x"]
    del store["nope"]  # unknown: ignored, as SqlStorage does
    with pytest.raises(KeyError):
        store["x"]
    assert store.everything() == {"y": "PYRO:y@localhost:2"}
    assert store.everything(return_metadata=True) == {"y": ("PYRO:y@localhost:2", frozenset())}
    store.remove_items(["y", "unknown"])
    assert len(store) == 0
    store["z"] = ("PYRO:z@localhost:3", None)
    store.clear()
    assert len(store) == 0


def test_insert_new_and_replace_metadata(store):
    assert store.insert_new("n", ("PYRO:n@localhost:1", {"a"})) is True
    assert store.insert_new("n", ("PYRO:other@localhost:1", None)) is False
    assert store["n"] == ("PYRO:n@localhost:1", frozenset({"a"}))
    assert store.replace_metadata("n", {"b", "c"}) is True
    assert store["n"] == ("PYRO:n@localhost:1", frozenset({"b", "c"}))
    assert store.replace_metadata("missing", {"b"}) is False


def test_names_postgresql_cannot_hold(store):
    assert "a\x00b" not in store
    with pytest.raises(KeyError):
        store["a\x00b"]
    with pytest.raises(NamingError, match="postgresql storage .* error in setitem"):
        store["a\x00b"] = ("PYRO:x@localhost:1", None)
    assert store.optimized_prefix_list("a\x00") == {}
    assert len(store) == 0  # and the failed write did not break the connection


@pytest.mark.parametrize("prefix", ["a", "a.", "a_", "a%", "A", "é", "☃", "z\n", "", "a.b.c.d", "\U0010ffff"])
def test_prefix_is_startswith(filled, prefix):
    expected = {name: uri_of(name) for name in NAMES if name.startswith(prefix)}
    assert filled.optimized_prefix_list(prefix) == expected
    with_tags = filled.optimized_prefix_list(prefix, return_metadata=True)
    assert {name: uri for name, (uri, _) in with_tags.items()} == expected


# Patterns on which PostgreSQL's ``~`` disagrees with Python's re.match over NAMES.
REGEXES = [
    "b",            # ~ searches anywhere; re.match anchors at the start
    r"a\.b$",       # both anchor, but
    "line$",        # Python's $ also matches before a trailing newline
    "x\\$",         # literal $
    r"\w\.",        # \w is Unicode in Python
    "(?i)a.b",      # inline flag: Python syntax
    "a(?=X)",       # lookahead
    "(?P<p>a)_b",   # named group: Python only
    "a|é",          # alternation: no literal prefix may be used
    "ab*",          # quantified last literal
    "a.b",
    "a{2}",
    ".*",
    "A",
]


@pytest.mark.parametrize("regex", REGEXES)
def test_regex_is_python_re_match(filled, regex):
    expected = {name: uri_of(name) for name in NAMES if re.match(regex, name)}
    assert filled.optimized_regex_list(regex) == expected


def test_regex_semantics_differ_from_postgresql_on_these(filled, pg_url):
    """The cases above are real differences: PostgreSQL's own regex answers otherwise."""
    with psycopg.connect(pg_url) as conn:
        def pg(regex: str) -> set:
            return {row[0] for row in conn.execute("SELECT name FROM pyro4compat_registry WHERE name ~ %s", (regex,))}
        assert pg("b") != {name for name in NAMES if re.match("b", name)}
        assert pg("line$") != {name for name in NAMES if re.match("line$", name)}
    assert "line\n" in filled.optimized_regex_list("line$")


def test_bad_regex(filled):
    with pytest.raises(NamingError, match="invalid regex"):
        filled.optimized_regex_list("(")


def test_regex_literal_prefix():
    assert regex_literal_prefix(r"interop\.serpent\..*") == "interop"
    assert regex_literal_prefix("abc*") == "ab"
    assert regex_literal_prefix("ab{2}") == "a"
    assert regex_literal_prefix("ab|x") == ""
    assert regex_literal_prefix("ab(?i)") == ""
    assert regex_literal_prefix(".ab") == ""


def test_metadata_search(filled):
    def expected(accept):
        return {name for number, name in enumerate(NAMES) if number % 2 and accept({"n%d" % (number % 3), "all"})}
    assert set(filled.optimized_metadata_search(metadata_all=["all", "n1"])) == expected(lambda t: "n1" in t)
    assert set(filled.optimized_metadata_search(metadata_any=["n0", "n2"])) == \
        expected(lambda t: {"n0", "n2"} & t)
    assert filled.optimized_metadata_search(metadata_all=["nope"]) == {}
    assert filled.optimized_metadata_search(metadata_any=["nope", "all"], metadata_all=["x"]).keys() == \
        expected(lambda t: True)  # any wins, as in Pyro4
    assert len(filled.optimized_metadata_search()) == len(NAMES)
    found = filled.optimized_metadata_search(metadata_any=["n1"], return_metadata=True)
    assert all("n1" in tags for _, tags in found.values())


def test_schema_is_versioned_and_created_once_by_many(pg_url):
    errors = []
    barrier = threading.Barrier(6)

    def open_one() -> None:
        try:
            barrier.wait(10)
            PostgresqlStorage(pg_url).close()
        except BaseException as exc:  # reported below
            errors.append(exc)
    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT version FROM pyro4compat_schema").fetchall() == [(SCHEMA_VERSION,)]
        conn.execute("UPDATE pyro4compat_schema SET version = 99")
    with pytest.raises(NamingError, match="version 99"):
        PostgresqlStorage(pg_url)


def test_unreachable_database_is_a_naming_error(pg_cluster):
    url = "postgresql://postgres@127.0.0.1:%d/no_such_database" % pg_cluster.port
    with pytest.raises(NamingError, match="postgresql storage postgresql://postgres@127.0.0.1:%d/no_such_database"
                       % pg_cluster.port):
        PostgresqlStorage(url)
    with pytest.raises(NamingError, match="invalid postgresql storage url"):
        PostgresqlStorage("postgresql://localhost/x?no_such_option=1")


def test_missing_psycopg_names_the_extra(pg_url):
    code = """
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "psycopg":
            raise ImportError("blocked")
sys.meta_path.insert(0, Blocker())
from pyro4compat import naming
from pyro4compat.errors import NamingError
try:
    naming.NameServerDaemon(host="127.0.0.1", port=0, storage=sys.argv[1])
except NamingError as exc:
    print(exc)
"""
    proc = subprocess.run([sys.executable, "-W", "error", "-c", code, pg_url], capture_output=True, text=True,
                          timeout=30, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'pyro4compat[postgresql]'" in proc.stdout


# --- several name servers, in this process, on one database --------------------------------------

@pytest.fixture
def three(pg_url):
    servers = [naming.NameServer(PostgresqlStorage(pg_url)) for _ in range(3)]
    yield servers
    for server in servers:
        server.storage.close()


def test_registration_through_one_is_seen_by_all(three):
    a, b, c = three
    a.register("shared.one", "PYRO:one@localhost:1", metadata={"t"})
    for server in (b, c):
        assert server.lookup("shared.one").asString() == "PYRO:one@localhost:1"
        assert server.list(metadata_all=["t"]) == {"shared.one": "PYRO:one@localhost:1"}
    b.set_metadata("shared.one", ["u"])
    assert c.lookup("shared.one", return_metadata=True)[1] == ["u"]
    with pytest.raises(NamingError, match="^name already registered: shared.one$"):
        c.register("shared.one", "PYRO:other@localhost:1", safe=True)
    assert c.remove("shared.one") == 1
    for server in (a, b):
        with pytest.raises(NamingError, match="unknown name: shared.one"):
            server.lookup("shared.one")
    with pytest.raises(NamingError, match="unknown name: gone"):
        a.set_metadata("gone", ["x"])


def test_each_name_server_answers_for_itself_as_pyro_nameserver(three):
    for number, server in enumerate(three):  # as NameServerDaemon does when it starts
        server.register(constants.NAMESERVER_NAME, "PYRO:Pyro.NameServer@127.0.0.1:%d" % (9000 + number),
                        metadata={naming.NAMESERVER_TAG})
    for number, server in enumerate(three):
        own = "PYRO:Pyro.NameServer@127.0.0.1:%d" % (9000 + number)
        assert server.lookup(constants.NAMESERVER_NAME).asString() == own
        assert server.list(metadata_all=[naming.NAMESERVER_TAG]) == {constants.NAMESERVER_NAME: own}
        assert server.list(prefix="Pyro.") == {constants.NAMESERVER_NAME: own}
        assert server.list(regex="Pyro\\.Name.*") == {constants.NAMESERVER_NAME: own}
        assert server.count() == 1
        assert server.remove(regex=".*") == 0
    with psycopg.connect(three[0].storage.url) as conn:  # the table keeps the last one started
        assert conn.execute("SELECT uri FROM pyro4compat_registry").fetchall() == [
            ("PYRO:Pyro.NameServer@127.0.0.1:9002",)]


def test_concurrent_safe_registrations_in_process(three):
    winners, losers, failures = [], [], []
    barrier = threading.Barrier(3)

    def register_all(server: naming.NameServer, tag: str) -> None:
        barrier.wait(10)
        for i in range(100):
            try:
                server.register("race.%d" % i, "PYRO:%s@localhost:%d" % (tag, i), safe=True)
                winners.append(("race.%d" % i, tag))
            except NamingError as exc:
                losers.append(str(exc))
            except BaseException as exc:  # reported below
                failures.append(exc)
    threads = [threading.Thread(target=register_all, args=(server, "ns%d" % n)) for n, server in enumerate(three)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    assert len(winners) == 100 and len(losers) == 200
    assert sorted(name for name, _ in winners) == sorted("race.%d" % i for i in range(100))
    listed = three[0].list(prefix="race.")
    for name, tag in winners:
        assert listed[name] == "PYRO:%s@localhost:%s" % (tag, name.split(".")[1])
