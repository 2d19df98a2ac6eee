"""Exposure and traceback helpers side by side with real Pyro4 4.82.

The same probe code runs twice: in a child process against real Pyro4's functions, and here
against ours. Class definitions travel as source text, results as plain values. Cases where
we deliberately differ from Pyro4 (refused names never evaluated, marks on builtin method
descriptors, private remote attributes with REQUIRE_EXPOSE off) are covered by unit tests.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict

import pytest

from pyro4compat import _tracebacks, configuration
from pyro4compat._server import exposure

pytestmark = pytest.mark.interop

# Each source defines a class C (and whatever it needs) using expose/oneway/callback/behavior.
CLASS_SOURCES = {
    "plain": """
class C:
    x = 1
    def m(self): return 1
    @property
    def p(self): return 2
""",
    "method_level": """
class C:
    @expose
    def m(self): return 1
    def n(self): return 2
    @expose
    @oneway
    def o(self): pass
    @oneway
    @expose
    def o2(self): pass
    @oneway
    def o3(self): pass
    @expose
    @callback
    def cb(self): pass
    @expose
    @property
    def p(self): return 3
    @p.setter
    def p(self, value): pass
    @property
    def q(self): return 4
    @expose
    def __len__(self): return 0
    def __iter__(self): return iter(())
""",
    "class_level": """
@expose
class C:
    x = 1
    def m(self): return 1
    def _priv(self): return 2
    def __len__(self): return 0
    def __call__(self): return 0
    def __eq__(self, other): return True
    __hash__ = object.__hash__
    @property
    def p(self): return 3
    @p.setter
    def p(self, value): pass
    @property
    def ro(self): return 4
    @classmethod
    def c(cls): return 5
    @staticmethod
    def s(): return 6
    @oneway
    def ow(self): pass
""",
    "inherited": """
class Base:
    def bm(self): return 1
    @expose
    def be(self): return 2
    @property
    def bp(self): return 3
@expose
class C(Base):
    def cm(self): return 4
""",
    "classmethods": """
class C:
    @classmethod
    @expose
    def cm(cls): return 1
    @staticmethod
    @expose
    def sm(): return 2
    @classmethod
    def cu(cls): return 3
    @staticmethod
    def su(): return 4
""",
    "property_parts": """
def set_w(self, value): pass
def del_d(self): pass
class C:
    w = expose(property(None, set_w))
    d = expose(property(None, None, del_d))
    @property
    def a(self): return 1
    @expose
    @a.setter
    def a(self, value): pass
""",
    "third_party": """
class C(dict):
    def own(self): return 1
expose(C)
""",
    "metaclass": """
class Meta(type):
    @property
    def mp(cls): return 1
    def meta_method(cls): return 2
class C(metaclass=Meta):
    @expose
    def m(self): return 3
""",
    "dynamic": """
class C:
    def __getattr__(self, name): return 5
    @expose
    def m(self): return 1
""",
    "behaved": """
@behavior(instance_mode="percall")
@expose
class C:
    def m(self): return 1
