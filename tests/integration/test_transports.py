"""The transport servers over loopback, driven by a small fake daemon that implements the contract.

The fake daemon answers CONNECT with CONNECTOK and echoes INVOKE payloads back as RESULT;
payloads starting with ``wait:`` block until the test opens that gate, ``shutdown`` stops the
server from inside the handler. Nothing here sleeps to synchronise: tests wait on events,
thread joins, or (for counters owned by the server) a bounded condition poll.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional

import pytest

from pyro4compat import _protocol as proto
from pyro4compat._server import dispatch
from pyro4compat import socketutil
from pyro4compat.configuration import config
from pyro4compat.errors import ConnectionClosedError
from pyro4compat.message import Message
from pyro4compat.socketserver.existingconnectionserver import SocketServer_ExistingConnection
from pyro4compat.socketserver.multiplexserver import SocketServer_Multiplex
from pyro4compat.socketserver.threadpool import NoFreeWorkersError, Pool
from pyro4compat.socketserver import threadpoolserver
from pyro4compat.socketserver.threadpoolserver import DENIED_REASON, SocketServer_Threadpool

SERVERS = {"thread": SocketServer_Threadpool, "multiplex": SocketServer_Multiplex}
SER = 3     # serializer id in our test messages (the fake daemon never deserializes)


# --- the fake daemon ------------------------------------------------------------------------------

class FakeDaemon(object):
    """Implements the daemon side of the transport contract with raw ``Message`` objects."""

    def __init__(self, hmac_key: Optional[bytes] = None) -> None:
        self._pyroHmacKey = hmac_key
        self._shutting_down = False
        self.server: Any = None
        self.lock = threading.Lock()
        self.gates: Dict[bytes, threading.Event] = {}
        self.entered: Dict[bytes, threading.Event] = {}
        self.disconnects: List[Any] = []
        self.handshaken: List[Any] = []
        self.housekeeping_runs = 0
        self.handler_threads: set = set()

    def gate(self, name: bytes) -> threading.Event:
        self.entered[name] = threading.Event()
        self.gates[name] = threading.Event()
        return self.gates[name]

    def _reply(self, conn: Any, msg_type: int, payload: bytes, seq: int) -> None:
        conn.send(Message(msg_type, payload, SER, 0, seq, hmac_key=self._pyroHmacKey).to_bytes())

    def _handshake(self, conn: Any, denied_reason: Optional[str] = None) -> bool:
        try:
            msg = Message.recv(conn, [proto.MSG_CONNECT], hmac_key=self._pyroHmacKey)
        except ConnectionClosedError:
            return False
        except Exception as exc:
            self._reply(conn, proto.MSG_CONNECTFAIL, str(exc).encode(), 0)
            return False
        if denied_reason:
            self._reply(conn, proto.MSG_CONNECTFAIL, denied_reason.encode(), msg.seq)
            return False
        return self._handshake_message(conn, msg)

    def _handshake_message(self, conn: Any, msg: Message) -> bool:
        if msg.data == b"refuse":
            self._reply(conn, proto.MSG_CONNECTFAIL, b"refused", msg.seq)
            return False
        with self.lock:
            self.handshaken.append(conn)
        self._reply(conn, proto.MSG_CONNECTOK, b"hello", msg.seq)
        return True

    def handleRequest(self, conn: Any) -> None:
        self._handle_message(conn, Message.recv(conn, [proto.MSG_INVOKE, proto.MSG_PING],
                                                hmac_key=self._pyroHmacKey))

    def _handle_message(self, conn: Any, msg: Message) -> None:
        self.handler_threads.add(threading.current_thread().name)
        if msg.data[:5] == b"refs:":
            self._reply(conn, proto.MSG_RESULT, self._payload_holders(msg), msg.seq)
            return
        data = bytes(msg.data)
        if data.startswith(b"wait:"):
            self.entered[data[5:]].set()
            assert self.gates[data[5:]].wait(10)
        elif data == b"shutdown":
            self.server.shutdown()
        self._reply(conn, proto.MSG_RESULT, data, msg.seq)

    @staticmethod
    def _payload_holders(msg: Message) -> bytes:
        """Drop ``msg.data`` as the real dispatch does; b"alone" if nothing else holds the payload."""
        payload = msg.data
        msg.data = b""
        unshared = bytes(bytearray(payload))
        return b"alone" if sys.getrefcount(payload) == sys.getrefcount(unshared) else b"held elsewhere"

    def _clientDisconnect(self, conn: Any) -> None:
        with self.lock:
            self.disconnects.append(conn)

    def _housekeeping(self) -> None:
        self.housekeeping_runs += 1


# --- clients ----------------------------------------------------------------------------------------

def wire(msg_type: int, payload: bytes, seq: int = 0, hmac_key: Optional[bytes] = None) -> bytes:
    return Message(msg_type, payload, SER, 0, seq, hmac_key=hmac_key).to_bytes()


class Client(object):
    """A minimal Pyro-speaking client socket."""

    def __init__(self, address: Any, hmac_key: Optional[bytes] = None, sock: Any = None) -> None:
        given = sock is not None
        if sock is None:
            family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(10)
            sock.connect(address)
        # A socket handed in stays the caller's: dropping this Client must not close it (an
        # early EOF would race the test's own shutdown).
        self.sock = sock
        self.conn = socketutil.SocketConnection(sock, keep_open=given)
        self.hmac_key = hmac_key
        self.seq = 0

    def connect(self, payload: bytes = b"hi") -> Message:
        self.conn.send(wire(proto.MSG_CONNECT, payload, 0, self.hmac_key))
        return self.receive()

    def receive(self) -> Message:
        return Message.recv(self.conn, hmac_key=self.hmac_key)

    def send_call(self, payload: bytes) -> int:
        self.seq = (self.seq + 1) & 0xFFFF
        self.conn.send(wire(proto.MSG_INVOKE, payload, self.seq, self.hmac_key))
        return self.seq

    def call(self, payload: bytes) -> bytes:
        seq = self.send_call(payload)
        reply = self.receive()
        assert (reply.type, reply.seq) == (proto.MSG_RESULT, seq)
        return reply.data

    def at_eof(self) -> bool:
        """True when the server closed the connection (waits up to the socket timeout)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


