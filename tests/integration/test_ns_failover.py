"""Several name servers in NS_HOST (our extension): locateNS and PYRONAME proxies fail over.

Name servers run in this process on 127.0.0.1, port 0 (one runs as a child process so it can be
killed with SIGKILL); each test stops what it started. Dead addresses are a port that was bound
and closed (refuses at once) or a listening socket that never accepts (answers nothing, so only
the timeout ends the try).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from typing import Any, Iterator, List

import pytest
from test_nsc_cli import ROOT, name_server, tool_env

from pyro4compat import errors, naming
from pyro4compat._client import resolve
from pyro4compat._client.proxy import Proxy
from pyro4compat._server.daemon import Daemon
from pyro4compat._server.exposure import expose
from pyro4compat.configuration import config

pytestmark = pytest.mark.timeout(30)

SLACK = 1.0  # seconds of scheduling slack on top of a timeout


@expose
class Named:
    """Says which registration a client reached, so a test sees which name server resolved it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def who(self) -> str:
        return self.name


class RunningNS:
    """An in-process name server on loopback whose request loop a test can stop early."""

    def __init__(self, serve: Any) -> None:
        self.uri, self.daemon, _ = naming.startNS(host="127.0.0.1", port=0)
        self.address = "127.0.0.1:%d" % self.uri.port
        self._serving = serve(self.daemon)
        self._serving.__enter__()
        self._stopped = False

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._serving.__exit__(None, None, None)


@pytest.fixture(autouse=True)
def forget_failures() -> Iterator[None]:
    resolve.failed_hosts.clear()
    yield
    resolve.failed_hosts.clear()


@pytest.fixture
def three_ns(serve) -> Iterator[List[RunningNS]]:
    servers: List[RunningNS] = []
    try:
        for _ in range(3):
            servers.append(RunningNS(serve))
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def named_objects(serve, three_ns) -> Iterator[None]:
    """``svc`` registered as object ``a`` in the first name server, ``b`` in the second, ``c`` in the third."""
    daemon = Daemon(host="127.0.0.1", port=0)
    with serve(daemon):
        for letter, server in zip("abc", three_ns):
            uri = daemon.register(Named(letter), letter)
            with Proxy(server.uri) as nameserver:
                nameserver.register("svc", uri, metadata={"tag:" + letter, "tag:any"})
        yield


def closed_address() -> str:
    """A loopback address nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return "127.0.0.1:%d" % sock.getsockname()[1]


@contextlib.contextmanager
def silent_address() -> Iterator[str]:
    """A loopback address that accepts TCP connections (backlog) but never answers a byte."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield "127.0.0.1:%d" % sock.getsockname()[1]


def test_locate_ns_skips_a_refusing_address(three_ns):
    dead = closed_address()
    config.NS_HOST = "%s , %s,%s" % (dead, three_ns[1].address, three_ns[2].address)
    started = time.monotonic()
    with naming.locateNS() as proxy:
        assert proxy._pyroUri == three_ns[1].uri
        assert proxy.ping() is None
    assert time.monotonic() - started < SLACK
    order = resolve.failed_hosts.order(resolve.parse_host_list(config.NS_HOST, 0), time.monotonic())
    assert [str(address) for address in order] == [three_ns[1].address, three_ns[2].address, dead]


def test_locate_ns_host_argument_takes_a_list_and_port_is_the_default(three_ns):
    port = three_ns[0].uri.port
    with naming.locateNS(closed_address() + ",127.0.0.1", port) as proxy:
        assert proxy._pyroUri == three_ns[0].uri


def test_a_silent_listener_costs_one_commtimeout(three_ns):
    config.COMMTIMEOUT = 0.5
    with silent_address() as silent:
        config.NS_HOST = "%s,%s" % (silent, three_ns[2].address)
        started = time.monotonic()
        with naming.locateNS() as proxy:
            elapsed = time.monotonic() - started
            assert proxy._pyroUri == three_ns[2].uri
            assert proxy._pyroTimeout == 0.5
        assert 0.4 < elapsed < 0.5 + SLACK
        started = time.monotonic()
        with naming.locateNS() as proxy:  # the silent one failed lately: it is tried last now
            assert proxy._pyroUri == three_ns[2].uri
        assert time.monotonic() - started < 0.4


def test_without_commtimeout_a_list_is_still_bounded(three_ns, monkeypatch):
    monkeypatch.setattr(resolve, "LIST_TRY_TIMEOUT", 0.3)
    config.COMMTIMEOUT = 0.0
    with silent_address() as silent:
        config.NS_HOST = "%s,%s" % (silent, three_ns[0].address)
        started = time.monotonic()
        with naming.locateNS() as proxy:
            assert proxy._pyroUri == three_ns[0].uri
            assert not proxy._pyroTimeout  # the caller's proxy has no timeout, as COMMTIMEOUT says
            assert proxy._pyroConnection.timeout in (None, 0, 0.0)
        assert time.monotonic() - started < 0.3 + SLACK


