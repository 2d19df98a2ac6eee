"""HTTP gateway: call Pyro objects from a browser or any HTTP client, with JSON replies.

Run it with ``python examples/http_gateway.py``. The gateway is the command-line tool
``python -m pyro4compat.utils.httpgateway`` (a child process this script starts and stops); it
finds objects in the name server (found through ``PYRO_NS_HOST``/``PYRO_NS_PORT``) and only
exposes names matching its ``-e`` regex (default ``http\\.``). Look at:

* ``GET /pyro/<name>/<method>?a=1&b=2``: a call with keyword arguments, which arrive as
  *strings* (HTTP has no types); the reply is the JSON the Pyro json serializer produced;
* ``POST`` with form fields works the same; ``<name>/<attribute>`` reads a remote attribute;
  ``<name>/$meta`` lists methods and attributes;
* the ``X-Pyro-Gateway-Key`` header (the key comes from ``PYRO_HTTPGATEWAY_KEY``), the
  ``X-Pyro-Options: oneway`` header, and ``X-Pyro-Correlation-Id`` going in and out;
* status codes: 403 for a wrong key or a name outside the regex, 500 with the exception as JSON.

``GET /pyro/`` is an HTML page listing the exposed objects, with links that call them from
JavaScript: open it in a browser while the gateway runs (``-i`` keeps this example running).
Name server and objects run in threads of this process on 127.0.0.1. Exits 0 when every step
worked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pyro4compat as Pyro4
import pyro4compat.naming

GATEWAY_KEY = "let-me-in"


@Pyro4.expose
class Calculator:
    def __init__(self) -> None:
        self.notes = []
        self.noted = threading.Event()

    def add(self, a: str, b: str) -> int:
        return int(a) + int(b)  # HTTP parameters are always strings

    def divide(self, a: str, b: str) -> float:
        return int(a) / int(b)

    @Pyro4.oneway
    def note(self, text: str) -> None:
        self.notes.append(text)
        self.noted.set()

    @property
    def brand(self) -> str:
        return "pyro4compat calc"


def http(base: str, path: str, form=None, headers=None, key: str = GATEWAY_KEY):
    """(status, headers, body) of a request; the gateway key goes in its header."""
    headers = dict(headers or {})
    if key:
        headers["X-Pyro-Gateway-Key"] = key
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(base + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


def start_gateway(ns_uri) -> tuple:
    env = dict(os.environ, PYRO_NS_HOST=ns_uri.host, PYRO_NS_PORT=str(ns_uri.port),
               PYRO_HTTPGATEWAY_KEY=GATEWAY_KEY)
    command = [sys.executable] + ["-W" + option for option in sys.warnoptions]
    command += ["-m", "pyro4compat.utils.httpgateway", "-H", "127.0.0.1", "-p", "0"]
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    for line in child.stdout:
        if line.startswith("Pyro HTTP gateway running on "):
            return child, line.split(" on ", 1)[1].strip().rsplit("/pyro/", 1)[0]
    raise AssertionError("the gateway did not start")


def main() -> int:
    ns_uri, ns_daemon, _ = pyro4compat.naming.startNS(host="127.0.0.1", port=0, enableBroadcast=False)
    daemon = Pyro4.Daemon(host="127.0.0.1")
    calculator = Calculator()
    for serving in (ns_daemon, daemon):
        threading.Thread(target=serving.requestLoop, daemon=True).start()
    with Pyro4.locateNS(ns_uri.host, ns_uri.port) as ns:
        ns.register("http.calculator", daemon.register(calculator))
        ns.register("private.calculator", daemon.register(Calculator()))  # not matching "http\."

    gateway, base = start_gateway(ns_uri)
    try:
        print("gateway running at", base)
        status, _, body = http(base, "/pyro/http.calculator/add?a=2&b=40")
        print("GET  add?a=2&b=40 ->", status, body.decode())
        assert (status, json.loads(body)) == (200, 42)

        status, _, body = http(base, "/pyro/http.calculator/add", form={"a": "5", "b": "6"})
        print("POST add a=5 b=6  ->", status, body.decode())
        assert (status, json.loads(body)) == (200, 11)

        status, _, body = http(base, "/pyro/http.calculator/$meta")
        print("GET  $meta        ->", status, body.decode())
        meta = json.loads(body)
        assert sorted(meta["methods"]) == ["add", "divide", "note"] and meta["attributes"] == ["brand"]
        status, _, body = http(base, "/pyro/http.calculator/brand")
        print("GET  brand        ->", status, body.decode())
        assert json.loads(body) == "pyro4compat calc"

        status, _, body = http(base, "/pyro/http.calculator/divide?a=1&b=0")
        error = json.loads(body)
        print("GET  divide by 0  ->", status, error["__class__"], error["args"])
        assert status == 500 and error["__class__"] == "builtins.ZeroDivisionError"

        status, _, body = http(base, "/pyro/http.calculator/note?text=hi", headers={"X-Pyro-Options": "oneway"})
        assert calculator.noted.wait(5)
        print("GET  note (oneway) ->", status, repr(body), "and the server noted", calculator.notes)
        assert (status, body) == (200, b"")

        correlation = str(uuid.uuid4())
        status, headers, _ = http(base, "/pyro/http.calculator/add?a=1&b=1",
                                  headers={"X-Pyro-Correlation-Id": correlation})
        print("correlation id sent back:", headers["X-Pyro-Correlation-Id"] == correlation)
        assert headers["X-Pyro-Correlation-Id"] == correlation

        status, _, body = http(base, "/pyro/http.calculator/add?a=1&b=1", key="wrong")
        print("wrong gateway key ->", status, body.decode())
        assert status == 403
        status, _, body = http(base, "/pyro/private.calculator/add?a=1&b=1")
        print("name outside -e   ->", status, body.decode())
        assert status == 403

        status, _, page = http(base, "/", key="")  # redirected to /pyro/: the HTML page
        print("GET  / -> the gateway's page, listing http.calculator:", b"http.calculator" in page)
        assert status == 200 and b"http.calculator" in page and b"private.calculator" not in page

        if "-i" in sys.argv[1:]:
            input("open %s/pyro/ in a browser; press enter to stop " % base)
    finally:
        gateway.terminate()
        gateway.wait(10)
        gateway.stdout.close()
        for serving in (daemon, ns_daemon):
            serving.shutdown()
            serving.close()
    print("http gateway example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
