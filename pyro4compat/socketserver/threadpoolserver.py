"""Thread pool transport (``SERVERTYPE="thread"``): calls run on worker threads, idle clients cost none.

Theory of operation
-------------------
Pyro4 gives every connection a worker for its whole life, so ``THREADPOOL_SIZE`` idle proxies
exhaust the server. Here a connection only holds a worker while it has work:

* **The loop thread** (whoever runs :meth:`SocketServer_Threadpool.loop`, or an external loop
  through :meth:`~SocketServer_Threadpool.events`) waits on the parking set (:mod:`._parking`:
  epoll on Linux, a selector elsewhere). It watches the listening
  socket, a waker socket pair and every *parked* connection, and never blocks on a client:
  ``accept`` and every receive are non-blocking. A new connection goes to a worker at once
  while workers are to spare (the worker lingers for its CONNECT, as for a next request),
  otherwise it is parked. When a parked connection is readable, the loop thread receives what
  is there into the connection's frame reader (:mod:`._receiving`, shared with the multiplex
  server) and hands the connection to a worker only once a whole message is in (its TLS
  handshake, non-blocking, advances the same way): a client that trickles its bytes costs
  buffer space, never a thread. At most ``PENDING_HANDSHAKES`` connections may be without a
  completed handshake; for each one more, the oldest is closed (logged once).
* **A connection is in exactly one place** at any time: parked, queued in the
  pool, or held by one worker. That is what keeps the calls of one connection strictly in order
  with never two of them in flight, and its reader touched by one thread at a time.
* **A worker** (:class:`ClientConnectionJob` ``__call__``) takes the next whole message from
  the reader, leaves it in ``conn._pyroReceived`` and calls ``daemon._handshake(conn)`` or
  ``daemon.handleRequest(conn)`` (the entry points on every server type), which reply with
  blocking sends bounded by ``COMMTIMEOUT``. Then it keeps the connection while a next whole
  message arrives within its linger window: ``LINGER_SECONDS`` when the pool has spare workers
  (a busy-poll first, see :mod:`.._busypoll`, then a wait), else none. On Linux a plain
  socket's wait is the receive itself: a blocking ``recv`` bounded by the socket's kernel
  receive timeout (``SO_RCVTIMEO``, which the kernel rounds up to its clock tick, so the
  window there is 1-4 ms), one system call where a ``poll`` and a ``recv`` make two.
  Elsewhere, and for TLS or a ``COMMTIMEOUT``, it is a poll, then a receive that never
  blocks. A partial message stays in the reader when the window closes (the
  window only grows, ``_REST_WAIT`` at a time, while a large message arrives at
  ``_STEADY_BYTES`` or more per receive). Otherwise it parks the connection again: on Linux it
  re-arms it in the epoll set itself, elsewhere it queues it for the loop thread with a wake
  byte (see :mod:`._parking` for why both are safe). An external loop is woken either way: its
  list of ``sockets`` lacks the parked connection. A client whose next call keeps missing the
  window stops being lingered for (1, 2, 4 ... 64 requests, reset by a caught one): on a server
  with many clients the window only cost a wake-up per call. A small request that arrives whole
  costs what it did before this design: one readiness wait, one receive.
* **Oversized requests** are answered on their header (see :mod:`._receiving`): the reply goes
  out before the body arrives, the body is then dropped as it comes or the connection closed.
* **Reconnecting clients**: a worker whose connection just ended, while it is the only busy
  one, busy-polls the listening socket for one spin (see :mod:`.._busypoll`) and accepts and
  serves the next connection itself (:meth:`SocketServer_Threadpool._take_over_accept`). A
  proxy per call then costs no wake-up of the loop thread and of a worker. Both may call
  ``accept`` for the same connection; the listener is non-blocking, so the loser gets nothing.
* **The pool** grows from ``THREADPOOL_SIZE_MIN`` to ``THREADPOOL_SIZE`` workers and workers above
  the minimum exit when idle (see :mod:`.threadpool` and :mod:`.._workers`); the server reads
  the pool's counts only through its methods, under the pool's lock except the two snapshots
  asked once per request (may a worker linger, may it spin). Requests of handshaken connections are
  queued when every worker is busy, never refused.
* **"no free workers"**: a *new* connection is refused (CONNECTFAIL with Pyro4's text
  ``"no free workers, increase server threadpool size"``) only when all ``THREADPOOL_SIZE``
  workers are busy and ``NEW_CONNECTION_BACKLOG`` (100) jobs are
  already queued without a worker: a burst of connects is absorbed, a saturated server says
  so instead of letting clients wait without bound. The
  refusal is written from the loop thread without blocking: it uses the CONNECT message if it
  has fully arrived, otherwise the connection is just closed.
* **Timeouts**: with ``COMMTIMEOUT`` set, a parked connection that received nothing for longer
  than that (idle, or stalled part-way through a message) is closed, as a Pyro4 worker blocked
  in ``recv`` would time out. **Housekeeping** runs on the
  :class:`Housekeeper` thread every ``min(POLLTIMEOUT, max(COMMTIMEOUT, 5))`` seconds.
* **Shutdown** may come from any thread, including a worker running a remote call.
  ``shutdown()`` closes the listening socket at once; while ``loop`` runs, open connections
  are served on for the grace (see ``_LoopGuard``): ``_open`` counts accepted connections
  until their ``_finish``, and the last one to finish wakes the loop. ``close()`` (directly,
  or when the grace ends) tears the rest down (parked connections, parking set, pool,
  housekeeper) by the last thread leaving ``loop``/``events``, or right away when none is
  inside. A busy worker finishes its request (its reply is still sent), then finds the server
  closed and closes its connection. No thread ever joins itself.

Locks: ``_lock`` guards ``_closed``, ``_inside``, ``_looping``, ``_open``, ``_unconnected``,
``_drain_until``, and is held around each park so teardown never misses a parked connection;
``_client_disconnect_lock`` serializes ``daemon._clientDisconnect`` calls, as in Pyro4.
"""

