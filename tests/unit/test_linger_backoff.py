"""The thread server's per-client lingering: empty windows back off, a caught call resets (no sockets)."""

from __future__ import annotations

from typing import Any, List, Optional

from pyro4compat import _frames
from pyro4compat.socketserver import _connection_job
from pyro4compat.socketserver._connection_job import ClientConnectionJob


class _Server(object):
    _closed = False

    def __init__(self) -> None:
        self.parked = 0

    def _linger(self) -> float:
        return 0.001

    def _park(self, job: Any) -> None:
        self.parked += 1


def _job(outcomes: List[Optional[str]]) -> Any:
    """A job whose receive step answers from ``outcomes`` ("call", None: nothing, "partial": some bytes)."""
    job = ClientConnectionJob.__new__(ClientConnectionJob)
    job.server = _Server()
    job.reader = _frames.FrameReader(1 << 20)
    job._linger_skips, job._linger_backoff = 0, 1
    job.windows = []

    def next_item(linger: float) -> Optional[str]:
        job.windows.append(linger)
        outcome = outcomes.pop(0)
        if outcome == "partial":
            job.reader.feed(b"PYRO")
            return None
        return outcome
    job._next_item = next_item
    job._serve_item = lambda item: True
    return job


def _serve(job: Any, times: int) -> None:
    for _ in range(times):
        job._serve_while_busy()


def test_empty_windows_double_the_requests_that_skip_lingering_up_to_the_cap():
    job = _job([None] * 200)
    _serve(job, 200)
    lingered = [index for index, window in enumerate(job.windows) if window]
    gaps = [later - earlier - 1 for earlier, later in zip(lingered, lingered[1:])]
    assert gaps[:7] == [1, 2, 4, 8, 16, 32, 64]
    assert set(gaps[7:]) == {_connection_job._MAX_LINGER_SKIPS}
    assert job.server.parked == 200     # every request without a whole message parked the connection


def test_a_caught_call_brings_lingering_back_at_once():
    job = _job(["call", None])
    job._linger_backoff = 16        # after four empty windows
    _serve(job, 1)
    assert job.windows == [0.001, 0.001]    # caught: the next request lingers again ...
    assert job._linger_skips == 1 and job._linger_backoff == 2   # ... and an empty one backs off from 1


def test_a_call_found_without_lingering_does_not_reset_the_backoff():
    job = _job([None, None, None, "call", None, None])
    _serve(job, 5)      # miss (skip 1), skipped, miss (skip 2), skipped: a call was there, skipped: none
    assert job.windows == [0.001, 0.0, 0.001, 0.0, 0.0, 0.001]
    assert job._linger_backoff == 8


def test_a_partial_message_in_the_window_is_no_miss():
    job = _job(["partial", None, None])
    _serve(job, 2)
    assert job.windows == [0.001, 0.001]     # bytes came: the client is not slow, the message is long
    assert job._linger_backoff == 1


# --- how long a lingering worker stays for a message that comes in pieces ---------------------------

def _receiving_job(pieces: List[int], gap: float) -> Any:
    """A job whose every wait receives the next of ``pieces`` (byte counts) ``gap`` seconds after the last.

    No piece ever completes a message, so ``_next_item`` must give up by its own rule.
    """
    job = ClientConnectionJob.__new__(ClientConnectionJob)
    job.reader = _frames.FrameReader(1 << 20)
    job.ready = None
    job._drained = False
    job._window_recv_into = None
    job.heard_at = 100.0
    job.waits = []

    def wait_readable(wait: float) -> bool:
        job.waits.append(wait)
        return bool(pieces)

    def receive() -> int:
        job.heard_at += gap
        return pieces.pop(0)
    job._wait_readable = wait_readable
    job._receive = receive
    job._take = lambda: None
    return job


def test_a_trickle_gets_no_more_than_the_window_from_its_first_bytes():
    job = _receiving_job([1] * 100, gap=0.0004)
    assert job._next_item(0.001) is None
    assert len(job.waits) == 4     # bytes at +0.4 (the window starts), +0.8, +1.2, +1.6 ms: past it


def test_a_large_message_arriving_steadily_keeps_the_worker():
    steady = _connection_job._STEADY_BYTES
    job = _receiving_job([steady] * 20 + [1] * 100, gap=0.0015)
    assert job._next_item(0.001) is None
    assert job.waits[:21] == [0.001] + [_connection_job._REST_WAIT] * 20   # each steady piece: another wait
    assert len(job.waits) == 23    # then a trickle: its window counts from its first piece
