"""``benchmarks/paired_server_cpu.py`` runs end to end against real Pyro4. Never a timing assertion."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "paired_server_cpu.py"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.timeout(120)
@pytest.mark.parametrize("servertype", ["thread", "multiplex"])
def test_paired_server_cpu_prints_both_servers_and_the_ratio(tmp_path: Path, servertype: str) -> None:
    proc = subprocess.run([sys.executable, "-W", "error", str(SCRIPT), "--servertype", servertype, "--pairs", "2",
                           "--burst", "50", str(REPO), "pyro4"],
                          capture_output=True, text=True, timeout=110, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("%s server, marshal, client pyro4, 2 pairs of 50 calls" % servertype), proc.stdout
    assert "server CPU" in lines[1] and lines[2].split()[0] == "pyro4", proc.stdout
    assert "A/B server CPU per pair: median" in lines[3], proc.stdout
