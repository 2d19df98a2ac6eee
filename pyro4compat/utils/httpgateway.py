"""``Pyro4.utils.httpgateway``: Pyro objects for browsers and other HTTP clients, as JSON.

A stateless WSGI app (:func:`pyro_app`) plus a small command line (:func:`main`) that runs it on
``wsgiref``. Every request looks its object up in the name server and talks to it through a
fresh proxy that uses the json serializer, and the reply's JSON payload goes back to the HTTP
client unchanged: a browser can use it as is.

Theory of operation
-------------------
``GET /`` redirects to ``/pyro/``, the HTML page that lists (up to 10) exposed names and calls
them from JavaScript. ``GET|POST /pyro/<name>/<method>`` calls ``method`` with the query or
form fields as string keyword arguments (an attribute name reads the attribute, ``$meta``
describes the object). Only names matching ``pyro_app.ns_regex`` (``re.match``) are reachable,
and when ``pyro_app.gateway_key`` is set every call must carry it (``X-Pyro-Gateway-Key``
header or ``$key`` field).

It differs from Pyro4 4.82 where Pyro4 breaks or is unsafe, never on a working request:
no ``cgi`` module (gone in Python 3.13); form fields are decoded as UTF-8 (Pyro4 decodes
latin-1); the request body is bounded (:data:`MAX_BODY_SIZE`) and a malformed request gets a
400/413 instead of an unhandled exception; only names the remote object exposes are called
(never a local method of the proxy); names on the page are HTML-escaped; the page's script is
self-contained (no jQuery from a CDN); the global config is not written by the app (its
proxies are set to json and ``pyro_app.comm_timeout`` one by one); and :func:`main` serves
requests on threads, so one slow call does not stall the others.
"""

from __future__ import annotations

import email.parser
import email.policy
import hmac as _hmac
import html
import json as _stdlib_json
import optparse
import os
import re
import socketserver
import sys
import traceback
import uuid
import warnings
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple
from urllib.parse import parse_qs, quote, urlencode
from wsgiref.simple_server import WSGIServer, make_server

from .. import constants, errors, naming
from .._client.proxy import Proxy
from .._context import current_context
from .._serializers import JsonSerializer
from .._serializers.json_serializer import json as _configured_json
from .._version import __version__
from ..configuration import config
from ..message import FLAGS_EXCEPTION

__all__ = ["pyro_app", "main"]

MAX_BODY_SIZE = 4 * 1024 * 1024
"""Largest request body (bytes) the gateway reads; a bigger one is refused with 413."""

_JSON_TYPE = "application/json; charset=utf-8"
_FORM_METHODS = ("GET", "POST")
_TARGET = re.compile(r"(.+)/(.+)")  # greedy, as Pyro4: "a/b/c" is object "a/b", method "c"
_json = _configured_json or _stdlib_json
_json_default = JsonSerializer().default

_nameserver: Optional[Proxy] = None

StartResponse = Callable[..., Any]