""",
}

# Statements that must raise; compared by exception type and (address-normalised) message.
ERROR_SNIPPETS = [
    "def f(cls): pass\nexpose(classmethod(f))",
    "def g(): pass\nexpose(staticmethod(g))",
    "class K:\n    @expose\n    @classmethod\n    def km(cls): pass",
    "class K:\n    @expose\n    @staticmethod\n    def ks(): pass",
    "expose(42)",
    "expose(None)",
    "expose('text')",
    "import functools\ndef h(): pass\nexpose(functools.partial(h))",
    "def _p(self): pass\nexpose(property(_p))",
    "def _f(): pass\nexpose(_f)",
    "def __init__(self): pass\nexpose(__init__)",
    "def __repr__(self): pass\nexpose(__repr__)",
    "@expose\nclass _Hidden: pass",
    "@behavior\nclass K: pass",
    "behavior(5)",
    "behavior(None)",
    "class K: pass\nbehavior('sometimes')(K)",
    "class K: pass\nbehavior('single', 5)(K)",
    "class K: pass\nbehavior(instance_creator='x')(K)",
    "behavior()(42)",
    "def f(): pass\nbehavior('single')(f)",
    "behavior('sometimes')(42)",
]

# Statements whose value OUT is compared.
VALUE_SNIPPETS = [
    "class K: pass\nOUT = behavior()(K)._pyroInstancing",
    "class K: pass\nOUT = behavior('single', 0)(K)._pyroInstancing",
    "class K: pass\nOUT = behavior('percall', instance_creator=None)(K)._pyroInstancing",
    "def f(): pass\nOUT = (oneway(f) is f, f._pyroOneway, callback(f) is f, f._pyroCallback,\n"
    "       hasattr(f, '_pyroExposed'))",
    "def __len__(self): pass\nOUT = expose(__len__)._pyroExposed",
    "class K:\n    @classmethod\n    @expose\n    def km(cls): pass\nOUT = K.km._pyroExposed",
]

PRIVATE_NAME_PROBES = ["m", "_m", "__m", "__len__", "__init__", "___", "____", "_____", "__doc__", "", "x__"]

PROBE_CODE = r'''
import re

def _norm(text):
    return re.sub(r"0x[0-9a-fA-F]+", "0x?", text)

def _outcome(action):
    try:
        value = action()
    except Exception as exc:
        return (type(exc).__name__, _norm(str(exc)))
    if callable(value):
        return ("ok", "callable")
    return ("ok", _norm(repr(value)))

def _names_of(cls):
    names = set()
    for base in cls.__mro__[:-1]:
        names.update(n for n in vars(base) if isinstance(n, str))
    return sorted(names | {"nope", "_nope", "__nope__", "keys", "mp", "meta_method"})

def probe_classes(api, sources):
    result = {}
    for label, source in sorted(sources.items()):
        ns = dict(api["decorators"])
        exec(source, ns)
        cls = ns["C"]
        entry = {}
        for only_exposed in (True, False):
            members = api["get_exposed_members"](cls, only_exposed=only_exposed, as_lists=True,
                                                 use_cache=False)
            entry["members", only_exposed] = {k: sorted(v) for k, v in members.items()}
        entry["instancing"] = repr(getattr(cls, "_pyroInstancing", None))
        for name in _names_of(cls):
            obj = cls()
            entry["getAttribute", name] = _outcome(lambda: api["getAttribute"](obj, name))
            entry["get_prop", name] = _outcome(lambda: api["get_exposed_property_value"](obj, name))
            entry["set_prop", name] = _outcome(lambda: api["set_exposed_property_value"](obj, name, 9))
        result[label] = entry
    return result

def probe_errors(api, snippets):
    out = []
    for snippet in snippets:
        ns = dict(api["decorators"])
        out.append(_outcome(lambda: exec(snippet, ns)))
    return out

def probe_values(api, snippets):
    out = []
    for snippet in snippets:
        ns = dict(api["decorators"])
        exec(snippet, ns)
        out.append(repr(ns["OUT"]))
    return out

def probe_all(api, data):
    return {
        "classes": probe_classes(api, data["classes"]),
        "errors": probe_errors(api, data["errors"]),
        "values": probe_values(api, data["values"]),
        "private": [api["is_private_attribute"](n) for n in data["private"]],
        "dunders": sorted(api["_private_dunder_methods"]),
    }
'''

PYRO4_EXPOSURE_CODE = PROBE_CODE + r'''
import Pyro4.util
api = {
    "decorators": {"expose": Pyro4.expose, "oneway": Pyro4.oneway, "callback": Pyro4.callback,
                   "behavior": Pyro4.behavior},
    "get_exposed_members": Pyro4.util.get_exposed_members,
    "getAttribute": Pyro4.util.getAttribute,
    "get_exposed_property_value": Pyro4.util.get_exposed_property_value,
    "set_exposed_property_value": Pyro4.util.set_exposed_property_value,
    "is_private_attribute": Pyro4.util.is_private_attribute,
    "_private_dunder_methods": Pyro4.util._private_dunder_methods,
}
OUTPUT = probe_all(api, INPUT)
'''


def _our_exposure_api() -> Dict[str, Any]:
    return {
        "decorators": {"expose": exposure.expose, "oneway": exposure.oneway, "callback": exposure.callback,
                       "behavior": exposure.behavior},
        "get_exposed_members": exposure.get_exposed_members,
        "getAttribute": exposure.getAttribute,
        "get_exposed_property_value": exposure.get_exposed_property_value,
        "set_exposed_property_value": exposure.set_exposed_property_value,
        "is_private_attribute": exposure.is_private_attribute,
        "_private_dunder_methods": exposure._private_dunder_methods,
    }


def test_exposure_matches_pyro4(pyro4: Any) -> None:
    data = {"classes": CLASS_SOURCES, "errors": ERROR_SNIPPETS, "values": VALUE_SNIPPETS,
            "private": PRIVATE_NAME_PROBES}
    theirs = pyro4(PYRO4_EXPOSURE_CODE, data)
    namespace: Dict[str, Any] = {}
    exec(PROBE_CODE, namespace)
    ours = namespace["probe_all"](_our_exposure_api(), data)
    assert ours["dunders"] == theirs["dunders"]
    assert ours["private"] == theirs["private"]
    assert list(zip(ERROR_SNIPPETS, ours["errors"])) == list(zip(ERROR_SNIPPETS, theirs["errors"]))
    assert all(kind != "ok" for kind, _ in ours["errors"])
    assert list(zip(VALUE_SNIPPETS, ours["values"])) == list(zip(VALUE_SNIPPETS, theirs["values"]))
    assert sorted(ours["classes"]) == sorted(theirs["classes"])
    differing = {}
    for label in CLASS_SOURCES:
        mine, pyro = ours["classes"][label], theirs["classes"][label]
        for key in set(mine) | set(pyro):
            if mine.get(key) != pyro.get(key) and not _accepted_difference(mine.get(key), pyro.get(key)):
                differing[label, key] = (mine.get(key), pyro.get(key))
    assert differing == {}


# Pyro4 reads ``.fget``/``.fset`` of any data descriptor, so a slot or ``__weakref__`` name
# crashes it with an accidental AttributeError; we answer with its intended refusal text.
_ACCIDENTAL_DESCRIPTOR_ERROR = re.compile(r"'\w+' object has no attribute 'f(get|set)'")


def _accepted_difference(mine: Any, pyro: Any) -> bool:
    return (isinstance(pyro, tuple) and pyro[0] == "AttributeError"
            and bool(_ACCIDENTAL_DESCRIPTOR_ERROR.fullmatch(pyro[1]))
            and mine[0] == "AttributeError"
            and mine[1].startswith("attempt to access unexposed or unknown remote attribute"))


# ------------------------------------------------------------------------------ tracebacks

TRACEBACK_SAMPLE = '''\
class Unprintable:
    def __repr__(self):
        raise RuntimeError("no repr")
    def __str__(self):
        raise RuntimeError("no str")

class HalfPrintable:
    def __repr__(self):
        raise RuntimeError("no repr")
    def __str__(self):
        return "half"

class Service:
    def __init__(self):
        self.name = "svc"
        self.count = 3
        self.bad = Unprintable()

    def handle(self, request):
        parsed = [request, request * 2]
        odd = HalfPrintable()
        return compute(parsed, Unprintable())

def compute(values, weird):
    total = sum(values)
    holder = object()
    raise ValueError("cannot compute %d" % total)

REMOTE = [
    "Traceback (most recent call last):\\n",
    "  File \\"server.py\\", line 10, in handle\\n    return compute()\\n",
    "",
    "\\n",
    "two\\nlines\\n\\n",
    "ValueError: remote failure\\n",
]

def run(get_tb, set_detailed):
    results = []
    for detailed in (False, True):
        set_detailed(detailed)
        try:
            Service().handle(7)
        except ValueError as exc:
            exc._pyroTraceback = REMOTE
            results.append(get_tb())
            results.append(get_tb(type(exc), exc, exc.__traceback__))
    set_detailed(False)
    try:
        get_tb(ValueError("only an object"))
    except TypeError as exc:
        results.append(str(exc))
    return results
'''

PYRO4_TRACEBACK_CODE = r'''
path, source = INPUT
namespace = {}
exec(compile(source, path, "exec"), namespace)
def set_detailed(flag):
    Pyro4.config.DETAILED_TRACEBACK = flag
OUTPUT = namespace["run"](Pyro4.util.getPyroTraceback, set_detailed)
'''


def _normalise(result: Any) -> Any:
    if isinstance(result, str):
        return re.sub(r"0x[0-9a-fA-F]+", "0x?", result)
    return [_normalise(item) for item in result]


def test_getPyroTraceback_matches_pyro4(pyro4: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sample = tmp_path / "tbsample.py"
    sample.write_text(TRACEBACK_SAMPLE)
    theirs = pyro4(PYRO4_TRACEBACK_CODE, (str(sample), TRACEBACK_SAMPLE))
    namespace: Dict[str, Any] = {}
    exec(compile(TRACEBACK_SAMPLE, str(sample), "exec"), namespace)
    ours = namespace["run"](
        _tracebacks.getPyroTraceback,
        lambda flag: monkeypatch.setattr(configuration.config, "DETAILED_TRACEBACK", flag),
    )
    assert _normalise(ours) == _normalise(theirs)
    detailed_text = "".join(ours[2])
    assert "    odd = half\n" in detailed_text and "        self.bad = <ERROR>\n" in detailed_text
    assert "This exception occured remotely (Pyro)" in "".join(ours[0])
