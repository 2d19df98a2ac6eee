"""The console scripts: declared in ``setup.py`` under names that can't clash with Pyro4's, each resolving.

A checkout need not be installed (and CI may not put the scripts on PATH), so the declaration is
read from ``setup.py`` itself; when pyro4compat is installed, its metadata must agree with it.
Each target is loaded the way an installer's script wrapper loads it and asked for ``--help``.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[2]
GROUP = "console_scripts"

# script name -> target; Pyro4 4.82's own scripts are the same with "pyro4-" and "Pyro4."
EXPECTED = {
    "pyro4compat-ns": "pyro4compat.naming:main",
    "pyro4compat-nsc": "pyro4compat.nsc:main",
    "pyro4compat-test-echoserver": "pyro4compat.test.echoserver:main",
    "pyro4compat-check-config": "pyro4compat.configuration:main",
    "pyro4compat-flameserver": "pyro4compat.utils.flameserver:main",
    "pyro4compat-httpgateway": "pyro4compat.utils.httpgateway:main",
}
OPTPARSE_TOOLS = sorted(set(EXPECTED) - {"pyro4compat-check-config"})


def declared_in_setup_py() -> Dict[str, str]:
    """The ``console_scripts`` of the ``setup(...)`` call, read without running setup.py."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup":
            for keyword in node.keywords:
                if keyword.arg == "entry_points":
                    entry_points = ast.literal_eval(keyword.value)
                    return dict(line.replace(" ", "").split("=", 1) for line in entry_points[GROUP])
    raise AssertionError("setup.py declares no entry_points")


def entry_point(name: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name=name, value=EXPECTED[name], group=GROUP)


def test_setup_py_declares_the_six_scripts():
    assert declared_in_setup_py() == EXPECTED


def test_no_script_name_clashes_with_pyro4s():
    pyro4_names = {"pyro4-ns", "pyro4-nsc", "pyro4-test-echoserver", "pyro4-check-config",
                   "pyro4-flameserver", "pyro4-httpgateway"}
    assert not pyro4_names & set(EXPECTED)
    assert {name.replace("pyro4compat-", "pyro4-") for name in EXPECTED} == pyro4_names


def scripts_of(distribution: importlib.metadata.Distribution) -> Dict[str, str]:
    return {ep.name: ep.value.replace(" ", "") for ep in distribution.entry_points if ep.group == GROUP}


def test_setuptools_writes_the_scripts_into_the_metadata(tmp_path):
    """What ``pip install .`` installs: the metadata setuptools generates from setup.py."""
    if importlib.util.find_spec("setuptools") is None:  # Python 3.12+ venvs come without it
        pytest.skip("setuptools is not installed in this Python")
    subprocess.run([sys.executable, "setup.py", "-q", "egg_info", "--egg-base", str(tmp_path)],
                   cwd=str(ROOT), check=True, capture_output=True, timeout=60)
    (egg_info,) = tmp_path.glob("*.egg-info")
    assert scripts_of(importlib.metadata.PathDistribution(egg_info)) == EXPECTED


def test_installed_metadata_agrees_with_setup_py():
    try:
        distribution = importlib.metadata.distribution("pyro4compat")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("pyro4compat is not installed; setup.py is checked above")
    installed = scripts_of(distribution)
    if not installed:
        pytest.skip("the installed metadata predates the console scripts: reinstall with pip install -e .")
    assert installed == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_target_resolves_to_a_callable(name):
    target = entry_point(name).load()
    assert callable(target) and target.__name__ == "main"
    assert target.__module__ == EXPECTED[name].split(":")[0]


@pytest.mark.parametrize("name", OPTPARSE_TOOLS)
def test_every_tool_answers_help_without_starting(name, capsys):
    with pytest.raises(SystemExit) as caught:
        entry_point(name).load()(["--help"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.startswith("Usage: ")


def test_check_config_prints_the_configuration(capsys):
    entry_point("pyro4compat-check-config").load()()
    out = capsys.readouterr().out
    assert out.startswith("Pyro version: 4.82\n")
    assert "Currently active configuration settings:" in out and "SERIALIZER = serpent" in out
