"""Importing pyro4compat prints nothing and warns about nothing, with or without the optional serializers.

Each case runs in a fresh interpreter (``-W error``), because what an import does can only be
seen the first time it happens in a process. No sockets are involved.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Makes the optional packages unimportable in the child, as if they were not installed.
BLOCK_OPTIONAL = """
import sys
class _Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("msgpack", "dill", "cloudpickle", "psycopg"):
            raise ImportError("blocked for this test: " + name)
        return None
sys.meta_path.insert(0, _Blocker())
"""

IMPORT_ALL = """
import pyro4compat, pyro4compat.core, pyro4compat.util, pyro4compat.message, pyro4compat.naming_storage
import pyro4compat.socketserver.threadpoolserver, pyro4compat.socketserver.multiplexserver
import pyro4compat.naming, pyro4compat.nsc, pyro4compat.utils.httpgateway, pyro4compat.utils.flame
import pyro4compat.utils.flameserver, pyro4compat.test.echoserver
print(sorted(pyro4compat.util._serializers), file=sys.stderr)
"""


def run_child(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True,
                          cwd=str(REPO), timeout=60)


@pytest.mark.parametrize("blocked", [False, True], ids=["all-serializers", "no-optional-serializers"])
def test_import_is_silent(blocked: bool) -> None:
    code = "import sys\n" + (BLOCK_OPTIONAL if blocked else "") + IMPORT_ALL
    proc = run_child(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    available = eval(proc.stderr.strip().splitlines()[-1])
    assert {"serpent", "json", "marshal", "pickle"} <= set(available)
    if blocked:
        assert not {"msgpack", "dill", "cloudpickle"} & set(available)
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_missing_optional_serializer_gives_a_clear_error() -> None:
    code = BLOCK_OPTIONAL + """
import pyro4compat
from pyro4compat import errors, util
try:
    util.get_serializer("msgpack")
except errors.SerializeError as exc:
    print(exc)
"""
    proc = run_child(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "serializer 'msgpack' is unknown or not available"