class _BadRequest(Exception):
    """A request the gateway refuses before any Pyro work: its HTTP status and text body."""

    def __init__(self, status: str, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.body = text.encode("utf-8")


# --- plain responses ---------------------------------------------------------------------------

def _text(start_response: StartResponse, status: str, body: bytes) -> List[bytes]:
    start_response(status, [("Content-Type", "text/plain")])
    return [body]


def invalid_request(start_response: StartResponse) -> List[bytes]:
    """405: the gateway only serves GET and POST."""
    return _text(start_response, "405 Method Not Allowed", b"Error 405: Method Not Allowed")


def not_found(start_response: StartResponse) -> List[bytes]:
    """404: a path outside ``/pyro/``, or one without ``<name>/<method>``."""
    return _text(start_response, "404 Not Found", b"Error 404: Not Found")


def redirect(start_response: StartResponse, target: str) -> List[bytes]:
    """302 to ``target``."""
    start_response("302 Found", [("Location", target)])
    return []


def _json_reply(start_response: StartResponse, status: str, body: bytes,
                correlation_id: Optional[uuid.UUID]) -> List[bytes]:
    headers = [("Content-Type", _JSON_TYPE)]
    if correlation_id is not None:
        headers.append(("X-Pyro-Correlation-Id", str(correlation_id)))
    start_response(status, headers)
    return [body] if body else []


# --- the name server ---------------------------------------------------------------------------

def get_nameserver(hmac: Optional[bytes] = None) -> Proxy:
    """The gateway's cached name server proxy; located (again) when there is none or it stopped answering."""
    global _nameserver
    nameserver = _nameserver
    if nameserver is not None:
        try:
            nameserver.ping()
            return nameserver
        except errors.CommunicationError:
            _nameserver = None
            nameserver._pyroRelease()
            print("Connection with nameserver lost, reconnecting...")
    nameserver = naming.locateNS(hmac_key=hmac)
    nameserver._pyroTimeout = pyro_app.comm_timeout
    _nameserver = nameserver
    return nameserver


def _gateway_proxy(uri: Any) -> Proxy:
    """A proxy that talks json (its raw replies go to the HTTP client) with the gateway's key and timeout."""
    proxy = Proxy(uri)
    proxy._pyroSerializer = "json"
    proxy._pyroHmacKey = pyro_app.hmac_key
    proxy._pyroTimeout = pyro_app.comm_timeout
    return proxy


# --- request parsing ---------------------------------------------------------------------------

def singlyfy_parameters(parameters: Dict[str, Any]) -> Dict[str, Any]:
    """Replace every one-element list value by its element (in place; also returned)."""
    for key, value in parameters.items():
        if isinstance(value, (list, tuple)) and len(value) == 1:
            parameters[key] = value[0]
    return parameters


def _content_type(environ: Dict[str, Any]) -> Tuple[str, str]:
    """(lower-case media type, full header) of the request body."""
    header = environ.get("CONTENT_TYPE") or ""
    return header.split(";", 1)[0].strip().lower(), header


def _read_body(environ: Dict[str, Any]) -> bytes:
    try:    # int() ignores surrounding blanks, and takes the int some servers hand over
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except (ValueError, TypeError):
        raise _BadRequest("400 Bad Request", "Error 400: Bad Request - invalid Content-Length") from None
    if length < 0:
        raise _BadRequest("400 Bad Request", "Error 400: Bad Request - invalid Content-Length")
    if length > MAX_BODY_SIZE:
        raise _BadRequest("413 Request Entity Too Large",
                          "Error 413: Request Entity Too Large - at most %d bytes" % MAX_BODY_SIZE)
    return environ["wsgi.input"].read(length) if length else b""


def _parse_query(text: str) -> Dict[str, List[Any]]:
    # blank values and fields without '=' are dropped, as cgi.parse did for Pyro4
    return parse_qs(text, encoding="utf-8", errors="replace")


def _parse_multipart(body: bytes, header: str) -> Dict[str, List[Any]]:
    """Form fields of a multipart/form-data body: text fields as str, uploaded files as bytes."""
    head = b"Content-Type: " + header.encode("latin-1", "replace") + b"\r\n\r\n"
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart() or message.defects:
        raise _BadRequest("400 Bad Request", "Error 400: Bad Request - malformed multipart/form-data body")
    fields: Dict[str, List[Any]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True) or b""
        if part.get_filename() is None:
            payload = payload.decode(part.get_content_charset() or "utf-8", "replace")
        fields.setdefault(name, []).append(payload)
    return fields


def _read_parameters(environ: Dict[str, Any]) -> Dict[str, List[Any]]:
    """The request's fields: the query string, plus the body of a POSTed form (as cgi.parse did)."""
    query = environ.get("QUERY_STRING") or ""
    if environ.get("REQUEST_METHOD") != "POST":
        return _parse_query(query)
    media_type, header = _content_type(environ)
    if media_type == "multipart/form-data":
        return _parse_multipart(_read_body(environ), header)
    if media_type == "application/x-www-form-urlencoded":
        form = _read_body(environ).decode("utf-8", "replace")
        return _parse_query(form + "&" + query if form and query else form or query)
    return _parse_query(query)  # any other body is not form data: ignored


def _path_info(environ: Dict[str, Any]) -> str:
    """PATH_INFO as text: WSGI hands it over latin-1 decoded, browsers send UTF-8."""
    path = environ.get("PATH_INFO") or ""
    try:
        return path.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return path


# --- access control ----------------------------------------------------------------------------

def _key_bytes(value: Any, header: bool = False) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        return b""  # a repeated $key field: never a match
    try:
        return value.encode("latin-1" if header else "utf-8")
    except UnicodeError:
        return value.encode("utf-8")


def _gateway_key_ok(environ: Dict[str, Any], parameters: Dict[str, Any]) -> bool:
    """True if no gateway key is set, or the request carries it; the ``$key`` field is then consumed."""
    expected = pyro_app.gateway_key
    if not expected:
        return True
    header = environ.get("HTTP_X_PYRO_GATEWAY_KEY", "")
    given = _key_bytes(header, header=True) if header else _key_bytes(parameters.get("$key", ""))
    if not _hmac.compare_digest(given, _key_bytes(expected)):
        return False
    parameters.pop("$key", None)
    return True


def _name_exposed(object_name: str) -> bool:
    """Does ``ns_regex`` allow this name? An invalid pattern allows nothing (fail closed)."""
    if not pyro_app.ns_regex:
        return True
    try:
        return re.match(pyro_app.ns_regex, object_name) is not None
    except (re.error, TypeError):
        return False


# --- calls -------------------------------------------------------------------------------------

def _request_options(environ: Dict[str, Any]) -> List[str]:
    return [option.strip() for option in environ.get("HTTP_X_PYRO_OPTIONS", "").split(",")]


def _correlation_id(environ: Dict[str, Any]) -> uuid.UUID:
    """The request's X-Pyro-Correlation-Id (ValueError if malformed) or a new one."""
    given = environ.get("HTTP_X_PYRO_CORRELATION_ID", "")
    return uuid.UUID(given) if given else uuid.uuid4()


def _call(proxy: Proxy, method: str, parameters: Dict[str, Any], oneway: bool) -> Any:
    """The raw reply message of reading attribute / calling method ``method`` (None when oneway)."""
    if method in proxy._pyroAttrs:
        if parameters:
            raise AssertionError("attribute lookup can't have query parameters")  # Pyro4's error, even under -O
        return proxy._pyroInvoke("__getattr__", (method,), None)
    if method not in proxy._pyroMethods:
        raise AttributeError("remote object '%s' has no exposed attribute or method '%s'" % (proxy._pyroUri, method))
    if oneway:
        proxy._pyroOneway.add(method)
    return proxy._pyroInvoke(method, (), parameters)


def _pyro_reply(start_response: StartResponse, proxy: Proxy, method: str, parameters: Dict[str, Any],
                oneway: bool, correlation_id: uuid.UUID) -> List[bytes]:
    proxy._pyroGetMetadata()
    if method == "$meta":
        meta = {"methods": sorted(proxy._pyroMethods), "attributes": sorted(proxy._pyroAttrs)}
        return _json_reply(start_response, "200 OK", _json.dumps(meta).encode("utf-8"), correlation_id)
    proxy._pyroRawWireResponse = True
    reply = _call(proxy, method, parameters, oneway)
    if reply is None or oneway:
        return _json_reply(start_response, "200 OK", b"", correlation_id)
    if reply.flags & FLAGS_EXCEPTION:
        return _json_reply(start_response, "500 Internal Server Error", bytes(reply.data), None)
    return _json_reply(start_response, "200 OK", bytes(reply.data), correlation_id)


def _exception_json(exc: BaseException) -> bytes:
    try:
        return _json.dumps(JsonSerializer.class_to_dict(exc), default=_json_default).encode("utf-8")
    except Exception:  # an attribute even the json fallback can't carry: send the bare facts
        plain = {"__class__": type(exc).__module__ + "." + type(exc).__name__, "__exception__": True,
                 "args": [str(arg) for arg in exc.args], "attributes": {}}
        return _stdlib_json.dumps(plain).encode("utf-8")


def _error_reply(environ: Dict[str, Any], path: str, parameters: Dict[str, Any], exc: BaseException,
                 start_response: StartResponse) -> List[bytes]:
    stderr = environ.get("wsgi.errors") or sys.stderr
    print("ERROR handling {0} with params {1}:".format(path, parameters), file=stderr)
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=stderr)
    return _json_reply(start_response, "500 Internal Server Error", _exception_json(exc), None)