# --- helpers ----------------------------------------------------------------------------------------

def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Wait until ``predicate()`` holds (for state owned by server threads); False on timeout."""
    deadline = time.monotonic() + timeout
    nudge = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            return False
        nudge.wait(0.005)
    return True


def join_server_threads(timeout: float = 10.0) -> None:
    for thread in threading.enumerate():
        if thread.name.startswith("Pyro-Worker") or thread.name in ("housekeeper", "transport-loop"):
            thread.join(timeout)
            assert not thread.is_alive(), thread.name


class Running(object):
    """A transport server with a fake daemon, its loop in a thread."""

    def __init__(self, kind: str, unixsocket: Optional[str] = None, hmac_key: Optional[bytes] = None) -> None:
        self.daemon = FakeDaemon(hmac_key)
        self.server = SERVERS[kind]()
        self.daemon.server = self.server
        self.server.init(self.daemon, "localhost", 0, unixsocket)
        self.address = unixsocket or self.server.sock.getsockname()
        self.thread = threading.Thread(target=self.server.loop, name="transport-loop", daemon=True)
        self.thread.start()

    def client(self, handshake: bool = True) -> Client:
        client = Client(self.address, self.daemon._pyroHmacKey)
        if handshake:
            assert client.connect().type == proto.MSG_CONNECTOK
        return client

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)
        assert not self.thread.is_alive()


def own_thread_count() -> int:
    """Threads apart from the oneway and futures pools, whose idle threads leave on their own
    timer (one left over from an earlier test may end in the middle of this one)."""
    pools = (dispatch.ONEWAY_THREAD_NAME, "pyro4compat-")  # the pools' threads: pyro4compat-oneway-N, ...
    return sum(1 for thread in threading.enumerate() if not thread.name.startswith(pools))


@pytest.fixture
def baseline():
    """Threads and fds before the test; checks they are back to that level at the end."""
    join_server_threads()
    before = (own_thread_count(), fd_count())
    yield before
    join_server_threads()
    assert (own_thread_count(), fd_count()) == before


@pytest.fixture
def small_pool():
    config.THREADPOOL_SIZE = 8
    config.THREADPOOL_SIZE_MIN = 2


# --- behaviour common to both server types -----------------------------------------------------------

@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", sorted(SERVERS))
@pytest.mark.parametrize("family", ["tcp", "unix"])
def test_concurrent_clients_get_their_own_replies_in_order(kind, family, tmp_path, baseline, small_pool):
    running = Running(kind, str(tmp_path / "sock") if family == "unix" else None)
    failures: List[BaseException] = []

    def client_session(number: int) -> None:
        try:
            client = running.client()
            for index in range(40):
                seq = client.send_call(b"%d-%d" % (number, index))
                if index % 3 == 0:          # sometimes pipeline a second call before reading
                    seq2 = client.send_call(b"%d-%d+" % (number, index))
                    assert (client.receive().seq, client.receive().seq) == (seq, seq2)
                    continue
                reply = client.receive()
                assert (reply.seq, reply.data) == (seq, b"%d-%d" % (number, index))
            client.close()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=client_session, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert not failures
    assert wait_for(lambda: len(running.daemon.disconnects) == 16)
    running.stop()
    if family == "unix":
        assert not os.path.exists(running.address)      # the socket file is removed on close


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", sorted(SERVERS))
@pytest.mark.parametrize("size", [100, 3 << 20])
def test_request_payload_is_held_only_by_its_message(kind, size, baseline):
    # Once the daemon drops msg.data (after decoding), a multi-megabyte payload must be free to
    # go before the call runs and its reply is built: a copy kept alive elsewhere raises the peak
    # past glibc's trim threshold and every later large message pays page faults again.
    running = Running(kind)
    try:
        client = running.client()
        assert client.call(b"refs:" + b"x" * size) == b"alone"
        client.close()
    finally:
        running.stop()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_silent_client_does_not_block_accepting(kind, baseline):
    config.THREADPOOL_SIZE = config.THREADPOOL_SIZE_MIN = 1
    running = Running(kind)
    silent = [running.client(handshake=False) for _ in range(3)]
    talker = running.client()
    assert talker.call(b"ping") == b"ping"
    for client in silent + [talker]:
        client.close()
    running.stop()
    # only the handshaken client is reported; a worker may still be finishing it after stop()
    assert wait_for(lambda: len(running.daemon.disconnects) >= 1)
    assert len(running.daemon.disconnects) == 1


@pytest.mark.timeout(20)
def test_multiplex_serves_its_clients_between_the_accepts_of_a_burst(baseline):
    # One accept per turn of the loop: a burst of connects waits its turn behind the requests
    # that are ready, and every connection of the burst still gets accepted and served.
    running = Running("multiplex")
    talker = running.client()
    seq = talker.send_call(b"first")
    burst = [Client(running.address) for _ in range(40)]  # connected, not yet accepted
    reply = talker.receive()
    assert (reply.seq, reply.data) == (seq, b"first")
    for index, client in enumerate(burst):
        assert client.connect().type == proto.MSG_CONNECTOK
        assert client.call(b"%d" % index) == b"%d" % index
    for client in burst + [talker]:
        client.close()
    assert wait_for(lambda: len(running.daemon.disconnects) == 41)
    running.stop()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_slow_sender_does_not_hold_up_other_clients(kind, baseline):
    running = Running(kind)
    slow = running.client(handshake=False)
    message = wire(proto.MSG_CONNECT, b"x" * 30)
    others_done = threading.Event()
    sent = [0]

    def trickle() -> None:      # one byte per 100 ms until the others are done, then the rest
        while sent[0] < len(message) and not others_done.wait(0.1):
            slow.sock.send(message[sent[0]:sent[0] + 1])
            sent[0] += 1
        slow.sock.send(message[sent[0]:])

    sender = threading.Thread(target=trickle)
    sender.start()
    fast = running.client()
    for index in range(20):
        assert fast.call(b"%d" % index) == b"%d" % index
    trickled = sent[0]
    others_done.set()
    sender.join(10)
    assert trickled < len(message)           # the fast client finished while the slow one was mid-message
    assert slow.receive().type == proto.MSG_CONNECTOK
    for client in (slow, fast):
        client.close()
    running.stop()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_clients_vanishing_mid_message(kind, baseline):
    running = Running(kind)
    for cut in (1, 10, proto.HEADER_SIZE, proto.HEADER_SIZE + 3):
        before = wire(proto.MSG_CONNECT, b"abcdef")[:cut]
        gone = running.client(handshake=False)
        gone.sock.sendall(before)
        gone.close()
        handshaken = running.client()
        handshaken.sock.sendall(wire(proto.MSG_INVOKE, b"abcdef", 1)[:cut])
        handshaken.close()
    survivor = running.client()
    assert survivor.call(b"still here") == b"still here"
    assert wait_for(lambda: len(running.daemon.disconnects) == 4)
    survivor.close()
    running.stop()
    assert len(running.daemon.disconnects) == 5
    assert len(set(map(id, running.daemon.disconnects))) == 5     # once per connection


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", sorted(SERVERS))
@pytest.mark.parametrize("case, first_bytes, expected", [
    ("garbage", b"GET / HTTP/1.0\r\n\r\n" + b"x" * 30, "invalid data or unsupported protocol version"),
    ("invoke before connect", wire(proto.MSG_INVOKE, b"x", 5), "invalid msg type 4 received"),
    ("hmac mismatch", wire(proto.MSG_CONNECT, b"x", 0, hmac_key=b"wrong"), "message hmac mismatch"),
    ("hmac missing", wire(proto.MSG_CONNECT, b"x"), "hmac key config not symmetric"),
])
def test_bad_first_message_gets_connectfail(kind, case, first_bytes, expected, baseline):
    running = Running(kind, hmac_key=b"secret")
    client = running.client(handshake=False)
    client.sock.sendall(first_bytes)
    reply = client.receive()
    assert (reply.type, reply.data.decode()) == (proto.MSG_CONNECTFAIL, expected)
    assert client.at_eof()
    good = running.client()
    assert good.call(b"fine") == b"fine"
    client.close()
    good.close()
    running.stop()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", sorted(SERVERS))
@pytest.mark.parametrize("case, data", [
    ("no hmac", wire(proto.MSG_INVOKE, b"x", 1)),
    ("connect again", wire(proto.MSG_CONNECT, b"x", 1, hmac_key=b"secret")),
    ("garbage", b"\x00" * 40),
])
def test_bad_request_after_handshake_closes_only_that_connection(kind, case, data, baseline):
    running = Running(kind, hmac_key=b"secret")
    client, other = running.client(), running.client()
    client.sock.sendall(data)
    assert client.at_eof()
    assert other.call(b"ok") == b"ok"
    assert wait_for(lambda: len(running.daemon.disconnects) == 1)
    client.close()
    other.close()
    running.stop()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_refused_handshake_closes_without_disconnect_callback(kind, baseline):
    running = Running(kind)
    client = running.client(handshake=False)
    assert client.connect(b"refuse").type == proto.MSG_CONNECTFAIL
    assert client.at_eof()
    client.close()
    running.stop()
    assert running.daemon.disconnects == []


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_shutdown_from_another_thread_closes_every_connection(kind, baseline):
    running = Running(kind)
    clients = [running.client() for _ in range(5)]
    assert clients[0].call(b"x") == b"x"
    running.stop()
    assert all(client.at_eof() for client in clients)
    assert len(running.daemon.disconnects) == 5
    assert running.server.sock is None
    for client in clients:
        client.close()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_shutdown_from_inside_a_handler_still_replies(kind, baseline):
    running = Running(kind)
    bystander = running.client()
    client = running.client()
    assert client.call(b"shutdown") == b"shutdown"
    running.thread.join(10)
    assert not running.thread.is_alive()
    assert client.at_eof() and bystander.at_eof()
    assert wait_for(lambda: len(running.daemon.disconnects) == 2)
    client.close()
    bystander.close()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_external_event_loop_with_events(kind, baseline):
    import selectors
    daemon = FakeDaemon()
    server = SERVERS[kind]()
    server.init(daemon, "localhost", 0)
    client = Client(server.sock.getsockname())
    done = threading.Event()
    replies: List[bytes] = []

    def use() -> None:
        assert client.connect().type == proto.MSG_CONNECTOK
        replies.extend(client.call(b"%d" % n) for n in range(5))
        done.set()

    user = threading.Thread(target=use)
    user.start()
    with selectors.DefaultSelector() as outer:
        while not done.is_set():
            for sock in server.sockets:
                outer.register(sock, selectors.EVENT_READ)
            if outer.select(0.05):
                server.events([key.fileobj for key, _ in outer.select(0)])
            for sock in list(outer.get_map().values()):
                outer.unregister(sock.fileobj)
    user.join(10)
    assert replies == [b"%d" % n for n in range(5)]
    client.close()
    server.close()


# --- thread pool server ------------------------------------------------------------------------------

@pytest.mark.timeout(25)
def test_idle_connections_do_not_pin_workers(baseline, small_pool):
    running = Running("thread")
    clients = [running.client() for _ in range(200)]
    for client in clients[::7]:
        assert client.call(b"hello") == b"hello"
    workers = [t for t in threading.enumerate() if t.name.startswith("Pyro-Worker")]
    assert len(workers) <= config.THREADPOOL_SIZE
    assert all(name.startswith("Pyro-Worker") for name in running.daemon.handler_threads)
    assert repr(running.server).startswith("<SocketServer_Threadpool on localhost:")
    assert repr(running.server).endswith(" workers>")
    for client in clients:
        client.close()
    assert wait_for(lambda: len(running.daemon.disconnects) == 200)
    running.stop()


@pytest.mark.timeout(20)
def test_slow_call_does_not_block_other_connections(baseline, small_pool):
    running = Running("thread")
    slow, fast = running.client(), running.client()
    gate = running.daemon.gate(b"g")
    seq = slow.send_call(b"wait:g")
    assert running.daemon.entered[b"g"].wait(10)
    assert fast.call(b"quick") == b"quick"
    gate.set()
    assert slow.receive().seq == seq
    slow.close()
    fast.close()
    running.stop()


@pytest.mark.timeout(20)
def test_no_free_workers_refuses_new_clients_only(baseline, monkeypatch):
    config.THREADPOOL_SIZE = config.THREADPOOL_SIZE_MIN = 1
    monkeypatch.setattr(threadpoolserver, "NEW_CONNECTION_BACKLOG", 1)
    running = Running("thread")
    busy = running.client()
    gate = running.daemon.gate(b"g")
    busy.send_call(b"wait:g")
    assert running.daemon.entered[b"g"].wait(10)
    queued = running.client(handshake=False)
    queued.conn.send(wire(proto.MSG_CONNECT, b"q"))
    assert wait_for(lambda: running.server.pool.waiting == 1)
    refused = running.client(handshake=False)
    reply = refused.connect()
    assert (reply.type, reply.data.decode()) == (proto.MSG_CONNECTFAIL, DENIED_REASON)
    assert refused.at_eof()
    gate.set()
    assert busy.receive().type == proto.MSG_RESULT
    assert queued.receive().type == proto.MSG_CONNECTOK       # the queued one is served after all
    assert queued.call(b"late") == b"late"
    for client in (busy, queued, refused):
        client.close()
    running.stop()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", ["thread", "multiplex"])
def test_client_silent_before_its_handshake_is_dropped_after_commtimeout(kind, baseline):
    """Where Pyro4's handshake ``recv`` would time out (its suite's testConnectCrash waits for that)."""
    config.COMMTIMEOUT = 0.3
    running = Running(kind)
    silent = Client(running.address)
    try:
        reply = silent.receive()
    except ConnectionClosedError:
        pass                    # the thread server just hangs up on a parked connection
    else:
        assert (reply.type, bytes(reply.data)) == (proto.MSG_CONNECTFAIL, b"receiving: timeout")
        assert silent.at_eof()
    other = running.client()
    assert other.call(b"still serving") == b"still serving"
    for client in (silent, other):
        client.close()
    running.stop()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind, idle_closed", [("thread", True), ("multiplex", False)])
def test_commtimeout_closes_a_client_stalled_mid_message_and_idle_ones_as_pyro4(kind, idle_closed, baseline):
    """Pyro4's thread server times out any silent client (its worker blocks in recv), its multiplex
    server only one part-way through a message: COMMTIMEOUT bounds a message's arrival there."""
    config.COMMTIMEOUT = 0.3
    running = Running(kind)
    idle = running.client()
    stalled = running.client()
    stalled.conn.send(wire(proto.MSG_INVOKE, b"never finished", 1)[:10])
    assert stalled.at_eof()
    # idle has now been silent longer than COMMTIMEOUT (it went quiet before stalled did)
    if idle_closed:
        assert idle.at_eof()
    else:
        assert idle.call(b"idle but kept") == b"idle but kept"
    assert wait_for(lambda: len(running.daemon.disconnects) == (2 if idle_closed else 1))
    for client in (idle, stalled):
        client.close()
    running.stop()


