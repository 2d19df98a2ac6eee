"""Helpers shared by the batch/async/streaming/callback/SSL/compression/event-loop tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from typing import Any, Callable, Dict, Iterator, Tuple

import pytest

import pyro4compat as Pyro4


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Wait for state another thread owns (a daemon's stream table, say) to satisfy ``predicate``.

    Used only where no event exists to wait on: it re-checks on a short event wait and fails the
    test when ``timeout`` passes, so it never hides a hang.
    """
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting for " + what)
        tick.wait(0.01)


@contextlib.contextmanager
def daemon_serving(objects: Dict[str, Any], serve: Any, **daemon_kwargs: Any) -> Iterator[Tuple[Any, Dict[str, Any]]]:
    """A daemon on 127.0.0.1 port 0 serving ``objects`` by id; yields ``(daemon, {id: uri})``."""
    daemon = Pyro4.Daemon(host="127.0.0.1", **daemon_kwargs)
    uris = {name: daemon.register(obj, name) for name, obj in objects.items()}
    with serve(daemon):
        yield daemon, uris


def make_cert(directory: str, name: str, common_name: str = "localhost") -> Tuple[str, str]:
    """A throwaway self-signed certificate (its own CA) and key for ``common_name``, made by openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not available")
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    command = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
               "-keyout", key, "-out", cert, "-days", "2", "-nodes", "-subj", "/CN=" + common_name,
               "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
               "-addext", "basicConstraints=critical,CA:TRUE",
               "-addext", "keyUsage=critical,digitalSignature,keyCertSign"]
    subprocess.run(command, check=True, capture_output=True, timeout=30)
    return cert, key


def bundle(path: str, *certs: str) -> str:
    """Concatenate certificate files into one CA bundle file at ``path``."""
    with open(path, "w") as out:
        for cert in certs:
            with open(cert) as src:
                out.write(src.read())
    return path