@pytest.mark.parametrize("metadata", [True, False])
def test_a_daemon_without_a_name_server_is_not_an_answer(serve, three_ns, metadata):
    config.METADATA = metadata
    other = Daemon(host="127.0.0.1", port=0)
    with serve(other):
        config.NS_HOST = "%s,%s" % (other.locationStr, three_ns[1].address)
        with naming.locateNS() as proxy:
            assert proxy._pyroUri == three_ns[1].uri


def test_all_dead_is_a_prompt_naming_error_listing_each(three_ns):
    config.COMMTIMEOUT = 0.3
    dead = [closed_address(), closed_address()]
    with silent_address() as silent:
        config.NS_HOST = ",".join(dead + [silent])
        started = time.monotonic()
        with pytest.raises(errors.NamingError) as caught:
            naming.locateNS()
        assert time.monotonic() - started < 0.3 + SLACK
    message = str(caught.value)
    assert message.startswith("Failed to locate the nameserver; tried: ")
    for address in dead + [silent]:
        assert address + " (" in message
    assert isinstance(caught.value.__cause__, errors.CommunicationError)


def test_pyroname_proxy_resolves_through_the_next_on_reconnect(three_ns, named_objects):
    config.NS_HOST = ",".join(server.address for server in three_ns)
    with Proxy("PYRONAME:svc") as svc, Proxy("PYROMETA:tag:any") as meta:
        assert svc.who() == "a"
        assert meta.who() == "a"
        three_ns[0].stop()
        svc._pyroReconnect(tries=1)  # the explicit way
        assert svc.who() == "b"
        three_ns[1].stop()
        svc._pyroRelease()  # the implicit way: the next call connects, and resolves again
        assert svc.who() == "c"
        meta._pyroRelease()
        assert meta.who() == "c"


def test_a_dropped_name_server_connection_reconnects_to_the_next(three_ns):
    config.NS_HOST = ",".join(server.address for server in three_ns)
    with Proxy("PYRONAME:Pyro.NameServer") as nameserver:
        assert nameserver.count() == 1
        assert nameserver._pyroConnection.sock.getpeername()[1] == three_ns[0].uri.port
        three_ns[0].stop()
        with pytest.raises(errors.CommunicationError):
            nameserver.count()  # the connection it had is gone: Pyro4 reports that once
        assert nameserver.count() == 1  # the next call reconnects, through the next name server
        assert nameserver._pyroConnection.sock.getpeername()[1] == three_ns[1].uri.port


def test_sigkilled_name_server_fails_over(three_ns, named_objects):
    with name_server(["-n", "127.0.0.1", "-p", "0", "-x"]) as process:
        port = process.wait_for_uri()[2]
        config.NS_HOST = "127.0.0.1:%d,%s" % (port, three_ns[1].address)
        with Proxy("PYRONAME:Pyro.NameServer") as nameserver:
            assert nameserver._pyroBind() and nameserver._pyroUri.port == port
        process.proc.kill()
        process.proc.wait(10)
        started = time.monotonic()
        with Proxy("PYRONAME:svc") as svc:
            assert svc.who() == "b"
        assert time.monotonic() - started < SLACK


def run_nsc(*args: str, env: Any = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pyro4compat.nsc"] + list(args), capture_output=True, text=True,
                          timeout=20, cwd=str(ROOT), env=tool_env(env))


def test_nsc_takes_a_list(three_ns, named_objects):
    hosts = "%s,%s" % (closed_address(), three_ns[1].address)
    assert run_nsc("-n", hosts, "lookup", "svc").stdout.startswith("PYRO:b@127.0.0.1:")
    assert run_nsc("lookup", "svc", env={"PYRO_NS_HOST": hosts}).stdout.startswith("PYRO:b@127.0.0.1:")
    failed = run_nsc("-n", closed_address() + ",", "ping")
    assert failed.stdout.startswith("Error: Failed to locate the nameserver; tried: 127.0.0.1:")


@expose
class DiesWhenAsked:
    """Answers ping like a name server, then drops the connection on the question itself."""

    def ping(self) -> None:
        pass

    def lookup(self, name: str) -> None:
        raise SystemExit("gone")    # the daemon closes this connection and serves on

    def list(self, **kwargs: Any) -> None:
        raise SystemExit("gone")


@pytest.mark.parametrize("protocol", ["PYRONAME:svc", "PYROMETA:kind:svc"])
def test_a_name_server_dying_while_asked_is_passed_over(serve, protocol) -> None:
    dying = Daemon(host="127.0.0.1", port=0)
    dying.register(DiesWhenAsked(), "Pyro.NameServer")
    with serve(dying):
        live = RunningNS(serve)
        try:
            with Proxy(live.uri) as ns:
                ns.register("svc", "PYRO:svc@127.0.0.1:7777", metadata={"kind:svc"})
            config.NS_HOST = "127.0.0.1:%d,%s" % (dying.sock.getsockname()[1], live.address)
            assert resolve._resolve(protocol).port == 7777
            assert resolve.failed_hosts.order(resolve.parse_host_list(config.NS_HOST, 0), time.monotonic())[0] \
                == resolve.parse_host_list(live.address + ",", 0)[0]    # the dying one went to the back
            with pytest.raises(errors.NamingError, match="unknown name: nothing"):
                resolve._resolve("PYRONAME:nothing")    # an answer, not a reason to ask the next
        finally:
            live.stop()
