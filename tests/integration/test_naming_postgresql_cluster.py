"""Several name-server processes on one PostgreSQL registry: sharing, races, SIGKILL, restarts, autoclean.

Name servers run as ``python -m pyro4compat.naming -s postgresql://...`` children (this
worktree's code first on ``PYTHONPATH``), clients are our proxies in threads.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List, Optional

import psycopg
import pytest
from procs import stop_process

from pyro4compat import constants, naming, socketutil
from pyro4compat._client.proxy import Proxy
from pyro4compat._naming_postgresql import _CLEAN_LOCK, _LOCK_SPACE
from pyro4compat.configuration import config
from pyro4compat.errors import NamingError
from pyro4compat.naming_storage import PostgresqlStorage

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[2]
URI_LINE = re.compile(r"^URI = (PYRO:Pyro\.NameServer@127\.0\.0\.1:\d+)$")


def child_env() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYRO_")}
    env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1",
               PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""))
    return env


class NameServerProcess:
    """``python -m pyro4compat.naming`` on 127.0.0.1, a free port, the given storage."""

    def __init__(self, storage: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pyro4compat.naming", "-n", "127.0.0.1", "-p", "0", "-x", "-s", storage],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=child_env(), cwd=str(ROOT / "tests"))
        self.output: "queue.Queue[Optional[str]]" = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        seen = []
        while True:
            line = self.output.get(timeout=30)
            if line is None:
                self.stop()
                pytest.fail("name server exited:\n" + "\n".join(seen))
            seen.append(line)
            match = URI_LINE.match(line)
            if match:
                self.uri = match.group(1)
                return

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.output.put(line.rstrip("\n"))
        self.output.put(None)

    def proxy(self) -> Proxy:
        return Proxy(self.uri)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        stop_process(self.proc)
        self.reader.join(10)
        self.proc.stdout.close()  # type: ignore[union-attr]


@pytest.fixture
def name_servers(pg_url):
    """Factory: ``name_servers(n)`` starts n name-server processes on the test's database."""
    started: List[NameServerProcess] = []

    def start(count: int) -> List[NameServerProcess]:
        with ThreadPoolExecutor(count) as pool:  # started together: they race to create the schema
            servers = list(pool.map(lambda _: NameServerProcess(pg_url), range(count)))
        started.extend(servers)
        return servers

    yield start
    for server in started:
        server.stop()


def test_three_name_server_processes_share_one_registry(name_servers):
    a, b, c = name_servers(3)
    with a.proxy() as ns_a, b.proxy() as ns_b, c.proxy() as ns_c:
        ns_a.register("shared.thing", "PYRO:thing@127.0.0.1:5555", metadata=["kind:thing"])
        for ns in (ns_b, ns_c):
            assert ns.lookup("shared.thing").asString() == "PYRO:thing@127.0.0.1:5555"
            assert ns.list(metadata_any=["kind:thing"]) == {"shared.thing": "PYRO:thing@127.0.0.1:5555"}
            assert ns.count() == 2  # shared.thing and one Pyro.NameServer
        for server, ns in ((a, ns_a), (b, ns_b), (c, ns_c)):  # each names itself
            assert ns.lookup(constants.NAMESERVER_NAME).asString() == server.uri
        assert ns_c.remove("shared.thing") == 1
        for ns in (ns_a, ns_b):
            with pytest.raises(NamingError, match="unknown name: shared.thing"):
                ns.lookup("shared.thing")


def test_two_name_servers_1000_concurrent_safe_registrations(name_servers):
    servers = name_servers(2)
    names = ["race.%04d" % i for i in range(1000)]
    outcomes: Dict[str, List[str]] = {name: [] for name in names}
    errors: List[BaseException] = []
    threads_per_server = 6

    def worker(server: NameServerProcess, tag: str, part: int) -> None:
        try:
            with server.proxy() as ns:
                for name in names[part::threads_per_server]:
                    try:
                        ns.register(name, "PYRO:%s@127.0.0.1:1" % tag, safe=True)
                        outcomes[name].append(tag)
                    except NamingError as exc:
                        assert str(exc) == "name already registered: " + name
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(server, "ns%d" % n, part))
               for n, server in enumerate(servers) for part in range(threads_per_server)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert all(len(winners) == 1 for winners in outcomes.values())  # none lost, none twice
    with servers[1].proxy() as ns:
        listed = ns.list(prefix="race.")
    assert listed == {name: "PYRO:%s@127.0.0.1:1" % winners[0] for name, winners in outcomes.items()}


