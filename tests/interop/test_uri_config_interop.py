"""URIs and configuration side by side with real Pyro4 4.82 (run in a child by the ``pyro4`` fixture).

The URI and environment tables are the unit tests' own (tests/unit/test_uri.py and
tests/unit/test_configuration.py), so the expectations written there are checked against Pyro4 here.
Each comparison batches all its cases into one child.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, List

import pytest

from pyro4compat._uri import URI
from pyro4compat.configuration import OWN_ITEMS, Configuration, config

pytestmark = pytest.mark.interop

TESTS_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = TESTS_DIR.parent


def load_unit_tables(name: str) -> ModuleType:
    """Import a unit test module by path (tests/ is not a package) to reuse its tables."""
    spec = importlib.util.spec_from_file_location("_interop_tables_" + name, TESTS_DIR / "unit" / (name + ".py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


URI_TABLES = load_unit_tables("test_uri")
CONFIG_TABLES = load_unit_tables("test_configuration")

URI_TEXTS = list(URI_TABLES.GOOD) + list(URI_TABLES.BAD)
NON_TEXT = [None, b"PYRO:obj@host:1", 5, 2.5, ["PYRO:obj@host:1"], ("PYRO", "obj", None, "h", 1)]

# Both sides run this same function source: it turns one URI into marshal-able facts.
DESCRIBE_SOURCE = '''
def describe(make, value):
    try:
        uri = make(value)
    except Exception as exc:
        return (type(exc).__name__, str(exc))
    def plain(obj):
        return sorted(obj) if isinstance(obj, set) else obj
    text = uri.asString()
    if uri.protocol == "PYROMETA":  # set order differs between processes
        head, at, tail = text.partition("@")
        text = (sorted(head[len("PYROMETA:"):].split(",")), at + tail)
    state = tuple(plain(part) for part in uri.__getstate__())
    return ("ok", uri.protocol, plain(uri.object), uri.sockname, uri.host, uri.port, uri.location, text,
            str(uri) == uri.asString(), repr(uri).replace("%x" % id(uri), "ID").replace(str(uri), "TEXT"), state,
            tuple(plain(part) for part in uri.__getstate_for_dict__()), uri == make(uri), uri != make(uri))
'''
_namespace: Dict[str, Any] = {}
exec(DESCRIBE_SOURCE, _namespace)
describe: Callable[[Callable[[Any], Any], Any], Any] = _namespace["describe"]


def test_uri_table_matches_pyro4(pyro4) -> None:
    theirs = pyro4(DESCRIBE_SOURCE + "OUTPUT = [describe(Pyro4.URI, value) for value in INPUT]",
                   URI_TEXTS + NON_TEXT)
    ours = [describe(URI, value) for value in URI_TEXTS + NON_TEXT]
    mismatches = [(value, t, o) for value, t, o in zip(URI_TEXTS + NON_TEXT, theirs, ours) if t != o]
    assert not mismatches
    assert len(theirs) == len(URI_TEXTS) + len(NON_TEXT)


def test_uri_equality_table_matches_pyro4(pyro4) -> None:
    code = """
    OUTPUT = []
    for left, right in INPUT:
        a, b = Pyro4.URI(left), Pyro4.URI(right)
        OUTPUT.append((a == b, a != b, hash(a) == hash(b), a == left, a != left))
    """
    pairs = [(left, right) for left, right, _ in URI_TABLES.EQUALITY if "PYROMETA" not in left]
    theirs = pyro4(code, pairs)
    ours = [(URI(l) == URI(r), URI(l) != URI(r), hash(URI(l)) == hash(URI(r)), URI(l) == l, URI(l) != l)
            for l, r in pairs]
    assert theirs == ours
    assert [equal for left, _, equal in URI_TABLES.EQUALITY if "PYROMETA" not in left] == [t[0] for t in theirs]


def test_name_server_port_is_read_at_parse_time_like_pyro4(pyro4, monkeypatch: pytest.MonkeyPatch) -> None:
    code = """
    texts = ["PYRONAME:n@h", "PYROMETA:t@h", "PYRONAME:n@[::1]", "PYRONAME:n", "PYRO:o@h"]
    OUTPUT = []
    for port in INPUT:
        Pyro4.config.NS_PORT = port
        for text in texts:
            try:
                OUTPUT.append(Pyro4.URI(text).port)
            except Pyro4.errors.PyroError as exc:
                OUTPUT.append(str(exc))
    """
    ports = [9090, 5555, "6666", "bogus", None]
    theirs = pyro4(code, ports)
    ours: List[Any] = []
    for port in ports:
        monkeypatch.setattr(config, "NS_PORT", port)
        for text in ["PYRONAME:n@h", "PYROMETA:t@h", "PYRONAME:n@[::1]", "PYRONAME:n", "PYRO:o@h"]:
            try:
                ours.append(URI(text).port)
            except Exception as exc:
                ours.append(str(exc))
    assert theirs == ours


def plain_config(values: Dict[str, Any]) -> Dict[str, Any]:
    return {key: sorted(value) if isinstance(value, set) else value for key, value in values.items()}


def pyro4_items(settings: dict) -> dict:
    """``asDict()`` without pyro4compat's own items, which Pyro4 doesn't have."""
    return {item: value for item, value in settings.items() if item not in OWN_ITEMS}


def test_config_defaults_match_pyro4(pyro4, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PYRO_"):
            monkeypatch.delenv(name)
    theirs = pyro4("OUTPUT = (Pyro4.config.__slots__, Pyro4.config.asDict(), "
                   "Pyro4.config.parseAddressesString(Pyro4.config.BROADCAST_ADDRS))")
    cfg = Configuration()
    slots, values, addresses = theirs
    assert Configuration.__slots__ == tuple(slots) + OWN_ITEMS   # Pyro4's, in Pyro4's order, then ours
    ours = pyro4_items(cfg.asDict())
    assert plain_config(ours) == plain_config(values)
    assert {key: type(value) for key, value in ours.items()} == {k: type(v) for k, v in values.items()}
    assert cfg.parseAddressesString(cfg.BROADCAST_ADDRS) == addresses


ENV_SNIPPET = """
import os
OUTPUT = []
for env in INPUT:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        Pyro4.config.reset()
        OUTPUT.append(("ok", Pyro4.config.asDict()))
    except Exception as exc:
        OUTPUT.append((type(exc).__name__, str(exc)))
    finally:
        os.environ.clear()
        os.environ.update(saved)
