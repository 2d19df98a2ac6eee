"""Smoke runs of the stress scripts (``tests/stress/``): each for about 3 seconds, in a child process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STRESS = ROOT / "tests" / "stress"

pytestmark = [pytest.mark.timeout(90),
              pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="the soak counts fds in /proc")]


def run(script: str, *args: str) -> str:
    result = subprocess.run([sys.executable, "-W", "error", str(STRESS / script)] + list(args),
                            capture_output=True, text=True, timeout=80, cwd=str(ROOT))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_soak_smoke():
    out = run("soak.py", "--seconds", "1.5", "--clients", "4")
    lines = out.splitlines()
    assert lines[-1] == "soak OK"
    for servertype in ("thread", "multiplex"):
        line = next(line for line in lines if line.startswith("soak %s:" % servertype))
        assert " 0 errors;" in line
        calls = int(line.split(" calls,")[0].rsplit(" ", 1)[1])
        assert calls > 20, line


def test_fuzz_smoke():
    out = run("fuzz_frames.py", "--budget", "3")
    assert out.startswith("fuzz OK:"), out
    for target in ("frame reader", "deserializers", "live thread", "live multiplex"):
        assert target in out
