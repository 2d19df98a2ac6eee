"""``Pyro4.utils.flameserver``: run a Flame server from the command line.

``python -m pyro4compat.utils.flameserver`` (or ``pyro4compat-flameserver``) serves Flame as
``Pyro.Flame`` and prints ``server uri: PYRO:Pyro.Flame@...``. Flame must be enabled first
(``PYRO_FLAME_ENABLED=true``); the server then accepts only pickle. Output lines, options and errors
are Pyro4 4.82's; unlike Pyro4 it closes its listening socket when Flame refuses to start, and
flushes each line as it prints it.
"""

from __future__ import annotations, print_function

import os
import sys
import warnings
from optparse import OptionParser
from typing import Any, List, Optional, Tuple

from .. import naming
from .._server.daemon import Daemon
from .._star import lazy_modules
from ..configuration import config
from . import flame

# Pyro4's module has no __all__, so its star-import also yields what it imported: the second line.
__all__ = ["main", "config", "core", "flame", "os", "print_function", "sys", "warnings"]
# ``core`` is a facade that the package's own modules do not import; bound when first asked for.
__getattr__ = lazy_modules(__name__, {"core": "pyro4compat.core"})

# (short, long, keyword arguments of optparse's add_option), Pyro4's options and help texts
_OPTIONS: List[Tuple[str, str, dict]] = [
    ("-H", "--host", dict(default="localhost", help="hostname to bind server on (default=%default)")),
    ("-p", "--port", dict(type="int", default=0, help="port to bind server on")),
    ("-u", "--unixsocket", dict(help="Unix domain socket name to bind server on")),
    ("-q", "--quiet", dict(action="store_true", default=False, help="don't output anything")),
    ("-k", "--key", dict(help="the HMAC key to use (deprecated)")),
]


def _say(text: str) -> None:
    print(text)
    sys.stdout.flush()


def _parse(args: Optional[List[str]]) -> Any:
    parser = OptionParser()
    for short, long, kwargs in _OPTIONS:
        parser.add_option(short, long, **kwargs)
    options, _ = parser.parse_args(args)
    options.key = naming._tool_hmac_key(options.key)
    return options


def main(args: Optional[List[str]] = None, returnWithoutLooping: bool = False) -> Any:
    """Serve Flame until interrupted; exit status 0.

    With ``returnWithoutLooping`` it returns ``(daemon, uri)`` instead of serving (for tests).
    """
    options = _parse(args)
    if not options.quiet:
        _say("Starting Pyro Flame server.")
    hmac = (options.key or "").encode("utf-8")
    if not hmac and not options.quiet:
        _say("Warning: HMAC key not set. Anyone can connect to this server!")
    config.SERIALIZERS_ACCEPTED = {"pickle"}  # a tool's own setting, as in Pyro4: Flame works only with pickle
    daemon = Daemon(host=options.host, port=options.port, unixsocket=options.unixsocket)
    if hmac:
        daemon._pyroHmacKey = hmac
    try:
        uri = flame.start(daemon)
    except BaseException:
        daemon.close()
        raise
    if not options.quiet:
        _say("server uri: %s" % uri)
        _say("server is running.")
    if returnWithoutLooping:
        return daemon, uri
    try:
        daemon.requestLoop()
    finally:
        daemon.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
