"""The gateway's page in a real browser: headless Chromium loads ``/pyro/``, the page's own script
calls a remote method over HTTP, and the reply must show up in the DOM.

The page runs the call named by its address fragment (``/pyro/#<name>/<method>?<query>``) through
the same ``pyro_call`` its links use; Chromium's ``--dump-dom`` prints the DOM once the virtual
time budget has run out, which waits for the page's network requests. Everything stays on
127.0.0.1. Without ``/usr/bin/chromium`` the test is skipped, unless ``CI`` is set (``.ci/run``
installs it through ``.ci/install-chromium``): there a missing browser is a failure.
"""

from __future__ import annotations

import html
import os
import re
import signal
import subprocess
import tempfile

import pytest
from test_httpgateway import http_gateway, pyro_world

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=10000", "--dump-dom"]


@pytest.fixture
def chromium() -> str:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("CI is set but %s is missing: .ci/install-chromium should have installed it" % CHROMIUM)
        pytest.skip("%s is not installed (apt-get install chromium, or run .ci/install-chromium)" % CHROMIUM)
    return CHROMIUM


def dump_dom(browser: str, url: str) -> str:
    """The DOM of ``url`` after its scripts ran, as headless Chromium serializes it."""
    with tempfile.TemporaryDirectory(prefix="gateway-chromium-") as profile:
        proc = subprocess.Popen([browser] + FLAGS + ["--user-data-dir=" + profile, url],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=40)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)  # the browser and its helper processes, all ours
                proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    return out


def pre_text(dom: str, element_id: str) -> str:
    found = re.search(r'<pre id="%s">(.*?)</pre>' % element_id, dom, re.S)
    assert found, dom[-3000:]
    return html.unescape(found.group(1))


@pytest.mark.timeout(60)
def test_page_script_calls_a_remote_method_and_shows_the_reply(chromium, serve):
    with pyro_world(serve), http_gateway() as port:
        dom = dump_dom(chromium, "http://127.0.0.1:%d/pyro/#http.calc/echo?message=Hello+from+Chromium" % port)
    assert 'data-pyro-name="http.calc" data-pyro-method="answer"' in dom  # the listing rendered
    assert pre_text(dom, "pyro_call") == "GET http.calc/echo?message=Hello+from+Chromium"
    assert pre_text(dom, "pyro_response") == '"Hello from Chromium"'


@pytest.mark.timeout(60)
def test_page_script_shows_a_remote_exception(chromium, serve):
    with pyro_world(serve), http_gateway() as port:
        dom = dump_dom(chromium, "http://127.0.0.1:%d/pyro/#http.calc/fail?reason=broken+in+browser" % port)
    response = pre_text(dom, "pyro_response")
    assert response.startswith("ERROR: 500 Internal Server Error \n"), response
    assert '"__class__":"builtins.ValueError"' in response.replace(" ", "")
    assert "broken in browser" in response
