"""Integration fixtures: daemons on loopback (port 0), both server types."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daemons import serving
from pyro4compat.configuration import config

SERVERTYPES = ["thread", "multiplex"]


@pytest.fixture(params=SERVERTYPES)
def servertype(request) -> str:
    """Run the test once per server type; config.SERVERTYPE is set accordingly."""
    config.SERVERTYPE = request.param
    return request.param


@pytest.fixture
def serve():
    """The :func:`serving` context manager."""
    return serving


@pytest.fixture(scope="session")
def pyro4compat_wheel(tmp_path_factory) -> Path:
    """The wheel ``pip install .`` builds (isolated build, setuptools from the index), built once."""
    out = tmp_path_factory.mktemp("wheel")
    repo = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(repo)],
                   check=True, capture_output=True, timeout=110)
    (wheel,) = out.glob("pyro4compat-*.whl")
    return wheel
