"""pyro4compat: Pyro4 4.82's API and wire protocol, maintained.

``import pyro4compat as Pyro4`` gives the names ``import Pyro4`` gives; call
:func:`install_as_pyro4` to make ``import Pyro4`` itself resolve to this package.
"""

import sys

from ._logsetup import configure_logging as _configure_logging

_configure_logging()

from . import configuration, constants, core, errors, futures, message, socketutil, util  # noqa: E402
from ._install import install_as_pyro4  # noqa: E402
from .configuration import config  # noqa: E402
from .constants import VERSION as __version__  # noqa: E402
from .core import (URI, Daemon, Proxy, asyncproxy, batch, behavior, callback, current_context,  # noqa: E402
                   expose, oneway)
from .core import _locateNS as locateNS  # noqa: E402
from .core import _resolve as resolve  # noqa: E402
from .futures import Future  # noqa: E402

# What ``from Pyro4 import *`` gives: Pyro4's API, its submodules and the ``sys`` it imported; not
# install_as_pyro4, which Pyro4 does not have.
__all__ = ["Daemon", "Future", "Proxy", "URI", "asyncproxy", "batch", "behavior", "callback", "config",
           "current_context", "expose", "locateNS", "oneway", "resolve",
           "configuration", "constants", "core", "errors", "futures", "message", "socketutil", "util", "sys"]
