"""``_ExceptionWrapper``: an exception carried as a *value* (batch results, futures).

A normal remote error travels with the EXCEPTION flag; inside a batch result list that flag
can't say which item failed, so the failed call's slot holds one of these instead and the
receiver re-raises it when it gets there. On the wire it is ``Pyro4.futures._ExceptionWrapper``:
``{"__class__": ..., "exception": <exception dict>}`` in the dict-based serializers, and a plain
object with an ``exception`` attribute in the pickle family. Its public home is
``pyro4compat.futures``.
"""

from __future__ import annotations

from typing import NoReturn

from . import wirenames
from .base import SerializerBase

__all__ = ["_ExceptionWrapper"]

WIRE_NAME = "Pyro4.futures._ExceptionWrapper"


class _ExceptionWrapper:
    """Holds an exception so it can sit among ordinary results."""

    def __init__(self, exception: BaseException) -> None:
        self.exception = exception

    def raiseIt(self) -> NoReturn:
        """Raise the wrapped exception."""
        raise self.exception

    def __serialized_dict__(self) -> dict:
        """The dict form the dict-based serializers send."""
        return {"__class__": WIRE_NAME, "exception": self.__getstate_for_dict__()}

    def __getstate_for_dict__(self) -> dict:
        return SerializerBase.class_to_dict(self.exception)

    def __setstate_from_dict__(self, state: BaseException) -> None:
        if not isinstance(state, BaseException):
            raise TypeError("an _ExceptionWrapper must wrap an exception, not %s" % type(state).__name__)
        self.exception = state

    def __repr__(self) -> str:
        return "<%s.%s %r>" % (type(self).__module__, type(self).__name__, self.exception)


wirenames.register_wire_class(WIRE_NAME, _ExceptionWrapper, state_key="exception")
