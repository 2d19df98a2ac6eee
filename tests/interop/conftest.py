"""Interop fixtures: real Pyro4 4.82 runs in a child process, never in ours."""

import json
import marshal
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from procs import stop_process

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


class Pyro4Server:
    """A real Pyro4 daemon in a child process, stopped by the test through this handle."""

    def __init__(self, **settings) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(DRIVER.with_name("pyro4_server.py")), json.dumps(settings)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(), cwd=str(DRIVER.parent))
        line = self.proc.stdout.readline().decode()
        if not line.startswith("READY "):
            self.proc.kill()
            _, stderr = self.proc.communicate(timeout=10)
            self.stop()
            pytest.fail("Pyro4 server did not start: %r %s" % (line, stderr.decode(errors="replace")))
        self.location = line.split()[1]

    def uri(self, object_id: str) -> str:
        return "PYRO:%s@%s" % (object_id, self.location)

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def pyro4_server():
    """Factory: ``pyro4_server(**settings)`` starts a real Pyro4 daemon; all are stopped after the test."""
    started = []

    def start(**settings) -> Pyro4Server:
        server = Pyro4Server(**settings)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
