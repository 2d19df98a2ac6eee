"""``Pyro4.test.echoserver``: a ready-made server for trying out clients and checking connectivity.

Run it with ``python -m pyro4compat.test.echoserver`` (or ``pyro4compat-test-echoserver``); it
serves :class:`EchoServer` as ``test.echoserver`` and prints ``echo uri: PYRO:...``. Like Pyro4's,
it always uses the multiplexing server, optionally registers itself in a name server (``-n``) and
can start one of its own in a background thread (``-N``).

Its output lines, options, object name and error texts are Pyro4 4.82's: scripts that drive
Pyro4's echo server drive this one. Unlike Pyro4's, every line is flushed as it is printed (a
parent reading the URI from a pipe sees it at once) and ``-N`` does not use the deprecated
``Thread.setDaemon``, and a name server that can't start (``-N`` on a port in use) is an error
rather than a hang.
"""

from __future__ import annotations

import sys
import threading
import time
from optparse import OptionParser
from typing import Any, List, Optional, Tuple

from .. import naming
from .._server.daemon import Daemon
from .._server.exposure import expose, oneway
from .._uri import URI
from ..configuration import config

__all__ = ["EchoServer"]

OBJECT_NAME = "test.echoserver"
SLOW_DELAY = 5.0  # seconds slow() and oneway_slow() take; Pyro4's value (tests may shorten it)


def _say(text: str) -> None:
    print(text)
    sys.stdout.flush()


def _printable(value: Any) -> str:
    """``repr(value)`` made safe for the console's encoding (unencodable characters replaced)."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    return repr(value).encode(encoding, errors="replace").decode(encoding)


@expose
class EchoServer(object):
    """The echo object: returns what it gets, raises on request, and prints calls when verbose."""

    _verbose = False
    _must_shutdown = False

    def _log(self, text: str) -> None:
        if self._verbose:
            _say("%s - %s" % (time.asctime(), text))

    def echo(self, message: Any) -> Any:
        """Return the message unchanged."""
        if self._verbose:
            self._log("echo: %s" % _printable(message))
        return message

    def error(self) -> None:
        """Raise a ValueError, to see a remote exception arrive."""
        self._log("error: generating exception")
        raise ValueError("expected error from echoserver error() method")

    def error_with_text(self) -> None:
        """Raise a ValueError with another message."""
        self._log("error: generating exception")
        raise ValueError("the message of the error")

    @oneway
    def oneway_echo(self, message: Any) -> str:
        """Like echo, but one-way: the caller never sees this return value."""
        if self._verbose:
            self._log("oneway_echo: %s" % _printable(message))
        return "bogus return value"

    def slow(self) -> str:
        """Answer after a delay, to try out timeouts."""
        self._log("slow: waiting a bit...")
        time.sleep(SLOW_DELAY)
        self._log("slow: returning result")
        return "Finally, an answer!"

    def generator(self) -> Any:
        """Yield three strings: a remote iterator for the client."""
        yield "one"
        yield "two"
        yield "three"

    def nan(self) -> float:
        return float("nan")

    def inf(self) -> float:
        return float("inf")

    @oneway
    def oneway_slow(self) -> str:
        """Like slow, but one-way: the caller goes on at once."""
        self._log("oneway_slow: waiting a bit...")
        time.sleep(SLOW_DELAY)
        self._log("oneway_slow: returning result")
        return "bogus return value"

    def _private(self) -> str:
        """Not remotely callable: a leading underscore makes a name private."""
        return "should not be allowed"

    def __private(self) -> str:
        """Not remotely callable either (name-mangled private)."""
        return "should not be allowed"

    def __dunder__(self) -> str:
        """Remotely callable: dunder names are not private."""
        return "should be allowed (dunder)"

    def shutdown(self) -> None:
        """Make :func:`main`'s request loop end after this call."""
        self._log("shutting down")
        self._must_shutdown = True

    @property
    def verbose(self) -> bool:
        return self._verbose

    @verbose.setter
    def verbose(self, onoff: Any) -> None:
        self._verbose = bool(onoff)


class NameServer(threading.Thread):
    """A name server (and broadcast responder, if any) served in a background thread."""

    def __init__(self, hostname: Optional[str], hmac: Any = None) -> None:
        super(NameServer, self).__init__(daemon=True)
        self.hostname = hostname
        self.hmac = hmac
        self.started = threading.Event()

        self.startup_error: Optional[BaseException] = None

    def run(self) -> None:
        try:
            self.uri, self.ns_daemon, self.bc_server = naming.startNS(self.hostname, hmac=self.hmac)
        except Exception as exc:  # e.g. the port is taken: reported by startNameServer, not lost here
            self.startup_error = exc
            return
        finally:
            self.started.set()
        if self.bc_server:
            self.bc_server.runInThread()
        self.ns_daemon.requestLoop()


