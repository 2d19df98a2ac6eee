"""Every public name of real Pyro4 4.82 exists in pyro4compat, of the same kind and signature.

Real Pyro4 lists its own surface in a child process; we compare it with ours. A name counts
as Pyro4's own when it is defined by a Pyro4 module (not a stdlib module it imported), or
is a plain value such as ``MSG_PING``. Modules of later milestones join ``CHECKED_MODULES``
as they are built.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys

import pytest

CHECKED_MODULES = [
    "Pyro4.constants",
    "Pyro4.errors",
    "Pyro4.configuration",
    "Pyro4.message",
    "Pyro4.util",
    "Pyro4.futures",
    "Pyro4.socketutil",
    "Pyro4.naming_storage",
    "Pyro4",
    "Pyro4.core",
    "Pyro4.naming",
    "Pyro4.nsc",
    "Pyro4.socketserver.threadpoolserver",
    "Pyro4.socketserver.threadpool",
    "Pyro4.socketserver.multiplexserver",
    "Pyro4.socketserver.existingconnectionserver",
    "Pyro4.test.echoserver",
    "Pyro4.utils.flame",
    "Pyro4.utils.flameserver",
]
if sys.version_info < (3, 13):  # Pyro4's gateway imports cgi, gone from Python 3.13
    CHECKED_MODULES.append("Pyro4.utils.httpgateway")

# Pyro4 documents its transport classes as internal, and ours are built differently (idle
# connections wait in a selector, not in a worker each): their constructors and helper methods
# are not part of the surface; their names and the transport contract are.
SIGNATURES_NOT_COMPARED = {
    "Pyro4.socketserver.threadpoolserver.ClientConnectionJob",
    "Pyro4.socketserver.threadpool.Pool",
    "Pyro4.socketserver.threadpool.Worker",
    "Pyro4.socketserver.multiplexserver.SocketServer_Multiplex.handleRequest",
}

# Names Pyro4 binds by a ``from __future__`` import or for its own logging, in modules whose
# star-import (their __all__) does not carry them; where a star-import does, they exist here too
# (test_star_import_gives_what_pyro4s_gives).
NOT_PART_OF_THE_SURFACE = {"division", "print_function", "log"}

SURFACE_SNIPPET = r"""
import importlib, inspect

def kind_of(value):
    if inspect.ismodule(value):
        return "module"
    if inspect.isclass(value):
        return "class"
    if callable(value):
        return "callable"
    return "value"

def signature_of(value):
    try:
        sig = inspect.signature(value)
    except (TypeError, ValueError):
        return None
    return [(p.name, p.kind.name, repr(p.default) if p.default is not p.empty else None)
            for p in sig.parameters.values()]

def own(module_name, value):
    if inspect.ismodule(value):  # submodules are surface only on the package itself
        return module_name == "Pyro4" and value.__name__.startswith("Pyro4")
    if inspect.isclass(value) or inspect.isfunction(value):
        return getattr(value, "__module__", "").startswith("Pyro4")
    return not callable(value)

result = {}
for module_name in INPUT:
    module = importlib.import_module(module_name)
    names = {}
    for name in dir(module):
        if name.startswith("__"):
            continue
        value = getattr(module, name)
        if not own(module_name, value):
            continue
        if name == "config" and module_name not in ("Pyro4", "Pyro4.configuration"):
            continue  # the imported global config object, not a definition of that module
        entry = {"kind": kind_of(value), "sig": None, "methods": {}}
        if entry["kind"] == "callable":
            entry["sig"] = signature_of(value)
        if entry["kind"] == "class" and value.__module__ == module_name:
            for attr, member in vars(value).items():
                if attr.startswith("_") and attr != "__init__":
                    continue
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                if inspect.isfunction(member):
                    entry["methods"][attr] = signature_of(member)
        names[name] = entry
    result[module_name] = names
