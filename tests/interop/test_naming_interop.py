"""Name servers and their clients across implementations: real Pyro4 4.82 against ours, both ways.

Differential: the same client script (Pyro4's, in a child) runs against our name server and
against Pyro4's own name server (``python -m Pyro4.naming`` in a child); the answers must be
equal once the two name servers' locations are masked. The same goes for our client against
both, and for both ``nsc`` tools against both name servers. A few direct assertions pin the
expected values, so that agreeing on a wrong answer cannot pass.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
from procs import stop_process

from pyro4compat import errors, naming
from pyro4compat._client.proxy import Proxy
from pyro4compat._client.resolve import _resolve
from pyro4compat._serializers import _serializers
from pyro4compat._server.daemon import Daemon
from pyro4compat._server.exposure import expose
from pyro4compat._uri import URI
from pyro4compat.configuration import config

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
SERIALIZERS = [name for name in ("serpent", "json", "marshal", "msgpack") if name in _serializers]
URI_LINE = re.compile(r"^URI = (PYRO:Pyro\.NameServer@127\.0\.0\.1:(\d+))$")
NSLOC = "NSLOC"


@expose
class Greeter:
    def greet(self, name: str) -> str:
        return "hello " + name


def child_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """A tool's environment: no inherited ``PYRO_*`` settings, unbuffered output, our package importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYRO_")}
    env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(ROOT))
    env.update(extra or {})
    return env


@contextlib.contextmanager
def pyro4_name_server(serializers: List[str]) -> Iterator[Tuple[str, int]]:
    """Pyro4's own name server in a child process; yields its (host, port)."""
    env = child_env({"PYRO_SERIALIZERS_ACCEPTED": ",".join(serializers)})
    proc = subprocess.Popen([sys.executable, "-W", "ignore", "-m", "Pyro4.naming", "-n", "127.0.0.1", "-p", "0", "-x"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=str(ROOT / "tests"))
    lines: "queue.Queue[Optional[str]]" = queue.Queue()

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.put(line.rstrip("\n"))
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while True:
            line = lines.get(timeout=30)
            assert line is not None, "Pyro4 name server exited"
            match = URI_LINE.match(line)
            if match:
                break
        yield "127.0.0.1", int(match.group(2))
    finally:
        stop_process(proc)
        reader.join(10)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]


@contextlib.contextmanager
def serving(daemon: Daemon) -> Iterator[Daemon]:
    thread = threading.Thread(target=daemon.requestLoop, daemon=True)
    thread.start()
    try:
        yield daemon
    finally:
        daemon.shutdown()
        thread.join(10)
        assert not thread.is_alive()


@contextlib.contextmanager
def our_name_server() -> Iterator[Tuple[str, int]]:
    uri, daemon, _ = naming.startNS(host="127.0.0.1", port=0)
    with serving(daemon):
        yield uri.host, uri.port


@pytest.fixture
def accept_all() -> Iterator[None]:
    saved = config.SERIALIZERS_ACCEPTED, config.SERIALIZER
    config.SERIALIZERS_ACCEPTED = set(SERIALIZERS)
    yield
    config.SERIALIZERS_ACCEPTED, config.SERIALIZER = saved


@pytest.fixture
def greeter(accept_all) -> Iterator[str]:
    """Our daemon serving a Greeter; yields its URI string (both name servers point to it)."""
    daemon = Daemon(host="127.0.0.1", port=0)
    uri = daemon.register(Greeter(), "greeter")
    with serving(daemon):
        yield uri.asString()


def masked(value: Any, location: str) -> Any:
    """``value`` with the name server's ``host:port`` replaced, recursively."""
    if isinstance(value, str):
        return value.replace(location, NSLOC)
    if isinstance(value, (list, tuple)):
        return type(value)(masked(item, location) for item in value)
    if isinstance(value, dict):
        return {masked(k, location): masked(v, location) for k, v in value.items()}
    return value


# --- a Pyro4 client against both name servers ---------------------------------------------------

