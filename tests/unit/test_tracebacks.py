"""Traceback helpers: the remote block, the detailed form, the excepthook, the IronPython shim."""

from __future__ import annotations

import sys
import traceback
from typing import Any, List

import pytest

from pyro4compat import _tracebacks as tbmod
from pyro4compat import configuration
from pyro4compat._tracebacks import (
    excepthook, fixIronPythonExceptionForPickle, formatTraceback, getPyroTraceback,
)

HEADER = " +--- This exception occured remotely (Pyro) - Remote traceback:"
FOOTER = "\n +--- End of remote traceback\n"
RULE = "-" * 52 + "\n"

REMOTE_BLOCKS = [
    (["one\n"], [HEADER, "\n | ", "one", FOOTER]),
    (["one"], [HEADER, "\n | ", "one", FOOTER]),
    (["a\nb\n", "c\n"], [HEADER, "\n | ", "a", "\n | ", "b", "\n | ", "c", FOOTER]),
    (["a\n\n"], [HEADER, "\n | ", "a", "\n | ", "", FOOTER]),
    ([""], [HEADER, "\n | ", "", FOOTER]),
    (["\n"], [HEADER, "\n | ", "", FOOTER]),
    ([], [HEADER, FOOTER]),
    ("whole text\n", [HEADER, "\n | ", "whole text", FOOTER]),  # a str is one entry, not characters
    ([3], [HEADER, "\n | ", "3", FOOTER]),
]


@pytest.mark.parametrize("remote, expected", REMOTE_BLOCKS)
def test_format_remote_traceback(remote: Any, expected: List[str]) -> None:
    assert tbmod.format_remote_traceback(remote) == expected


