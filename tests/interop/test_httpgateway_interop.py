"""Our HTTP gateway against Pyro4 4.82's own, request by request.

Both gateways run as child processes (``python -m Pyro4.utils.httpgateway`` and ``python -m
pyro4compat.utils.httpgateway``, same options, same ``PYRO_*`` environment) in front of the same
name server and daemon (ours, in this process, on loopback). Every request goes to both; status,
content type, redirect target, correlation id and JSON body must agree. A few direct assertions
pin the values, so that agreeing on a wrong answer cannot pass.

Pyro4's gateway does ``import cgi``, which Python 3.13 removed: there the test is skipped.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple

import pytest
from procs import stop_process

from pyro4compat import naming
from pyro4compat._client.proxy import Proxy
from pyro4compat._context import current_context
from pyro4compat._server.daemon import Daemon
from pyro4compat._server.exposure import expose

pytestmark = [
    pytest.mark.interop,
    pytest.mark.timeout(60),
    pytest.mark.skipif(sys.version_info >= (3, 13),
                       reason="Pyro4 4.82's gateway imports the cgi module, which Python 3.13 removed"),
]

ROOT = Path(__file__).resolve().parents[2]
KEY = "gw-key"
KEYED = {"X-Pyro-Gateway-Key": KEY}
CORRELATION = "11112222-1111-2222-3333-222244449999"
MULTIPART = (b"--XyZ\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nfirst\r\n"
             b"--XyZ\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nsecond\r\n"
             b"--XyZ\r\nContent-Disposition: form-data; name=\"y\"\r\n\r\nthird\r\n--XyZ--\r\n")
FORM = "application/x-www-form-urlencoded"


@expose
class Calculator:
    def __init__(self) -> None:
        self.noted: List[str] = []
        self.noted_twice = threading.Event()

    def echo(self, message: Any = None) -> Any:
        return message

    def add(self, a: str, b: str) -> int:
        return int(a) + int(b)

    def kwargs(self, **kwargs: Any) -> Dict[str, Any]:
        return kwargs

    def fail(self, reason: str = "boom") -> None:
        raise ValueError(reason)

    def note(self, text: str) -> None:
        self.noted.append(text)
        if len(self.noted) == 2:
            self.noted_twice.set()

    def correlation(self) -> str:
        return str(current_context.correlation_id)

    @property
    def answer(self) -> int:
        return 42


class Reply(NamedTuple):
    status: int
    headers: Dict[str, str]
    body: bytes


def child_env(ns_port: int) -> Dict[str, str]:
    """``clean_env()`` of the interop conftest (no inherited ``PYRO_*``), plus the gateway's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYRO_")}
    env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT),
               PYRO_NS_HOST="127.0.0.1", PYRO_NS_PORT=str(ns_port), PYRO_HTTPGATEWAY_KEY=KEY)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def gateway(module: str, ns_port: int) -> Iterator[Tuple[int, List[str]]]:
    """``python -m <module> -H 127.0.0.1 -p <free port>`` until it says it runs; stopped on exit."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-W", "ignore", "-m", module, "-H", "127.0.0.1", "-p", str(port),
                             "-t", "5"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env(ns_port), cwd=str(ROOT / "tests"))
    try:
        lines: List[str] = []
        while not lines or not lines[-1].startswith("Pyro HTTP gateway running on"):
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                proc.kill()
                pytest.fail("%s did not start: %r %s" % (module, lines, proc.stderr.read()))  # type: ignore
            lines.append(line.rstrip("\n"))
        yield port, lines
    finally:
        stop_process(proc)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]


def request(port: int, method: str, target: str, body: Optional[bytes] = None,
            headers: Optional[Dict[str, str]] = None) -> Reply:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        connection.request(method, target, body=body, headers=headers or {})
        reply = connection.getresponse()
        return Reply(reply.status, dict(reply.getheaders()), reply.read())
    finally:
        connection.close()


@contextlib.contextmanager
def serving(daemon: Daemon) -> Iterator[Daemon]:
    """``daemon.requestLoop()`` in a thread, shut down and joined on exit."""
    thread = threading.Thread(target=daemon.requestLoop, name="gateway-interop-daemon", daemon=True)
    thread.start()
    try:
        yield daemon
    finally:
        daemon.shutdown()
        thread.join(10)
        assert not thread.is_alive(), "daemon loop did not stop"


@pytest.fixture
def world() -> Iterator[Tuple[Calculator, Any]]:
    """Our name server and a daemon with ``http.calc`` (and ``secret.calc``) on loopback."""
    ns_uri, ns_daemon, _ = naming.startNS(host="127.0.0.1", port=0)
    daemon = Daemon(host="127.0.0.1", port=0)
    calc = Calculator()
    uri = daemon.register(calc, "calc")
    try:
        with serving(ns_daemon), serving(daemon):
            with Proxy(ns_uri) as ns:
                ns.register("http.calc", uri)
                ns.register("secret.calc", uri)
            yield calc, ns_uri
    finally:
        ns_daemon.close()
        daemon.close()


@pytest.fixture
def gateways(world) -> Iterator[Dict[str, Tuple[int, List[str]]]]:
    """Pyro4's gateway and ours, both in children, in front of ``world``."""
    port = world[1].port
    with gateway("Pyro4.utils.httpgateway", port) as pyro4, gateway("pyro4compat.utils.httpgateway", port) as ours:
        yield {"pyro4": pyro4, "ours": ours}