@pytest.mark.timeout(20)
def test_thread_server_refuses_selector_and_combine():
    running = Running("thread")
    try:
        with pytest.raises(TypeError):
            running.server.selector
        with pytest.raises(TypeError):
            running.server.combine_loop(running.server)
        assert running.server.sockets[0] is running.server.sock
    finally:
        running.stop()


@pytest.mark.timeout(20)
def test_pool_grows_to_max_refuses_beyond_backlog_and_shrinks():
    config.THREADPOOL_SIZE, config.THREADPOOL_SIZE_MIN = 3, 1
    release = threading.Event()
    started = threading.Semaphore(0)

    def job() -> None:
        started.release()
        release.wait(10)

    with Pool(backlog=1) as pool:
        for _ in range(3):
            pool.process(job)
        for _ in range(3):
            assert started.acquire(timeout=10)
        assert pool.num_workers() == 3
        pool.process(job)                           # queued: backlog 1
        with pytest.raises(NoFreeWorkersError):
            pool.process(job)
        pool.submit(job)                            # submit never refuses
        release.set()
        assert wait_for(lambda: pool.num_workers() == 1 and not pool.busy)
    assert wait_for(lambda: not [t for t in threading.enumerate() if t.name.startswith("Pyro-Worker")])


@pytest.mark.timeout(20)
def test_pool_hands_each_job_to_the_worker_idle_the_shortest_time():
    config.THREADPOOL_SIZE, config.THREADPOOL_SIZE_MIN = 4, 4
    ran_on = []
    done = threading.Semaphore(0)

    def job() -> None:
        ran_on.append(threading.current_thread())
        done.release()

    def asleep(pool: Pool, count: int) -> bool:
        with pool._lock:
            return len(pool._sleepers) == count

    with Pool() as pool:
        assert wait_for(lambda: asleep(pool, 4))
        for _ in range(5):
            pool.submit(job)
            assert done.acquire(timeout=10)
            assert wait_for(lambda: asleep(pool, 4))   # its worker is back on top of the stack
    assert len(set(ran_on)) == 1, ran_on             # a FIFO wake-up would rotate through all four


