"""The ``.pth`` alias in a fresh virtualenv: Pyro4's own ``python -m Pyro4.<tool>`` commands run on us.

This is how code we don't control gets pyro4compat: pyro4compat is pip-installed into a new
virtualenv (no real Pyro4 in it, no checkout on the path), a one-line ``.pth`` file installs the
alias at interpreter start, and then the commands applications document for real Pyro4 (a name
server, nsc, the echo server) run against each other, as do multiprocessing children.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
from procs import stop_process
from test_nsc_cli import NameServerProcess

pytestmark = pytest.mark.timeout(240)

PTH_LINE = "import pyro4compat; pyro4compat.install_as_pyro4()\n"


class Venv:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.python = str(root / ("Scripts" if os.name == "nt" else "bin") / "python")
        # Children of the test get neither our checkout nor PYRO_* settings of the outer run.
        self.env: Dict[str, str] = {k: v for k, v in os.environ.items()
                                    if k not in ("PYTHONPATH", "PYTHONHOME") and not k.startswith("PYRO_")}
        self.env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")

    def run(self, *args: str, timeout: float = 60, env: Dict[str, str] = {}) -> subprocess.CompletedProcess:
        return subprocess.run([self.python, *args], capture_output=True, text=True, timeout=timeout,
                              cwd=str(self.root), env={**self.env, **env})


@pytest.fixture(scope="module")
def venv(tmp_path_factory, pyro4compat_wheel: Path) -> Venv:
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, capture_output=True, timeout=120)
    env = Venv(root)
    # serpent, our one requirement, comes from the index as for any user's `pip install`
    installed = env.run("-m", "pip", "install", "-q", "--disable-pip-version-check", str(pyro4compat_wheel),
                        timeout=180)
    assert installed.returncode == 0, installed.stderr
    purelib = env.run("-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip()
    Path(purelib, "pyro4compat-alias.pth").write_text(PTH_LINE)
    return env


def test_the_venv_has_no_other_pyro4_and_the_alias_is_active(venv: Venv) -> None:
    probe = venv.run("-W", "error", "-c", textwrap.dedent("""
        import sys
        assert "Pyro4" not in sys.modules  # the .pth installs a finder, it imports no Pyro4 module
        import Pyro4, Pyro4.core, pyro4compat
        assert Pyro4 is pyro4compat and Pyro4.core.Proxy is pyro4compat.core.Proxy
        print(Pyro4.__file__.startswith(sys.prefix), Pyro4.__version__)
    """))
    assert (probe.returncode, probe.stderr) == (0, "")
    assert probe.stdout == "True 4.82\n"


@pytest.fixture
def name_server(venv: Venv) -> Iterator[int]:
    process = NameServerProcess(["-n", "127.0.0.1", "-p", "0", "-x"], env=venv.env, cwd=venv.root,
                                command=[venv.python, "-W", "error", "-m", "Pyro4.naming"])
    try:
        yield process.wait_for_uri()[2]
        assert process.lines[0] == "Not starting broadcast server for localhost."
    finally:
        process.stop()


def wait_for_line(proc: subprocess.Popen, prefix: str) -> List[str]:
    """Lines of ``proc``'s stdout up to and including the first that starts with ``prefix``."""
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith(prefix):
            return lines
    raise AssertionError("exited before %r: %s %s" % (prefix, lines, proc.stderr.read() if proc.stderr else ""))


def test_python_m_pyro4_tools_work_together(venv: Venv, name_server: int) -> None:
    ns_env = {**venv.env, "PYRO_NS_HOST": "127.0.0.1", "PYRO_NS_PORT": str(name_server)}
    echo = subprocess.Popen([venv.python, "-W", "error", "-m", "Pyro4.test.echoserver", "-H", "127.0.0.1", "-n"],
                            cwd=str(venv.root), env=ns_env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = wait_for_line(echo, "echoserver running.")
        assert lines[0] == "Starting Pyro's built-in test echo server."
        listing = venv.run("-W", "error", "-m", "Pyro4.nsc", "-n", "127.0.0.1", "-p", str(name_server), "list")
        assert (listing.returncode, listing.stderr) == (0, "")
        assert "test.echoserver --> PYRO:test.echoserver@127.0.0.1:" in listing.stdout
        call = venv.run("-W", "error", "-c", textwrap.dedent("""
            import Pyro4
            with Pyro4.Proxy("PYRONAME:test.echoserver") as echo:
                print(echo.echo("through the alias"))
                echo.shutdown()
        """), env=ns_env)
        assert (call.returncode, call.stderr, call.stdout) == (0, "", "through the alias\n")
        assert echo.wait(30) == 0
    finally:
        stop_process(echo)
        for stream in (echo.stdout, echo.stderr):
            stream.close()


def test_nsc_exit_code_and_usage_as_pyro4(venv: Venv) -> None:
    unknown = venv.run("-m", "Pyro4.nsc", "-n", "127.0.0.1", "nosuchcommand")
    assert unknown.returncode == 2  # optparse's error exit, as Pyro4's nsc
    assert unknown.stderr.endswith("nsc.py: error: invalid or missing command\n")
    config = venv.run("-W", "error", "-m", "Pyro4.configuration")
    assert config.returncode == 0 and config.stdout.startswith("Pyro version: 4.82\n")


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_multiprocessing_children_get_the_alias(venv: Venv, tmp_path: Path, method: str) -> None:
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent("""
        import multiprocessing, sys

        def child(queue):
            import Pyro4
            queue.put(Pyro4.core.__name__)

        if __name__ == "__main__":
            context = multiprocessing.get_context(sys.argv[1])
            queue = context.Queue()
            process = context.Process(target=child, args=(queue,))
            process.start()
            print(queue.get(timeout=60))
            process.join(60)
            sys.exit(process.exitcode)
    """))
    result = venv.run(str(script), method)
    assert (result.returncode, result.stderr, result.stdout) == (0, "", "pyro4compat.core\n")


def test_pth_line_is_what_the_docs_show() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "migrating.rst").read_text()
    assert PTH_LINE.strip() in docs
    assert sysconfig.get_path("purelib")  # the docs' way of finding the folder works here
