"""The wheel carries the whole package: every module, py.typed and the console scripts."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def wheel_names(pyro4compat_wheel) -> set:
    with zipfile.ZipFile(pyro4compat_wheel) as archive:
        return set(archive.namelist())


def test_every_module_and_py_typed_are_in_the_wheel(wheel_names):
    sources = {path.relative_to(REPO).as_posix() for path in (REPO / "pyro4compat").rglob("*.py")}
    assert sources - wheel_names == set()
    assert "pyro4compat/py.typed" in wheel_names


def test_console_scripts_are_declared(wheel_names):
    (entry_points,) = [name for name in wheel_names if name.endswith(".dist-info/entry_points.txt")]
    assert entry_points  # the content is checked in test_console_scripts.py
