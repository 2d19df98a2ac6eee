"""``install_as_pyro4()``: each scenario runs in its own interpreter so this process stays clean.

Real Pyro4 is installed in this environment, so every child checks that the name ``Pyro4``
resolves to pyro4compat only after ``install_as_pyro4()``. Children run with ``-W error`` and must
leave stderr empty: installing and importing through the alias may not warn.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

PRELUDE = """\
import importlib, importlib.util, sys, types
import pyro4compat
from pyro4compat._install import install_as_pyro4, _AliasFinder
def finders():
    return sum(isinstance(f, _AliasFinder) for f in sys.meta_path)
"""


def run_child(code: str, cwd: Path) -> str:
    """Run PRELUDE + ``code`` in a fresh interpreter; fail with its stderr unless it succeeds silently."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYRO_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    proc = subprocess.run([sys.executable, "-W", "error", "-c", PRELUDE + textwrap.dedent(code)],
                          capture_output=True, text=True, env=env, cwd=str(cwd), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return proc.stdout


def test_without_install_pyro4_is_not_ours(tmp_path: Path) -> None:
    # The premise of the other tests: some other Pyro4 is importable here, so they can fail.
    out = run_child("""
        spec = importlib.util.find_spec("Pyro4")
        assert spec is not None and spec.origin is not None
        assert not spec.origin.startswith(pyro4compat.__path__[0]), spec.origin
        assert "Pyro4" not in sys.modules and finders() == 0
        print("ok")
    """, tmp_path)
    assert out == "ok\n"


def test_install_makes_pyro4_our_package(tmp_path: Path) -> None:
    out = run_child("""
        install_as_pyro4()
        import Pyro4
        import Pyro4.errors
        import Pyro4.constants as constants
        from Pyro4 import configuration
        from Pyro4.configuration import config
        assert Pyro4 is pyro4compat
        assert sys.modules["Pyro4"] is pyro4compat
        assert sys.modules["Pyro4.errors"] is sys.modules["pyro4compat.errors"] is Pyro4.errors
        assert constants is pyro4compat.constants and configuration is pyro4compat.configuration
        assert config is pyro4compat.config
        import Pyro4._uri
        assert Pyro4._uri.URI is sys.modules["pyro4compat._uri"].URI
        # modules keep their own identity: name and spec are pyro4compat's
        for name in ("errors", "constants", "_uri"):
            module = sys.modules["Pyro4." + name]
            assert module.__name__ == module.__spec__.name == "pyro4compat." + name
        assert Pyro4.__spec__.name == "pyro4compat"
        # every Pyro4 module in this process is one of ours: nothing was loaded twice
        for name, module in list(sys.modules.items()):
            if name == "Pyro4" or name.startswith("Pyro4."):
                assert sys.modules["pyro4compat" + name[5:]] is module, name
        print(sorted(n for n in sys.modules if n.startswith("Pyro4")))
    """, tmp_path)
    assert eval(out) == ["Pyro4", "Pyro4._uri", "Pyro4.configuration", "Pyro4.constants", "Pyro4.errors"]


def test_install_is_idempotent(tmp_path: Path) -> None:
    out = run_child("""
        for _ in range(3):
            install_as_pyro4()
        assert finders() == 1
        assert isinstance(sys.meta_path[0], _AliasFinder)
        import Pyro4
        install_as_pyro4()  # after the alias is in use, still fine
        assert finders() == 1 and Pyro4 is pyro4compat
        print("ok")
    """, tmp_path)
    assert out == "ok\n"


def test_missing_submodule_is_reported_under_the_pyro4_name(tmp_path: Path) -> None:
    out = run_child("""
        install_as_pyro4()
        try:
            import Pyro4.no_such_module
        except ModuleNotFoundError as exc:
            print(exc.name, "|", exc)
        assert "Pyro4.no_such_module" not in sys.modules
    """, tmp_path)
    assert out == "Pyro4.no_such_module | No module named 'Pyro4.no_such_module'\n"