OUTPUT = result
"""


@pytest.fixture(scope="module")
def pyro4_surface(pyro4):
    return pyro4(SURFACE_SNIPPET, CHECKED_MODULES)


def ours(module_name: str):
    return importlib.import_module("pyro4compat" + module_name[len("Pyro4"):])


def public_parameters(function) -> list:
    sig = inspect.signature(function)
    return [(p.name, p.kind.name, repr(p.default) if p.default is not p.empty else None)
            for p in sig.parameters.values()]


def normalised(parameters) -> list:
    """Parameters with memory addresses in default reprs blanked (sentinel objects differ per process)."""
    def default_text(default):
        if not default:
            return default
        default = re.sub(r"0x[0-9a-f]+", "0x?", default)
        return re.sub(r"<class '[\w.]*\.(\w+)'>", r"<class \1>", default)  # same class, other module

    return [(name, kind, default_text(default)) for name, kind, default in parameters]


@pytest.mark.parametrize("module_name", CHECKED_MODULES)
def test_every_name_exists_with_the_same_kind(pyro4_surface, module_name):
    module = ours(module_name)
    missing, wrong_kind = [], []
    for name, entry in sorted(pyro4_surface[module_name].items()):
        if name in NOT_PART_OF_THE_SURFACE:
            continue
        if not hasattr(module, name):
            missing.append(name)
            continue
        value = getattr(module, name)
        kind = ("module" if inspect.ismodule(value) else "class" if inspect.isclass(value)
                else "callable" if callable(value) else "value")
        if kind != entry["kind"]:
            wrong_kind.append((name, entry["kind"], kind))
    assert not missing, "%s lacks %s" % (module_name, missing)
    assert not wrong_kind, wrong_kind


@pytest.mark.parametrize("module_name", CHECKED_MODULES)
def test_signatures_match(pyro4_surface, module_name):
    module = ours(module_name)
    differences = []
    for name, entry in sorted(pyro4_surface[module_name].items()):
        if name in NOT_PART_OF_THE_SURFACE or not hasattr(module, name):
            continue
        value = getattr(module, name)
        if entry["sig"] is not None and callable(value) and not inspect.isclass(value):
            if normalised(public_parameters(value)) != normalised(entry["sig"]):
                differences.append((name, entry["sig"], public_parameters(value)))
        for method, sig in entry["methods"].items():
            if {"%s.%s" % (module_name, name), "%s.%s.%s" % (module_name, name, method)} & SIGNATURES_NOT_COMPARED:
                continue
            member = inspect.getattr_static(value, method, None)
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            if member is None or sig is None:
                differences.append((name + "." + method, sig, "missing"))
            elif normalised(public_parameters(member)) != normalised(sig):
                differences.append((name + "." + method, sig, public_parameters(member)))
    assert not differences, differences


# Every public module, packages first: a package without ``__all__`` also star-exports the
# submodules loaded so far, so Pyro4's are taken before anything else is imported.
STAR_MODULES = ["Pyro4", "Pyro4.socketserver", "Pyro4.test", "Pyro4.utils"] + [
    name for name in CHECKED_MODULES if name != "Pyro4"]

STAR_SNIPPET = r"""
import warnings
warnings.simplefilter("ignore", DeprecationWarning)  # Pyro4's httpgateway imports cgi
import inspect

def kind_of(value):
    if inspect.ismodule(value):
        return "module:" + value.__name__.replace("Pyro4", "pyro4compat", 1)
    if inspect.isclass(value):
        return "class"
    return "callable" if callable(value) else "value"

result = {}
for module_name in INPUT:
    namespace = {}
    exec("from %s import *" % module_name, namespace)
    result[module_name] = {name: kind_of(value) for name, value in namespace.items() if name != "__builtins__"}
OUTPUT = result
"""


@pytest.fixture(scope="module")
def pyro4_star_surface(pyro4):
    return pyro4(STAR_SNIPPET, STAR_MODULES)


@pytest.mark.parametrize("module_name", STAR_MODULES)
def test_star_import_gives_what_pyro4s_gives(pyro4_star_surface, module_name):
    """``from Pyro4.x import *`` yields Pyro4's names, imported modules included (code relies on ``sys``)."""
    namespace: dict = {}
    exec("from %s import *" % ("pyro4compat" + module_name[len("Pyro4"):]), namespace)
    namespace.pop("__builtins__")
    theirs = pyro4_star_surface[module_name]
    package = "pyro4compat" + module_name[len("Pyro4"):] + "."
    for name in set(namespace) - set(theirs):  # submodules this process happened to load (as in Pyro4)
        if inspect.ismodule(namespace[name]) and namespace[name].__name__ == package + name:
            del namespace[name]
    assert sorted(set(theirs) - set(namespace)) == [], "missing"
    assert sorted(set(namespace) - set(theirs)) == [], "extra"
    kinds = {name: ("module:" + value.__name__ if inspect.ismodule(value) else "class" if inspect.isclass(value)
                    else "callable" if callable(value) else "value") for name, value in namespace.items()}
    assert {name: kind for name, kind in kinds.items() if kind != theirs[name]} == {}