from __future__ import annotations, print_function

import errno
import logging
import os
import selectors
import socket
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from .. import errors, socketutil
from .._star import lazy_modules
from .._busypoll import quiet, spinner_for
from ..configuration import config
from . import (_LoopGuard, _close_listener, _housekeeping_interval, _listen, _poll_timeout, _prepare_accepted,
               _shutdown_grace, _Waker)
from ._connection_job import ClientConnectionJob, _client_disconnect_lock  # noqa: F401 (Pyro4 has the name here)
from ._parking import make_parking
from .threadpool import NoFreeWorkersError, Pool, PoolError

# Pyro4's module has no __all__, so its star-import also yields what it imported: the second line.
__all__ = ["SocketServer_Threadpool", "ClientConnectionJob", "Housekeeper",
           "NoFreeWorkersError", "Pool", "config", "errors", "log", "logging", "os", "print_function", "selectors",
           "socket", "socketutil", "sys", "threading", "time", "util"]
# ``util`` is a facade that the package's own modules do not import; bound when first asked for.
__getattr__ = lazy_modules(__name__, {"util": "pyro4compat.util"})

log = logging.getLogger("Pyro4.threadpoolserver")

LINGER_SECONDS = 0.001      # how long a worker with spare colleagues waits for a connection's next call
NEW_CONNECTION_BACKLOG = 100  # jobs queued without a worker before new connections are refused
DENIED_REASON = "no free workers, increase server threadpool size"
_ACCEPT_BATCH = 64          # connections accepted per readiness event, so clients get served in between
PENDING_HANDSHAKES = 1000   # connections without a completed handshake before the oldest is closed
_LISTENING = "listening"    # selector key data for the listening socket
_WAKING = "waking"          # ... and for the waker


class Housekeeper(threading.Thread):
    """Runs ``daemon._housekeeping()`` every ``min(POLLTIMEOUT, max(COMMTIMEOUT, 5))`` seconds."""

    def __init__(self, daemon: Any) -> None:
        super().__init__(name="housekeeper")
        self.pyroDaemon = daemon
        self.stop = threading.Event()
        self.daemon = True
        self.waittime = _housekeeping_interval()

    def run(self) -> None:
        while not self.stop.wait(self.waittime):
            try:
                self.pyroDaemon._housekeeping()
            except Exception as exc:
                log.warning("error during housekeeping: %s", exc)


