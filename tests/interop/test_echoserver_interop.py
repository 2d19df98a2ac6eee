"""Echo server and Flame, mixed with real Pyro4 4.82 in both directions.

Real Pyro4's own tools (``python -m Pyro4.test.echoserver``, ``python -m Pyro4.utils.flameserver``)
run as child processes next to ours. One observation routine, written once as source text, runs
as a real Pyro4 client (in the ``pyro4`` child) and as our client (here, with ``pyro4compat``
bound to the name ``Pyro4``). Every client must see the same things from every server: Pyro4
against Pyro4 is the oracle. Each child process is stopped by its test.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from procs import stop_process

import pyro4compat
import pyro4compat.utils.flame
from pyro4compat._client.proxy import Proxy
from pyro4compat._client.resolve import _locateNS
from pyro4compat.configuration import config

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]
PORT = re.compile(r":\d+\b")
ECHO_URI = re.compile(r"^echo uri: (PYRO:test\.echoserver@127\.0\.0\.1:\d+)$")
FLAME_URI = re.compile(r"^server uri: PYRO:Pyro\.Flame@(127\.0\.0\.1:\d+)$")
NS_LINE = re.compile(r"^using name server at PYRO:Pyro\.NameServer@(127\.0\.0\.1):(\d+)$")

# Runs with ``Pyro4`` bound to real Pyro4 (in the child) or to pyro4compat (here).
ECHO_OBSERVE = r'''
import math

def observe_echo(Pyro4, uri):
    seen = {}
    for serializer in ("serpent", "json", "marshal"):
        with Pyro4.Proxy(uri) as proxy:
            proxy._pyroSerializer = serializer
            got = seen[serializer] = {}
            values = [None, 42, -1.5, "text", "ünï ✓", [1, [2, 3]], {"k": [1, 2]}, (1, 2)]
            if serializer != "json":  # json has no bytes
                values.append(b"by")
            got["echo"] = [repr(proxy.echo(value)) for value in values]
            got["generator"] = list(proxy.generator())
            got["nan"] = math.isnan(proxy.nan())
            got["inf"] = repr(proxy.inf())
            got["dunder"] = proxy.__dunder__()
            got["oneway"] = repr(proxy.oneway_echo("x"))
            for method in ("error", "error_with_text"):
                try:
                    getattr(proxy, method)()
                except Exception as exc:
                    got[method] = (type(exc).__name__, str(exc), exc._pyroTraceback[-1])
            for name in ("_private", "_EchoServer__private"):
                try:
                    getattr(proxy, name)()
                except Exception as exc:
                    got[name] = (type(exc).__name__, str(exc).replace(uri, "URI"))
            got["methods"] = sorted(proxy._pyroMethods)
            got["attrs"] = sorted(proxy._pyroAttrs)
            got["oneways"] = sorted(proxy._pyroOneway)
            if serializer != "marshal":  # Pyro4's marshal proxy can't read attributes (its kwargs=None bug)
                got["verbose"] = [proxy.verbose]
                proxy.verbose = 1
                got["verbose"].append(proxy.verbose)
                proxy.verbose = False
                got["verbose"].append(proxy.verbose)
    return seen

def shutdown_echo(Pyro4, uri):
    with Pyro4.Proxy(uri) as proxy:
        proxy.shutdown()
'''

FLAME_OBSERVE = r'''
import hashlib, os

def observe_flame(flame, location, scratch):
    seen = {}
    with flame.connect(location) as server:
        module = server.module("os.path")
        seen["module"] = (type(module).__name__, module.module, module.join("a", "b"),
                          server.module("os").path.basename("/x/y"))
        seen["repr"] = repr(module).split(" at 0x")[0] + repr(module).split(";")[1].replace(location, "LOC")
        seen["builtin"] = (type(server.builtin("max")).__name__, server.builtin("max")(3, 9))
        server.execute("flame_value = 6 * 7\n   ")
        seen["evaluate"] = (server.evaluate("flame_value"), server.evaluate("sys.platform"))
        for expression in ("1/0", "undefined_name_x"):
            try:
                server.evaluate(expression)
            except Exception as exc:
                seen[expression] = (type(exc).__name__, str(exc))
        server.sendmodule("flamesent", "def triple(n):\n    return n * 3\n")
        seen["sendmodule"] = server.module("flamesent").triple(5)
        seen["getmodule"] = hashlib.sha1(server.getmodule("json").encode()).hexdigest()
        target = os.path.join(scratch, "sent-%s.bin" % flame.__name__)
        server.sendfile(target, b"\x00\x01flame")
        seen["file"] = (server.getfile(target), oct(os.stat(target).st_mode & 0o777))
        seen["invoke"] = (server.invokeBuiltin("len", ([1, 2],), {}),
                          server.invokeModule("os.path.join", ("c", "d"), {}))
        console = server.console()
        session = console.remoteconsole
        seen["console"] = (type(console).__name__, session.get_banner().startswith("Python "),
                           tuple(session.push_and_get_output("print(7 * 6)")),
                           tuple(session.push_and_get_output("if True:")),
                           session.push_and_get_output("1/0")[0].splitlines()[-1])
        console.close()
    return seen
'''


def clean_env() -> Dict[str, str]:
    """Our environment minus every ``PYRO_*`` setting (as the ``pyro4`` fixture's children get)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYRO_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class ToolProcess:
    """A tool run as ``python -m module args``; reads stdout lines until the one we wait for."""

    def __init__(self, module: str, args: List[str], env: Optional[Dict[str, str]] = None,
                 ours: bool = True) -> None:
        child_env = clean_env()
        child_env["PYTHONUNBUFFERED"] = "1"  # Pyro4's tools don't flush their URI line
        if ours:
            child_env["PYTHONPATH"] = str(ROOT)
        child_env.update(env or {})
        command = [sys.executable] + (["-W", "error"] if ours else []) + ["-m", module] + args
        self.proc = subprocess.Popen(command, cwd=str(ROOT), env=child_env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
        self.lines: List[str] = []
        self._queue: "queue.Queue[Optional[str]]" = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: "re.Pattern[str]", timeout: float = 20.0) -> "re.Match[str]":
        while True:
            line = self._queue.get(timeout=timeout)
            if line is None:
                self.stop()
                pytest.fail("%s ended early: %s %s" % (self.proc.args, self.lines, self.proc.stderr.read()))
            self.lines.append(line)
            match = pattern.match(line)
            if match:
                return match

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def tool():
    started: List[ToolProcess] = []

    def start(module: str, *args: str, env: Optional[Dict[str, str]] = None, ours: bool = True) -> ToolProcess:
        process = ToolProcess(module, list(args), env, ours)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def without_ports(lines: List[str]) -> List[str]:
    return [PORT.sub(":PORT", line) for line in lines]


def run_here(source: str, function: str, *args: Any) -> Any:
    """Call ``function`` of ``source`` in this process, where ``Pyro4`` means pyro4compat."""
    namespace: Dict[str, Any] = {}
    exec(compile(source, "<observe>", "exec"), namespace)
    return namespace[function](*args)


def test_echo_servers_look_the_same_to_pyro4_and_to_our_clients(tool, pyro4):
    theirs = tool("Pyro4.test.echoserver", "-H", "127.0.0.1", "-p", "0", ours=False)
    ours = tool("pyro4compat.test.echoserver", "-H", "127.0.0.1", "-p", "0")
    uris = [theirs.wait_for(ECHO_URI).group(1), ours.wait_for(ECHO_URI).group(1)]
    assert without_ports(ours.lines) == without_ports(theirs.lines)
    pyro4_client_sees = pyro4(ECHO_OBSERVE + "\nOUTPUT = [observe_echo(Pyro4, uri) for uri in INPUT]", uris)
    assert pyro4_client_sees[1] == pyro4_client_sees[0]
    for uri in uris:
        assert run_here(ECHO_OBSERVE, "observe_echo", pyro4compat, uri) == pyro4_client_sees[0]
    pyro4(ECHO_OBSERVE + "\nshutdown_echo(Pyro4, INPUT)", uris[1])  # a Pyro4 client stops ours
    run_here(ECHO_OBSERVE, "shutdown_echo", pyro4compat, uris[0])  # and ours stops Pyro4's
    assert ours.proc.wait(10) == 0
    assert theirs.proc.wait(10) == 0


def test_echo_servers_with_their_own_name_server(tool, pyro4):
    # -N starts a name server on NS_PORT: port 0 here, so a free port is used.
    theirs = tool("Pyro4.test.echoserver", "-H", "127.0.0.1", "-N", "-v", env={"PYRO_NS_PORT": "0"}, ours=False)
    ours = tool("pyro4compat.test.echoserver", "-H", "127.0.0.1", "-N", "-v", env={"PYRO_NS_PORT": "0"})
    found = []
    for process in (theirs, ours):
        host, port = process.wait_for(NS_LINE).groups()
        found.append([host, int(port), process.wait_for(ECHO_URI).group(1)])
    assert without_ports(ours.lines) == without_ports(theirs.lines)
    pyro4_lookups = pyro4("""
OUTPUT = []
for host, port, _ in INPUT:
    Pyro4.config.NS_HOST, Pyro4.config.NS_PORT = host, port
    with Pyro4.locateNS() as ns, Pyro4.Proxy("PYRONAME:test.echoserver") as proxy:
        OUTPUT.append([str(ns.lookup("test.echoserver")), proxy.echo("via the name server"), str(proxy._pyroUri)])
""", found)
    config.NS_HOST = "127.0.0.1"
    for (host, port, uri), pyro4_lookup in zip(found, pyro4_lookups):
        assert pyro4_lookup == [uri, "via the name server", "PYRONAME:test.echoserver"]
        config.NS_PORT = port
        with _locateNS() as ns, Proxy("PYRONAME:test.echoserver") as proxy:
            assert [str(ns.lookup("test.echoserver")), proxy.echo("via the name server"),
                    str(proxy._pyroUri)] == pyro4_lookup
            proxy.shutdown()
    assert ours.proc.wait(10) == 0
    assert theirs.proc.wait(10) == 0


def test_flame_servers_look_the_same_to_pyro4_and_to_our_clients(tool, pyro4, tmp_path):
    enabled = {"PYRO_FLAME_ENABLED": "true"}
    theirs = tool("Pyro4.utils.flameserver", "-H", "127.0.0.1", "-p", "0", env=enabled, ours=False)
    ours = tool("pyro4compat.utils.flameserver", "-H", "127.0.0.1", "-p", "0", env=enabled)
    locations = [theirs.wait_for(FLAME_URI).group(1), ours.wait_for(FLAME_URI).group(1)]
    assert without_ports(ours.lines) == without_ports(theirs.lines)
    pyro4_client_sees = pyro4(FLAME_OBSERVE + """
import Pyro4.utils.flame
Pyro4.config.SERIALIZER = "pickle"
OUTPUT = [observe_flame(Pyro4.utils.flame, location, INPUT[1]) for location in INPUT[0]]
""", [locations, str(tmp_path)])
    assert pyro4_client_sees[1] == pyro4_client_sees[0]
    assert pyro4_client_sees[0]["repr"] == "<Pyro4.utils.flame.FlameModule module 'os.path' at LOC>"
    config.SERIALIZER = "pickle"
    for location in locations:
        seen_here = run_here(FLAME_OBSERVE, "observe_flame", pyro4compat.utils.flame, location, str(tmp_path))
        assert seen_here.pop("repr") == "<pyro4compat.utils.flame.FlameModule module 'os.path' at LOC>"
        assert seen_here == {key: value for key, value in pyro4_client_sees[0].items() if key != "repr"}


def test_flame_clients_need_pickle_on_both_sides(tool, pyro4):
    ours = tool("pyro4compat.utils.flameserver", "-H", "127.0.0.1", "-p", "0", env={"PYRO_FLAME_ENABLED": "true"})
    location = ours.wait_for(FLAME_URI).group(1)
    refusals = pyro4("""
import Pyro4.utils.flame
OUTPUT = []
try:
    Pyro4.utils.flame.connect(INPUT)  # the client still sends serpent
except Exception as exc:
    OUTPUT.append((type(exc).__name__, str(exc)))
Pyro4.config.SERIALIZER = "pickle"
proxy = Pyro4.utils.flame.connect(INPUT)
proxy._pyroSerializer = "serpent"
try:
    proxy.evaluate("1")
except Exception as exc:
    OUTPUT.append((type(exc).__name__, str(exc)))
""", location)
    assert refusals[0] == ("SerializeError", "Flame requires the pickle serializer")
    # Pyro4's server answers in the refused serializer ("message used serializer that is not accepted: 1");
    # ours never encodes with a serializer it doesn't accept, so the Pyro4 client names the reply's instead.
    assert refusals[1][0] == "SerializeError"
