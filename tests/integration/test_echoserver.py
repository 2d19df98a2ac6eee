"""The echo server: ``python -m pyro4compat.test.echoserver`` as a real process, and ``main()`` in-process.

Every server binds 127.0.0.1 on port 0 and prints its URI; every process a test starts is
stopped by that test (a remote ``shutdown()`` where that is what's tested, else terminate/kill).
Calls to ``slow()`` run in-process with a short :data:`SLOW_DELAY`: the real delay is 5 seconds.
"""

from __future__ import annotations

import math
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest
from procs import stop_process

from pyro4compat import errors, naming
from pyro4compat._client.proxy import Proxy
from pyro4compat._client.resolve import _locateNS
from pyro4compat._server.daemon import Daemon
from pyro4compat.configuration import config
from pyro4compat.test import echoserver

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[2]
URI_LINE = re.compile(r"^echo uri: (PYRO:test\.echoserver@127\.0\.0\.1:(\d+))$")
KEY_WARNING = "using -k to supply HMAC key on the command line is a security problem"
# (sent, what comes back over serpent, the default serializer: bytes arrive in serpent's base64 form)
ECHOES = [(None, None), (42, 42), (-1.5, -1.5), ("text", "text"), ("ünïcode ✓", "ünïcode ✓"),
          ([1, [2, 3]], [1, [2, 3]]), ({"k": (1, 2)}, {"k": (1, 2)}), ({1, 2}, {1, 2}), (True, True),
          (b"bytes", {"data": "Ynl0ZXM=", "encoding": "base64"})]


def tool_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYRO_")}
    env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8")
    env.update(extra or {})
    return env


