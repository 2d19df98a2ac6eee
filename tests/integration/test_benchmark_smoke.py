"""The benchmark harness runs end to end: it prints its tables. Never a timing assertion.

``benchmarks/run.py`` starts real Pyro4 4.82 and pyro4compat in child processes (never in
this one), so this only needs Pyro4 to be installed, which ``find_spec`` checks without
importing it.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

pytestmark = [
    pytest.mark.interop,
    pytest.mark.timeout(120),
    pytest.mark.skipif(importlib.util.find_spec("Pyro4") is None, reason="real Pyro4 4.82 not installed"),
]

RUN = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"
RATIO = re.compile(r"\d+\.\d\dx")


def run_benchmark(args: List[str], tmp_path: Path) -> str:
    proc = subprocess.run([sys.executable, str(RUN), "--quick", "--no-progress", *args],
                          capture_output=True, text=True, timeout=100, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("serializer", ["serpent", "marshal"])
def test_small_calls_table_has_both_libraries_and_a_ratio(tmp_path: Path, serializer: str) -> None:
    saved = tmp_path / "result.json"
    out = run_benchmark(["--only", "small_calls", "--serializer", serializer, "--json", str(saved)],
                        tmp_path)
    header = next(line for line in out.splitlines() if line.startswith("figure"))
    assert "pyro4compat" in header and "Pyro4" in header and "ratio" in header
    rows = [line for line in out.splitlines() if line.startswith("small_calls")]
    assert len(rows) == 1, out
    assert serializer in rows[0] and RATIO.search(rows[0]), out
    assert "error" not in out
    assert '"ratio"' in saved.read_text()


def test_connections_table_reports_threads_and_memory(tmp_path: Path) -> None:
    out = run_benchmark(["--only", "connections", "--counts", "10"], tmp_path)
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("idle"))
    assert "threads" in header and "rss MB" in header and "KB/idle" in header
    rows = [line.split() for line in lines if line.startswith("10 ")]
    assert sorted(row[1] for row in rows) == ["Pyro4", "pyro4compat"], out
    assert all(row[2] == "10" for row in rows), out  # every idle proxy connected, on both servers


def test_many_clients_table_has_both_busypoll_modes_and_server_cpu(tmp_path: Path) -> None:
    saved = tmp_path / "result.json"
    out = run_benchmark(["--only", "many_clients", "--serializer", "marshal", "--duration", "0.3",
                         "--json", str(saved)], tmp_path)
    header = next(line for line in out.splitlines() if line.startswith("server"))
    assert "pyro4compat" in header and "Pyro4" in header and "srv us" in header
    rows = [line.split() for line in out.splitlines() if line.startswith("thread ")]
    assert sorted(row[2] for row in rows) == ["off", "on"], out
    assert all(row[1] == "marshal" and RATIO.search(row[6]) for row in rows), out
    assert "error" not in out
    assert '"cpu_ratio"' in saved.read_text()


def test_aio_table_has_every_figure_beside_pyro4(tmp_path: Path) -> None:
    saved = tmp_path / "result.json"
    out = run_benchmark(["--only", "aio", "--serializer", "marshal", "--duration", "0.3", "--json", str(saved)],
                        tmp_path)
    rows = [line.split() for line in out.splitlines() if re.match(r"aio_\w+ ", line)]
    assert [row[0] for row in rows] == ["aio_tasks_1", "aio_tasks_10", "aio_tasks_100", "aio_clients_100"], out
    assert all(row[1] == "marshal" and row[2] == "asyncio/thread" and RATIO.search(row[6]) for row in rows), out
    assert "error" not in out
    assert '"aio_clients_100"' in saved.read_text()


@pytest.mark.parametrize("bad", [["--only", "no_such_figure"], ["--only", "connections,small_calls"]])
def test_bad_selection_is_refused(tmp_path: Path, bad: List[str]) -> None:
    proc = subprocess.run([sys.executable, str(RUN), *bad], capture_output=True, text=True,
                          timeout=30, cwd=str(tmp_path))
    assert proc.returncode == 2 and "error" in proc.stderr
