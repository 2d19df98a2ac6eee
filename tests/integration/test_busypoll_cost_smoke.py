"""``benchmarks/busypoll_cost.py`` runs end to end and prints every row. Never a timing assertion."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "busypoll_cost.py"


@pytest.mark.timeout(120)
def test_busypoll_cost_prints_a_row_per_setting(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-W", "error", str(SCRIPT), "--rounds", "1", "--seconds", "0.2"],
                          capture_output=True, text=True, timeout=110, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    rows = [line.split()[:3] for line in proc.stdout.splitlines()[1:]]
    expected = [["none", "-", "-"]] + [[server, load, busypoll] for load in ("1000/s", "flat-out")
                                        for server in ("thread", "multiplex") for busypoll in ("200", "0")]
    assert rows == expected, proc.stdout
