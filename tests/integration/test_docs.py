"""The Sphinx documentation builds without a single warning, and its reference pages stay complete."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pyro4compat.configuration import OWN_ITEMS, Configuration

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
BUILD_TIMEOUT = 90  # seconds; the build takes a few


def _require_sphinx() -> None:
    """Fail in CI (sphinx is a test dependency there), skip on a machine that lacks it."""
    if importlib.util.find_spec("sphinx") is not None:
        return
    reason = "sphinx is not installed (pip install '.[test]' installs it); the docs build can't be checked"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.mark.timeout(BUILD_TIMEOUT + 30)
def test_docs_build_without_warnings(tmp_path):
    _require_sphinx()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYRO_")}  # defaults in the docs
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
               "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT, env=env, cwd=str(ROOT))
    assert proc.returncode == 0, "sphinx-build failed:\n%s\n%s" % (proc.stdout[-3000:], proc.stderr[-6000:])
    built = {path.stem for path in (tmp_path / "html").glob("*.html")}
    assert {path.stem for path in DOCS.glob("*.rst")} <= built


def _documented_items() -> list:
    text = (DOCS / "configuration.rst").read_text(encoding="utf-8")
    # rows of the reference table: the item, then (after default and type) its PYRO_<ITEM> variable
    return re.findall(r"^``([A-Z_]+)``\s.*\s``PYRO_\1``\s", text, re.M)


def test_configuration_reference_lists_every_item_once():
    items = _documented_items()
    assert sorted(items) == sorted(Configuration.__slots__)
    assert len(items) == len(set(items)) == 45 + len(OWN_ITEMS)


def test_configuration_reference_shows_the_real_defaults():
    text = (DOCS / "configuration.rst").read_text(encoding="utf-8")
    defaults = Configuration()
    defaults.reset(useenvironment=False)
    computed = {"PICKLE_PROTOCOL_VERSION", "DILL_PROTOCOL_VERSION", "USE_MSG_WAITALL", "SERIALIZERS_ACCEPTED"}
    for item in Configuration.__slots__:
        if item in computed:
            continue
        value = getattr(defaults, item)
        shown = '``"%s"``' % value if isinstance(value, str) else "``%r``" % (value,)
        row = re.search(r"^``%s``\s+(\S+(?: \S+)*?)\s{2,}" % item, text, re.M)
        assert row is not None and row.group(1) == shown, (item, row and row.group(1), shown)


@pytest.mark.parametrize("needle", [
    "pyro4compat-ns", "pyro4compat-nsc", "pyro4compat-test-echoserver", "pyro4compat-check-config",
    "pyro4compat-flameserver", "pyro4compat-httpgateway", "pyro4compat.naming", "pyro4compat.nsc",
    "pyro4compat.test.echoserver", "pyro4compat.configuration", "pyro4compat.utils.flameserver",
    "pyro4compat.utils.httpgateway", "PYRO_HMAC_KEY", "PYRO_HTTPGATEWAY_KEY",
])
def test_command_line_page_names_every_tool(needle):
    assert needle in (DOCS / "commandline.rst").read_text(encoding="utf-8")
