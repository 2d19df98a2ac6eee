"""A benchmark child process: one library, one role (``server`` or ``client``).

Run as ``python worker.py LIBRARY ROLE '<json options>'`` where LIBRARY is ``Pyro4`` or
``pyro4compat``. The orchestrator (``run.py``) starts real Pyro4 with a clean environment
and ours with ``PYTHONPATH=<repo>``, so the two libraries never share a process.

Both roles talk JSON lines: replies go to the original stdout (``sys.stdout`` is pointed at
stderr so nothing else can corrupt the channel), requests come on stdin.

* server: prints ``{"location", "ns_uri", "pid"}`` once listening, serves ``bench`` (and a
  name server unless ``ns`` is false; ``THREADPOOL_SIZE`` from ``threadpool_size`` if given)
  until stdin closes, answering each line it reads with its own CPU time (``getrusage``), then
  dumps a cProfile of every server thread to ``profile`` if that option was given.
* client: for each request line (a workload job, see ``workloads.py``) runs the workload and
  answers its result plus the client and server CPU seconds it took; ``profile`` in a job
  writes that run's cProfile there.
"""

from __future__ import annotations

import cProfile
import importlib
import json
import os
import pstats
import resource
import sys
import threading
import time
import traceback
import warnings
from typing import Any, Dict, List, Optional

import service

CHANNEL = os.fdopen(os.dup(1), "w", buffering=1)
sys.stdout = sys.stderr


def send(message: Dict[str, Any]) -> None:
    CHANNEL.write(json.dumps(message) + "\n")
    CHANNEL.flush()


def raise_fd_limit() -> None:
    """1,000 connections need more than the usual 1,024 descriptors on some systems."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def load_library(name: str) -> Any:
    if name == "Pyro4":
        warnings.simplefilter("ignore")  # Pyro4 4.82 is not warning-clean on new Pythons
    library = importlib.import_module(name)
    importlib.import_module(name + ".naming")  # like Pyro4, the package does not import it itself
    other = "pyro4compat" if name == "Pyro4" else "Pyro4"
    assert other not in sys.modules, "%s leaked into the %s process" % (other, name)
    return library


class ThreadProfiles:
    """One cProfile per thread (threads started after ``start``), merged at the end."""

    def __init__(self) -> None:
        self.profiles: List[cProfile.Profile] = []
        self.lock = threading.Lock()

    def _hook(self, *args: Any) -> None:
        sys.setprofile(None)  # this thread's hook is done: the profiler takes over
        profile = cProfile.Profile()
        with self.lock:
            self.profiles.append(profile)
        profile.enable()

    def start(self) -> None:
        threading.setprofile(self._hook)

    def dump(self, path: str) -> None:
        merged: Optional[pstats.Stats] = None
        for profile in self.profiles:
            profile.disable()
            try:
                profile.create_stats()
            except Exception:
                continue
            if not profile.stats:  # type: ignore[attr-defined]
                continue
            if merged is None:
                merged = pstats.Stats(profile)
            else:
                merged.add(profile)
        if merged is not None:
            merged.dump_stats(path)


def serve(pyro: Any, options: Dict[str, Any]) -> None:
    profiles = ThreadProfiles() if options.get("profile") else None
    if profiles:
        profiles.start()
    pyro.config.SERVERTYPE = options["servertype"]
    if options.get("threadpool_size"):
        pyro.config.THREADPOOL_SIZE = options["threadpool_size"]
    pyro.config.SERIALIZERS_ACCEPTED = {"serpent", "marshal", "json", "pickle"}
    daemon = pyro.Daemon(host="127.0.0.1", port=0)
    daemon.register(service.build(pyro)(), "bench")
    loops = [threading.Thread(target=daemon.requestLoop, daemon=True)]
    ns_uri = None
    if options.get("ns", True):
        uri, ns_daemon, _ = pyro.naming.startNS(host="127.0.0.1", port=0, enableBroadcast=False)
        ns_uri = str(uri)
        loops.append(threading.Thread(target=ns_daemon.requestLoop, daemon=True))
    for loop in loops:
        loop.start()
    send({"location": daemon.locationStr, "ns_uri": ns_uri, "pid": os.getpid()})
    for _ in sys.stdin:  # until the orchestrator closes our stdin; any line asks for our CPU time
        send(own_cpu())
    if profiles:
        profiles.dump(options["profile"])
    send({"stopped": True})
    os._exit(0)  # no orderly shutdown: some proxies may still be connected, nothing to save


def own_cpu() -> Dict[str, float]:
    """This process's user + system CPU seconds (``getrusage``), with the wall clock of the reading."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu": usage.ru_utime + usage.ru_stime, "time": time.time(),
            "nvcsw": usage.ru_nvcsw, "nivcsw": usage.ru_nivcsw}


def cpu_of(pid: Optional[int]) -> Optional[float]:
    """User + system CPU seconds of ``pid`` (Linux ``/proc``), None elsewhere."""
    if not pid:
        return None
    try:
        with open("/proc/%d/stat" % pid) as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def run_job(pyro: Any, job: Dict[str, Any]) -> Dict[str, Any]:
    import connections
    import workloads
    table = dict(workloads.WORKLOADS, connections=connections.connections)
    pyro.config.SERIALIZER = job["serializer"]
    server_before, client_before = cpu_of(job.get("server_pid")), time.process_time()
    profile = cProfile.Profile() if job.get("profile") else None
    if profile:
        profile.enable()
    result = table[job["figure"]](pyro, job)
    if profile:
        profile.disable()
        profile.dump_stats(job["profile"])
    client_cpu, server_after = time.process_time() - client_before, cpu_of(job.get("server_pid"))
    result["client_cpu"] = client_cpu
    result["server_cpu"] = None if server_before is None or server_after is None else server_after - server_before
    return result


def client(pyro: Any) -> None:
    send({"ready": True, "pid": os.getpid()})
    for line in sys.stdin:
        job = json.loads(line)
        try:
            send(run_job(pyro, job))
        except Exception:
            send({"error": traceback.format_exc()})


def main() -> None:
    name, role = sys.argv[1], sys.argv[2]
    options = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    raise_fd_limit()
    pyro = load_library(name)
    if role == "server":
        serve(pyro, options)
    else:
        client(pyro)


if __name__ == "__main__":
    main()
