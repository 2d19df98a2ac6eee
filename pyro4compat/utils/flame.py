"""``Pyro4.utils.flame``: Flame, "Foreign Location Automatic Module Exposer".

Flame hands a client the whole server process: remote modules, builtins, code execution, files
and an interactive console. That is only acceptable on trusted networks, so it is off unless the
server sets ``FLAME_ENABLED``, and it needs pickle (the objects it returns, such as
:class:`FlameModule`, carry proxies and arbitrary values): the server must accept *only* pickle and
the client must send pickle. The guards, their exception types and texts are Pyro4 4.82's.

Theory of operation. :func:`start` registers one :class:`Flame` object as ``Pyro.Flame``. Calls on a
:class:`FlameModule` never reach the server as dotted method names: the ``FlameModule`` turns
``mod.attr(...)`` into a plain ``invokeModule("mod.attr", args, kwargs)`` call, which looks the dotted
name up on the server. :class:`FlameModule`, :class:`FlameBuiltin` and :class:`RemoteInteractiveConsole`
travel under Pyro4's wire names (``Pyro4.utils.flame.*``), so Pyro4 and pyro4compat Flame clients and
servers can be mixed. ``execute`` and ``evaluate`` share one namespace (Pyro4 used its module's
globals), so a name defined by ``execute`` can be read by a later ``evaluate``.

Differences from Pyro4: ``getmodule("a.b")`` returns the source of ``a.b`` (Pyro4 returned the
source of the top-level package ``a``), a :class:`FlameModule` does not pretend to have dunder
attributes (so ``copy`` and ``pickle`` see a normal object), and the console's output capture is
serialised with a lock and shows errors to the client even when the server has its own
``sys.excepthook``.
"""

from __future__ import annotations

import builtins
import code
import contextlib
import importlib
import inspect
import io
import os
import stat
import sys
import threading
import traceback
import types
from typing import Any, Dict, Optional, Tuple

from .. import constants, errors
from .._client.calls import _RemoteMethod
from .._client.proxy import Proxy
from .._serializers import wirenames
from .._server.exposure import expose
from .._uri import URI
from ..configuration import config

__all__ = ["connect", "start", "createModule", "Flame"]

# Error texts users match on (Pyro4 4.82's wording).
DISABLED_TEXT = "Flame is disabled in the server configuration"
SERVER_PICKLE_TEXT = "Flame requires the pickle serializer exclusively"
FLAME_OBJECT_PICKLE_TEXT = "flame requires the pickle serializer exclusively"
CLIENT_PICKLE_TEXT = "Flame requires the pickle serializer"

_OWNER_READ_WRITE = stat.S_IRUSR | stat.S_IWUSR


def _pickle_only_accepted() -> bool:
    return set(config.SERIALIZERS_ACCEPTED) == {"pickle"}


def fixExecSourceNewlines(source: str) -> str:
    """Source ready for ``compile``: trailing whitespace would give IndentationErrors, so it goes."""
    return source.rstrip()


def exec_function(source: str, filename: str, global_map: Dict[str, Any]) -> None:
    """Run ``source`` (as read from ``filename``) with ``global_map`` as its globals."""
    exec(compile(fixExecSourceNewlines(source), filename, "exec"), global_map)


# The namespace ``execute`` and ``evaluate`` share; it offers what Pyro4's module globals offered.
_shared_namespace: Dict[str, Any] = {
    "__name__": __name__, "__builtins__": builtins, "builtins": builtins, "code": code,
    "constants": constants, "config": config, "errors": errors, "importlib": importlib,
    "os": os, "stat": stat, "sys": sys, "types": types,
}


def _own_proxy(flameserver: Any) -> Proxy:
    """A fresh proxy to the Flame object, whatever the AUTOPROXY setting."""
    return Proxy(flameserver._pyroDaemon.uriFor(flameserver))


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


_FLAME_MODULE_STATE = ("flameserver", "module")