def process_pyro_request(environ: Dict[str, Any], path: str, parameters: Dict[str, Any],
                         start_response: StartResponse) -> List[bytes]:
    """Serve ``/pyro/<path>``: the home page, or a call on ``<name>/<method>``."""
    if not path:
        return return_homepage(environ, start_response)
    target = _TARGET.match(path)
    if not target:
        return not_found(start_response)
    object_name, method = target.groups()
    if not _gateway_key_ok(environ, parameters):
        return _text(start_response, "403 Forbidden", b"403 Forbidden - incorrect gateway api key")
    if not _name_exposed(object_name):
        return _text(start_response, "403 Forbidden", b"403 Forbidden - access to the requested object has been denied")
    oneway = "oneway" in _request_options(environ)
    previous_id = current_context.correlation_id
    try:
        uri = get_nameserver(hmac=pyro_app.hmac_key).lookup(object_name)
        with _gateway_proxy(uri) as proxy:
            correlation_id = current_context.correlation_id = _correlation_id(environ)
            return _pyro_reply(start_response, proxy, method, parameters, oneway, correlation_id)
    except Exception as exc:
        return _error_reply(environ, path, parameters, exc, start_response)
    finally:
        current_context.correlation_id = previous_id


# --- the home page -----------------------------------------------------------------------------

