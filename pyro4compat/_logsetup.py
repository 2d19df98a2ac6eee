"""Import-time logging setup driven by ``PYRO_LOGLEVEL`` / ``PYRO_LOGFILE``, as Pyro4 does it.

Loggers are named ``Pyro4.*`` (not ``pyro4compat.*``) so logging configuration written for
Pyro4 keeps working after the switch.
"""

from __future__ import annotations

import logging
import os
import tempfile

LOGGER_ROOT = "Pyro4"
SILENT_LEVEL = 9999


def configure_logging() -> None:
    """Enable file (or stderr) logging when ``PYRO_LOGLEVEL`` is set, else silence ``Pyro4``."""
    level = os.environ.get("PYRO_LOGLEVEL")
    log = logging.getLogger(LOGGER_ROOT)
    if not level:
        log.setLevel(SILENT_LEVEL)
        return
    if logging.root.handlers:
        return  # the application configured logging itself; leave it alone
    levelvalue = getattr(logging, level)
    filename = os.environ.get("PYRO_LOGFILE", "pyro.log")
    if filename == "{stderr}":
        logging.basicConfig(level=levelvalue)
    elif _can_write_in(os.path.dirname(os.path.expanduser(filename))):
        logging.basicConfig(
            level=levelvalue,
            filename=filename,
            datefmt="%Y-%m-%d %H:%M:%S",
            format="[%(asctime)s.%(msecs)03d,%(name)s,%(levelname)s] %(message)s",
        )
    else:
        logging.basicConfig(level=levelvalue)
        log.warning("unable to write to the desired logfile (access rights?), falling back to console logger")
    log.info("Pyro log configured using built-in defaults, level=%s", level)


def _can_write_in(directory: str) -> bool:
    try:
        with tempfile.TemporaryFile(dir=directory or None):
            return True
    except OSError:
        return False
