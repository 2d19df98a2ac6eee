"""``python -m pyro4compat.naming`` and ``python -m pyro4compat.nsc`` as real processes on loopback.

The name server binds 127.0.0.1 on port 0 and tells us its URI on stdout; every process a
test starts is stopped by that test (terminate, then kill after a timeout).
"""

from __future__ import annotations

import ast
import contextlib
import os
import queue
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest
from procs import stop_process

from pyro4compat import socketutil

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[2]
NS_TAG = "class:Pyro4.naming.NameServer"
URI_LINE = re.compile(r"^(?:external )?URI = (PYRO:Pyro\.NameServer@(.+):(\d+))$")


def tool_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYRO_")}
    env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(ROOT))
    env.update(extra or {})
    return env


class NameServerProcess:
    """A name server child process and the lines it printed before serving."""

    def __init__(self, args: List[str], env: Optional[Dict[str, str]] = None,
                 command: Optional[List[str]] = None, cwd: Path = ROOT) -> None:
        """``command`` (an interpreter and ``-m`` module) and ``env`` replace the defaults when given."""
        if command is None:
            command, env = [sys.executable, "-m", "pyro4compat.naming"], tool_env(env)
        self.proc = subprocess.Popen(command + args, cwd=str(cwd), env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: List[str] = []
        self.stderr: Optional[str] = None
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def wait_for_uri(self, timeout: float = 20.0) -> Tuple[str, str, int]:
        """Read output lines until the URI line; return (uri, host, port)."""
        while True:
            line = self._lines.get(timeout=timeout)
            if line is None:
                raise AssertionError("name server exited: %s\n%s" % (self.lines, self.stop()))
            self.lines.append(line)
            match = URI_LINE.match(line)
            if match:
                return match.group(1), match.group(2), int(match.group(3))

    def stop(self) -> str:
        """Terminate (then kill) the process; return its stderr. Stopping twice is harmless."""
        stop_process(self.proc)
        self._reader.join(10)  # the pipe reached EOF when the process ended
        if self.stderr is None:
            assert self.proc.stderr is not None and self.proc.stdout is not None
            self.stderr = self.proc.stderr.read()
            self.proc.stderr.close()
            self.proc.stdout.close()
        return self.stderr


@contextlib.contextmanager
def name_server(args: List[str], env: Optional[Dict[str, str]] = None) -> Iterator[NameServerProcess]:
    process = NameServerProcess(args, env)
    try:
        yield process
    finally:
        process.stop()


def nsc(port: int, *command: str, stdin: str = "", env: Optional[Dict[str, str]] = None,
        options: Tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "pyro4compat.nsc", "-n", "127.0.0.1", "-p", str(port)] + list(options)
    return subprocess.run(args + list(command), input=stdin, capture_output=True, text=True, timeout=30,
                          cwd=str(ROOT), env=tool_env(env))


@pytest.fixture(scope="module")
def ns_port() -> Iterator[int]:
    with name_server(["-n", "127.0.0.1", "-p", "0", "-x"]) as process:
        yield process.wait_for_uri()[2]


def parse_list(output: str) -> Tuple[str, Dict[str, Tuple[str, List[str]]]]:
    """(title, {name: (uri, tags)}) from nsc's framed list output."""
    lines = output.splitlines()
    assert lines[0].startswith("--------START LIST ")
    title = lines[0][len("--------START LIST "):]
    assert lines[-1] == "--------END LIST " + title
    entries: Dict[str, Tuple[str, List[str]]] = {}
    last = None
    for line in lines[1:-1]:
        if line.startswith("    metadata: "):
            assert last is not None
            entries[last] = (entries[last][0], sorted(ast.literal_eval(line[len("    metadata: "):])))
        else:
            last, uri = line.split(" --> ")
            entries[last] = (uri, [])
    assert list(entries) == sorted(entries)  # sorted by name
    return title, entries


# --- the name server command line ----------------------------------------------------------------

def test_ns_prints_pyro4s_lines():
    with name_server(["-n", "127.0.0.1", "-p", "0", "-x"]) as process:
        uri, host, port = process.wait_for_uri()
        assert process.lines == [
            "Not starting broadcast server for localhost.",
            "NS running on 127.0.0.1:%d (127.0.0.1)" % port,
            "Warning: HMAC key not set. Anyone can connect to this server!",
            "URI = " + uri,
        ]
        assert uri == "PYRO:Pyro.NameServer@127.0.0.1:%d" % port
        assert nsc(port, "ping").stdout == "Name server ping ok.\n"


def test_ns_nat_lines():
    with name_server(["-n", "127.0.0.1", "-p", "0", "-x", "--nathost", "nat.example", "--natport", "0"]) as process:
        uri, host, port = process.wait_for_uri()
        assert uri == "PYRO:Pyro.NameServer@nat.example:%d" % port
        assert process.lines[-2:] == ["internal URI = PYRO:Pyro.NameServer@127.0.0.1:%d" % port,
                                      "external URI = " + uri]


def test_ns_port_option_binds_that_port():
    port = socketutil.findProbablyUnusedPort()
    with name_server(["--host", "127.0.0.1", "--port", str(port), "--nobc"]) as process:
        assert process.wait_for_uri()[2] == port


def test_ns_sql_storage_persists_and_counts(tmp_path):
    spec = "sql:%s" % (tmp_path / "ns.sqlite")
    with name_server(["-n", "127.0.0.1", "-p", "0", "-x", "-s", spec]) as process:
        port = process.wait_for_uri()[2]
        assert nsc(port, "register", "kept.one", "PYRO:one@127.0.0.1:1").stdout == "Registered kept.one\n"
        assert nsc(port, "register", "kept.two", "PYRO:two@127.0.0.1:2").returncode == 0
        process.proc.kill()  # SIGKILL: acknowledged registrations must be on disk already
        process.proc.wait(10)
    with name_server(["-n", "127.0.0.1", "-p", "0", "-x", "--storage", spec]) as process:
        port = process.wait_for_uri()[2]
        assert "Persistent store contains 3 existing registrations." in process.lines
        assert nsc(port, "lookup", "kept.two").stdout == "PYRO:two@127.0.0.1:2\n"


def test_ns_dbm_storage_warns(tmp_path):
    with name_server(["-n", "127.0.0.1", "-p", "0", "-x", "-s", "dbm:%s" % (tmp_path / "ns.dbm")]) as process:
        process.wait_for_uri()
        assert process.lines[0] == "Warning: the DbmStorage doesn't support metadata."


@pytest.mark.skipif(not hasattr(__import__("socket"), "AF_UNIX"), reason="needs Unix domain sockets")
def test_ns_on_unix_socket(tmp_path):
    path = str(tmp_path / "ns.sock")
    with name_server(["-u", path, "-x"]) as process:
        uri = process._lines.get(timeout=20)
        lines = [uri]
        while not lines[-1].startswith("URI = "):
            lines.append(process._lines.get(timeout=20))
        assert lines == ["NS running on ./u:%s (Unix domain socket)" % path,
                         "Warning: HMAC key not set. Anyone can connect to this server!",
                         "URI = PYRO:Pyro.NameServer@./u:%s" % path]
        result = subprocess.run([sys.executable, "-m", "pyro4compat.nsc", "-u", path, "ping"], capture_output=True,
                                text=True, timeout=30, cwd=str(ROOT), env=tool_env())
        assert result.stdout == "Name server ping ok.\n"


def test_ns_hmac_key_from_environment_and_option():
    env = {"PYRO_HMAC_KEY": "s3cret"}
    with name_server(["-n", "127.0.0.1", "-p", "0", "-x"], env=env) as process:
        port = process.wait_for_uri()[2]
        assert "Warning: HMAC key not set. Anyone can connect to this server!" not in process.lines
        assert nsc(port, "ping", env=env).stdout == "Name server ping ok.\n"
        assert nsc(port, "ping").stdout == "Error: Failed to locate the nameserver\n"
        keyed = nsc(port, "ping", options=("-k", "s3cret"))
        assert keyed.stdout == "Name server ping ok.\n"
        assert "deprecated since Pyro 4.72" in keyed.stderr
        both = nsc(port, "ping", env=env, options=("-k", "s3cret"))
        assert both.returncode == 1
        assert "error: don't use -k and PYRO_HMAC_KEY at the same time" in both.stderr
    with name_server(["-n", "127.0.0.1", "-p", "0", "-x", "-k", "abc"], env=env) as process:
        assert process.proc.wait(20) == 1
    assert "error: don't use -k and PYRO_HMAC_KEY at the same time" in process.stop()


def test_ns_bad_options_exit_2():
    for args in (["-p", "notanumber"], ["--nosuchoption"]):
        result = subprocess.run([sys.executable, "-m", "pyro4compat.naming"] + args, capture_output=True, text=True,
                                timeout=30, cwd=str(ROOT), env=tool_env())
        assert result.returncode == 2
        assert "error:" in result.stderr


# --- nsc commands ----------------------------------------------------------------------------------

def test_nsc_register_lookup_list(ns_port):
    assert nsc(ns_port, "register", "cli.a", "PYRO:a@127.0.0.1:1").stdout == "Registered cli.a\n"
    assert nsc(ns_port, "register", "cli.b", "PYRO:b@127.0.0.1:2").stdout == "Registered cli.b\n"
    assert nsc(ns_port, "register", "cli.a", "PYRO:x@127.0.0.1:9").stdout == \
        "Error: NamingError - name already registered: cli.a\n"
    assert nsc(ns_port, "register", "cli.bad", "nonsense").stdout == "Error: PyroError - invalid uri\n"
    assert nsc(ns_port, "lookup", "cli.a").stdout == "PYRO:a@127.0.0.1:1\n"
    assert nsc(ns_port, "lookup", "cli.none").stdout == "Error: NamingError - unknown name: cli.none\n"
    title, entries = parse_list(nsc(ns_port, "list", "cli.").stdout)
    assert title == "- prefix 'cli.'"
    assert entries == {"cli.a": ("PYRO:a@127.0.0.1:1", []), "cli.b": ("PYRO:b@127.0.0.1:2", [])}
    title, entries = parse_list(nsc(ns_port, "list").stdout)
    assert title == "" and {"cli.a", "cli.b", "Pyro.NameServer"} <= set(entries)
    assert entries["Pyro.NameServer"] == ("PYRO:Pyro.NameServer@127.0.0.1:%d" % ns_port, [NS_TAG])
    title, entries = parse_list(nsc(ns_port, "listmatching", r"cli\.[b-z]").stdout)
    assert title == r"- regex 'cli\.[b-z]'" and list(entries) == ["cli.b"]
    assert nsc(ns_port, "listmatching", "(").stdout.startswith("Error: NamingError - invalid regex: ")


def test_nsc_metadata_commands(ns_port):
    nsc(ns_port, "register", "meta.a", "PYRO:a@127.0.0.1:1")
    nsc(ns_port, "register", "meta.b", "PYRO:b@127.0.0.1:2")
    assert nsc(ns_port, "setmeta", "meta.a", "t1", "t2").stdout == "Metadata updated\n"
    assert nsc(ns_port, "setmeta", "meta.b", "t2").stdout == "Metadata updated\n"
    lookup = nsc(ns_port, "lookup", "meta.a").stdout.splitlines()
    assert lookup[0] == "PYRO:a@127.0.0.1:1"
    assert lookup[1].startswith("metadata: ") and sorted(ast.literal_eval(lookup[1][10:])) == ["t1", "t2"]
    title, entries = parse_list(nsc(ns_port, "listmeta_all", "t1", "t2").stdout)
    assert title == " - searched by metadata"
    assert entries == {"meta.a": ("PYRO:a@127.0.0.1:1", ["t1", "t2"])}
    title, entries = parse_list(nsc(ns_port, "listmeta_any", "t1", "t2").stdout)
    assert set(entries) == {"meta.a", "meta.b"}
    assert nsc(ns_port, "setmeta", "meta.a").stdout == "Metadata cleared\n"
    assert nsc(ns_port, "lookup", "meta.a").stdout == "PYRO:a@127.0.0.1:1\n"
    assert nsc(ns_port, "setmeta", "meta.none", "x").stdout == "Error: NamingError - unknown name: meta.none\n"


def test_nsc_remove_commands(ns_port):
    for name in ("rm.a", "rm.b", "rm.c"):
        nsc(ns_port, "register", name, "PYRO:x@127.0.0.1:1")
    assert nsc(ns_port, "remove", "rm.a").stdout == "Removed rm.a\n"
    assert nsc(ns_port, "remove", "rm.a").stdout == "Nothing removed\n"
    prompt = "Potentially removing lots of items from the Name server. Are you sure (y/n)?"
    refused = nsc(ns_port, "removematching", "rm\\..*", stdin="n\n")
    assert refused.stdout == prompt and refused.returncode == 0
    accepted = nsc(ns_port, "removematching", "rm\\..*", stdin="y\n")
    assert accepted.stdout == prompt + "2 items removed.\n"
    assert nsc(ns_port, "removematching", "rm.*", stdin="").stdout == prompt + "Error: EOFError - EOF when reading a line\n"
    assert parse_list(nsc(ns_port, "list", "rm.").stdout)[1] == {}


# (command line, exit status, text expected in stderr)
USAGE_ERRORS = [
    (["listmatching"], 1, "requires one argument: pattern"),
    (["listmatching", "a", "b"], 1, "requires one argument: pattern"),
    (["lookup"], 1, "requires one argument: name"),
    (["register", "x"], 1, "requires two arguments: name uri"),
    (["remove"], 1, "requires one argument: name"),
    (["removematching"], 1, "requires one argument: pattern"),
    (["setmeta"], 1, "requires at least 2 arguments: uri and zero or more meta tags"),
    (["listmeta_all"], 1, "requires at least one metadata tag argument"),
    (["listmeta_any"], 1, "requires at least one metadata tag argument"),
    (["nosuchcommand"], 2, "error: invalid or missing command"),
    ([], 2, "error: invalid or missing command"),
]


def test_nsc_usage_errors(ns_port):
    for command, status, message in USAGE_ERRORS:
        result = nsc(ns_port, *command)
        assert (result.returncode, result.stdout) == (status, ""), command
        assert message in result.stderr, command


def test_nsc_verbose_and_unreachable(ns_port):
    verbose = nsc(ns_port, "ping", options=("-v",))
    assert verbose.stdout.splitlines() == [
        "Locating name server...", "Name server found: PYRO:Pyro.NameServer@127.0.0.1:%d" % ns_port,
        "Name server ping ok.", "Done."]
    dead = nsc(socketutil.findProbablyUnusedPort(), "ping")
    assert (dead.returncode, dead.stdout) == (0, "Error: Failed to locate the nameserver\n")