# (method, target, body, headers): sent to both gateways, answers compared
REQUESTS = [
    ("GET", "/", None, {}),
    ("GET", "/elsewhere", None, {}),
    ("PUT", "/pyro/http.calc/echo", b"", KEYED),
    ("GET", "/pyro/http.calc", None, KEYED),
    ("GET", "/pyro/http.calc/echo", None, {}),
    ("GET", "/pyro/http.calc/echo", None, {"X-Pyro-Gateway-Key": "wrong"}),
    ("GET", "/pyro/http.calc/echo?%24key=wrong", None, {}),
    ("GET", "/pyro/secret.calc/echo", None, KEYED),
    ("GET", "/pyro/http.calc/echo?message=hi", None, KEYED),
    ("GET", "/pyro/http.calc/echo?message=Hi+there%2C+browser%21&%24key=" + KEY, None, {}),
    ("GET", "/pyro/http.calc/echo?message=", None, KEYED),
    ("GET", "/pyro/http.calc/add?a=2&b=40", None, KEYED),
    ("GET", "/pyro/http.calc/kwargs?x=1&y=two&x=3", None, KEYED),
    ("GET", "/pyro/http.calc/kwargs?novalue&v=%ZZ", None, KEYED),
    ("GET", "/pyro/http.calc/answer", None, KEYED),
    ("GET", "/pyro/http.calc/$meta", None, KEYED),
    ("GET", "/pyro/http.calc/fail?reason=bad+day", None, KEYED),
    ("GET", "/pyro/http.calc/echo?bogus=1", None, KEYED),
    ("GET", "/pyro/http.nothere/echo", None, KEYED),
    ("GET", "/pyro/http.calc/nomethod", None, KEYED),
    ("GET", "/pyro/http.calc/answer?x=1", None, KEYED),
    ("GET", "/pyro/http.calc/correlation", None, dict(KEYED, **{"X-Pyro-Correlation-Id": CORRELATION})),
    ("GET", "/pyro/http.calc/echo", None, dict(KEYED, **{"X-Pyro-Correlation-Id": "not-a-uuid"})),
    ("GET", "/pyro/http.calc/note?text=later", None, dict(KEYED, **{"X-Pyro-Options": "oneway"})),
    ("POST", "/pyro/http.calc/kwargs?q=3", b"a=1&b=2", dict(KEYED, **{"Content-Type": FORM})),
    ("POST", "/pyro/http.calc/kwargs?q=3", b"a=1", dict(KEYED, **{"Content-Type": "text/plain"})),
    ("POST", "/pyro/http.calc/kwargs", b"%24key=" + KEY.encode() + b"&a=1", {"Content-Type": FORM}),
    ("POST", "/pyro/http.calc/kwargs?q=1", b"", dict(KEYED, **{"Content-Type": FORM})),
]


def comparable(reply: Reply) -> Dict[str, Any]:
    """What must agree: status, content type, redirect target, correlation id (its form) and JSON body."""
    result: Dict[str, Any] = {"status": reply.status, "type": reply.headers.get("Content-Type"),
                              "location": reply.headers.get("Location")}
    correlation = reply.headers.get("X-Pyro-Correlation-Id")
    result["correlation"] = correlation if correlation in (None, CORRELATION) else re.sub(r"[0-9a-f]", "h", correlation)
    if result["type"] == "application/json; charset=utf-8" and reply.body:
        body = json.loads(reply.body.decode("utf-8"))
        if isinstance(body, dict) and "methods" in body:
            body = {key: sorted(value) for key, value in body.items()}
        if isinstance(body, dict) and "_pyroTraceback" in body.get("attributes", {}):
            body["attributes"]["_pyroTraceback"] = bool(body["attributes"]["_pyroTraceback"])
        result["json"] = body
    else:
        result["body"] = reply.body
    return result