class EchoProcess:
    """``python -W error -m pyro4compat.test.echoserver`` on loopback; its stdout lines in a queue."""

    def __init__(self, args: List[str], env: Optional[Dict[str, str]] = None) -> None:
        command = [sys.executable, "-W", "error", "-m", "pyro4compat.test.echoserver", "-H", "127.0.0.1"] + args
        self.proc = subprocess.Popen(command, cwd=str(ROOT), env=tool_env(env), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
        self.lines: List[str] = []
        self._queue: "queue.Queue[Optional[str]]" = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def next_line(self, timeout: float = 15.0) -> str:
        line = self._queue.get(timeout=timeout)
        if line is None:
            self.stop()
            pytest.fail("echo server ended early: %s\n%s" % (self.lines, self.stderr))
        self.lines.append(line)
        return line

    def wait_for_uri(self) -> str:
        while True:
            match = URI_LINE.match(self.next_line())
            if match:
                return match.group(1)

    def wait_for_line(self, pattern: str) -> str:
        while True:
            line = self.next_line()
            if re.search(pattern, line):
                return line

    def remaining_lines(self, timeout: float = 10.0) -> List[str]:
        """The lines printed after the last one read, up to the end of the output."""
        rest = []
        while True:
            line = self._queue.get(timeout=timeout)
            if line is None:
                return rest
            rest.append(line)

    @property
    def stderr(self) -> str:
        return self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""

    def stop(self) -> None:
        stop_process(self.proc)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()


@pytest.fixture
def echo_process():
    started: List[EchoProcess] = []

    def start(*args: str, env: Optional[Dict[str, str]] = None) -> EchoProcess:
        process = EchoProcess(list(args), env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def test_the_process_serves_every_method_and_stops_on_shutdown(echo_process):
    server = echo_process("-p", "0")
    uri = server.wait_for_uri()
    assert server.lines == ["Starting Pyro's built-in test echo server.",
                            "Warning: HMAC key not set. Anyone can connect to this server!",
                            "object name: test.echoserver", "echo uri: " + uri]
    assert server.next_line() == "echoserver running."
    with Proxy(uri) as proxy:
        for sent, received in ECHOES:
            assert proxy.echo(sent) == received
        assert list(proxy.generator()) == ["one", "two", "three"]
        assert math.isnan(proxy.nan())
        assert proxy.inf() == float("inf")
        assert proxy.__dunder__() == "should be allowed (dunder)"
        assert proxy.oneway_echo("ignored") is None
        assert proxy.verbose is False
        proxy.shutdown()
    assert server.proc.wait(10) == 0
    assert server.stderr == ""


@pytest.mark.parametrize("method, text", [
    ("error", "expected error from echoserver error() method"),
    ("error_with_text", "the message of the error"),
])
def test_errors_arrive_as_value_errors_with_pyro4s_texts(serve, method, text):
    daemon, echo, uri = echoserver.main(["-H", "127.0.0.1", "-q"], returnWithoutLooping=True)
    with daemon, serve(daemon), Proxy(uri) as proxy:
        with pytest.raises(ValueError) as caught:
            getattr(proxy, method)()
        assert str(caught.value) == text
        remote_traceback = caught.value._pyroTraceback
        assert remote_traceback[-1] == "ValueError: %s\n" % text
        assert "in %s\n" % method in "".join(remote_traceback)


@pytest.mark.parametrize("name", ["_private", "_EchoServer__private", "__private"])
def test_private_methods_are_refused(serve, name):
    daemon, _, uri = echoserver.main(["-H", "127.0.0.1", "-q"], returnWithoutLooping=True)
    with daemon, serve(daemon), Proxy(uri) as proxy:
        proxy._pyroBind()
        assert name not in proxy._pyroMethods
        assert "__dunder__" in proxy._pyroMethods and "verbose" in proxy._pyroAttrs
        with pytest.raises(AttributeError):
            getattr(proxy, name)()


def test_verbose_mode_prints_each_call_and_the_property_switches_it(echo_process):
    server = echo_process("-v")
    uri = server.wait_for_uri()
    assert "not using a name server." in server.lines
    with Proxy(uri) as proxy:
        assert proxy.verbose is True
        proxy.echo("hello ✓")
        assert server.wait_for_line(r" - echo: ").endswith(" - echo: 'hello ✓'")
        with pytest.raises(ValueError):
            proxy.error()
        assert server.wait_for_line(r" - error: ").endswith(" - error: generating exception")
        proxy.oneway_echo([1])
        assert server.wait_for_line(r" - oneway_echo: ").endswith(" - oneway_echo: [1]")
        proxy.verbose = 0
        assert proxy.verbose is False
        proxy.echo("quiet now")
        proxy.verbose = "yes"
        proxy.shutdown()
    assert server.proc.wait(10) == 0
    rest = server.remaining_lines()
    assert not any("quiet now" in line for line in rest)
    assert rest[-1].endswith(" - shutting down")


def test_dash_N_starts_its_own_name_server_and_registers(echo_process):
    server = echo_process("-N", "-v", env={"PYRO_NS_PORT": "0"})  # the NS on a free port, not 9090
    uri = server.wait_for_uri()
    ns_line = next(line for line in server.lines if line.startswith("using name server at "))
    ns_uri = ns_line[len("using name server at "):]
    assert re.match(r"^PYRO:Pyro\.NameServer@127\.0\.0\.1:\d+$", ns_uri)
    assert "not using a broadcast server" in server.lines  # loopback: no broadcast responder
    with Proxy(ns_uri) as ns:
        assert str(ns.lookup("test.echoserver")) == uri
    with Proxy(uri) as proxy:
        assert proxy.echo("via NS") == "via NS"
        proxy.shutdown()
    assert server.proc.wait(10) == 0


def test_dash_n_registers_in_a_running_name_server(echo_process, serve):
    ns_uri, ns_daemon, bc_server = naming.startNS("127.0.0.1", 0, enableBroadcast=False)
    assert bc_server is None
    with ns_daemon, serve(ns_daemon):
        server = echo_process("-n", env={"PYRO_NS_HOST": "127.0.0.1", "PYRO_NS_PORT": str(ns_uri.port)})
        uri = server.wait_for_uri()
        with Proxy(ns_uri) as ns:
            assert str(ns.lookup("test.echoserver")) == uri
        server.stop()


def test_main_without_looping_prints_pyro4s_lines_and_forces_multiplex(capsys):
    config.SERVERTYPE = "thread"
    daemon, echo, uri = echoserver.main(["-H", "127.0.0.1", "-p", "0"], returnWithoutLooping=True)
    with daemon:
        assert config.SERVERTYPE == "multiplex"
        assert type(daemon.transportServer).__name__ == "SocketServer_Multiplex"
        assert isinstance(echo, echoserver.EchoServer) and echo.verbose is False
        assert daemon.objectsById["test.echoserver"] is echo
    assert capsys.readouterr().out.splitlines() == [
        "Starting Pyro's built-in test echo server.",
        "Warning: HMAC key not set. Anyone can connect to this server!",
        "object name: test.echoserver", "echo uri: %s" % uri, "echoserver running."]


def test_quiet_prints_nothing_and_verbose_overrides_quiet(capsys):
    daemon, _, _ = echoserver.main(["-H", "127.0.0.1", "-q"], returnWithoutLooping=True)
    daemon.close()
    assert capsys.readouterr().out == ""
    daemon, echo, _ = echoserver.main(["-H", "127.0.0.1", "-q", "-v"], returnWithoutLooping=True)
    daemon.close()
    assert echo.verbose is True
    assert "not using a name server." in capsys.readouterr().out


def test_hmac_key_from_the_environment(monkeypatch, capsys, serve):
    monkeypatch.setenv("PYRO_HMAC_KEY", "s3cret")
    daemon, _, uri = echoserver.main(["-H", "127.0.0.1"], returnWithoutLooping=True)
    assert "HMAC key not set" not in capsys.readouterr().out
    with daemon, serve(daemon):
        assert daemon._pyroHmacKey == b"s3cret"
        with Proxy(uri) as proxy:
            proxy._pyroHmacKey = b"s3cret"
            assert proxy.echo(1) == 1
        with Proxy(uri) as proxy, pytest.raises(errors.CommunicationError):
            proxy.echo(1)


def test_dash_k_warns_as_pyro4_does_and_sets_the_key():
    with pytest.warns(UserWarning, match=KEY_WARNING):
        daemon, _, _ = echoserver.main(["-H", "127.0.0.1", "-q", "-k", "abc"], returnWithoutLooping=True)
    daemon.close()
    assert daemon._pyroHmacKey == b"abc"


def test_dash_k_together_with_pyro_hmac_key_is_refused(monkeypatch):
    monkeypatch.setenv("PYRO_HMAC_KEY", "x")
    with pytest.warns(UserWarning, match=KEY_WARNING), pytest.raises(SystemExit) as caught:
        echoserver.main(["-H", "127.0.0.1", "-k", "abc"], returnWithoutLooping=True)
    assert str(caught.value) == "error: don't use -k and PYRO_HMAC_KEY at the same time"


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs Unix domain sockets")
def test_unix_socket(tmp_path, serve):
    path = str(tmp_path / "echo.sock")
    daemon, _, uri = echoserver.main(["-u", path, "-q"], returnWithoutLooping=True)
    with daemon, serve(daemon):
        assert str(uri) == "PYRO:test.echoserver@./u:" + path
        with Proxy(uri) as proxy:
            assert proxy.echo("over a unix socket") == "over a unix socket"


def test_slow_and_oneway_slow(monkeypatch, serve):
    monkeypatch.setattr(echoserver, "SLOW_DELAY", 0.3)
    config.SERVERTYPE = "thread"  # the daemon below (not main's) may overlap calls
    daemon = Daemon(host="127.0.0.1")
    echo = echoserver.EchoServer()
    uri = daemon.register(echo, "test.echoserver")
    with daemon, serve(daemon), Proxy(uri) as proxy:
        started = time.monotonic()
        assert proxy.slow() == "Finally, an answer!"
        assert time.monotonic() - started >= 0.3
        started = time.monotonic()
        assert proxy.oneway_slow() is None
        assert time.monotonic() - started < 0.3
        proxy._pyroTimeout = 0.05
        with pytest.raises(errors.TimeoutError):
            proxy.slow()


def test_startNameServer_returns_a_started_thread(monkeypatch):
    monkeypatch.setattr(config, "NS_PORT", 0)
    ns = echoserver.startNameServer("127.0.0.1", hmac=b"k")
    try:
        assert ns.daemon and ns.started.is_set() and ns.bc_server is None
        assert (ns.hostname, ns.hmac) == ("127.0.0.1", b"k")
        with _locateNS("127.0.0.1", ns.uri.port, hmac_key=b"k") as proxy:
            assert proxy.ping() is None
    finally:
        ns.ns_daemon.shutdown()
        ns.join(10)
    assert not ns.is_alive()


def test_startNameServer_reports_a_port_in_use_instead_of_hanging(monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setattr(config, "NS_PORT", taken.getsockname()[1])
        with pytest.raises(OSError):
            echoserver.startNameServer("127.0.0.1")