@pytest.mark.timeout(20)
def test_pool_gives_a_job_its_worker_when_it_is_submitted():
    """As in Pyro4: ``busy`` and ``idle`` change in process() itself, not when a thread gets round to it."""
    config.THREADPOOL_SIZE, config.THREADPOOL_SIZE_MIN = 3, 2
    release = threading.Event()
    started = threading.Semaphore(0)

    def job() -> None:
        started.release()
        release.wait(10)

    with Pool() as pool:
        counts = []
        for _ in range(3):
            pool.process(job)
            counts.append((len(pool.busy), len(pool.idle)))
        assert counts == [(1, 1), (2, 0), (3, 0)]       # the third one got a new worker
        with pytest.raises(NoFreeWorkersError):
            pool.process(job)
        for _ in range(3):
            assert started.acquire(timeout=10)
        release.set()
        assert wait_for(lambda: not pool.busy and len(pool.idle) == 2)
    assert (pool.busy, pool.idle) == (set(), set())     # a closed pool counts no workers, as Pyro4's


@pytest.mark.parametrize("size, minimum", [(0, 1), (1, 0), (2, 3)])
def test_pool_rejects_bad_sizes(size, minimum):
    config.THREADPOOL_SIZE, config.THREADPOOL_SIZE_MIN = size, minimum
    with pytest.raises(ValueError):
        Pool()