class FlameModule(object):
    """A remote module: ``flamemodule.func(args)`` calls ``module.func(args)`` on the server."""

    def __init__(self, flameserver: Any, module: str) -> None:
        self.flameserver = _own_proxy(flameserver)
        self.module = module

    def __getattr__(self, item: str) -> _RemoteMethod:
        if _is_dunder(item) or item in _FLAME_MODULE_STATE:
            # protocol probes (pickle, copy) are no remote functions; missing state is just missing
            raise AttributeError(item)
        return _RemoteMethod(self.__invoke, "%s.%s" % (self.module, item), 0)

    def __getstate__(self) -> Dict[str, Any]:
        return self.__dict__

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__ = state

    def __invoke(self, dottedname: str, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        return self.flameserver.invokeModule(dottedname, args, kwargs)

    def __enter__(self) -> "FlameModule":
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        self.flameserver._pyroRelease()

    def __repr__(self) -> str:
        return "<%s.%s at 0x%x; module '%s' at %s>" % (type(self).__module__, type(self).__name__, id(self),
                                                       self.module, self.flameserver._pyroUri.location)


class FlameBuiltin(object):
    """A remote builtin function: calling it calls the builtin on the server."""

    def __init__(self, flameserver: Any, builtin: str) -> None:
        self.flameserver = _own_proxy(flameserver)
        self.builtin = builtin

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.flameserver.invokeBuiltin(self.builtin, args, kwargs)

    def __enter__(self) -> "FlameBuiltin":
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        self.flameserver._pyroRelease()

    def __repr__(self) -> str:
        return "<%s.%s at 0x%x; builtin '%s' at %s>" % (type(self).__module__, type(self).__name__, id(self),
                                                        self.builtin, self.flameserver._pyroUri.location)


class RemoteInteractiveConsole(object):
    """Client side of a console session on the server; :meth:`interact` runs it on our terminal."""

    class LineSendingConsole(code.InteractiveConsole):
        """A local console loop whose every line is executed remotely."""

        def __init__(self, remoteconsole: Any) -> None:
            code.InteractiveConsole.__init__(self, filename="<remoteconsole>")
            self.remoteconsole = remoteconsole

        def push(self, line: str, *args: Any, **kwargs: Any) -> bool:
            output, more = self.remoteconsole.push_and_get_output(line)
            if output:
                sys.stdout.write(output)
            return more

    def __init__(self, remoteconsoleuri: Any) -> None:
        self.remoteconsole = Proxy(remoteconsoleuri)

    def interact(self) -> None:
        """Read lines from stdin and run them remotely until end of input."""
        console = self.LineSendingConsole(self.remoteconsole)
        console.interact(banner=self.remoteconsole.get_banner())
        print("(Remote session ended)")

    def close(self) -> None:
        """End the session on the server and drop the connection."""
        self.remoteconsole.terminate()
        self.remoteconsole._pyroRelease()

    def terminate(self) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<%s.%s at 0x%x; for %s>" % (type(self).__module__, type(self).__name__, id(self),
                                            self.remoteconsole._pyroUri.location)

    def __enter__(self) -> "RemoteInteractiveConsole":
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        self.close()


# sys.stdout is one per process: two consoles capturing at once would steal each other's output.
_capture_lock = threading.Lock()


@expose
class InteractiveConsole(code.InteractiveConsole):
    """Server side of a console session: runs lines and returns what they printed."""

    banner = ""

    def push_and_get_output(self, line: str) -> Tuple[str, bool]:
        captured = io.StringIO()
        with _capture_lock, contextlib.redirect_stdout(captured):
            more = self.push(line)
        return captured.getvalue(), more

    def get_banner(self) -> str:
        return self.banner

    def write(self, data: str) -> None:
        sys.stdout.write(data)  # tracebacks go to the captured stdout, so the client sees them

    # code.InteractiveInterpreter hands errors to a custom sys.excepthook when one is set (as
    # Pyro users often do), which would print them on the server. The client must see them.
    def showtraceback(self) -> None:
        exc_type, exc_value, tb = sys.exc_info()
        self.write("".join(traceback.format_exception(exc_type, exc_value, tb.tb_next if tb else None)))

    def showsyntaxerror(self, filename: Optional[str] = None, **kwargs: Any) -> None:
        exc_type, exc_value, _ = sys.exc_info()
        if filename and isinstance(exc_value, SyntaxError):
            exc_value.filename = filename
        self.write("".join(traceback.format_exception_only(exc_type, exc_value)))

    def terminate(self) -> None:
        self._pyroDaemon.unregister(self)
        self.resetbuffer()


