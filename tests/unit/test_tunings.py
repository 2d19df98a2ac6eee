"""pyro4compat's own tunings as config items: checked at the edges, read cheaply where used."""

from __future__ import annotations

from typing import Any, List

import pytest

from pyro4compat import _tunings
from pyro4compat.configuration import config

BUSYPOLL_ERROR = r"config.BUSYPOLL_US \(PYRO_BUSYPOLL_US\) must be a number of microseconds from 0 to 1000000, not "
KEEP_ERROR = r"config.KEEP_LARGE_BUFFERS \(PYRO_KEEP_LARGE_BUFFERS\) must be True or False, not "


@pytest.mark.parametrize("value, seconds", [(200.0, 2e-4), (0, 0.0), (0.5, 5e-7), (1_000_000, 1.0)])
def test_busypoll_seconds(value: Any, seconds: float) -> None:
    assert _tunings.busypoll_seconds(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["200", "fast", -1, -0.5, 1_000_001, float("nan"), float("inf"), True, None])
def test_busypoll_refuses_what_is_not_a_sane_number(value: Any) -> None:
    with pytest.raises(ValueError, match=BUSYPOLL_ERROR + repr(value).replace("(", r"\(")):
        _tunings.busypoll_seconds(value)


@pytest.mark.parametrize("value, keep", [(True, True), (False, False), (1, True), (0, False)])
def test_keep_large_buffers(value: Any, keep: bool) -> None:
    assert _tunings.keep_large_buffers(value) is keep


@pytest.mark.parametrize("value", ["yes", "1", "", 2, -1, 1.0, None])
def test_keep_large_buffers_refuses_anything_else(value: Any) -> None:
    with pytest.raises(ValueError, match=KEEP_ERROR):
        _tunings.keep_large_buffers(value)


@pytest.mark.parametrize("item, bad, error", [("BUSYPOLL_US", "fast", BUSYPOLL_ERROR + "'fast'"),
                                              ("KEEP_LARGE_BUFFERS", "maybe", KEEP_ERROR + "'maybe'")])
def test_check_names_the_bad_item_and_its_variable(item: str, bad: str, error: str) -> None:
    _tunings.check()                         # the defaults pass
    setattr(config, item, bad)               # as PYRO_<item>=<bad> leaves it
    with pytest.raises(ValueError, match=error):
        _tunings.check()


def test_a_reader_checks_only_when_the_value_changes(caplog: pytest.LogCaptureFixture) -> None:
    checked: List[Any] = []

    def meaning(value: Any) -> float:
        checked.append(value)
        return _tunings.busypoll_seconds(value)

    current = _tunings.reader("BUSYPOLL_US", meaning, 0.0)
    config.BUSYPOLL_US = 100.0
    assert [current(), current(), current()] == [1e-4] * 3
    config.BUSYPOLL_US = "fast"
    with caplog.at_level("WARNING", logger="Pyro4.core"):
        assert [current(), current()] == [0.0, 0.0]
    config.BUSYPOLL_US = 0
    assert current() == 0.0
    assert checked == [100.0, "fast", 0]
    assert len(caplog.records) == 1 and "treated as off until it is fixed" in caplog.records[0].getMessage()