# --- multiplex server --------------------------------------------------------------------------------

@pytest.mark.timeout(20)
def test_multiplex_combines_another_server_and_housekeeps(baseline):
    config.POLLTIMEOUT = 0.05
    running = Running("multiplex")
    other_daemon = FakeDaemon()
    other = SocketServer_Multiplex()
    other.init(other_daemon, "localhost", 0)
    running.server.combine_loop(other)
    assert other.selector is running.server.selector
    client = Client(other.sock.getsockname())
    assert client.connect().type == proto.MSG_CONNECTOK
    assert client.call(b"via combined loop") == b"via combined loop"
    assert repr(other).endswith("; 1 connections>")
    assert wait_for(lambda: running.daemon.housekeeping_runs >= 2)
    client.close()
    running.stop()
    other.close()


@pytest.mark.timeout(20)
def test_tls_multiplex_and_thread(tmp_path, baseline):
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not available")
    cert, key = str(tmp_path / "s.crt"), str(tmp_path / "s.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost", "-nodes",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    config.SSL, config.SSL_SERVERCERT, config.SSL_SERVERKEY = True, cert, key
    socketutil._clear_ssl_contexts()
    context = ssl.create_default_context(cafile=cert)
    try:
        for kind in sorted(SERVERS):
            running = Running(kind)
            broken = running.client(handshake=False)
            broken.sock.sendall(b"not a tls hello at all, sorry" * 3)
            raw = socket.create_connection(running.address, timeout=10)
            client = Client(None, sock=context.wrap_socket(raw, server_hostname="localhost"))
            assert client.connect().type == proto.MSG_CONNECTOK
            for n in range(3):
                assert client.call(b"secret %d" % n) == b"secret %d" % n
            assert broken.at_eof()
            for each in (client, broken):
                each.close()
            running.stop()
    finally:
        socketutil._clear_ssl_contexts()


# --- existing connection server ----------------------------------------------------------------------

@pytest.mark.timeout(20)
def test_existing_connection_serves_until_peer_leaves(baseline):
    daemon = FakeDaemon()
    ours, theirs = socket.socketpair()
    server = SocketServer_ExistingConnection()
    server.init(daemon, ours)
    assert server.locationStr == "./u:<<not-bound>>"
    assert repr(server) == "<SocketServer_ExistingConnection on ./u:<<not-bound>>>"
    with pytest.raises(TypeError):
        server.selector
    loop = threading.Thread(target=server.loop, name="transport-loop")
    loop.start()
    client = Client(None, sock=theirs)
    for n in range(3):
        assert client.call(b"%d" % n) == b"%d" % n
    theirs.close()
    loop.join(10)
    assert not loop.is_alive()
    assert len(daemon.disconnects) == 1
    assert ours.fileno() != -1          # the user's socket is left open
    ours.close()


@pytest.mark.timeout(20)
def test_existing_connection_shutdown_from_another_thread(baseline):
    config.POLLTIMEOUT = 30.0           # the wake-up must come from shutdown(), not the poll timeout
    daemon = FakeDaemon()
    ours, theirs = socket.socketpair()
    server = SocketServer_ExistingConnection()
    server.init(daemon, ours)
    loop = threading.Thread(target=server.loop, name="transport-loop")
    loop.start()
    assert Client(None, sock=theirs).call(b"x") == b"x"
    server.shutdown()
    loop.join(10)
    assert not loop.is_alive()
    assert daemon.disconnects == []
    ours.close()
    theirs.close()


@pytest.mark.timeout(20)
def test_existing_connection_ends_on_garbage(baseline):
    daemon = FakeDaemon()
    ours, theirs = socket.socketpair()
    server = SocketServer_ExistingConnection()
    server.init(daemon, ours)
    loop = threading.Thread(target=server.loop, name="transport-loop")
    loop.start()
    theirs.sendall(b"\x00" * proto.HEADER_SIZE)
    loop.join(10)
    assert not loop.is_alive()
    assert len(daemon.disconnects) == 1
    ours.close()
    theirs.close()