_PAGE_HEAD = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>Pyro HTTP gateway</title>
<style>
body { margin: 1em; font-family: sans-serif; }
table, th, td { border: 1px solid #bbf; padding: 4px; }
table { border-collapse: collapse; }
pre { border: 1px solid #bbf; padding: 1ex; margin: 1ex; white-space: pre-wrap; }
</style>
<script>
"use strict";
// Calls name/method (relative to this page) with params as the query, shows the call and its reply.
function pyro_call(name, method, params) {
    var query = params ? new URLSearchParams(params).toString() : "";
    var url = encodeURIComponent(name) + "/" + encodeURIComponent(method) + (query ? "?" + query : "");
    var show = function (id, text) { document.getElementById(id).textContent = text; };
    show("pyro_call", "GET " + url);
    show("pyro_response", "...");
    return fetch(url, {headers: {"Accept": "application/json"}}).then(function (response) {
        return response.text().then(function (body) {
            if (!response.ok) {
                show("pyro_response", "ERROR: " + response.status + " " + response.statusText + " \\n" + body);
            } else if (!body) {
                show("pyro_response", "(no response data: oneway call)");
            } else {
                show("pyro_response", JSON.stringify(JSON.parse(body), null, 4));
            }
        });
    }).catch(function (error) { show("pyro_response", "ERROR: " + error); });
}
// A link with data-pyro-name/-method (and JSON data-pyro-params) calls through pyro_call.
document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a[data-pyro-method]") : null;
    if (!link) { return; }
    event.preventDefault();
    var params = link.getAttribute("data-pyro-params");
    pyro_call(link.getAttribute("data-pyro-name"), link.getAttribute("data-pyro-method"),
              params ? JSON.parse(params) : null);
});
// A page address ending in #name/method?query makes that call once the page is loaded.
function pyro_call_from_fragment() {
    var spec = window.location.hash.slice(1);
    var mark = spec.indexOf("?");
    var target = mark < 0 ? spec : spec.slice(0, mark);
    var slash = target.lastIndexOf("/");
    if (slash <= 0 || slash === target.length - 1) { return; }
    pyro_call(decodeURIComponent(target.slice(0, slash)), decodeURIComponent(target.slice(slash + 1)),
              mark < 0 ? null : new URLSearchParams(spec.slice(mark + 1)));
}
window.addEventListener("hashchange", pyro_call_from_fragment);
document.addEventListener("DOMContentLoaded", pyro_call_from_fragment);
</script>
</head>
<body>
<h1>Pyro HTTP gateway</h1>
<p>Use http+json to talk to Pyro objects.
<a href="https://pyro4.readthedocs.io/en/stable/tipstricks.html#pyro-via-http-and-json">Docs.</a></p>
<p><em>Note: performance isn't a key concern here; it is a stateless server.
It does a name lookup and uses a new Pyro proxy for each request.</em></p>
"""

# (label, name, method, params, explanation) of the example links below the listing
_NS_EXAMPLES = (
    ("Pyro.NameServer/$meta", "Pyro.NameServer", "$meta", None, "gives meta info of the name server (methods)"),
    ("Pyro.NameServer/list", "Pyro.NameServer", "list", None, "lists the contents of the name server"),
    ("Pyro.NameServer/list?prefix=test.", "Pyro.NameServer", "list", {"prefix": "test."},
     "lists the contents of the name server starting with 'test.'"),
    ("Pyro.NameServer/lookup?name=Pyro.NameServer", "Pyro.NameServer", "lookup", {"name": "Pyro.NameServer"},
     "perform lookup method of the name server"),
    ("Pyro.NameServer/lookup?name=test.echoserver", "Pyro.NameServer", "lookup", {"name": "test.echoserver"},
     "perform lookup method of the echo server"),
)
_ECHO_EXAMPLES = (
    ("test.echoserver/error", "test.echoserver", "error", None, "perform error call on echoserver"),
    ("test.echoserver/echo?message=Hi there, browser script!", "test.echoserver", "echo",
     {"message": "Hi there, browser script!"}, "perform echo call on echoserver"),
)


def _call_link(name: str, method: str, label: str, params: Optional[Dict[str, str]] = None) -> str:
    """An <a> that opens the call as a plain link, or runs it through pyro_call when clicked."""
    href = quote(name, safe="") + "/" + quote(method, safe="$") + ("?" + urlencode(params) if params else "")
    data = ' data-pyro-params="%s"' % html.escape(_stdlib_json.dumps(params)) if params else ""
    return '<a href="%s" data-pyro-name="%s" data-pyro-method="%s"%s>%s</a>' % (
        html.escape(href), html.escape(name), html.escape(method), data, html.escape(label))


def _examples(title: str, examples: Iterable[Tuple[str, str, str, Any, str]]) -> str:
    items = "".join("<li>%s -- %s</li>\n" % (_call_link(name, method, label, params), html.escape(text))
                    for label, name, method, params, text in examples)
    return "<p>%s</p>\n<ul>\n%s</ul>\n" % (html.escape(title), items)


def _object_row(environ: Dict[str, Any], name: str, uri: str) -> str:
    """One table row: the object's name (its $meta link), methods and attribute links."""
    attributes = "-"
    try:
        with _gateway_proxy(uri) as proxy:
            proxy._pyroBind()
            methods = " &nbsp; ".join(html.escape(m) for m in sorted(proxy._pyroMethods)) or "-"
            attributes = " &nbsp; ".join(_call_link(name, attr, attr) for attr in sorted(proxy._pyroAttrs)) or "-"
    except errors.PyroError as exc:
        stderr = environ.get("wsgi.errors") or sys.stderr
        print("ERROR getting metadata for {0}:".format(uri), file=stderr)
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=stderr)
        methods = html.escape("??error:%s??" % exc)
    return "<tr><td>%s</td><td>%s</td><td>%s</td></tr>\n" % (_call_link(name, "$meta", name), methods, attributes)