def test_nested_submodules_imported_later(tmp_path: Path) -> None:
    # A subpackage that pyro4compat only finds through its __path__, imported after install.
    extra = tmp_path / "plugins" / "extrapkg"
    extra.mkdir(parents=True)
    (extra / "__init__.py").write_text("")
    (extra / "sibling.py").write_text("VALUE = 42\n")
    (extra / "leaf.py").write_text(textwrap.dedent("""
        import sys
        sys.leaf_executions = getattr(sys, "leaf_executions", 0) + 1
        from . import sibling

        def late():
            from .sibling import VALUE  # a relative import at call time, after aliasing
            return VALUE
    """))
    out = run_child("""
        pyro4compat.__path__.append(%r)
        install_as_pyro4()
        import Pyro4.extrapkg.leaf
        from Pyro4.extrapkg import leaf
        import Pyro4.extrapkg.leaf as again
        import pyro4compat.extrapkg.leaf as direct
        assert leaf is again is direct is Pyro4.extrapkg.leaf
        assert sys.modules["Pyro4.extrapkg"] is sys.modules["pyro4compat.extrapkg"]
        assert sys.leaf_executions == 1
        assert leaf.__name__ == leaf.__spec__.name == "pyro4compat.extrapkg.leaf"
        assert leaf.late() == 42
        importlib.reload(leaf)
        assert sys.leaf_executions == 2 and sys.modules["Pyro4.extrapkg.leaf"] is leaf
        print("ok")
    """ % str(tmp_path / "plugins"), tmp_path)
    assert out == "ok\n"


def test_every_submodule_on_disk_aliases_like_the_direct_import(tmp_path: Path) -> None:
    # Whatever modules the package holds today (including later-imported ones such as naming or
    # utils.flame): importing them as Pyro4.X gives what importing pyro4compat.X gives.
    package = REPO_ROOT / "pyro4compat"
    names = sorted(
        ".".join(path.relative_to(package).with_suffix("").parts).replace(".__init__", "")
        for path in package.rglob("*.py")
        if path.name != "__main__.py" and path.relative_to(package).parts[0] != "__init__.py"
    )
    assert "configuration" in names and "_install" in names
    out = run_child("""
        install_as_pyro4()
        outcomes = {}
        for name in %r:
            try:
                module = importlib.import_module("Pyro4." + name)
            except Exception as exc:  # a module under construction: compare with the direct import
                outcomes[name] = type(exc).__name__
                try:
                    importlib.import_module("pyro4compat." + name)
                except Exception as direct:
                    assert type(direct) is type(exc), (name, exc, direct)
                continue
            assert module is sys.modules["pyro4compat." + name], name
            assert sys.modules["Pyro4." + name] is module, name
            outcomes[name] = module.__name__
        print(len(outcomes))
    """ % names, tmp_path)
    assert out == "%d\n" % len(names)


@pytest.mark.parametrize("foreign", ["Pyro4", "Pyro4.core"])
def test_refuses_when_another_pyro4_is_imported(foreign: str, tmp_path: Path) -> None:
    out = run_child("""
        sys.modules[%r] = types.ModuleType(%r)
        try:
            install_as_pyro4()
        except ImportError as exc:
            print(exc)
        assert finders() == 0
    """ % (foreign, foreign), tmp_path)
    assert "already imported" in out and foreign in out
    assert "install_as_pyro4() before" in out


def test_installs_when_pyro4_modules_in_sys_modules_are_already_ours(tmp_path: Path) -> None:
    out = run_child("""
        sys.modules["Pyro4"] = pyro4compat  # a hand-made alias of our own package is not foreign
        install_as_pyro4()
        assert finders() == 1
        print("ok")
    """, tmp_path)
    assert out == "ok\n"


def test_runpy_can_run_aliased_modules(tmp_path: Path) -> None:
    # `python -m Pyro4.x` asks the alias loader for code; the code is pyro4compat's own file.
    out = run_child("""
        import runpy
        install_as_pyro4()
        spec = importlib.util.find_spec("Pyro4.nsc")
        code = spec.loader.get_code("Pyro4.nsc")
        assert code.co_filename == sys.modules["pyro4compat"].__path__[0] + "/nsc.py", code.co_filename
        assert spec.origin == code.co_filename and spec.has_location
        assert not spec.loader.is_package("Pyro4.nsc") and spec.loader.get_source("Pyro4.nsc")
        assert importlib.util.find_spec("Pyro4.utils").loader.is_package("Pyro4.utils")
        namespace = runpy.run_module("Pyro4.nsc", run_name="not_main")
        assert namespace["__package__"] == "Pyro4" and namespace["__file__"] == code.co_filename
        assert namespace["errors"] is sys.modules["pyro4compat.errors"]  # relative imports: one module
        print("ok")
    """, tmp_path)
    assert out == "ok\n"
