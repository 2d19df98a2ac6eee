"""Names that Pyro4's modules hand to ``from Pyro4.x import *`` only because they imported them.

Pyro4 4.82's modules mostly have no ``__all__``, so a star-import of them also yields the modules
and objects they imported (``sys``, ``logging``, ``config``, ``util``, ...), and code written
against Pyro4 relies on that (its own test suite reads ``sys`` that way). Our modules list those
names in ``__all__`` and simply import the standard-library ones. The facades ``util`` and
``core`` are the exception: the package's own modules must not import them (layering rule;
``core`` -> server -> socketserver would even be a cycle), yet a star-import of a socketserver
module or of flameserver must yield them, so those are bound on first access (PEP 562).
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Callable, Dict


def lazy_modules(owner: str, names: Dict[str, str]) -> Callable[[str], ModuleType]:
    """A module ``__getattr__`` for *owner* that imports ``names[name]`` on first access and keeps it."""

    def __getattr__(name: str) -> ModuleType:
        target = names.get(name)
        if target is None:
            raise AttributeError("module %r has no attribute %r" % (owner, name))
        module = importlib.import_module(target)
        setattr(sys.modules[owner], name, module)
        return module

    return __getattr__