def test_every_request_gets_the_same_answer_from_both_gateways(world, gateways):
    answers = {name: [comparable(request(port, *req)) for req in REQUESTS] for name, (port, _) in gateways.items()}
    for req, pyro4_answer, our_answer in zip(REQUESTS, answers["pyro4"], answers["ours"]):
        assert our_answer == pyro4_answer, req
    # pin the values both agreed on
    ours = dict(zip(((r[0], r[1]) for r in REQUESTS), answers["ours"]))
    assert ours[("GET", "/")]["location"] == "/pyro/"
    assert ours[("GET", "/pyro/http.calc/add?a=2&b=40")]["json"] == 42
    assert ours[("GET", "/pyro/http.calc/kwargs?x=1&y=two&x=3")]["json"] == {"x": ["1", "3"], "y": "two"}
    assert ours[("GET", "/pyro/http.calc/$meta")]["json"] == {
        "methods": ["add", "correlation", "echo", "fail", "kwargs", "note"], "attributes": ["answer"]}
    assert ours[("GET", "/pyro/http.calc/correlation")]["json"] == CORRELATION
    assert ours[("GET", "/pyro/http.nothere/echo")]["json"]["__class__"] == "Pyro4.errors.NamingError"
    assert ours[("GET", "/pyro/http.calc/fail?reason=bad+day")]["json"]["args"] == ["bad day"]
    assert ours[("POST", "/pyro/http.calc/kwargs")]["json"] == {"a": "1"}
    assert [r["status"] for r in answers["ours"][4:8]] == [403, 403, 403, 403]
    assert world[0].noted_twice.wait(10)  # each gateway's oneway call reached the object


def test_the_remote_exception_payload_is_passed_through_byte_for_byte(gateways):
    replies = [request(port, "GET", "/pyro/http.calc/fail?reason=x", headers=KEYED) for port, _ in gateways.values()]
    assert replies[0].status == replies[1].status == 500
    assert replies[0].body == replies[1].body


def test_command_line_output_and_home_page_agree(world, gateways):
    ns_uri = str(world[1])
    for name, (port, lines) in gateways.items():
        assert lines == ["Exposing objects with names matching:  http\\.",
                         "Connected to name server at:  " + ns_uri,
                         "Pyro HTTP gateway running on http://127.0.0.1:%d/pyro/" % port], name
        page = request(port, "GET", "/pyro/")
        assert (page.status, page.headers["Content-Type"]) == (200, "text/html"), name
        text = page.body.decode("utf-8")
        assert 'href="http.calc/$meta"' in text and "secret.calc" not in text, name
        for method in ("add", "correlation", "echo", "fail", "kwargs", "note"):
            assert re.search(r"<td>[^<]*\b%s\b[^<]*</td>" % method, text), (name, method)
        assert 'id="pyro_response"' in text and "Pyro version: 4.82" in text, name


def test_known_difference_form_text_is_utf8_here_latin1_in_pyro4(gateways):
    """Pyro4 decodes form fields as latin-1 (cgi's default for a binary stream): 'é' arrives as 'Ã©'."""
    target = "/pyro/http.calc/echo?message=%C3%A9"
    answers = {name: json.loads(request(port, "GET", target, headers=KEYED).body)
               for name, (port, _) in gateways.items()}
    assert answers == {"pyro4": "\u00c3\u00a9", "ours": "\u00e9"}


def test_known_difference_multipart_forms_work_here_and_crash_pyro4(gateways):
    """Pyro4 hands cgi.parse_multipart a str boundary where it wants bytes: every multipart POST fails."""
    headers = dict(KEYED, **{"Content-Type": "multipart/form-data; boundary=XyZ"})
    replies = {name: request(port, "POST", "/pyro/http.calc/kwargs", MULTIPART, headers)
               for name, (port, _) in gateways.items()}
    assert (replies["pyro4"].status, replies["pyro4"].headers["Content-Type"]) == (500, "text/plain")
    assert replies["ours"].status == 200
    assert json.loads(replies["ours"].body) == {"x": ["first", "second"], "y": "third"}