class SocketServer_Threadpool(_LoopGuard):
    """Transport server for socket connections, worker thread pool version."""

    def __init__(self) -> None:
        self.daemon: Any = None
        self.sock: Any = None
        self.locationStr: Optional[str] = None
        self.pool: Optional[Pool] = None
        self.housekeeper: Optional[Housekeeper] = None
        self.shutting_down = False
        self._listener: Any = None
        self._tls: Any = None
        self._parking: Any = None       # where connections wait for their next bytes (see _parking)
        self._waker: Optional[_Waker] = None
        self._lock = threading.Lock()
        self._closed = False
        self._torn_down = False
        self._inside = 0
        self._looping = 0
        self._drain_until: Optional[float] = None
        self._open = 0          # connections accepted and not yet finished (guarded by _lock)
        self.grace = 0.0
        self._next_sweep = 0.0
        self._accept_spinner: Any = None   # the listener's busy-poll spinner: see _take_over_accept
        self._commtimeout = 0.0
        self._linger_window = LINGER_SECONDS   # what a lingering worker's wait is bounded by (see _linger)
        # connections accepted and not handshaken yet, oldest first (guarded by _lock): see _evict
        self._unconnected: Dict[ClientConnectionJob, None] = {}
        self._evicted = 0

    def init(self, daemon: Any, host: Optional[str], port: int, unixsocket: Optional[str] = None) -> None:
        log.info("starting thread pool socketserver")
        self.daemon = daemon
        self.grace = _shutdown_grace()
        self._commtimeout = config.COMMTIMEOUT or 0.0   # read once, as for the sockets' own timeouts
        self._listener, self.locationStr, self._tls = _listen(log, host, port, unixsocket)
        self.sock = self._listener
        self._accept_spinner = spinner_for(self._listener)
        try:
            self.pool = Pool(backlog=NEW_CONNECTION_BACKLOG)
            self._waker = _Waker()
            self._parking = make_parking(self._waker.wake)
            self._parking.watch_fixed(self._listener, _LISTENING)
            self._parking.watch_fixed(self._waker.reader, _WAKING)
        except BaseException:
            self.close()
            raise
        self.housekeeper = Housekeeper(daemon)
        self.housekeeper.start()

    def __del__(self) -> None:
        if getattr(self, "_listener", None) is not None and not self._closed:
            try:
                self.close()
            except Exception:
                pass

    def __repr__(self) -> str:
        workers = self.pool.num_workers() if self.pool is not None else 0
        return "<%s on %s; %d workers>" % (type(self).__name__, self.locationStr, workers)

    # --- the loop thread ------------------------------------------------------------------------

    def loop(self, loopCondition: Callable[[], bool] = lambda: True) -> None:
        log.debug("threadpool server requestloop")
        if not self._enter(looping=True):
            return
        try:
            while self._keep_looping(loopCondition):
                try:
                    self._run_once(self._turn_timeout(_poll_timeout()))
                except OSError as exc:
                    if self._closed or not loopCondition():
                        break       # our sockets went away during shutdown
                    log.warning("socket error '%s' with errno=%s, shouldn't happen", exc, exc.errno)
                except KeyboardInterrupt:
                    log.debug("stopping on break signal")
                    break
        finally:
            if self._drain_until is not None:
                self.close()        # the grace is over (or no connection is left)
            self._leave(looping=True)

    def events(self, eventsockets: Any) -> None:
        """One non-blocking pass over every ready socket of this server (for external event loops)."""
        if not self._enter():
            return
        try:
            self._run_once(0.0)
        finally:
            self._leave()

    def _run_once(self, timeout: Optional[float]) -> None:
        parking = self._parking
        if self._commtimeout:
            wait = max(self._next_sweep - time.monotonic(), 0.0)
            timeout = wait if timeout is None else min(timeout, wait)
        for data in parking.ready(timeout):     # (an evicted connection's late event is skipped there)
            if self._closed:
                return
            if data is _LISTENING:
                self._accept_ready()
            elif data is _WAKING:
                self._waker.drain()
                parking.adopt()  # parked after the pass began: its wake byte is gone now
            else:
                self._activate(data)
        if self._commtimeout:
            self._sweep_idle(self._commtimeout)

    def _accept_ready(self) -> None:
        listener = self._listener
        for _ in range(_ACCEPT_BATCH):
            if listener is None:
                return
            try:
                csock, caddr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if self._closed or self._listener is None:
                    return      # closed by shutdown() meanwhile
                if exc.errno in socketutil.ERRNO_BADF or exc.errno in socketutil.ERRNO_ENOTSOCK:
                    raise errors.ConnectionClosedError("server socket closed") from exc
                if exc.errno not in (errno.ECONNABORTED, errno.EPROTO):
                    log.warning("accept() failed '%s' with errno=%s, shouldn't happen", exc, exc.errno)
                return
            job = self._job_for(csock, caddr)
            if job is None:
                return
            if len(self._unconnected) > PENDING_HANDSHAKES:
                self._evict()
            if self._linger():
                self._activate(job, watched=False)   # a free worker waits briefly for its CONNECT
            else:
                self._register(job)

    def _job_for(self, csock: Any, caddr: Any) -> Optional[ClientConnectionJob]:
        """A freshly accepted socket as a job (None: closed again, the server is shutting down)."""
        if self.shutting_down:
            csock.close()
            return None
        log.debug("connected %s - %s", caddr, "SSL" if self._tls is not None else "unencrypted")
        try:
            _prepare_accepted(csock)
            if self._tls is not None:   # the TLS handshake runs non-blocking, as the client's bytes come
                csock = self._tls.wrap_socket(csock, server_side=True, do_handshake_on_connect=False)
                csock.setblocking(False)
        except (OSError, ValueError) as exc:
            log.warning("cannot serve new connection %s: %s", caddr, exc)
            csock.close()
            return None
        job = ClientConnectionJob(csock, caddr, self.daemon, self)
        with self._lock:
            self._open += 1
            self._unconnected[job] = None
        return job

    def _handshaken(self, job: ClientConnectionJob) -> None:
        with self._lock:
            self._unconnected.pop(job, None)

    def _evict(self) -> None:
        """Over ``PENDING_HANDSHAKES`` connections without a handshake: close the oldest parked one.

        Slow or silent connections pile up at the old end; a real client completes its
        handshake within a round trip, so it is hardly ever the oldest. Logged once per server.
        """
        with self._lock:
            oldest = next(iter(self._unconnected), None)
            if oldest is None:
                return
            del self._unconnected[oldest]
        self._evicted += 1
        if self._evicted == 1:
            log.warning("more than %d connections without a completed handshake: closing the oldest ones "
                        "(logged once)", PENDING_HANDSHAKES)
        oldest.evicted = True       # a worker holds it: closed when it comes back (see _register)
        if oldest.watched:
            self._parking.unwatch(oldest)
            oldest._finish()

    def _connection_ended(self, job: ClientConnectionJob) -> None:
        with self._lock:
            self._unconnected.pop(job, None)
            self._open -= 1
            last = self._open == 0 and self._drain_until is not None
        if last:
            self.wakeup()       # a draining loop may return now

    def _open_connections(self) -> int:
        return self._open

    def _stop_accepting(self) -> None:
        listener, self._listener, self.sock = self._listener, None, None
        if listener is not None:
            _close_listener(listener)

    def _register(self, job: ClientConnectionJob) -> None:
        if job.evicted and not job.connected:
            job._finish()
            return
        if not self._parking.watch(job):
            log.debug("cannot watch connection %s", job.caddr)
            job._finish()

    def _activate(self, job: ClientConnectionJob, watched: bool = True) -> None:
        """A parked connection became readable (or is new): receive what is there; a whole message
        goes to a worker (a new connection's may be refused), a partial one stays parked."""
        if watched:     # (an evicted one never gets here: eviction takes it out of the parking set)
            if job._receive() >= 0:     # (when the connection is over, ready holds why)
                job.ready = job._take()
                if job.ready is None:
                    self._register(job)  # still incomplete: its bytes wait in the reader, not in a thread
                    return
        try:
            if job.connected:
                self.pool.submit(job)
            else:
                self.pool.process(job)
        except NoFreeWorkersError:
            job.denyConnection(DENIED_REASON)
        except PoolError:
            job._finish()

    def _sweep_idle(self, commtimeout: float) -> None:
        """Close connections parked longer than COMMTIMEOUT (a Pyro4 worker's recv would time out)."""
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + max(commtimeout / 4.0, 0.05)
        expired = [job for job in self._parking.parked() if now - job.heard_at > commtimeout]
        for job in expired:
            log.warning("error during handleRequest: receiving: timeout (client %s)", job.caddr)
            self._parking.unwatch(job)
            job._finish()

    # --- called by workers ----------------------------------------------------------------------

    def _linger(self) -> float:
        """Workers may wait a little for a connection's next call while other work can still get a worker.

        That is while a worker is idle or the pool may still grow, and nothing is queued (a
        snapshot, read without the pool's lock: see :mod:`.._workers`).
        """
        pool = self.pool
        return LINGER_SECONDS if pool is not None and pool.spare_now() else 0.0

    def _may_spin(self) -> bool:
        """Busy-polling is welcome while one connection alone holds a worker (see _busypoll)."""
        pool = self.pool
        return quiet() and pool is not None and pool.busy_now() <= 1

    def _take_over_accept(self) -> Optional[ClientConnectionJob]:
        """A worker whose client just left busy-polls the listening socket and accepts the next one itself.

        Only while busy-polling is welcome (this worker alone is busy, nothing is queued). A
        client that reconnects right away (a proxy per call) then skips two wake-ups: the loop
        thread's and a worker's. The loop thread may accept the same connection first; then
        this ``accept`` finds nothing and the worker goes back to the pool.
        """
        listener = self._listener
        if listener is None or self._closed or not self._may_spin() or not self._linger():
            return None
        spinner = self._accept_spinner
        if spinner is None or not spinner.wait(self._may_spin):
            return None
        try:
            csock, caddr = listener.accept()
        except OSError:      # taken by the loop thread, or the listener was closed meanwhile
            return None
        return self._job_for(csock, caddr)

    def _park(self, job: ClientConnectionJob) -> None:
        """Have a connection watched again (from its worker): the loop thread takes it back when readable.

        An external loop (``events()``) may be blocked on a list of sockets without this one:
        it is woken to fetch ``sockets`` again.
        """
        job.heard_at = time.monotonic()
        with self._lock:
            parked = not self._closed and not (job.evicted and not job.connected) and self._parking.park(job)
        if not parked:
            job._finish()
        elif not self._looping:
            self._waker.wake()

    # --- lifecycle ------------------------------------------------------------------------------

    def _usable(self) -> bool:
        return self._parking is not None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            now = self._inside == 0
        self._stop_accepting()
        if now:
            self._teardown()
        elif self._waker is not None:
            self._waker.wake()

    def _teardown(self) -> None:
        """Release everything; runs once, in a thread that is not inside the loop."""
        with self._lock:
            if self._torn_down:
                return
            self._torn_down = True
            parked: List[ClientConnectionJob] = self._parking.close() if self._parking is not None else []
        for job in parked:
            job._finish()
        if self._waker is not None:
            self._waker.close()
        if self.pool is not None:
            self.pool.close()
        housekeeper, self.housekeeper = self.housekeeper, None
        if housekeeper is not None:
            housekeeper.stop.set()
            if housekeeper is not threading.current_thread():
                housekeeper.join()

    def wakeup(self) -> None:
        """Wake the loop thread so it notices shutdown or a changed loop condition."""
        if self._waker is not None and not self._torn_down:
            self._waker.wake()

    def serving_here(self) -> bool:
        """Is the calling thread a worker of this server, busy with a request?"""
        pool = self.pool
        return pool is not None and pool.is_busy(threading.current_thread())

    def combine_loop(self, server: Any) -> None:
        raise TypeError("You can't use the loop combiner on the threadpool server type")

    @property
    def sockets(self) -> List[Any]:
        """What an external loop waits on before calling events(): as in Pyro4, the listening socket
        alone while no connection is open.

        Then the parked connections (ours wait in the parking set, not in a worker each), and
        the waker only while a connection is out with the pool: a worker that parks it wakes an
        external loop, which must then fetch this list again. Order matters: the pool is asked
        first, and a job leaves the pool only after its connection is parked.
        """
        if self._listener is None or self._parking is None:
            return []
        out = self.pool is not None and self.pool.active() > 0
        out = out or self._parking.queued()
        connections = [job.csock.sock for job in self._parking.parked()]
        return [self._listener] + connections + ([self._waker.reader] if out else [])

    @property
    def selector(self) -> Any:
        raise TypeError("threadpool server doesn't have multiplexing selector")