PYRO4_CLIENT = r"""
def plain(value):
    if isinstance(value, Pyro4.URI):
        return "URI " + str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(plain(v) for v in value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return sorted(value)  # tag lists: their order follows set hashing
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return sorted([plain(k), plain(v)] for k, v in value.items())
    return value

def attempt(function):
    try:
        return ["ok", plain(function())]
    except Exception as exc:
        return [type(exc).__name__, str(exc)]

host, port, target = INPUT["host"], INPUT["port"], INPUT["greeter"]
OUTPUT = {}
for ser in INPUT["serializers"]:
    Pyro4.config.SERIALIZER = ser
    name = "interop." + ser
    loc = "@%s:%d" % (host, port)
    with Pyro4.locateNS(host, port) as ns:
        steps = [
            ("register", lambda: ns.register(name, target, metadata=["ser:" + ser, "kind:greeter"])),
            ("register_uri", lambda: ns.register(name + ".plain", Pyro4.URI(target))),
            ("register_set", lambda: ns.register(name + ".set", target, metadata={"kind:greeter"})),
            ("lookup", lambda: ns.lookup(name)),
            ("lookup_meta", lambda: ns.lookup(name, return_metadata=True)),
            ("prefix", lambda: ns.list(prefix=name)),
            ("prefix_meta", lambda: ns.list(prefix=name, return_metadata=True)),
            ("regex", lambda: ns.list(regex=r"interop\.%s\..*" % ser)),
            ("all", lambda: ns.list(metadata_all=["ser:" + ser, "kind:greeter"])),
            ("all_set", lambda: ns.list(metadata_all={"ser:" + ser})),
            ("any", lambda: ns.list(metadata_any=["kind:greeter", "nope"], return_metadata=True)),
            ("ns_tag", lambda: ns.list(metadata_all=["class:Pyro4.naming.NameServer"], return_metadata=True)),
            ("everything", lambda: ns.list(return_metadata=True)),
            ("count", lambda: ns.count()),
            ("ping", lambda: ns.ping()),
            ("unknown", lambda: ns.lookup("nope")),
            ("duplicate", lambda: ns.register(name, target, safe=True)),
            ("bad_uri", lambda: ns.register("x", "nonsense")),
            ("str_meta", lambda: ns.register("x", target, metadata="str")),
            ("two_filters", lambda: ns.list(prefix="a", regex="b")),
            ("bad_regex", lambda: ns.list(regex="(")),
            ("set_unknown", lambda: ns.set_metadata("nope", ["a"])),
            ("pyroname", lambda: Pyro4.Proxy("PYRONAME:" + name + loc).greet(ser)),
            ("pyrometa", lambda: Pyro4.Proxy("PYROMETA:ser:%s,kind:greeter" % ser + loc).greet("meta")),
            ("resolve", lambda: Pyro4.resolve("PYRONAME:Pyro.NameServer" + loc)),
            ("resolve_name", lambda: Pyro4.resolve("PYRONAME:" + name + loc)),
            ("resolve_missing", lambda: Pyro4.resolve("PYROMETA:nope" + loc)),
            ("set_metadata", lambda: ns.set_metadata(name, ["changed"])),
            ("after_set", lambda: ns.list(metadata_any=["changed"])),
            ("remove", lambda: ns.remove(name)),
            ("remove_again", lambda: ns.remove(name)),
            ("remove_prefix", lambda: ns.remove(prefix="interop.%s." % ser)),
            ("remove_self", lambda: ns.remove("Pyro.NameServer")),
            ("remove_all", lambda: ns.remove(regex=".*")),
            ("count_after", lambda: ns.count()),
        ]
        OUTPUT[ser] = {label: attempt(step) for label, step in steps}
"""


# Pyro4's marshal serializer cannot send a URI inside a tuple (``lookup(name, return_metadata=True)``);
# ours converts nested objects too (see pyro4compat/_serializers/marshal_serializer.py).
FIXED_IN_OURS = {"marshal": ("lookup_meta",)}


