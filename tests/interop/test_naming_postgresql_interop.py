"""Real Pyro4 4.82 clients, unchanged, against name servers whose registry is in PostgreSQL.

The same Pyro4 client script as in ``test_naming_interop`` runs against our name server on a
``postgresql://`` storage and against Pyro4's own name server: the answers must be equal.
Then Pyro4's ``locateNS``, ``PYRONAME:`` and ``nsc`` work across two of our name servers
sharing one database.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from typing import Iterator, List, Tuple

import pytest
from test_naming_interop import NSLOC, ROOT, accept_all, child_env, greeter, same_answers_from_both, serving

from pyro4compat import naming

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]
__all__ = ["accept_all", "greeter"]  # fixtures used here


@contextlib.contextmanager
def our_postgresql_name_server(url: str) -> Iterator[Tuple[str, int]]:
    uri, daemon, _ = naming.startNS(host="127.0.0.1", port=0, storage=url)
    with serving(daemon):
        yield uri.host, uri.port


def test_pyro4_client_gets_the_same_answers_as_from_pyro4s_name_server(pyro4, greeter, pg_url):
    results = same_answers_from_both(pyro4, greeter, lambda: our_postgresql_name_server(pg_url))
    serpent = results["ours"]["serpent"]
    assert serpent["pyroname"] == ["ok", "hello serpent"]
    assert serpent["ns_tag"] == ["ok", [["Pyro.NameServer", ["PYRO:Pyro.NameServer@" + NSLOC,
                                                             ["class:Pyro4.naming.NameServer"]]]]]


ACROSS = """
a, b = INPUT["a"], INPUT["b"]
OUTPUT = {}
with Pyro4.locateNS("127.0.0.1", a) as ns_a:
    ns_a.register("pg.greeter", INPUT["greeter"], safe=True)
    OUTPUT["a_self"] = str(ns_a.lookup("Pyro.NameServer"))
with Pyro4.locateNS("127.0.0.1", b) as ns_b:
    OUTPUT["b_lookup"] = str(ns_b.lookup("pg.greeter"))
    OUTPUT["b_self"] = str(ns_b.lookup("Pyro.NameServer"))
    try:
        ns_b.register("pg.greeter", INPUT["greeter"], safe=True)
    except Pyro4.errors.NamingError as exc:
        OUTPUT["b_duplicate"] = str(exc)
with Pyro4.Proxy("PYRONAME:pg.greeter@127.0.0.1:%d" % b) as proxy:
    OUTPUT["pyroname_b"] = proxy.greet("via b")
OUTPUT["resolve_b"] = str(Pyro4.resolve("PYRONAME:Pyro.NameServer@127.0.0.1:%d" % b))
"""


def run_pyro4_nsc(port: int, command: List[str]) -> Tuple[int, str]:
    proc = subprocess.run([sys.executable, "-W", "ignore", "-m", "Pyro4.nsc", "-n", "127.0.0.1", "-p", str(port)]
                          + command, capture_output=True, text=True, timeout=60, cwd=str(ROOT / "tests"),
                          env=child_env())
    return proc.returncode, proc.stdout


def test_pyro4_clients_and_nsc_across_two_name_servers_on_one_database(pyro4, greeter, pg_url):
    with our_postgresql_name_server(pg_url) as (_, a), our_postgresql_name_server(pg_url) as (_, b):
        out = pyro4(ACROSS, {"a": a, "b": b, "greeter": greeter})
        assert out == {
            "a_self": "PYRO:Pyro.NameServer@127.0.0.1:%d" % a, "b_lookup": greeter,
            "b_self": "PYRO:Pyro.NameServer@127.0.0.1:%d" % b, "b_duplicate": "name already registered: pg.greeter",
            "pyroname_b": "hello via b", "resolve_b": "PYRO:Pyro.NameServer@127.0.0.1:%d" % b}
        assert run_pyro4_nsc(a, ["register", "pg.cli", "PYRO:cli@127.0.0.1:4444"]) == (0, "Registered pg.cli\n")
        status, listing = run_pyro4_nsc(b, ["list", "pg."])
        assert status == 0
        assert "pg.cli --> PYRO:cli@127.0.0.1:4444" in listing and "pg.greeter --> " + greeter in listing
        assert run_pyro4_nsc(b, ["remove", "pg.cli"]) == (0, "Removed pg.cli\n")
        status, listing = run_pyro4_nsc(a, ["list", "pg."])
        assert status == 0 and "pg.cli" not in listing and "pg.greeter" in listing
