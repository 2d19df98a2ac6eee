"""Autoproxy: a registered Pyro object travelling in a call or result becomes a proxy to it."""

from __future__ import annotations

from typing import Any

from ..configuration import config

__all__ = ["pyroObjectToAutoProxy"]


def pyroObjectToAutoProxy(obj: Any) -> Any:
    """Type replacement installed by ``Daemon.register``: a proxy for registered objects, else ``obj``."""
    if config.AUTOPROXY:
        daemon = getattr(obj, "_pyroDaemon", None)
        if daemon:
            return daemon.proxyFor(obj)
    return obj
