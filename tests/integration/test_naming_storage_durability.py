"""``SqlStorage`` keeps every acknowledged registration: across SIGKILL, threads and processes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from pyro4compat.naming_storage import SqlStorage

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]

# Registers names one by one, printing "ACK <i>" only after the storage call returned.
WRITER = textwrap.dedent("""
    import sys
    from pyro4compat.naming_storage import SqlStorage

    path, tag, start, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    print("READY", flush=True)
    if sys.stdin.readline().strip() != "GO":
        sys.exit(3)
    store = SqlStorage(path)  # after GO: two writers may race to create the schema
    for i in range(start, start + count):
        store["%s.%06d" % (tag, i)] = ("PYRO:obj%d@localhost:%d" % (i, 1024 + i % 1000), {tag, "n%d" % (i % 3)})
        store["shared.%d" % (i % 5)] = ("PYRO:%s@localhost:%d" % (tag, i), {"writer:" + tag})
        print("ACK", i, flush=True)
    store.close()
    print("DONE", flush=True)
""")


def start_writer(path: Path, tag: str, start: int, count: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), tag, str(start), str(count)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=str(ROOT),
    )
    assert proc.stdout.readline().strip() == "READY"
    return proc


def expected_entry(tag: str, i: int):
    return "PYRO:obj%d@localhost:%d" % (i, 1024 + i % 1000), {tag, "n%d" % (i % 3)}


def check_consistent(path: Path) -> dict:
    """Integrity check of the file, then everything it holds."""
    conn = sqlite3.connect(str(path))
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()
    store = SqlStorage(str(path))
    try:
        return store.everything(return_metadata=True)
    finally:
        store.close()


def check_shared(contents: dict) -> None:
    """Each overwritten name carries the URI and metadata of one and the same write."""
    for i in range(5):
        if "shared.%d" % i in contents:
            uri, tags = contents["shared.%d" % i]
            writer = uri.split(":")[1].split("@")[0]
            assert tags == {"writer:" + writer}


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("acks_before_kill", [1, 17, 60])
def test_acknowledged_registrations_survive_sigkill(tmp_path, acks_before_kill):
    path = tmp_path / "ns.sqlite"
    acknowledged = []
    for round_number in range(2):  # the second round starts from a killed writer's file
        start = round_number * 100000
        proc = start_writer(path, "w", start, 100000)
        try:
            proc.stdin.write("GO\n")
            proc.stdin.flush()
            while len(acknowledged) < (round_number + 1) * acks_before_kill:
                word, number = proc.stdout.readline().split()
                assert word == "ACK"
                acknowledged.append(int(number))
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(timeout=30)
            proc.stdin.close()
            proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        contents = check_consistent(path)
        for i in acknowledged:
            assert contents["w.%06d" % i] == expected_entry("w", i)
        check_shared(contents)


def test_concurrent_threads_lose_nothing(tmp_path):
    store = SqlStorage(str(tmp_path / "ns.sqlite"))
    writers, per_writer = 6, 30
    barrier = threading.Barrier(writers + 1)
    failures = []
    stop_reading = threading.Event()

    def write(tag: str) -> None:
        try:
            barrier.wait(timeout=10)
            for i in range(per_writer):
                store["%s.%06d" % (tag, i)] = expected_entry(tag, i)
                assert store["%s.%06d" % (tag, i)] == expected_entry(tag, i)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    def read() -> None:
        try:
            barrier.wait(timeout=10)
            while not stop_reading.is_set():
                for name, (uri, tags) in store.everything(return_metadata=True).items():
                    tag, number = name.split(".")
                    assert (uri, tags) == expected_entry(tag, int(number))
                store.optimized_prefix_list("t1.", return_metadata=True)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write, args=("t%d" % k,)) for k in range(writers)]
    threads.append(threading.Thread(target=read))
    for thread in threads:
        thread.start()
    try:
        for thread in threads[:-1]:
            thread.join(timeout=40)
    finally:
        stop_reading.set()
        threads[-1].join(timeout=10)
    store.close()
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    contents = check_consistent(tmp_path / "ns.sqlite")
    assert len(contents) == writers * per_writer
    for k in range(writers):
        for i in range(per_writer):
            assert contents["t%d.%06d" % (k, i)] == expected_entry("t%d" % k, i)


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path = tmp_path / "ns.sqlite"
    SqlStorage(str(path)).close()  # schema in place; the writers also race to create it otherwise
    count = 60
    procs = [start_writer(path, tag, 0, count) for tag in ("p0", "p1")]
    try:
        for proc in procs:
            proc.stdin.write("GO\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=40)[0] for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=30)
    assert [proc.returncode for proc in procs] == [0, 0]
    assert all(output.splitlines()[-1] == "DONE" for output in outputs)
    contents = check_consistent(path)
    assert len(contents) == 2 * count + 5
    for tag in ("p0", "p1"):
        for i in range(count):
            assert contents["%s.%06d" % (tag, i)] == expected_entry(tag, i)
    check_shared(contents)


def test_two_processes_creating_the_schema_at_once(tmp_path):
    path = tmp_path / "fresh.sqlite"
    procs = [start_writer(path, tag, 0, 5) for tag in ("q0", "q1")]
    try:
        for proc in procs:
            proc.stdin.write("GO\n")
            proc.stdin.flush()
        for proc in procs:
            proc.communicate(timeout=40)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=30)
    assert [proc.returncode for proc in procs] == [0, 0]
    assert len(check_consistent(path)) == 2 * 5 + 5
