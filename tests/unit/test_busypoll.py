"""The adaptive busy-poll: bounded spins, back-off on misses, one spinner per process.

No sockets and no sleeping: the probe is a scripted function and the clock a counter.
"""

from __future__ import annotations

from typing import Iterator, List

import pytest

from pyro4compat import _busypoll
from pyro4compat.configuration import config


class StepClock:
    """Each reading advances by ``step`` seconds: a spin's length is counted in probes."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> StepClock:
    """A spin of 200 us lasts 10 probes (config is restored by the conftest fixture)."""
    config.BUSYPOLL_US = 200
    steps = StepClock(2e-5)
    monkeypatch.setattr(_busypoll, "_clock", steps)
    return steps


def probe_after(calls: int, answer: object = "ready") -> "Probe":
    return Probe([None] * calls + [answer])


class Probe:
    def __init__(self, script: List[object]) -> None:
        self.script: Iterator[object] = iter(script)
        self.count = 0

    def __call__(self) -> object:
        self.count += 1
        return next(self.script, None)


def test_spin_returns_what_the_probe_found(clock: StepClock) -> None:
    spinner = _busypoll.Spinner()
    probe = probe_after(3, answer=["event"])
    assert spinner.spin(probe) == ["event"]
    assert probe.count == 4


def test_spin_gives_up_after_spin_seconds(clock: StepClock) -> None:
    spinner = _busypoll.Spinner()
    probe = probe_after(1000)
    assert spinner.spin(probe) is None
    assert probe.count <= 11        # about BUSYPOLL_US worth of probes, never the whole script


def test_misses_back_off_exponentially_and_a_hit_resets(clock: StepClock) -> None:
    spinner = _busypoll.Spinner()
    spun = []
    for _ in range(15):
        probe = probe_after(1000)
        spinner.spin(probe)
        spun.append(probe.count > 0)
    # spin, skip 1, spin, skip 2, spin, skip 4, spin, ...
    assert spun == [True, False, True, False, False, True, False, False, False, False, True,
                    False, False, False, False]
    while spinner._skip:
        spinner.spin(probe_after(0))
    assert spinner.spin(probe_after(0)) == "ready"      # a hit ...
    probe = probe_after(1000)
    spinner.spin(probe)                                  # ... so the next miss skips one wait only
    skipped = probe_after(0)
    assert spinner.spin(skipped) is None and skipped.count == 0
    assert spinner.spin(probe_after(0)) == "ready"


def test_back_off_is_capped(clock: StepClock) -> None:
    spinner = _busypoll.Spinner()
    for _ in range(20):
        spinner._skip = 0
        spinner.spin(probe_after(1000))
    assert spinner._backoff == _busypoll._MAX_SKIP


def test_only_one_thread_spins_at_a_time(clock: StepClock) -> None:
    assert _busypoll._spin_slot.acquire(False)      # as if another thread were spinning
    try:
        probe = probe_after(0)
        assert _busypoll.Spinner().spin(probe) is None
        assert probe.count == 0
    finally:
        _busypoll._spin_slot.release()
    assert _busypoll.Spinner().spin(probe_after(0)) == "ready"


def test_a_failing_probe_stops_spinning_for_a_while(clock: StepClock) -> None:
    spinner = _busypoll.Spinner()

    def closed() -> object:
        raise ValueError("I/O operation on closed selector")
    assert spinner.spin(closed) is None
    assert spinner._skip == _busypoll._MAX_SKIP
    assert _busypoll._spin_slot.acquire(False)       # the slot was released
    _busypoll._spin_slot.release()


class FakeSocket:
    def __init__(self, fileno: object) -> None:
        self._fileno = fileno

    def fileno(self) -> object:
        return self._fileno


class FakeTlsSocket(FakeSocket):
    def pending(self) -> int:
        return 0


def test_no_spinner_for_tls_fake_or_closed_sockets() -> None:
    assert _busypoll.spinner_for(FakeTlsSocket(0)) is None       # TLS buffers what poll can't see
    assert _busypoll.spinner_for(object()) is None               # no fileno at all
    assert _busypoll.spinner_for(FakeSocket(-1)) is None         # closed socket


def test_a_spinner_is_made_while_spinning_is_off_and_polls_only_once_on() -> None:
    """Made whatever config.BUSYPOLL_US says now: switching it on later must reach old connections."""
    config.BUSYPOLL_US = 0
    spinner = _busypoll.spinner_for(FakeSocket(0))
    assert isinstance(spinner, _busypoll.SocketSpinner)
    assert spinner.wait(lambda: True) is False and spinner._poll is None    # off: no poll object yet


def test_switching_spinning_off_and_on_takes_effect_at_the_next_wait(clock: StepClock) -> None:
    spinner = _busypoll.Spinner()
    config.BUSYPOLL_US = 0
    probe = probe_after(0)
    assert spinner.spin(probe) is None and probe.count == 0
    config.BUSYPOLL_US = 200
    assert spinner.spin(probe_after(0)) == "ready"
    config.BUSYPOLL_US = 100                        # half the spin: 5 probes
    probe = probe_after(1000)
    assert spinner.spin(probe) is None and probe.count <= 6


@pytest.mark.parametrize("value, seconds", [(200, 2e-4), (200.0, 2e-4), (0, 0.0), (12.5, 1.25e-5),
                                            (1_000_000, 1.0)])
def test_spin_seconds_follow_config(value: object, seconds: float) -> None:
    config.BUSYPOLL_US = value
    assert _busypoll.spin_seconds() == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["fast", "200", -5, float("nan"), float("inf"), 1_000_001, True, None])
def test_a_bad_spin_time_in_a_wait_means_off_and_warns_once(value: object, clock: StepClock,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """Refused at the edges (tests/unit/test_tunings.py); a wait never raises in the middle of a receive."""
    config.BUSYPOLL_US = value
    probe = probe_after(0)
    with caplog.at_level("WARNING", logger="Pyro4.core"):
        assert _busypoll.Spinner().spin(probe) is None and probe.count == 0
        assert _busypoll.Spinner().spin(probe) is None
    assert [r.getMessage() for r in caplog.records] == [
        "config.BUSYPOLL_US (PYRO_BUSYPOLL_US) must be a number of microseconds from 0 to 1000000, "
        "not %r; treated as off until it is fixed" % (value,)]
    config.BUSYPOLL_US = 200
    assert _busypoll.Spinner().spin(probe_after(0)) == "ready"


def test_spinning_waits_for_other_busy_threads(clock: StepClock) -> None:
    spinner = _busypoll.Spinner()
    _busypoll.begin_work(None)          # this caller, inside a call
    try:
        assert _busypoll.quiet() and not _busypoll.idle()
        assert spinner.spin(probe_after(0)) == "ready"
        _busypoll.begin_work(None)      # another thread of ours is busy too
        try:
            probe = probe_after(0)
            assert not _busypoll.quiet()
            assert spinner.spin(probe) is None and probe.count == 0
        finally:
            _busypoll.end_work()
    finally:
        _busypoll.end_work()
    assert _busypoll.idle()
    assert spinner.spin(probe_after(0), _busypoll.idle) == "ready"


def test_fork_child_starts_with_no_spinner_and_nothing_busy() -> None:
    _busypoll.begin_work(None)
    try:
        _busypoll._reset_after_fork()           # what os.register_at_fork runs in a child
        assert _busypoll.idle()
        assert _busypoll._spin_slot.acquire(False)
        _busypoll._spin_slot.release()
    finally:
        _busypoll.end_work()                    # begun before the "fork": must not raise
    assert _busypoll.idle()


def _socket_spinner(polls: List[object]) -> _busypoll.SocketSpinner:
    """A SocketSpinner whose zero-timeout poll answers from ``polls`` (no real descriptor)."""
    spinner = _busypoll.SocketSpinner.__new__(_busypoll.SocketSpinner)
    _busypoll.Spinner.__init__(spinner)
    answers = iter(polls)
    spinner._poll = lambda timeout: next(answers, [])
    return spinner


def test_socket_wait_says_whether_the_spin_saw_bytes(clock: StepClock) -> None:
    assert _socket_spinner([[], [(5, 1)]]).wait(lambda: True) is True
    assert _socket_spinner([]).wait(lambda: True) is False          # ran out: the caller blocks
    assert _socket_spinner([[(5, 1)]]).wait(lambda: False) is False  # not welcome: no look at all
