"""Traceback text for Pyro errors: local tracebacks, the remote block, the detailed form.

A server attaches its formatted traceback lines to an exception as ``_pyroTraceback``; the
client re-raises that exception and :func:`getPyroTraceback` prints the local traceback followed
by the remote one in Pyro4's frame (including its "occured" spelling, which users grep for).
The detailed form (``DETAILED_TRACEBACK``) lists each frame's source line and local values; it
must survive hostile values (a ``repr`` that raises, a ``self`` without ``__dict__``), since it
runs while an error is already being reported.
"""

from __future__ import annotations

import linecache
import sys
import traceback
from types import TracebackType
from typing import Any, Iterable, List, Optional, Tuple

from .configuration import config

__all__ = [
    "getPyroTraceback", "formatTraceback", "excepthook", "fixIronPythonExceptionForPickle",
    "format_remote_traceback", "pyro_traceback_lines",
]

REMOTE_TB_HEADER = " +--- This exception occured remotely (Pyro) - Remote traceback:"
REMOTE_TB_LINE_PREFIX = "\n | "
REMOTE_TB_FOOTER = "\n +--- End of remote traceback\n"
BAD_ARGUMENTS_TEXT = ("invalid argument: ex_type should be an exception type, "
                      "or just supply no arguments at all")
UNPRINTABLE_VALUE = "<ERROR>"
IRONPYTHON_MARKER = "__ironpythonargs__"
_RULE = "-" * 52 + "\n"

ExcInfo = Tuple[Any, Any, Optional[TracebackType]]


def _exc_info(ex_type: Any, ex_value: Any, ex_tb: Optional[TracebackType]) -> ExcInfo:
    """The exception to format: the one given, or the one being handled when none is given."""
    if ex_type is not None and ex_value is None and ex_tb is None and type(ex_type) is not type:
        # Pyro 3 let callers pass only the exception object; Pyro4 refuses that form.
        raise TypeError(BAD_ARGUMENTS_TEXT)
    if ex_type is None and ex_tb is None:
        return sys.exc_info()
    return ex_type, ex_value, ex_tb


def format_remote_traceback(remote_lines: Iterable[Any]) -> List[str]:
    """The framed remote-traceback block, one ``"\\n | "`` prefix per physical line."""
    if isinstance(remote_lines, str):
        remote_lines = [remote_lines]
    block = [REMOTE_TB_HEADER]
    for entry in remote_lines:
        text = entry if isinstance(entry, str) else str(entry)
        if text.endswith("\n"):
            text = text[:-1]
        for line in text.split("\n"):
            block.append(REMOTE_TB_LINE_PREFIX)
            block.append(line)
    block.append(REMOTE_TB_FOOTER)
    return block


def pyro_traceback_lines(ex_type: Any, ex_value: Any, ex_tb: Optional[TracebackType],
                         detailed: bool) -> List[str]:
    """Local traceback plus any remote block, with DETAILED_TRACEBACK passed in."""
    local_lines = formatTraceback(ex_type, ex_value, ex_tb, detailed)
    remote_lines = getattr(ex_value, "_pyroTraceback", None)
    if remote_lines:
        return local_lines + format_remote_traceback(remote_lines)
    return local_lines


def getPyroTraceback(ex_type: Any = None, ex_value: Any = None,
                     ex_tb: Optional[TracebackType] = None) -> List[str]:
    """Traceback lines of an exception including the remote traceback it carries, if any.

    Without arguments the exception currently being handled is used.
    """
    ex_type, ex_value, ex_tb = _exc_info(ex_type, ex_value, ex_tb)
    try:
        return pyro_traceback_lines(ex_type, ex_value, ex_tb, config.DETAILED_TRACEBACK)
    finally:
        del ex_type, ex_value, ex_tb  # break the frame <-> traceback cycle early


def formatTraceback(ex_type: Any = None, ex_value: Any = None, ex_tb: Optional[TracebackType] = None,
                    detailed: bool = False) -> List[str]:
    """Traceback lines of an exception; ``detailed`` adds source lines and local values per frame."""
    ex_type, ex_value, ex_tb = _exc_info(ex_type, ex_value, ex_tb)
    if detailed and sys.platform != "cli":
        return _detailed_traceback(ex_type, ex_value, ex_tb)
    return traceback.format_exception(ex_type, ex_value, ex_tb)


