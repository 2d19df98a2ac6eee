"""Smoke test: every script in examples/ runs non-interactively, exits 0 and says what it did."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))

# Text each example must print (its last line and something that proves the feature worked).
# An example not listed here must still exit 0 and print something.
EXPECTED = {
    "quickstart.py": ["done: every call went over protocol 48"],
    "batch.py": ["batch results: [10, 20, 30, 40, 50]", "the batch stopped at: ZeroDivisionError",
                 "asynchronous batch results: [42]", "batch example done"],
    "async_calls.py": ["chained: BAKED BREAD!", "value raised: the pizza caught fire", "async example done"],
    "streaming.py": ["first five of an endless stream: [0, 1, 2, 3, 4]", "open streams after close(): 0",
                     "server is not configured to allow streaming", "streaming example done"],
    "callbacks.py": ["client: server reports progress on c", "listener failed: ValueError",
                     "error during handleRequest: client refuses", "callbacks example done"],
    "ssl_two_way.py": ["server: client certificate subject: {'commonName': 'example-client'}",
                       "client: the secret is 42", "ssl example done"],
}


def test_the_examples_this_test_knows_are_there():
    assert set(EXPECTED) <= {path.name for path in EXAMPLES}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("script", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_example_runs(script):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYRO_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-W", "error", str(script)], capture_output=True, text=True,
                          timeout=50, env=env, cwd=str(ROOT))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert output.strip(), "an example should say what it did"
    for text in EXPECTED.get(script.name, []):
        assert text in output, (text, output)
