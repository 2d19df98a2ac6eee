"""A lingering thread-server worker waits for its connection's next call inside ``recv`` (Linux).

The wait is bounded by the socket's kernel receive timeout (``SO_RCVTIMEO``), so it is one
system call; a connection that stays quiet past it is parked as before, a partial message
stays in its reader, and sockets that can't take the bound (TLS, ``COMMTIMEOUT``) poll.
"""

from __future__ import annotations

import socket
import sys
import time

import pytest

from pyro4compat import core
from pyro4compat.configuration import config
from pyro4compat.socketserver._receiving import linger_in_kernel

from hostile_support import served_target
from remote_helpers import WAIT, wait_until

pytestmark = pytest.mark.timeout(60)
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_RCVTIMEO lingering is Linux-only")


@linux_only
def test_a_bounded_receive_times_out_and_other_receives_are_unaffected():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        assert linger_in_kernel(ours, 0.001)
        buffer = bytearray(16)
        start = time.monotonic()
        with pytest.raises(BlockingIOError):
            ours.recv_into(buffer)          # nothing came within the bound
        assert time.monotonic() - start < WAIT
        with pytest.raises(BlockingIOError):
            ours.recv_into(buffer, 0, socket.MSG_DONTWAIT)
        theirs.sendall(b"ping")
        assert ours.recv_into(buffer) == 4 and bytes(buffer[:4]) == b"ping"
        ours.sendall(b"pong")              # sends keep blocking as they did
        assert theirs.recv(4) == b"pong"


def test_no_bound_for_no_window():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        assert not linger_in_kernel(ours, 0.0)


def _parked_job(server, proxy):
    local = proxy._pyroConnection.sock.getsockname()
    jobs = []

    def parked() -> bool:
        jobs[:] = [job for job in server._parking.parked() if job.caddr == local]
        return bool(jobs)
    assert wait_until(parked), "the proxy's connection was never parked after the window"
    return jobs[0]


@linux_only
def test_a_quiet_connection_is_parked_after_its_window_and_served_again():
    config.SERVERTYPE = "thread"
    with served_target("daemon") as target, core.Proxy(target.uri) as proxy:
        proxy._pyroTimeout = WAIT
        for round_ in range(3):
            assert proxy.echo(round_) == round_
            job = _parked_job(target.daemon.transportServer, proxy)
            assert job._window_recv_into is not None     # it lingered in recv, then went back


def test_a_connection_with_commtimeout_lingers_in_a_poll():
    config.SERVERTYPE = "thread"
    config.COMMTIMEOUT = 5.0
    with served_target("daemon") as target, core.Proxy(target.uri) as proxy:
        proxy._pyroTimeout = WAIT
        assert proxy.echo(1) == 1
        job = _parked_job(target.daemon.transportServer, proxy)
        assert job._window_recv_into is None
        assert proxy.echo(2) == 2
