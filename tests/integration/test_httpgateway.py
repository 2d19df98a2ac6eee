"""The HTTP gateway against a name server and a daemon on loopback.

Requests go to ``pyro_app`` directly (wrapped in ``wsgiref.validate.validator``, which fails the
test on any WSGI violation) and through a real threaded ``wsgiref`` server on 127.0.0.1:0.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple
from wsgiref.simple_server import WSGIRequestHandler, make_server
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest
from procs import stop_process

from pyro4compat import naming
from pyro4compat._client.proxy import Proxy
from pyro4compat._context import current_context
from pyro4compat._server.daemon import Daemon
from pyro4compat._server.exposure import expose
from pyro4compat.configuration import config
from pyro4compat.utils import httpgateway
from pyro4compat.utils.httpgateway import pyro_app

ROOT = Path(__file__).resolve().parents[2]
JSON_TYPE = "application/json; charset=utf-8"


@expose
class Calculator:
    """The remote object behind ``http.calc``: arguments arrive as strings."""

    def __init__(self) -> None:
        self.noted: List[str] = []
        self.noted_event = threading.Event()

    def echo(self, message: Any = None) -> Any:
        return message

    def add(self, a: str, b: str) -> int:
        return int(a) + int(b)

    def kwargs(self, **kwargs: Any) -> Dict[str, Any]:
        return kwargs

    def fail(self, reason: str = "boom") -> None:
        raise ValueError(reason)

    def note(self, text: str) -> str:
        self.noted.append(text)
        self.noted_event.set()
        return "noted"

    def correlation(self) -> str:
        return str(current_context.correlation_id)

    @property
    def answer(self) -> int:
        return 42


class Response(NamedTuple):
    status: int
    headers: Dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


class World(NamedTuple):
    calc: Calculator
    calc_uri: str
    ns_uri: Any


@contextlib.contextmanager
def pyro_world(serve, hmac: Optional[bytes] = None, extra_names: int = 0) -> Iterator[World]:
    """A name server and a daemon on loopback; the gateway is pointed at them and reset afterwards."""
    ns_uri, ns_daemon, _ = naming.startNS(host="127.0.0.1", port=0, hmac=hmac)
    daemon = Daemon(host="127.0.0.1", port=0)
    daemon._pyroHmacKey = hmac
    calc = Calculator()
    calc_uri = daemon.register(calc, "calc")
    saved = {name: getattr(pyro_app, name) for name in ("ns_regex", "hmac_key", "gateway_key", "comm_timeout")}
    try:
        with serve(ns_daemon), serve(daemon):
            with Proxy(ns_uri) as ns:
                ns._pyroHmacKey = hmac
                ns.register("http.calc", calc_uri)
                ns.register("secret.calc", calc_uri)
                for number in range(extra_names):
                    ns.register("http.extra%02d" % number, calc_uri)
            config.NS_HOST, config.NS_PORT = "127.0.0.1", ns_uri.port
            pyro_app.comm_timeout = 5.0
            pyro_app.hmac_key = hmac
            yield World(calc, str(calc_uri), ns_uri)
    finally:
        for name, value in saved.items():
            setattr(pyro_app, name, value)
        if httpgateway._nameserver is not None:
            httpgateway._nameserver._pyroRelease()
            httpgateway._nameserver = None
        ns_daemon.close()
        daemon.close()


@pytest.fixture
def world(serve) -> Iterator[World]:
    with pyro_world(serve) as started:
        yield started


def call_app(path: str, method: str = "GET", query: str = "", body: bytes = b"",
             content_type: Optional[str] = None, headers: Optional[Dict[str, str]] = None,
             content_length: Any = None) -> Response:
    """One request straight into ``pyro_app``, through wsgiref's WSGI validator except for redirects
    (the validator wants a Content-Type on every response; Pyro4's 302 has none, and neither has ours)
    and for invalid Content-Length values (which the validator refuses before the app sees them)."""
    environ: Dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ.update({"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
                    "wsgi.input": io.BytesIO(body), "wsgi.errors": io.StringIO(),
                    "CONTENT_LENGTH": str(len(body)) if content_length is None else content_length})
    if content_type is not None:
        environ["CONTENT_TYPE"] = content_type
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    started: List[Any] = []

    def start_response(status: str, response_headers: List[Tuple[str, str]], exc_info: Any = None) -> Any:
        started.append((status, response_headers))
        return lambda data: None

    valid = path.strip("/") != "" and content_length is None  # the validator rejects bad lengths itself
    app = validator(pyro_app) if valid else pyro_app
    result = app(environ, start_response)
    try:
        data = b"".join(result)
    finally:
        getattr(result, "close", lambda: None)()
    status, response_headers = started[0]
    return Response(int(status.split()[0]), dict(response_headers), data)


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - wsgiref's signature
        pass


@contextlib.contextmanager
def http_gateway() -> Iterator[int]:
    """``pyro_app`` on a real threaded wsgiref server bound to 127.0.0.1:0; yields its port."""
    server = make_server("127.0.0.1", 0, pyro_app, server_class=httpgateway._ThreadingWSGIServer,
                         handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
        assert not thread.is_alive()


def http_request(port: int, method: str, target: str, body: Optional[bytes] = None,
                 headers: Optional[Dict[str, str]] = None) -> Response:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, target, body=body, headers=headers or {})
        reply = connection.getresponse()
        return Response(reply.status, dict(reply.getheaders()), reply.read())
    finally:
        connection.close()


def exception_parts(response: Response) -> Tuple[str, List[Any]]:
    data = response.json()
    assert data["__exception__"] is True
    return data["__class__"], data["args"]


# --- routes, methods and plain statuses ----------------------------------------------------------

PLAIN_ROUTES = [
    # (method, path, status, body)
    ("GET", "/", 302, b""),
    ("PUT", "/", 302, b""),
    ("GET", "/elsewhere", 404, b"Error 404: Not Found"),
    ("GET", "/pyro", 404, b"Error 404: Not Found"),
    ("PUT", "/pyro/http.calc/echo", 405, b"Error 405: Method Not Allowed"),
    ("DELETE", "/pyro/http.calc/echo", 405, b"Error 405: Method Not Allowed"),
    ("HEAD", "/pyro/", 405, b"Error 405: Method Not Allowed"),
    ("GET", "/pyro/http.calc", 404, b"Error 404: Not Found"),
    ("GET", "/pyro/http.calc/", 404, b"Error 404: Not Found"),
    ("GET", "/pyro/secret.calc/echo", 403, b"403 Forbidden - access to the requested object has been denied"),
    ("POST", "/pyro/secret.calc/$meta", 403, b"403 Forbidden - access to the requested object has been denied"),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("method,path,status,body", PLAIN_ROUTES)
def test_plain_routes(world, method, path, status, body):
    response = call_app(path, method)
    assert (response.status, response.body) == (status, body)
    if status == 302:
        assert response.headers["Location"] == "/pyro/"
    else:
        assert response.headers["Content-Type"] == "text/plain"


@pytest.mark.timeout(10)
def test_redirect_keeps_the_mount_point():
    environ: Dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ.update(SCRIPT_NAME="/gateway", PATH_INFO="/")
    started: List[Any] = []
    assert pyro_app(environ, lambda status, headers: started.append((status, headers))) == []
    assert started == [("302 Found", [("Location", "/gateway/pyro/")])]


# --- calls ---------------------------------------------------------------------------------------

CALLS = [
    # (method, query, body, content type, expected JSON)
    ("echo", "message=hi", b"", None, "hi"),
    ("echo", "message=Hi+there%2C+browser%21", b"", None, "Hi there, browser!"),
    ("echo", "message=%C3%A9t%C3%A9", b"", None, "\u00e9t\u00e9"),
    ("echo", "message=", b"", None, None),
    ("echo", "", b"", None, None),
    ("add", "a=2&b=40", b"", None, 42),
    ("kwargs", "x=1&y=two&x=3", b"", None, {"x": ["1", "3"], "y": "two"}),
    ("kwargs", "novalue&v=%ZZ", b"", None, {"v": "%ZZ"}),
    ("answer", "", b"", None, 42),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("method,query,body,ctype,expected", CALLS)
def test_get_calls_return_the_raw_json_reply(world, method, query, body, ctype, expected):
    response = call_app("/pyro/http.calc/" + method, "GET", query)
    assert response.status == 200, response.body
    assert response.headers["Content-Type"] == JSON_TYPE
    uuid.UUID(response.headers["X-Pyro-Correlation-Id"])
    assert response.json() == expected


MULTIPART_BODY = (b"--XyZ\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nfirst \xc3\xa9\r\n"
                  b"--XyZ\r\nContent-Disposition: form-data; name=\"y\"\r\n\r\n\r\n"
                  b"--XyZ\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nsecond\r\n--XyZ--\r\n")

POSTS = [
    # (query, body, content type, expected kwargs)
    ("", b"a=1&b=2", "application/x-www-form-urlencoded", {"a": "1", "b": "2"}),
    ("q=3", b"a=1", "application/x-www-form-urlencoded; charset=utf-8", {"a": "1", "q": "3"}),
    ("q=3", b"a=1", "text/plain", {"q": "3"}),
    ("q=3", b"a=1", None, {"q": "3"}),
    ("", b"a=%E2%82%AC&a=b", "application/x-www-form-urlencoded", {"a": ["\u20ac", "b"]}),
    ("q=ignored", MULTIPART_BODY, "multipart/form-data; boundary=XyZ",
     {"x": ["first \u00e9", "second"], "y": ""}),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("query,body,ctype,expected", POSTS)
def test_post_forms_become_string_kwargs(world, query, body, ctype, expected):
    response = call_app("/pyro/http.calc/kwargs", "POST", query, body, ctype)
    assert response.status == 200, response.body
    assert response.json() == expected


@pytest.mark.timeout(30)
def test_a_content_length_handed_over_as_an_int_is_read_as_pyro4_did(world):
    response = call_app("/pyro/http.calc/kwargs", "POST", body=b"a=1&b=2",
                        content_type="application/x-www-form-urlencoded", content_length=7)
    assert response.status == 200, response.body
    assert response.json() == {"a": "1", "b": "2"}


@pytest.mark.timeout(30)
def test_uploaded_files_arrive_as_bytes_which_json_cannot_carry(world):
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.bin\"\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n\x00\xff\r\n--XyZ--\r\n")
    response = call_app("/pyro/http.calc/kwargs", "POST", body=body, content_type="multipart/form-data; boundary=XyZ")
    assert response.status == 500
    assert exception_parts(response)[0] == "Pyro4.errors.SerializeError"


@pytest.mark.timeout(30)
def test_invalid_name_pattern_exposes_nothing(world, capsys):
    pyro_app.ns_regex = "http\\.("
    response = call_app("/pyro/http.calc/answer")
    assert (response.status, response.body) == (403, b"403 Forbidden - access to the requested object has been denied")
    page = call_app("/pyro/")
    assert page.status == 500 and page.body.startswith(b"Error 500: the name server listing failed")
    assert "Name server error:" in capsys.readouterr().out


@pytest.mark.timeout(30)
def test_meta_lists_methods_and_attributes(world):
    response = call_app("/pyro/http.calc/$meta")
    assert response.status == 200
    assert response.headers["Content-Type"] == JSON_TYPE
    assert response.json() == {"methods": ["add", "correlation", "echo", "fail", "kwargs", "note"],
                               "attributes": ["answer"]}


@pytest.mark.timeout(30)
def test_correlation_id_travels_in_and_out(world):
    given = "11112222-1111-2222-3333-222244449999"
    response = call_app("/pyro/http.calc/correlation", headers={"X-Pyro-Correlation-Id": given})
    assert response.status == 200
    assert response.headers["X-Pyro-Correlation-Id"] == given
    assert response.json() == given  # the remote method saw it in its call context
    fresh = call_app("/pyro/http.calc/correlation")
    assert fresh.json() == fresh.headers["X-Pyro-Correlation-Id"] != given
    assert current_context.correlation_id is None  # the request's id does not stay in this thread


@pytest.mark.timeout(30)
def test_oneway_option_returns_at_once_and_the_call_still_runs(world):
    response = call_app("/pyro/http.calc/note", query="text=later", headers={"X-Pyro-Options": "oneway"})
    assert (response.status, response.body) == (200, b"")
    assert response.headers["Content-Type"] == JSON_TYPE
    uuid.UUID(response.headers["X-Pyro-Correlation-Id"])
    assert world.calc.noted_event.wait(10)
    assert world.calc.noted == ["later"]


# --- errors as JSON ------------------------------------------------------------------------------

@pytest.mark.timeout(30)
def test_remote_exception_is_a_500_with_the_daemons_json(world):
    response = call_app("/pyro/http.calc/fail", query="reason=bad+day")
    assert response.status == 500
    assert response.headers == {"Content-Type": JSON_TYPE}  # no correlation id on errors, as Pyro4
    assert exception_parts(response) == ("builtins.ValueError", ["bad day"])
    assert any("ValueError: bad day" in line for line in response.json()["attributes"]["_pyroTraceback"])


GATEWAY_ERRORS = [
    # (path, query, headers, exception class, first argument)
    ("/pyro/http.nothere/echo", "", {}, "Pyro4.errors.NamingError", "unknown name: http.nothere"),
    ("/pyro/http.calc/nomethod", "", {}, "builtins.AttributeError", "no exposed attribute or method 'nomethod'"),
    ("/pyro/http.calc/_pyroRelease", "", {}, "builtins.AttributeError", "method '_pyroRelease'"),
    ("/pyro/http.calc/__class__", "", {}, "builtins.AttributeError", "method '__class__'"),
    ("/pyro/http.calc/answer", "x=1", {}, "builtins.AssertionError", "attribute lookup can't have query parameters"),
    ("/pyro/http.calc/echo", "", {"X-Pyro-Correlation-Id": "not-a-uuid"}, "builtins.ValueError", "badly formed"),
    ("/pyro/http.calc/echo", "bogus=1", {}, "builtins.TypeError", "bogus"),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("path,query,headers,exc_class,text", GATEWAY_ERRORS)
def test_gateway_side_errors_are_500_json(world, path, query, headers, exc_class, text):
    response = call_app(path, query=query, headers=headers)
    assert response.status == 500
    assert response.headers == {"Content-Type": JSON_TYPE}
    name, args = exception_parts(response)
    assert name == exc_class
    assert text in args[0]


BAD_REQUESTS = [
    # (body, content type, declared length, status, body text)
    (b"a=1", "application/x-www-form-urlencoded", "three", 400, b"invalid Content-Length"),
    (b"a=1", "application/x-www-form-urlencoded", "-1", 400, b"invalid Content-Length"),
    (b"a=" + b"x" * 2000, "application/x-www-form-urlencoded", None, 413, b"at most 1024 bytes"),
    (b"x" * 2000, "multipart/form-data; boundary=XyZ", None, 413, b"at most 1024 bytes"),
    (b"no parts at all", "multipart/form-data; boundary=XyZ", None, 400, b"malformed multipart"),
    (b"--XyZ\r\n\r\nx", "multipart/form-data", None, 400, b"malformed multipart"),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("body,ctype,length,status,text", BAD_REQUESTS)
def test_bad_request_bodies_get_a_clear_status(world, monkeypatch, body, ctype, length, status, text):
    monkeypatch.setattr(httpgateway, "MAX_BODY_SIZE", 1024)
    response = call_app("/pyro/http.calc/kwargs", "POST", body=body, content_type=ctype, content_length=length)
    assert response.status == status
    assert response.headers["Content-Type"] == "text/plain"
    assert text in response.body


# --- keys ----------------------------------------------------------------------------------------

GATEWAY_KEYS = [
    # (configured key, query, headers, status)
    (b"s3cret", "", {}, 403),
    (b"s3cret", "", {"X-Pyro-Gateway-Key": "wrong"}, 403),
    (b"s3cret", "", {"X-Pyro-Gateway-Key": "s3cret"}, 200),
    (b"s3cret", "%24key=s3cret", {}, 200),
    (b"s3cret", "%24key=wrong", {}, 403),
    (b"s3cret", "%24key=s3cret&%24key=s3cret", {}, 403),
    ("s3cret", "%24key=s3cret", {}, 200),
    (b"", "", {}, 200),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("key,query,headers,status", GATEWAY_KEYS)
def test_gateway_key(world, key, query, headers, status):
    pyro_app.gateway_key = key
    response = call_app("/pyro/http.calc/kwargs", query=query, headers=headers)
    assert response.status == status
    if status == 403:
        assert response.body == b"403 Forbidden - incorrect gateway api key"
    else:
        assert response.json() == {}  # $key is consumed, never passed on as an argument


@pytest.mark.timeout(30)
def test_key_is_checked_before_the_name_pattern(world):
    pyro_app.gateway_key = b"s3cret"
    assert call_app("/pyro/secret.calc/echo").body == b"403 Forbidden - incorrect gateway api key"


@pytest.mark.timeout(30)
def test_hmac_key_reaches_name_server_and_object(serve):
    with pyro_world(serve, hmac=b"pyro-hmac") as started:
        response = call_app("/pyro/http.calc/add", query="a=1&b=1")
        assert (response.status, response.json()) == (200, 2)
        assert b"http.calc" in call_app("/pyro/").body
        with Proxy(started.calc_uri) as plain:
            with pytest.raises(Exception):
                plain.echo("no key")


# --- the page ------------------------------------------------------------------------------------

@pytest.mark.timeout(30)
def test_home_page_lists_exposed_names_with_methods_and_attributes(world):
    response = call_app("/pyro/")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html"
    page = response.body.decode("utf-8")
    assert "exposed name pattern = 'http\\.'" in page
    assert "on 127.0.0.1:%d:" % world.ns_uri.port in page
    assert '<a href="http.calc/$meta" data-pyro-name="http.calc" data-pyro-method="$meta">http.calc</a>' in page
    assert "add &nbsp; correlation &nbsp; echo &nbsp; fail &nbsp; kwargs &nbsp; note" in page
    assert 'data-pyro-name="http.calc" data-pyro-method="answer">answer</a>' in page
    assert "secret.calc" not in page
    assert "function pyro_call(name, method, params)" in page and "fetch(url" in page
    assert 'id="pyro_response"' in page and "Pyro version: 4.82" in page


@pytest.mark.timeout(30)
def test_home_page_shows_at_most_ten_names(serve):
    with pyro_world(serve, extra_names=12):
        page = call_app("/pyro/").body.decode("utf-8")
    assert page.count("<tr><td>") == 10


@pytest.mark.timeout(30)
def test_home_page_escapes_names_and_reports_broken_registrations(world):
    with Proxy(world.ns_uri) as ns:
        ns.register("http.<b>&'\"", world.calc_uri)
        ns.register("http.gone", "PYRO:gone@127.0.0.1:1")
    page = call_app("/pyro/").body.decode("utf-8")
    assert "<b>" not in page.split("<body>")[1]
    assert "http.&lt;b&gt;&amp;&#x27;&quot;" in page
    assert "??error:" in page


@pytest.mark.timeout(30)
def test_home_page_without_name_server_is_a_500(world):
    config.NS_PORT = 1  # nothing listens there: discovery fails after its broadcast rounds
    config.BROADCAST_ADDRS = "127.0.0.1"
    config.NS_BCPORT = 1
    response = call_app("/pyro/")
    assert response.status == 500
    assert response.body == b"Cannot connect to the Pyro name server. Is it running? Refresh page to retry."


@pytest.mark.timeout(30)
def test_name_server_restart_is_noticed(serve, capsys):
    with pyro_world(serve) as first:
        assert call_app("/pyro/http.calc/answer").json() == 42
        cached = httpgateway._nameserver
        cached._pyroRelease()
    httpgateway._nameserver = cached  # as if the gateway had kept it across the name server's restart
    with pyro_world(serve) as second:
        assert second.ns_uri.port != first.ns_uri.port
        assert call_app("/pyro/http.calc/answer").json() == 42
        assert httpgateway._nameserver is not cached
        assert httpgateway._nameserver._pyroUri.port == second.ns_uri.port
    assert "Connection with nameserver lost, reconnecting..." in capsys.readouterr().out


# --- over real HTTP ------------------------------------------------------------------------------

@pytest.mark.timeout(30)
def test_through_a_real_wsgiref_server(world):
    with http_gateway() as port:
        root = http_request(port, "GET", "/")
        assert (root.status, root.headers["Location"]) == (302, "/pyro/")
        page = http_request(port, "GET", "/pyro/")
        assert page.status == 200 and b"http.calc/$meta" in page.body
        assert http_request(port, "GET", "/pyro/http.calc/add?a=20&b=22").json() == 42
        form = http_request(port, "POST", "/pyro/http.calc/kwargs?q=1", b"a=%C3%A9",
                            {"Content-Type": "application/x-www-form-urlencoded"})
        assert form.json() == {"a": "\u00e9", "q": "1"}
        assert http_request(port, "GET", "/pyro/http.calc/$meta").json()["attributes"] == ["answer"]
        assert http_request(port, "PUT", "/pyro/http.calc/echo", b"").status == 405
        assert http_request(port, "GET", "/pyro/secret.calc/echo").status == 403
        failed = http_request(port, "GET", "/pyro/http.calc/fail")
        assert failed.status == 500 and exception_parts(failed) == ("builtins.ValueError", ["boom"])
        given = str(uuid.uuid4())
        oneway = http_request(port, "GET", "/pyro/http.calc/note?text=x",
                              headers={"X-Pyro-Options": "oneway", "X-Pyro-Correlation-Id": given})
        assert (oneway.status, oneway.body, oneway.headers["X-Pyro-Correlation-Id"]) == (200, b"", given)
        assert world.calc.noted_event.wait(10)
        pyro_app.gateway_key = b"k"
        assert http_request(port, "GET", "/pyro/http.calc/answer").status == 403
        keyed = http_request(port, "GET", "/pyro/http.calc/answer", headers={"X-Pyro-Gateway-Key": "k"})
        assert keyed.json() == 42


@pytest.mark.timeout(30)
def test_huge_declared_body_is_refused_without_reading_it(world):
    with http_gateway() as port:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.putrequest("POST", "/pyro/http.calc/kwargs")
            connection.putheader("Content-Type", "application/x-www-form-urlencoded")
            connection.putheader("Content-Length", str(10 ** 12))
            connection.endheaders()
            reply = connection.getresponse()
            assert reply.status == 413
            reply.read()
        finally:
            connection.close()
        assert http_request(port, "GET", "/pyro/http.calc/answer").json() == 42  # still serving


# --- command line --------------------------------------------------------------------------------

def _gateway_env(ns_port: int, **extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYRO_")}
    env.update(PYTHONPATH=str(ROOT), PYRO_NS_HOST="127.0.0.1", PYRO_NS_PORT=str(ns_port), **extra)
    return env


@contextlib.contextmanager
def gateway_process(args: List[str], env: Dict[str, str]) -> Iterator[Tuple[int, List[str]]]:
    """``python -m pyro4compat.utils.httpgateway`` until its 'running on' line; stopped on exit."""
    proc = subprocess.Popen([sys.executable, "-W", "error", "-m", "pyro4compat.utils.httpgateway"] + args,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(ROOT))
    try:
        lines: List[str] = []
        while not lines or not lines[-1].startswith("Pyro HTTP gateway running on"):
            line = proc.stdout.readline()
            if not line:
                pytest.fail("gateway did not start: %r %s" % (lines, proc.stderr.read()))
            lines.append(line.rstrip("\n"))
        yield int(lines[-1].rsplit(":", 1)[1].split("/")[0]), lines
    finally:
        stop_process(proc)
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.timeout(30)
def test_main_serves_and_prints_like_pyro4(world):
    env = _gateway_env(world.ns_uri.port, PYRO_HTTPGATEWAY_KEY="envkey")
    with gateway_process(["-H", "127.0.0.1", "-p", "0", "-e", "http\\.c", "-t", "4"], env) as (port, lines):
        assert lines[:2] == ["Exposing objects with names matching:  http\\.c",
                             "Connected to name server at:  %s" % world.ns_uri]
        assert lines[2] == "Pyro HTTP gateway running on http://127.0.0.1:%d/pyro/" % port
        assert http_request(port, "GET", "/pyro/http.calc/answer").status == 403
        keyed = http_request(port, "GET", "/pyro/http.calc/answer?%24key=envkey")
        assert (keyed.status, keyed.json()) == (200, 42)


@pytest.mark.timeout(30)
def test_main_without_pattern_warns_that_everything_is_exposed(world):
    with gateway_process(["-H", "127.0.0.1", "-p", "0", "-e", ""], _gateway_env(world.ns_uri.port)) as (port, lines):
        assert lines[0] == "Warning: exposing all objects (no expose regex set)"
        assert http_request(port, "GET", "/pyro/secret.calc/answer").json() == 42


MAIN_REFUSALS = [
    (["-g", "x"], {"PYRO_HTTPGATEWAY_KEY": "y"}, "error: don't use -g and PYRO_HTTPGATEWAY_KEY at the same time"),
    (["-k", "x"], {"PYRO_HMAC_KEY": "y"}, "error: don't use -k and PYRO_HMAC_KEY at the same time"),
]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("args,env,message", MAIN_REFUSALS)
def test_main_refuses_a_key_given_twice(monkeypatch, args, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.warns(UserWarning, match="deprecated since Pyro 4.72"):
        with pytest.raises(SystemExit) as exited:
            httpgateway.main(args)
    assert exited.value.code == message