def startNameServer(host: Optional[str], hmac: Any = None) -> NameServer:
    """Start a :class:`NameServer` thread and return it once its URI is known.

    If the name server can't start, its error is raised here (Pyro4 would wait forever).
    """
    ns = NameServer(host, hmac=hmac)
    ns.start()
    ns.started.wait()
    if ns.startup_error is not None:
        ns.join()
        raise ns.startup_error
    return ns


# (short, long, keyword arguments of optparse's add_option), Pyro4's options and help texts
_OPTIONS: List[Tuple[str, str, dict]] = [
    ("-H", "--host", dict(default="localhost", help="hostname to bind server on (default=%default)")),
    ("-p", "--port", dict(type="int", default=0, help="port to bind server on")),
    ("-u", "--unixsocket", dict(help="Unix domain socket name to bind server on")),
    ("-n", "--naming", dict(action="store_true", default=False, help="register with nameserver")),
    ("-N", "--nameserver", dict(action="store_true", default=False, help="also start a nameserver")),
    ("-v", "--verbose", dict(action="store_true", default=False, help="verbose output")),
    ("-q", "--quiet", dict(action="store_true", default=False, help="don't output anything")),
    ("-k", "--key", dict(help="the HMAC key to use (deprecated)")),
]


def _parse(args: Optional[List[str]]) -> Any:
    parser = OptionParser()
    for short, long, kwargs in _OPTIONS:
        parser.add_option(short, long, **kwargs)
    options, _ = parser.parse_args(args)
    options.key = naming._tool_hmac_key(options.key)
    if options.verbose:
        options.quiet = False
    return options


def _register_in_nameserver(options: Any, nameserver: Optional[NameServer], uri: URI, hmac: bytes) -> None:
    host, port = (nameserver.uri.host, nameserver.uri.port) if nameserver is not None else (None, None)
    ns = naming.locateNS(host, port, hmac_key=hmac)
    try:
        ns.register(OBJECT_NAME, uri)
        if options.verbose:
            _say("using name server at %s" % ns._pyroUri)
            if nameserver is not None:
                if nameserver.bc_server:
                    _say("broadcast server running at %s" % nameserver.bc_server.locationStr)
                else:
                    _say("not using a broadcast server")
    finally:
        ns._pyroRelease()


def _stop_nameserver(nameserver: Optional[NameServer]) -> None:
    if nameserver is not None:
        nameserver.ns_daemon.shutdown()
        if nameserver.bc_server:
            nameserver.bc_server.close()


def main(args: Optional[List[str]] = None, returnWithoutLooping: bool = False) -> Any:
    """Run the echo server until a client calls ``shutdown()``.

    With ``returnWithoutLooping`` it returns ``(daemon, echo_object, uri)`` instead of serving,
    for tests that drive the daemon themselves.
    """
    options = _parse(args)
    if not options.quiet:
        _say("Starting Pyro's built-in test echo server.")
    config.SERVERTYPE = "multiplex"  # a tool's own setting, as in Pyro4: one thread serves everyone
    hmac = (options.key or "").encode("utf-8")
    if not hmac and not options.quiet:
        _say("Warning: HMAC key not set. Anyone can connect to this server!")
    nameserver = None
    if options.nameserver:
        options.naming = True
        nameserver = startNameServer(options.host, hmac=hmac)
    daemon = Daemon(host=options.host, port=options.port, unixsocket=options.unixsocket)
    if hmac:
        daemon._pyroHmacKey = hmac
    echo = EchoServer()
    echo._verbose = options.verbose
    uri = daemon.register(echo, OBJECT_NAME)
    if options.naming:
        try:
            _register_in_nameserver(options, nameserver, uri, hmac)
        except BaseException:
            daemon.close()
            _stop_nameserver(nameserver)
            raise
    elif options.verbose:
        _say("not using a name server.")
    if not options.quiet:
        _say("object name: %s" % OBJECT_NAME)
        _say("echo uri: %s" % uri)
        _say("echoserver running.")
    if returnWithoutLooping:
        return daemon, echo, uri
    try:
        daemon.requestLoop(loopCondition=lambda: not echo._must_shutdown)
    finally:
        daemon.close()
        _stop_nameserver(nameserver)
    return None


if __name__ == "__main__":
    main()