@expose
class Flame(object):
    """The Flame service: full access to the server process for whoever can connect. Use with care."""

    def __init__(self) -> None:
        if not _pickle_only_accepted():
            raise RuntimeError(FLAME_OBJECT_PICKLE_TEXT)

    def module(self, name: str) -> FlameModule:
        """Import module ``name`` on the server; return a proxy whose calls run its functions."""
        importlib.import_module(name)
        return FlameModule(self, name)

    def builtin(self, name: str) -> FlameBuiltin:
        """A callable proxy to the server's builtin ``name``."""
        return FlameBuiltin(self, name)

    def execute(self, code: str) -> None:
        """Execute statements on the server (in the namespace ``evaluate`` reads)."""
        exec_function(code, "<remote-code>", _shared_namespace)

    def evaluate(self, expression: str) -> Any:
        """Evaluate an expression on the server and return its value."""
        return eval(expression, _shared_namespace, {"self": self, "expression": expression})

    def sendmodule(self, modulename: str, modulesource: str) -> None:
        """Create (or replace) module ``modulename`` on the server from its source."""
        createModule(modulename, modulesource)

    def getmodule(self, modulename: str) -> str:
        """The source code of a module on the server."""
        return inspect.getsource(importlib.import_module(modulename))

    def sendfile(self, filename: str, filedata: bytes) -> None:
        """Write a file on the server, readable and writable by its owner only."""
        with open(filename, "wb") as targetfile:
            os.chmod(filename, _OWNER_READ_WRITE)
            targetfile.write(filedata)

    def getfile(self, filename: str) -> bytes:
        """The contents of any file the server can read."""
        with open(filename, "rb") as diskfile:
            return diskfile.read()

    def console(self) -> RemoteInteractiveConsole:
        """Start a console session on the server; its object lives until the client closes it."""
        console = InteractiveConsole(filename="<remoteconsole>")
        uri = self._pyroDaemon.register(console)
        console.banner = "Python %s on %s\n(Remote console on %s)" % (sys.version, sys.platform, uri.location)
        return RemoteInteractiveConsole(uri)

    @expose
    def invokeBuiltin(self, builtin: str, args: Any, kwargs: Any) -> Any:
        return getattr(builtins, builtin)(*args, **kwargs)

    @expose
    def invokeModule(self, dottedname: str, args: Any, kwargs: Any) -> Any:
        """Call ``module.attr.attr...(*args, **kwargs)``; the module must be imported already.

        The dotted lookup (private names included) is deliberate: Flame already grants everything.
        """
        modulename, _, path = dottedname.partition(".")
        target = sys.modules[modulename]
        for attr in path.split("."):
            target = getattr(target, attr)
        return target(*args, **kwargs)


def createModule(name: str, source: str, filename: str = "<dynamic-module>",
                 namespace: Optional[Dict[str, Any]] = None) -> types.ModuleType:
    """Create module ``name`` (dotted names build the package chain) from source, in ``sys.modules``.

    Modules already loaded are reused, not replaced. With ``namespace`` (such as ``globals()``), the
    top-level package is also bound there, as ``import a.b`` would bind ``a``.
    """
    components = name.split(".")
    parent: Any = types.ModuleType("pyro-flame-module-context")
    module = parent
    for depth, component in enumerate(components, 1):
        dotted = ".".join(components[:depth])
        module = sys.modules.get(dotted)
        if module is None:
            module = types.ModuleType(dotted)
            sys.modules[dotted] = module
            setattr(parent, component, module)
        parent = module
    exec_function(source, filename, module.__dict__)
    if namespace is not None:
        namespace[components[0]] = sys.modules[components[0]]
    return module


def start(daemon: Any) -> URI:
    """Register a :class:`Flame` in ``daemon`` as ``Pyro.Flame``: only with FLAME_ENABLED and pickle only."""
    if not config.FLAME_ENABLED:
        raise errors.SecurityError(DISABLED_TEXT)
    if not _pickle_only_accepted():
        raise errors.SerializeError(SERVER_PICKLE_TEXT)
    return daemon.register(Flame(), constants.FLAME_NAME)


def connect(location: str, hmac_key: Any = None) -> Proxy:
    """A bound proxy to the Flame server at ``location`` (``host:port`` or ``./u:socketpath``)."""
    if config.SERIALIZER != "pickle":
        raise errors.SerializeError(CLIENT_PICKLE_TEXT)
    proxy = Proxy("PYRO:%s@%s" % (constants.FLAME_NAME, location))
    if hmac_key:
        proxy._pyroHmacKey = hmac_key
    proxy._pyroBind()
    return proxy


for _cls in (FlameModule, FlameBuiltin, RemoteInteractiveConsole):
    wirenames.register_wire_class("Pyro4.utils.flame." + _cls.__name__, _cls, state_key=None)
del _cls