def test_acknowledged_registration_survives_sigkill(name_servers, pg_url):
    first, = name_servers(1)
    acknowledged = []
    with first.proxy() as ns:
        for i in range(25):
            ns.register("durable.%d" % i, "PYRO:d%d@127.0.0.1:1" % i)
            acknowledged.append("durable.%d" % i)
        first.kill()
    assert first.proc.returncode == -signal.SIGKILL
    second, = name_servers(1)
    with second.proxy() as ns:
        assert sorted(ns.list(prefix="durable.")) == sorted(acknowledged)


class Load:
    """Threads registering and looking up names through one name server, until stopped."""

    def __init__(self, uri: str, threads: int) -> None:
        self.uri = uri
        self.acknowledged: List[str] = []
        self.failures: List[tuple] = []  # (seconds the failed call took, message)
        self.changed = threading.Condition()
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(n,)) for n in range(threads)]
        for thread in self.threads:
            thread.start()

    def run(self, worker: int) -> None:
        with Proxy(self.uri) as ns:
            i = 0
            while not self.stopped.is_set():
                name, started = "load.%d.%d" % (worker, i), time.monotonic()
                i += 1
                try:
                    ns.register(name, "PYRO:x@127.0.0.1:1")
                    outcome = self.acknowledged, name
                    ns.lookup(name)
                except NamingError as exc:
                    outcome = self.failures, (time.monotonic() - started, str(exc))
                with self.changed:
                    outcome[0].append(outcome[1])
                    self.changed.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout)

    def stop(self) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(30)


def test_postgresql_restart_under_load(name_servers, pg_cluster):
    server, = name_servers(1)
    load = Load(server.uri, 3)
    try:
        assert load.wait_for(lambda: len(load.acknowledged) >= 30, 20)
        pg_cluster.stop()
        assert load.wait_for(lambda: len(load.failures) >= 10, 10), "no failures while PostgreSQL was down"
        pg_cluster.start()
        resumed = len(load.acknowledged)
        assert load.wait_for(lambda: len(load.acknowledged) >= resumed + 30, 15), "no full service after restart"
    finally:
        load.stop()
        if pg_cluster.proc is None:
            pg_cluster.start()
    for seconds, message in load.failures:
        assert message.startswith("postgresql storage postgresql://postgres@127.0.0.1:%d/" % pg_cluster.port)
        assert seconds < 2.0
    with server.proxy() as ns:
        registered = ns.list(prefix="load.")
    assert set(load.acknowledged) <= set(registered)


# --- autoclean with several name servers -----------------------------------------------------------

@pytest.fixture
def two_cleaners(pg_url):
    config.NS_AUTOCLEAN = 3.0
    servers = [naming.NameServer(PostgresqlStorage(pg_url)) for _ in range(2)]
    cleaners = [naming.AutoCleaner(server) for server in servers]
    for cleaner in cleaners:
        cleaner.max_unreachable_time = 0.0
    yield servers, cleaners
    for server in servers:
        server.storage.close()


def test_autoclean_one_name_server_at_a_time(two_cleaners):
    (a, b), (cleaner_a, cleaner_b) = two_cleaners
    dead = "PYRO:dead@127.0.0.1:%d" % socketutil.findProbablyUnusedPort()
    a.register("dead.one", dead)
    with a.storage.cleaning() as remove:  # A is in the middle of a round
        assert remove is not None
        cleaner_b.clean_once()
        assert "dead.one" in b.list()  # B skipped its round
        with b.storage.cleaning() as other:
            assert other is None
    cleaner_b.clean_once()
    assert a.list() == {}