def excepthook(ex_type: Any, ex_value: Any, ex_tb: Optional[TracebackType]) -> None:
    """A ``sys.excepthook`` that also prints the remote part of Pyro exceptions."""
    sys.stderr.write("".join(getPyroTraceback(ex_type, ex_value, ex_tb)))


# ---------------------------------------------------------------------------------------------
# Detailed form

def _safe_repr(value: Any) -> str:
    """repr, else str, else a placeholder: printing a traceback must not raise."""
    for render in (repr, str):
        try:
            return render(value)
        except Exception:
            continue
    return UNPRINTABLE_VALUE


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return _safe_repr(value)


def _detailed_traceback(ex_type: Any, ex_value: Any, ex_tb: Optional[TracebackType]) -> List[str]:
    try:
        return _detailed_lines(ex_type, ex_value, ex_tb)
    except Exception:
        # Last resort, worded as Pyro4 words it: the plain traceback of both failures.
        return [_RULE[:-1] + "\nError building extended traceback!!! :\n",
                "".join(traceback.format_exception(*sys.exc_info())) + _RULE,
                "Original Exception follows:\n",
                "".join(traceback.format_exception(ex_type, ex_value, ex_tb))]


def _detailed_lines(ex_type: Any, ex_value: Any, ex_tb: Optional[TracebackType]) -> List[str]:
    headline = " EXCEPTION %s: %s\n" % (_safe_str(ex_type), _safe_str(ex_value))
    lines = [_RULE, headline, " Extended stacktrace follows (most recent call last)\n"]
    show_locals = False  # the outermost frame is where the error was caught: its locals are noise
    tb = ex_tb
    while tb is not None:
        lines.extend(_frame_lines(tb, show_locals))
        show_locals = True
        tb = tb.tb_next
    lines += [_RULE, headline, _RULE]
    return lines


def _frame_lines(tb: TracebackType, show_locals: bool) -> List[str]:
    frame = tb.tb_frame
    code = frame.f_code
    local_values = frame.f_locals
    location = code.co_name
    if "self" in local_values:
        location = "%s.%s" % (_class_name(local_values["self"]), code.co_name)
    lineno = tb.tb_lineno
    source = linecache.getline(code.co_filename, lineno) if isinstance(lineno, int) else ""
    lines = [_RULE,
             'File "%s", line %s, in %s\n' % (code.co_filename, lineno, location),
             "Source code:\n",
             "    " + source.strip() + "\n"]
    if show_locals:
        lines.append("Local values:\n")
        lines.extend(_local_value_lines(code, local_values))
    return lines


def _local_value_lines(code: Any, local_values: Any) -> List[str]:
    names = set(code.co_varnames) | set(code.co_names) | set(code.co_cellvars) | set(code.co_freevars)
    lines = []
    for name in sorted(names):
        if name not in local_values:
            continue
        value = local_values[name]
        lines.append("    %s = %s\n" % (name, _safe_repr(value)))
        if name == "self":
            lines.extend("        self.%s = %s\n" % (attr, _safe_repr(attr_value))
                         for attr, attr_value in _instance_vars(value))
    return lines


def _class_name(obj: Any) -> str:
    try:
        return obj.__class__.__name__
    except Exception:
        return type(obj).__name__


def _instance_vars(obj: Any) -> List[Tuple[str, Any]]:
    try:
        return list(vars(obj).items())
    except Exception:  # __slots__ objects have no vars(); a broken __dict__ property may raise
        return []


# ---------------------------------------------------------------------------------------------

def fixIronPythonExceptionForPickle(exceptionObject: Any, addAttributes: bool) -> None:
    """Carry exception attributes inside ``args`` and back (IronPython could not pickle them).

    With ``addAttributes`` the exception's own attribute dict, flagged with
    ``__ironpythonargs__``, is appended to ``args``; without it such a trailing dict is
    removed from ``args`` and merged back into the attributes.
    """
    if not hasattr(exceptionObject, "args"):
        return
    if addAttributes:
        attributes = vars(exceptionObject)  # the live __dict__, as Pyro4 appends it
        attributes[IRONPYTHON_MARKER] = True
        exceptionObject.args += (attributes,)
        return
    if not exceptionObject.args:
        return
    piggyback = exceptionObject.args[-1]
    if type(piggyback) is dict and piggyback.get(IRONPYTHON_MARKER):
        del piggyback[IRONPYTHON_MARKER]
        exceptionObject.args = exceptionObject.args[:-1]
        exceptionObject.__dict__.update(piggyback)