def _caught(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


@pytest.mark.parametrize("remote, has_block", [(None, False), ([], False), (["remote line\n"], True)])
def test_getPyroTraceback_appends_remote_block(remote: Any, has_block: bool) -> None:
    exc = _caught(ValueError("local"))
    if remote is not None:
        exc._pyroTraceback = remote  # type: ignore[attr-defined]
    lines = getPyroTraceback(type(exc), exc, exc.__traceback__)
    local = traceback.format_exception(type(exc), exc, exc.__traceback__)
    assert lines[:len(local)] == local
    assert lines[len(local):] == ([HEADER, "\n | ", "remote line", FOOTER] if has_block else [])


def test_getPyroTraceback_uses_the_exception_being_handled() -> None:
    try:
        raise KeyError("handled")
    except KeyError:
        lines = getPyroTraceback()
        plain = formatTraceback()
    assert lines == plain
    assert lines[-1] == "KeyError: 'handled'\n"


@pytest.mark.parametrize("function", [getPyroTraceback, formatTraceback])
def test_exception_object_alone_is_refused(function: Any) -> None:
    with pytest.raises(TypeError) as info:
        function(ValueError("x"))
    assert str(info.value) == ("invalid argument: ex_type should be an exception type, "
                               "or just supply no arguments at all")


def test_getPyroTraceback_follows_detailed_traceback_config(monkeypatch: pytest.MonkeyPatch) -> None:
    exc = _caught(ValueError("cfg"))
    monkeypatch.setattr(configuration.config, "DETAILED_TRACEBACK", True)
    lines = getPyroTraceback(type(exc), exc, exc.__traceback__)
    assert lines[0] == RULE and lines[1] == " EXCEPTION <class 'ValueError'>: cfg\n"


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __str__(self) -> str:
        return "str of BadRepr"


class Hopeless:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __str__(self) -> str:
        raise RuntimeError("no str")


class Worker:
    def __init__(self) -> None:
        self.state = "busy"
        self.odd = Hopeless()

    def work(self, amount: int) -> None:
        doubled = amount * 2
        shown = BadRepr()
        hidden = Hopeless()
        raise ZeroDivisionError("worked %d" % doubled)


class SlotWorker:
    __slots__ = ("x",)

    def work(self) -> None:
        raise LookupError("slotted")


def _detailed_of(call: Any) -> List[str]:
    try:
        call()
    except Exception:
        return formatTraceback(detailed=True)
    raise AssertionError("no exception")


def test_detailed_traceback_shape_and_values() -> None:
    lines = _detailed_of(lambda: Worker().work(21))
    headline = " EXCEPTION <class 'ZeroDivisionError'>: worked 42\n"
    assert lines[:3] == [RULE, headline, " Extended stacktrace follows (most recent call last)\n"]
    assert lines[-3:] == [RULE, headline, RULE]
    text = "".join(lines)
    frames = text.split(RULE)
    work_frame = next(frame for frame in frames if "in Worker.work\n" in frame)
    assert work_frame.startswith('File "%s", line ' % __file__)
    assert 'Source code:\n    raise ZeroDivisionError("worked %d" % doubled)\n' in work_frame
    expected_locals = ("Local values:\n    amount = 21\n    doubled = 42\n    hidden = <ERROR>\n"
                       "    self = <")
    assert expected_locals in work_frame
    assert "        self.state = 'busy'\n        self.odd = <ERROR>\n" in work_frame
    assert "    shown = str of BadRepr\n" in work_frame
    first_frame = next(frame for frame in frames if "in _detailed_of\n" in frame)
    assert "Local values:" not in first_frame  # the catching frame's locals are skipped


def test_detailed_traceback_survives_self_without_dict() -> None:
    lines = _detailed_of(lambda: SlotWorker().work())
    text = "".join(lines)
    assert "in SlotWorker.work\n" in text and "    self = <" in text
    assert "Error building extended traceback" not in text


def test_detailed_traceback_falls_back_to_plain_on_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> List[str]:
        raise RuntimeError("formatter broke")

    monkeypatch.setattr(tbmod, "_frame_lines", broken)
    lines = _detailed_of(lambda: Worker().work(1))
    assert lines[0] == "-" * 52 + "\nError building extended traceback!!! :\n"
    assert "RuntimeError: formatter broke" in lines[1] and lines[1].endswith(RULE)
    assert lines[2] == "Original Exception follows:\n"
    assert lines[3].endswith("ZeroDivisionError: worked 2\n")


def test_excepthook_writes_pyro_traceback_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    exc = _caught(ValueError("hooked"))
    exc._pyroTraceback = ["server side\n"]  # type: ignore[attr-defined]
    excepthook(type(exc), exc, exc.__traceback__)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "".join(getPyroTraceback(type(exc), exc, exc.__traceback__))
    assert captured.err.endswith(" | server side\n +--- End of remote traceback\n")


def test_excepthook_looks_up_stderr_when_called(monkeypatch: pytest.MonkeyPatch) -> None:
    written: List[str] = []

    class Sink:
        def write(self, text: str) -> None:
            written.append(text)

    monkeypatch.setattr(sys, "stderr", Sink())
    excepthook(ValueError, ValueError("late"), None)
    assert written == ["ValueError: late\n"]


class Tagged(Exception):
    pass


def test_ironpython_piggyback_round_trip() -> None:
    exc = Tagged("msg", 1)
    exc.code = 7  # type: ignore[attr-defined]
    fixIronPythonExceptionForPickle(exc, True)
    assert exc.args[:2] == ("msg", 1)
    assert exc.args[2] is vars(exc)  # Pyro4 appends the live attribute dict itself
    assert exc.args[2] == {"code": 7, "__ironpythonargs__": True}
    received = Tagged(*exc.args[:2], dict(exc.args[2]))
    fixIronPythonExceptionForPickle(received, False)
    assert received.args == ("msg", 1)
    assert received.code == 7  # type: ignore[attr-defined]
    assert not hasattr(received, "__ironpythonargs__")


UNPACK_UNCHANGED = [
    ("no args", (), ()),
    ("plain dict", ({"__ironpythonargs__": False, "a": 1},), ({"__ironpythonargs__": False, "a": 1},)),
    ("dict not last", ({"__ironpythonargs__": True}, "tail"), ({"__ironpythonargs__": True}, "tail")),
    ("other values", ("x", 2), ("x", 2)),
]


@pytest.mark.parametrize("label, args, expected", UNPACK_UNCHANGED, ids=[c[0] for c in UNPACK_UNCHANGED])
def test_ironpython_unpack_leaves_other_args_alone(label: str, args: tuple, expected: tuple) -> None:
    exc = Tagged(*args)
    fixIronPythonExceptionForPickle(exc, False)
    assert exc.args == expected
    assert vars(exc) == {}


def test_ironpython_dict_subclass_is_not_a_piggyback() -> None:
    class Subdict(dict):
        pass

    exc = Tagged(Subdict(__ironpythonargs__=True, a=1))
    fixIronPythonExceptionForPickle(exc, False)
    assert len(exc.args) == 1 and not hasattr(exc, "a")


def test_ironpython_ignores_objects_without_args() -> None:
    thing = object()
    fixIronPythonExceptionForPickle(thing, True)
    fixIronPythonExceptionForPickle(thing, False)