def test_autoclean_keeps_a_fresh_registration(two_cleaners):
    (a, b), _ = two_cleaners
    a.register("moved", "PYRO:old@127.0.0.1:1")
    with a.storage.cleaning() as remove:
        b.register("moved", "PYRO:new@127.0.0.1:2")  # re-registered since it was probed
        assert remove({"moved": "PYRO:old@127.0.0.1:1"}) == 0
    assert a.lookup("moved").asString() == "PYRO:new@127.0.0.1:2"


DIES_MID_CLEAN = textwrap.dedent("""
    import sys, time
    from pyro4compat.naming_storage import PostgresqlStorage
    storage = PostgresqlStorage(sys.argv[1])
    with storage.cleaning() as remove:
        print("REMOVED", remove({"stale.%d" % i: "PYRO:s@127.0.0.1:1" for i in range(10)}), flush=True)
        time.sleep(60)  # killed here, before the round commits
""")


def test_name_server_dying_mid_clean_leaves_nothing_half_done(pg_url):
    storage = PostgresqlStorage(pg_url)
    try:
        for i in range(10):
            storage["stale.%d" % i] = ("PYRO:s@127.0.0.1:1", None)
        proc = subprocess.Popen([sys.executable, "-c", DIES_MID_CLEAN, pg_url], stdout=subprocess.PIPE, text=True,
                                env=child_env(), cwd=str(ROOT))
        try:
            assert proc.stdout.readline().split() == ["REMOVED", "10"]  # type: ignore[union-attr]
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            stop_process(proc)
            proc.stdout.close()  # type: ignore[union-attr]
        assert len(storage) == 10
        with psycopg.connect(pg_url) as conn:  # its lock is released once its backend has seen it go
            conn.execute("SET lock_timeout = '10s'")
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_SPACE, _CLEAN_LOCK))
        with storage.cleaning() as remove:
            assert remove is not None
    finally:
        storage.close()


def test_clients_listing_three_name_servers_ride_out_a_sigkill(name_servers):
    """Issue 21's failover case: clients resolve through NS_HOST listing all three; A dies mid-run.

    No client may go without a successful lookup for longer than one COMMTIMEOUT, and
    lookups through the survivors see what was registered through A.
    """
    from pyro4compat._client import resolve

    commtimeout = 5.0
    a, b, c = name_servers(3)
    with a.proxy() as ns_a:
        for number in range(5):
            ns_a.register("svc.%d" % number, "PYRO:svc%d@127.0.0.1:%d" % (number, 6000 + number))
    config.COMMTIMEOUT = commtimeout
    config.NS_HOST = ",".join(server.uri.rpartition("@")[2] for server in (a, b, c))
    resolve.failed_hosts.clear()
    killed = threading.Event()
    successes_after_kill = threading.Semaphore(0)
    longest_gaps: List[float] = []
    failures: List[str] = []

    def client(number: int) -> None:
        last_success = time.monotonic()
        longest = 0.0
        deadline = last_success + 60
        after_kill = 0
        while after_kill < 20 and time.monotonic() < deadline:
            try:
                uri = resolve._resolve("PYRONAME:svc.%d" % (number % 5))
            except NamingError as exc:
                failures.append(str(exc))
                continue
            assert uri.port == 6000 + number % 5
            now = time.monotonic()
            longest = max(longest, now - last_success)
            last_success = now
            if killed.is_set():
                after_kill += 1
                successes_after_kill.release()
        longest_gaps.append(longest)

    try:
        threads = [threading.Thread(target=client, args=(number,)) for number in range(4)]
        for thread in threads:
            thread.start()
        a.kill()
        killed.set()
        for thread in threads:
            thread.join(70)
        assert not any(thread.is_alive() for thread in threads)
    finally:
        resolve.failed_hosts.clear()
    assert len(longest_gaps) == 4, failures
    assert max(longest_gaps) < commtimeout, (longest_gaps, failures[:3])
    assert successes_after_kill.acquire(blocking=False)
