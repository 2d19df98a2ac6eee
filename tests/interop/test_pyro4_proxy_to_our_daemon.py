"""A real Pyro4 4.82 proxy (in a child process) calling a pyro4compat daemon, every serializer."""

from __future__ import annotations

import contextlib

import pytest

import service
from daemons import serving
from pyro4compat import core
from pyro4compat._serializers import _serializers
from pyro4compat.configuration import config

pytestmark = [pytest.mark.interop, pytest.mark.timeout(90)]

ALL_SERIALIZERS = ["serpent", "json", "marshal", "msgpack", "pickle", "dill", "cloudpickle"]
SERIALIZERS = [name for name in ALL_SERIALIZERS if name in _serializers]


@contextlib.contextmanager
def our_daemon(servertype: str, serializers, hmac=None):
    config.SERVERTYPE = servertype
    config.SERIALIZERS_ACCEPTED = set(serializers)
    daemon = core.Daemon(host="127.0.0.1")
    if hmac:
        daemon._pyroHmacKey = hmac
    classes = service.register_all(core, daemon)
    with serving(daemon):
        yield daemon, classes


CLIENT_SCRIPT = r"""
import Pyro4, Pyro4.errors
location, serializer = INPUT["location"], INPUT["serializer"]
Pyro4.config.SERIALIZER = serializer
out = {}
uri = lambda name: "PYRO:%s@%s" % (name, location)
with Pyro4.Proxy(uri("interop.service")) as p:
    out["echo"] = p.echo("hello")
    out["add"] = p.add(2, b=3)
    out["methods"] = sorted(p._pyroMethods)
    out["oneway"] = sorted(p._pyroOneway)
    out["attrs"] = sorted(p._pyroAttrs)
    if serializer != "marshal":  # Pyro4's own marshal client can't send kwargs=None
        out["value"] = p.value
        p.value = 9
        out["value2"] = p.value
    p.note("n1")
    out["notes"] = p.notes_taken()
    try:
        p.fail("boom")
    except ValueError as e:
        out["error"] = str(e)
        out["remote_tb"] = "ValueError: boom" in "".join(e._pyroTraceback)
    try:
        p._private()
    except AttributeError as e:
        out["private"] = str(e)
    out["stream"] = list(p.numbers(4))
    s = p.numbers(10)
    out["partial"] = [next(s), next(s)]
    s.close()
    if serializer != "marshal":
        b = Pyro4.batch(p)
        b.echo(1); b.fail("mid"); b.echo(3)
        results = b()
        out["batch_first"] = next(results)
        try:
            next(results)
        except ValueError as e:
            out["batch_error"] = str(e)
for name in ("interop.session", "interop.single", "interop.percall"):
    with Pyro4.Proxy(uri(name)) as a, Pyro4.Proxy(uri(name)) as b:
        out[name] = [a.increment(), a.increment(), b.increment()]
if serializer != "marshal":
    with Pyro4.Proxy(uri("interop.factory")) as f:
        child = f.make("kid")
        out["autoproxy"] = [type(child).__name__, child.name()]
        child._pyroRelease()
with Pyro4.Proxy(uri("no.such.object")) as p:
    try:
        p._pyroBind()
    except Pyro4.errors.PyroError as e:
        out["unknown"] = "%s: %s" % (type(e).__name__, e)
OUTPUT = out
"""


@pytest.mark.parametrize("servertype", ["thread", "multiplex"])
@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_pyro4_client_against_our_daemon(pyro4, servertype, serializer):
    with our_daemon(servertype, [serializer]) as (daemon, _):
        out = pyro4(CLIENT_SCRIPT, {"location": daemon.locationStr, "serializer": serializer})
    assert out["echo"] == "hello"
    assert out["add"] == 5
    assert {"echo", "add", "note", "hidden", "numbers"} <= set(out["methods"])
    assert "_private" not in out["methods"]
    assert out["oneway"] == ["note"]
    assert out["attrs"] == ["value"]
    if serializer != "marshal":
        assert out["value"] == 42
        assert out["value2"] == 9
        assert out["batch_first"] == 1 and out["batch_error"] == "mid"
        assert out["autoproxy"] == ["Proxy", "kid"]
    assert out["notes"] == ["n1"]
    assert out["error"] == "boom" and out["remote_tb"]
    assert "_private" in out["private"]
    assert out["stream"] == [0, 1, 2, 3]
    assert out["partial"] == [0, 1]
    assert out["interop.session"] == [1, 2, 1]
    assert out["interop.single"] == [1, 2, 3]
    assert out["interop.percall"] == [1, 1, 1]
    # metadata comes with the handshake, so an unknown object fails the connection, as in Pyro4
    assert out["unknown"].startswith("CommunicationError: connection to ")
    assert out["unknown"].endswith("rejected: unknown object")


HMAC_SCRIPT = r"""
import Pyro4, Pyro4.errors
out = []
for key in INPUT["keys"]:
    p = Pyro4.Proxy("PYRO:interop.service@" + INPUT["location"])
    if key:
        p._pyroHmacKey = key
    try:
        out.append(["ok", p.echo(1)])
    except Pyro4.errors.PyroError as e:
        out.append([type(e).__name__, str(e)])
    p._pyroRelease()
OUTPUT = out
"""


@pytest.mark.parametrize("servertype", ["thread", "multiplex"])
def test_pyro4_client_hmac(pyro4, servertype):
    with our_daemon(servertype, ["serpent"], hmac=b"secret") as (daemon, _):
        out = pyro4(HMAC_SCRIPT, {"location": daemon.locationStr, "keys": [b"secret", b"wrong", None]})
    assert out[0] == ["ok", 1]
    assert out[1][0] == "CommunicationError"
    assert out[2][0] == "CommunicationError"


REFUSED_SCRIPT = r"""
import Pyro4, Pyro4.errors
Pyro4.config.SERIALIZER = INPUT["serializer"]
p = Pyro4.Proxy("PYRO:interop.service@" + INPUT["location"])
try:
    p.echo(1)
    OUTPUT = "accepted"
except Pyro4.errors.CommunicationError as e:
    OUTPUT = str(e)
p._pyroRelease()
"""


def test_pyro4_client_with_refused_serializer_gets_pyro4_text(pyro4):
    with our_daemon("thread", ["serpent"]) as (daemon, _):
        out = pyro4(REFUSED_SCRIPT, {"location": daemon.locationStr, "serializer": "pickle"})
    assert out.endswith("rejected: message used serializer that is not accepted: 4")