def same_answers_from_both(pyro4, greeter, ours_starter) -> dict:
    """Run Pyro4's client script against ``ours_starter()``'s name server and Pyro4's own; assert
    equal answers for every serializer (but the steps we fixed); return both outputs by label."""
    results = {}
    for label, starter in (("ours", ours_starter), ("pyro4", lambda: pyro4_name_server(SERIALIZERS))):
        with starter() as (host, port):
            output = pyro4(PYRO4_CLIENT, {"host": host, "port": port, "greeter": greeter,
                                          "serializers": SERIALIZERS})
            results[label] = masked(output, "%s:%d" % (host, port))
    assert set(results["ours"]) == set(SERIALIZERS)
    for ser in SERIALIZERS:
        ours, theirs = dict(results["ours"][ser]), dict(results["pyro4"][ser])
        for step in FIXED_IN_OURS.get(ser, ()):
            assert theirs.pop(step) == ["ValueError", "unmarshallable object"]
            assert ours.pop(step)[0] == "ok"
        assert ours == theirs, ser
    return results


def test_pyro4_client_gets_the_same_answers_from_both_name_servers(pyro4, greeter):
    results = same_answers_from_both(pyro4, greeter, our_name_server)
    assert results["ours"]["marshal"]["lookup_meta"] == \
        ["ok", ["URI " + greeter, ["kind:greeter", "ser:marshal"]]]
    serpent = results["ours"]["serpent"]
    assert serpent["lookup"] == ["ok", "URI " + greeter]
    assert serpent["lookup_meta"] == ["ok", ["URI " + greeter, ["kind:greeter", "ser:serpent"]]]
    assert serpent["pyroname"] == ["ok", "hello serpent"] and serpent["pyrometa"] == ["ok", "hello meta"]
    assert serpent["ns_tag"] == ["ok", [["Pyro.NameServer", ["PYRO:Pyro.NameServer@" + NSLOC,
                                                             ["class:Pyro4.naming.NameServer"]]]]]
    assert serpent["unknown"] == ["NamingError", "unknown name: nope"]
    assert [serpent[key] for key in ("remove", "remove_again", "remove_prefix", "remove_self", "count_after")] == \
        [["ok", 1], ["ok", 0], ["ok", 2], ["ok", 0], ["ok", 1]]


# --- our client against both name servers --------------------------------------------------------

