"""Instance modes of registered classes: one per daemon, per connection, or per call.

``@behavior(instance_mode=..., instance_creator=...)`` (or registration of an undecorated
class, which means ``("session", None)``) stores ``_pyroInstancing`` on the class. The daemon
asks :class:`InstanceFactory` for the object that serves a call.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Dict, Optional

from .. import errors

__all__ = ["InstanceFactory"]

log = logging.getLogger("Pyro4.core")


def _create(clazz: type, creator: Optional[Callable[[type], Any]]) -> Any:
    try:
        if creator is None:
            return clazz()
        instance = creator(clazz)
        if not isinstance(instance, clazz):
            raise TypeError("instance creator returned object of different type")
        return instance
    except Exception:
        log.exception("could not create pyro object instance")
        raise


class InstanceFactory:
    """Finds or creates the instance of a registered class that serves a call."""

    def __init__(self) -> None:
        self.singletons: Dict[type, Any] = {}
        self._single_lock = threading.Lock()
        self._modes = {"single": self._single, "session": self._session, "percall": self._percall}

    def instance_for(self, clazz: type, conn: Any) -> Any:
        mode, creator = clazz._pyroInstancing
        make = self._modes.get(mode)
        if make is None:
            raise errors.DaemonError("invalid instancemode in registered class")
        return make(clazz, creator, conn)

    def _single(self, clazz: type, creator: Any, conn: Any) -> Any:
        with self._single_lock:  # two first calls at once still make one instance
            instance = self.singletons.get(clazz)
            if instance is None:
                log.debug("instancemode single: creating new pyro object for %s", clazz)
                instance = self.singletons[clazz] = _create(clazz, creator)
            return instance

    @staticmethod
    def _session(clazz: type, creator: Any, conn: Any) -> Any:
        # Only the connection's own (sequential) requests touch conn.pyroInstances.
        instance = conn.pyroInstances.get(clazz)
        if instance is None:
            log.debug("instancemode session: creating new pyro object for %s", clazz)
            instance = conn.pyroInstances[clazz] = _create(clazz, creator)
        return instance

    @staticmethod
    def _percall(clazz: type, creator: Any, conn: Any) -> Any:
        log.debug("instancemode percall: creating new pyro object for %s", clazz)
        return _create(clazz, creator)