"""


def env_samples() -> List[Dict[str, str]]:
    samples = [{"PYRO_" + item: text} for item, text, _ in CONFIG_TABLES.ENV_CASTS]
    samples += [{"PYRO_" + item: text} for item, text, _, _ in CONFIG_TABLES.ENV_ERRORS]
    words = CONFIG_TABLES.FALSE_WORDS + CONFIG_TABLES.TRUE_WORDS + ["2", "y", "n", " true"]
    samples += [{"PYRO_" + item: word} for item in ("COMPRESSION", "SSL", "USE_MSG_WAITALL") for word in words]
    samples += [
        {"PYRO_HOST": "0.0.0.0"},
        {"PYRO_HOST": "0.0.0.0", "PYRO_NS_HOST": "nshost"},
        {"PYRO_NO_SUCH_ITEM": "1", "PYRO_ns_port": "1"},
        {"PYRO_NATPORT": "1", "PYRO_NATHOST": "nat", "PYRO_SERIALIZERS_ACCEPTED": "pickle"},
    ]
    return samples


def test_env_parsing_matches_pyro4(pyro4, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PYRO_"):
            monkeypatch.delenv(name)
    samples = env_samples()
    theirs = pyro4(ENV_SNIPPET, samples)
    ours = []
    for env in samples:
        with monkeypatch.context() as patch:
            for name, text in env.items():
                patch.setenv(name, text)
            try:
                ours.append(("ok", pyro4_items(Configuration().asDict())))
            except Exception as exc:
                ours.append((type(exc).__name__, str(exc)))
    mismatches = [(env, t, o) for env, t, o in zip(samples, theirs, ours) if t != o]
    assert not mismatches
    assert len(theirs) == len(samples)


def test_parse_addresses_matches_pyro4(pyro4) -> None:
    cases = CONFIG_TABLES.PARSE_ADDRESS_CASES
    theirs = pyro4("OUTPUT = [Pyro4.config.parseAddressesString(text) for text in INPUT]", [t for t, _ in cases])
    assert theirs == [expected for _, expected in cases]


def test_install_refuses_after_real_pyro4(pyro4) -> None:
    code = """
    import sys
    sys.path.insert(0, INPUT)
    from pyro4compat._install import install_as_pyro4
    try:
        install_as_pyro4()
        OUTPUT = None
    except ImportError as exc:
        OUTPUT = str(exc)
    import Pyro4 as again
    assert again is Pyro4 and sys.modules["Pyro4"] is Pyro4  # the real one stays in place
    assert "pyro4compat" not in Pyro4.__file__
    """
    message = pyro4(code, str(REPO_ROOT))
    assert message is not None
    assert "different Pyro4 is already imported" in message