def _listing(environ: Dict[str, Any], nameserver: Proxy) -> str:
    registered = nameserver.list(regex=pyro_app.ns_regex or None)
    names = sorted(list(registered)[:10])
    rows = "".join(_object_row(environ, name, registered[name]) for name in names)
    return ("<table><tr><th>Name</th><th>methods</th><th>attributes (zero-param methods)</th></tr>\n"
            "%s</table>\n" % rows)


def _braces_escaped(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


# The page, as a str.format template with Pyro4's four fields, so code that replaced Pyro4's
# ``index_page_template`` to restyle the page keeps working.
index_page_template = "".join([
    _braces_escaped(_PAGE_HEAD),
    "<h2>Currently exposed contents of name server on {hostname}:</h2>\n",
    "<p>(Limited to 10 entries, exposed name pattern = '{ns_regex}')</p>\n",
    "{name_server_contents_list}",
    _braces_escaped(_examples("Name server examples: (these examples are working if you expose the "
                              "Pyro.NameServer object)", _NS_EXAMPLES)),
    _braces_escaped(_examples("Echoserver examples: (these examples are working if you expose the "
                              "test.echoserver object)", _ECHO_EXAMPLES)),
    "<h2>Pyro response data (via Ajax):</h2>\n",
    'Call: <pre id="pyro_call"> &nbsp; </pre>\nResponse: <pre id="pyro_response"> &nbsp; </pre>\n',
    "<p>Pyro version: {pyro_version} (pyro4compat %s)</p>\n</body>\n</html>\n" % _braces_escaped(__version__),
])


def return_homepage(environ: Dict[str, Any], start_response: StartResponse) -> List[bytes]:
    """The HTML page: the exposed names with their methods and attributes, and the script that calls them."""
    try:
        nameserver = get_nameserver(hmac=pyro_app.hmac_key)
    except errors.NamingError as exc:
        print("Name server error:", exc)
        return _text(start_response, "500 Internal Server Error",
                     b"Cannot connect to the Pyro name server. Is it running? Refresh page to retry.")
    try:
        listing = _listing(environ, nameserver)
    except errors.PyroError as exc:  # e.g. an ns_regex the name server can't compile
        print("Name server error:", exc)
        return _text(start_response, "500 Internal Server Error",
                     ("Error 500: the name server listing failed: %s" % exc).encode("utf-8"))
    page = index_page_template.format(
        ns_regex=html.escape(str(pyro_app.ns_regex)), name_server_contents_list=listing,
        pyro_version=constants.VERSION, hostname=html.escape(str(nameserver._pyroUri.location)))
    start_response("200 OK", [("Content-Type", "text/html")])
    return [page.encode("utf-8")]


# --- the WSGI app ------------------------------------------------------------------------------

def pyro_app(environ: Dict[str, Any], start_response: StartResponse) -> List[bytes]:
    """The WSGI app; settings are attributes of this function (``ns_regex``, ``hmac_key``, ``gateway_key``,
    ``comm_timeout``), so it can be mounted in any WSGI server."""
    path = _path_info(environ).lstrip("/")
    if not path:
        return redirect(start_response, environ.get("SCRIPT_NAME", "") + "/pyro/")
    if not path.startswith("pyro/"):
        return not_found(start_response)
    if environ.get("REQUEST_METHOD") not in _FORM_METHODS:
        return invalid_request(start_response)
    try:
        parameters = singlyfy_parameters(_read_parameters(environ))
    except _BadRequest as bad:
        return _text(start_response, bad.status, bad.body)
    return process_pyro_request(environ, path[5:], parameters, start_response)


pyro_app.ns_regex = r"http\."  # type: ignore[attr-defined]
pyro_app.hmac_key = None  # type: ignore[attr-defined]
pyro_app.gateway_key = None  # type: ignore[attr-defined]
pyro_app.comm_timeout = config.COMMTIMEOUT  # type: ignore[attr-defined]


# --- command line ------------------------------------------------------------------------------

class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """wsgiref's server with a thread per request: a slow Pyro call (or an idle browser socket) blocks no one."""

    daemon_threads = True


def _option_parser() -> optparse.OptionParser:
    parser = optparse.OptionParser()
    parser.add_option("-H", "--host", default="localhost", help="hostname to bind server on (default=%default)")
    parser.add_option("-p", "--port", type="int", default=8080, help="port to bind server on (default=%default)")
    parser.add_option("-e", "--expose", default=pyro_app.ns_regex,
                      help="a regex of object names to expose (default=%default)")
    parser.add_option("-k", "--pyrokey", help="the HMAC key to use to connect with Pyro (deprecated)")
    parser.add_option("-g", "--gatewaykey", help="the api key to use to connect to the gateway itself")
    parser.add_option("-t", "--timeout", type="float", default=pyro_app.comm_timeout,
                      help="Pyro timeout value to use (COMMTIMEOUT setting, default=%default)")
    return parser


# (option attribute, environment variable, command-line flag) of the two secrets
_KEY_SOURCES = (("pyrokey", "PYRO_HMAC_KEY", "-k"), ("gatewaykey", "PYRO_HTTPGATEWAY_KEY", "-g"))


def _apply_key_environment(options: optparse.Values) -> None:
    """Take the keys from the environment; giving one both ways is an error, as in Pyro4."""
    for attribute, variable, flag in _KEY_SOURCES:
        if variable in os.environ:
            if getattr(options, attribute):
                raise SystemExit("error: don't use %s and %s at the same time" % (flag, variable))
            setattr(options, attribute, os.environ[variable])


def main(args: Optional[List[str]] = None) -> int:
    """``pyro4compat-httpgateway``: serve :func:`pyro_app` on wsgiref until interrupted."""
    options, _ = _option_parser().parse_args(args)
    if options.pyrokey or options.gatewaykey:
        warnings.warn("using -k and/or -g to supply keys on the command line is a security problem "
                      "and is deprecated since Pyro 4.72. See the documentation for an alternative.")
    _apply_key_environment(options)
    pyro_app.hmac_key = (options.pyrokey or "").encode("utf-8")  # type: ignore[attr-defined]
    pyro_app.gateway_key = (options.gatewaykey or "").encode("utf-8")  # type: ignore[attr-defined]
    pyro_app.ns_regex = options.expose  # type: ignore[attr-defined]
    # The program owns this process: like Pyro4, it sets the global timeout for every proxy it makes.
    pyro_app.comm_timeout = config.COMMTIMEOUT = options.timeout  # type: ignore[attr-defined]
    if pyro_app.ns_regex:
        print("Exposing objects with names matching: ", pyro_app.ns_regex)
    else:
        print("Warning: exposing all objects (no expose regex set)")
    try:
        nameserver = get_nameserver(hmac=pyro_app.hmac_key)
    except errors.PyroError:
        print("Not yet connected to a name server.")
    else:
        print("Connected to name server at: ", nameserver._pyroUri)
    server = make_server(options.host, options.port, pyro_app, server_class=_ThreadingWSGIServer)
    print("Pyro HTTP gateway running on http://{0}:{1}/pyro/".format(*server.socket.getsockname()), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
