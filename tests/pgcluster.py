"""A private PostgreSQL cluster for the tests: initdb into a temporary directory, run, stop.

The server runs as an unprivileged user (PostgreSQL refuses root: when we are root it runs
as ``postgres``), listens on 127.0.0.1 on a free port (picked by binding a socket, retried
if someone takes it first) and on a Unix socket in its directory, trusts every local
connection, and is stopped through its own process handle. ``fsync=off`` by default: the tests kill
name servers and restart PostgreSQL cleanly, never the machine, so every committed
transaction is still in the WAL that the server reads back; fsync would only slow them
(the benchmark asks for ``fsync=True``).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import List, Optional

import pytest

READY_LINE = "database system is ready to accept connections"
STARTUP_TIMEOUT = 60.0
MISSING = ("PostgreSQL server binaries (initdb, postgres) not found under /usr/lib/postgresql/*/bin: "
           "install them with .ci/install-postgresql (Debian's 'postgresql' package)")


def find_bindir() -> Path:
    """The newest installed PostgreSQL's bin directory; fails the test run if there is none."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    if not found:
        pytest.fail(MISSING, pytrace=False)
    return Path(found[-1]).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PgCluster:
    """One ``postgres`` server process over a fresh data directory."""

    def __init__(self, fsync: bool = False) -> None:
        self.fsync = fsync
        self.bindir = find_bindir()
        self.user = "postgres" if os.geteuid() == 0 else None
        self.root = Path(tempfile.mkdtemp(prefix="pyro4compat-pg-"))
        self.data = self.root / "data"
        self.port = 0
        self.proc: Optional[subprocess.Popen] = None
        self._drain: Optional[threading.Thread] = None
        self.log: List[str] = []
        self._names = itertools.count(1)
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run([str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                   "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"])

    def _run(self, command: List[str]) -> None:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=120, user=self.user,
                              cwd=str(self.root))
        if proc.returncode != 0:
            pytest.fail("%s failed:\n%s%s" % (command[0], proc.stdout, proc.stderr), pytrace=False)

    def start(self) -> None:
        """Start the server (on a new free port the first time, on the same port after a stop)."""
        for _ in range(5):
            self.port = self.port or free_port()
            if self._start_once():
                return
            self.port = 0  # someone took the port in the meantime: pick another
        pytest.fail("PostgreSQL did not start:\n" + "\n".join(self.log[-30:]), pytrace=False)

    def _start_once(self) -> bool:
        command = [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
                   "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + str(self.root),
                   "-c", "fsync=" + ("on" if self.fsync else "off"), "-c", "max_connections=200",
                   "-c", "logging_collector=off"]
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, user=self.user, cwd=str(self.root))
        lines: "queue.Queue[Optional[str]]" = queue.Queue()

        def drain() -> None:  # also after startup: a full pipe would block the server
            for line in proc.stderr:  # type: ignore[union-attr]
                self.log.append(line.rstrip())
                lines.put(line)
            lines.put(None)

        self._drain = threading.Thread(target=drain, daemon=True)
        self._drain.start()
        self.proc = proc
        while True:
            line = lines.get(timeout=STARTUP_TIMEOUT)
            if line is None:
                self.stop()
                return False
            if READY_LINE in line:
                return True

    def stop(self) -> None:
        """Fast shutdown (SIGINT): clients are disconnected, committed work is kept."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        self._drain.join(10)  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(str(self.root), ignore_errors=True)

    def url(self, dbname: str = "postgres") -> str:
        return "postgresql://postgres@127.0.0.1:%d/%s" % (self.port, dbname)

    def create_database(self) -> str:
        """A new empty database; its URL."""
        import psycopg  # the test dependency; imported here so this module loads without it

        name = "test_%d" % next(self._names)
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE %s" % name)
        return self.url(name)