def plain(value: Any) -> Any:
    """Results in a comparable form: URIs tagged, sets and tag lists sorted, tuples as lists."""
    if isinstance(value, URI):
        return "URI " + str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(plain(v) for v in value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return sorted(value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return sorted([plain(k), plain(v)] for k, v in value.items())
    return value


def attempt(function: Any) -> List[Any]:
    try:
        return ["ok", plain(function())]
    except Exception as exc:  # the answer to compare, whatever it is
        return [type(exc).__name__, str(exc)]


def bound_uri(uri: str) -> str:
    with Proxy(uri) as proxy:
        proxy._pyroBind()
        return "%s %s" % (proxy._pyroUri, proxy.greet("bound"))


def greet_via(uri: str, who: str) -> str:
    with Proxy(uri) as proxy:
        return proxy.greet(who)


def our_client_session(host: str, port: int, target: str, ser: str) -> Dict[str, Any]:
    """What the Pyro4 client script does, with our client."""
    config.SERIALIZER = ser
    name = "ours." + ser
    loc = "@%s:%d" % (host, port)
    with naming.locateNS(host, port) as ns:
        steps = [
            ("register", lambda: ns.register(name, target, metadata=["ser:" + ser, "kind:greeter"])),
            ("register_uri", lambda: ns.register(name + ".plain", URI(target))),
            ("register_set", lambda: ns.register(name + ".set", target, metadata={"kind:greeter"})),
            ("lookup", lambda: ns.lookup(name)),
            ("lookup_meta", lambda: ns.lookup(name, return_metadata=True)),
            ("prefix", lambda: ns.list(prefix=name)),
            ("prefix_meta", lambda: ns.list(prefix=name, return_metadata=True)),
            ("regex", lambda: ns.list(regex=r"ours\.%s\..*" % ser)),
            ("all", lambda: ns.list(metadata_all={"ser:" + ser, "kind:greeter"})),
            ("any", lambda: ns.list(metadata_any=("kind:greeter", "nope"), return_metadata=True)),
            ("ns_tag", lambda: ns.list(metadata_all=["class:Pyro4.naming.NameServer"])),
            ("count", lambda: ns.count()),
            ("unknown", lambda: ns.lookup("nope")),
            ("duplicate", lambda: ns.register(name, target, safe=True)),
            ("two_filters", lambda: ns.list(prefix="a", metadata_any=["b"])),
            ("str_tags", lambda: ns.list(metadata_all="abc")),
            ("set_unknown", lambda: ns.set_metadata("nope", [])),
            ("pyroname", lambda: greet_via("PYRONAME:" + name + loc, ser)),
            ("pyrometa", lambda: bound_uri("PYROMETA:ser:%s,kind:greeter" % ser + loc)),
            ("resolve", lambda: _resolve("PYRONAME:Pyro.NameServer" + loc)),
            ("resolve_missing", lambda: _resolve("PYRONAME:nope" + loc)),
            ("set_metadata", lambda: ns.set_metadata(name, {"changed"})),
            ("after_set", lambda: ns.list(metadata_all=["changed"], return_metadata=True)),
            ("remove", lambda: ns.remove(name)),
            ("remove_regex", lambda: ns.remove(regex=r"ours\.%s\..*" % ser)),
            ("count_after", lambda: ns.count()),
        ]
        return {label: attempt(step) for label, step in steps}


def test_our_client_gets_the_same_answers_from_both_name_servers(greeter):
    results = {}
    for label, starter in (("ours", our_name_server), ("pyro4", lambda: pyro4_name_server(SERIALIZERS))):
        with starter() as (host, port):
            results[label] = {ser: masked(our_client_session(host, port, greeter, ser), "%s:%d" % (host, port))
                              for ser in SERIALIZERS}
    for ser in SERIALIZERS:
        ours, theirs = dict(results["ours"][ser]), dict(results["pyro4"][ser])
        for step in FIXED_IN_OURS.get(ser, ()):
            assert theirs.pop(step) == ["ValueError", "unmarshallable object"]
            assert ours.pop(step)[0] == "ok"
        assert ours == theirs, ser
    for ser in SERIALIZERS:
        got = results["pyro4"][ser]
        assert got["lookup"] == ["ok", "URI " + greeter]
        assert got["pyroname"] == ["ok", "hello " + ser]
        assert got["pyrometa"] == ["ok", "%s hello bound" % greeter]
        assert got["ns_tag"] == ["ok", [["Pyro.NameServer", "PYRO:Pyro.NameServer@" + NSLOC]]]
        assert got["unknown"] == ["NamingError", "unknown name: nope"]
        assert got["str_tags"][0] == "TypeError"
        assert [got[key] for key in ("remove", "remove_regex", "count_after")] == [["ok", 1], ["ok", 2], ["ok", 1]]


def test_our_locate_ns_rejects_a_pyro4_name_server_with_another_hmac_key(accept_all):
    with pyro4_name_server(SERIALIZERS) as (host, port):
        with pytest.raises(errors.NamingError, match="Failed to locate the nameserver"):
            naming.locateNS(host, port, hmac_key=b"not the key")


# --- both nsc tools against both name servers ------------------------------------------------------

NSC_SCRIPT: List[Tuple[List[str], str]] = [
    (["ping"], ""),
    (["register", "cli.alpha", "PYRO:alpha@127.0.0.1:1111"], ""),
    (["register", "cli.beta", "PYRO:beta@127.0.0.1:2222"], ""),
    (["register", "cli.alpha", "PYRO:other@127.0.0.1:3333"], ""),
    (["register", "cli.bad", "nonsense"], ""),
    (["setmeta", "cli.alpha", "t1", "t2"], ""),
    (["setmeta", "cli.beta", "t2"], ""),
    (["setmeta", "cli.none", "t2"], ""),
    (["lookup", "cli.alpha"], ""),
    (["lookup", "cli.none"], ""),
    (["list"], ""),
    (["list", "cli."], ""),
    (["listmatching", r"cli\.b.*"], ""),
    (["listmatching", "("], ""),
    (["listmeta_all", "t1", "t2"], ""),
    (["listmeta_any", "t1", "t2"], ""),
    (["setmeta", "cli.alpha"], ""),
    (["remove", "cli.alpha"], ""),
    (["remove", "cli.alpha"], ""),
    (["removematching", "cli.*"], "n\n"),
    (["removematching", "cli.*"], "y\n"),
    (["lookup"], ""),
    (["frobnicate"], ""),
]
_TAG_LIST = re.compile(r"^(\s*metadata: )(\[.*\])$")


def normalised(output: str, location: str) -> str:
    """Mask the NS location and sort printed tag lists (their order follows set hashing)."""
    lines = []
    for line in output.replace(location, NSLOC).splitlines():
        match = _TAG_LIST.match(line)
        if match:
            line = match.group(1) + repr(sorted(ast.literal_eval(match.group(2))))
        lines.append(line)
    return "\n".join(lines)


def run_nsc(module: str, port: int, command: List[str], stdin: str, serializer: str) -> Tuple[int, str, str]:
    flags = ["-W", "ignore"] if module == "Pyro4.nsc" else []
    proc = subprocess.run([sys.executable] + flags + ["-m", module, "-n", "127.0.0.1", "-p", str(port)] + command,
                          input=stdin, capture_output=True, text=True, timeout=60, cwd=str(ROOT / "tests"),
                          env=child_env({"PYRO_SERIALIZER": serializer}))
    return proc.returncode, proc.stdout, proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""


def nsc_transcript(module: str, ns_label: str, script: List[Tuple[List[str], str]],
                   serializer: str) -> List[Tuple[int, str, str]]:
    starter = our_name_server if ns_label == "ours" else (lambda: pyro4_name_server(SERIALIZERS))
    with starter() as (host, port):
        location = "%s:%d" % (host, port)
        results = []
        for command, stdin in script:
            status, out, err = run_nsc(module, port, command, stdin, serializer)
            results.append((status, normalised(out, location), err.replace("nsc.py", "NSC")))
        return results


def test_both_nsc_tools_print_the_same_against_both_name_servers(accept_all):
    combinations = [(tool, ns) for tool in ("pyro4compat.nsc", "Pyro4.nsc") for ns in ("ours", "pyro4")]
    with ThreadPoolExecutor(len(combinations)) as pool:  # four independent transcripts, one per thread
        futures = {key: pool.submit(nsc_transcript, key[0], key[1], NSC_SCRIPT, "serpent") for key in combinations}
        transcripts = {key: future.result(timeout=100) for key, future in futures.items()}
    reference = transcripts[("Pyro4.nsc", "pyro4")]
    for key, transcript in transcripts.items():
        for (command, _), got, expected in zip(NSC_SCRIPT, transcript, reference):
            assert got == expected, (key, command)
    assert reference[0] == (0, "Name server ping ok.", "")
    assert reference[8][1] == "PYRO:alpha@127.0.0.1:1111\nmetadata: ['t1', 't2']"
    assert reference[-1][0] == 2 and reference[-2][0] == 1


@pytest.mark.parametrize("serializer", [name for name in SERIALIZERS if name != "serpent"])
def test_nsc_tools_cross_with_other_serializers(accept_all, serializer):
    script = [(["register", "cross.x", "PYRO:x@127.0.0.1:1"], ""), (["setmeta", "cross.x", "tag"], ""),
              (["lookup", "cross.x"], ""), (["list", "cross."], ""), (["listmeta_any", "tag"], ""),
              (["lookup", "nope"], "")]
    ours_with_pyro4_tool = nsc_transcript("Pyro4.nsc", "ours", script, serializer)
    pyro4_with_our_tool = nsc_transcript("pyro4compat.nsc", "pyro4", script, serializer)
    if serializer == "marshal":  # Pyro4's name server cannot marshal lookup's (URI, tags) tuple
        assert pyro4_with_our_tool.pop(2) == (0, "Error: ValueError - unmarshallable object", "")
        ours_with_pyro4_tool_rest = ours_with_pyro4_tool[:2] + ours_with_pyro4_tool[3:]
        assert ours_with_pyro4_tool_rest == pyro4_with_our_tool
    else:
        assert ours_with_pyro4_tool == pyro4_with_our_tool
    assert ours_with_pyro4_tool[2] == (0, "PYRO:x@127.0.0.1:1\nmetadata: ['tag']", "")
