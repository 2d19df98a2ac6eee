"""Interop fixtures: real Pyro4 4.82 runs in a child process, never in ours."""

import marshal
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

DRIVER = Path(__file__).with_name("pyro4_driver.py")


def clean_env() -> dict:
    """The environment for a Pyro4 child: ours minus every ``PYRO_*`` setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYRO_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_pyro4(code: str, data=None, timeout: float = 60.0):
    """Execute ``code`` under real Pyro4 with ``INPUT = data``; return its ``OUTPUT``.

    ``data`` and the result must be marshal-able plain values (bytes, str, numbers, lists,
    tuples, dicts). A failure in the child fails the test with the child's stderr.
    """
    proc = subprocess.run(
        [sys.executable, str(DRIVER)],
        input=marshal.dumps((textwrap.dedent(code), data)),
        capture_output=True,
        timeout=timeout,
        env=clean_env(),
        cwd=str(DRIVER.parent),
    )
    if proc.returncode != 0:
        pytest.fail("real Pyro4 child failed:\n" + proc.stderr.decode(errors="replace"))
    return marshal.loads(proc.stdout)


@pytest.fixture(scope="session")
def pyro4():
    """The :func:`run_pyro4` runner."""
    return run_pyro4
