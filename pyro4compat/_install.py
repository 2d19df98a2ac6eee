"""``install_as_pyro4()``: make ``import Pyro4`` (and every ``Pyro4.x.y``) give pyro4compat's modules.

Theory of operation: one finder sits first on ``sys.meta_path``. For ``Pyro4`` or ``Pyro4.<rest>``
it checks that ``pyro4compat.<rest>`` exists and answers with a spec whose loader imports that
module and hands back the very same module object. The import system then files it under the
``Pyro4...`` name too, so ``sys.modules["Pyro4.core"] is sys.modules["pyro4compat.core"]`` and
a module is never loaded twice. Submodules imported later are covered, because the finder is
asked each time. Aliased modules keep their own ``__name__`` and ``__spec__`` (the import system
overwrites ``__spec__`` with the alias spec; the loader puts the original back) so relative
imports, ``reload`` and pickling by module name keep working.

Aliasing is refused when another ``Pyro4`` (the real one) is already imported: two copies of
Pyro's classes in one process would make ``isinstance`` checks and the wire-name mapping lie.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import CodeType, ModuleType
from typing import Any, Optional, Sequence

__all__ = ["install_as_pyro4"]

ALIAS = "Pyro4"
TARGET = __name__.rpartition(".")[0]  # "pyro4compat"


def _target_name(fullname: str) -> Optional[str]:
    """``"Pyro4.x.y"`` -> ``"pyro4compat.x.y"``; None for names outside ``Pyro4``."""
    if fullname == ALIAS:
        return TARGET
    if fullname.startswith(ALIAS + "."):
        return TARGET + fullname[len(ALIAS):]
    return None


class _AliasLoader(importlib.abc.InspectLoader):
    """Loads ``Pyro4.<rest>`` by importing ``pyro4compat.<rest>`` and returning that module.

    It also hands out the target's code, which is what ``runpy`` asks for: ``python -m
    Pyro4.naming`` then runs ``pyro4compat/naming.py`` as ``__main__`` with ``__package__``
    ``"Pyro4"``, whose relative imports come back through the alias to the same modules.
    """

    def __init__(self, target: str, target_spec: importlib.machinery.ModuleSpec) -> None:
        self.target = target
        self.target_spec = target_spec
        self.own_spec: Optional[importlib.machinery.ModuleSpec] = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        self.own_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # Already executed under its own name; only undo the import system's __spec__ overwrite.
        module.__spec__ = self.own_spec

    def is_package(self, fullname: str) -> bool:
        return self.target_spec.submodule_search_locations is not None

    def get_code(self, fullname: str) -> Optional[CodeType]:
        return self._target_loader().get_code(self.target)

    def get_source(self, fullname: str) -> Optional[str]:
        return self._target_loader().get_source(self.target)

    def get_filename(self, fullname: str) -> str:
        return self._target_loader().get_filename(self.target)

    def _target_loader(self) -> Any:
        loader = self.target_spec.loader
        if not hasattr(loader, "get_code"):
            raise ImportError("%s has no code to run through the Pyro4 alias" % self.target, name=self.target)
        return loader


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Answers for ``Pyro4`` and its submodules; everything else goes to the next finder."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Optional[ModuleType] = None) -> Optional[importlib.machinery.ModuleSpec]:
        target_name = _target_name(fullname)
        if target_name is None:
            return None
        target_spec = importlib.util.find_spec(target_name)
        if target_spec is None:
            return None  # the usual ModuleNotFoundError, naming the Pyro4 module asked for
        is_package = target_spec.submodule_search_locations is not None
        spec = importlib.machinery.ModuleSpec(fullname, _AliasLoader(target_name, target_spec),
                                              origin=target_spec.origin, is_package=is_package)
        spec.has_location = target_spec.has_location  # runpy's __file__ for `python -m Pyro4.x`
        return spec


def _foreign_pyro4_modules() -> list:
    """Names under ``Pyro4`` in ``sys.modules`` that are not aliases of our own modules."""
    foreign = []
    for name, module in list(sys.modules.items()):
        target = _target_name(name)
        if target is not None and (module is None or sys.modules.get(target) is not module):
            foreign.append(name)
    return sorted(foreign)


def _installed() -> bool:
    return any(isinstance(finder, _AliasFinder) for finder in sys.meta_path)


def install_as_pyro4() -> None:
    """Make ``import Pyro4`` and ``import Pyro4.<sub>`` give pyro4compat's modules. Idempotent.

    Call it before anything imports Pyro4. Raises ImportError if a different ``Pyro4`` (such as
    the real Pyro4 4.82) is already imported in this process.
    """
    foreign = _foreign_pyro4_modules()
    if foreign:
        raise ImportError(
            "install_as_pyro4(): a different Pyro4 is already imported in this process (%s); "
            "call install_as_pyro4() before anything imports Pyro4" % ", ".join(foreign[:3]),
            name=ALIAS,
        )
    if not _installed():
        sys.meta_path.insert(0, _AliasFinder())
