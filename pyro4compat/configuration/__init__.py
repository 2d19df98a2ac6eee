"""Pyro4's configuration: 45 items, their defaults, and ``PYRO_<ITEM>`` environment overrides.

After Pyro4's items come pyro4compat's own (:data:`OWN_ITEMS`), set the same ways. A bad
``PYRO_<ITEM>`` value for one of ours is kept as the text it was, so ``import`` never fails on
it: the code that uses the item refuses it then, naming the item.

``config`` is the process-wide instance users change (``Pyro4.config.SERIALIZER = "json"``).
Library code only reads it, at the moments Pyro4 reads it, and never writes to it.

The class uses ``__slots__`` so that a typo such as ``config.SERIALISER = ...`` raises
``AttributeError`` instead of silently doing nothing.
"""

from __future__ import annotations, print_function

import os
import pickle
import platform
import socket
from typing import Any, Dict, List

from .. import constants

# Pyro4's module has no __all__, so its star-import also yields what it imported: the second line.
__all__ = ["Configuration", "config", "main",
           "constants", "os", "pickle", "platform", "print_function", "socket"]

ENV_PREFIX = "PYRO_"
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the pyro4compat folder
_TRUE_WORDS = frozenset({"1", "yes", "on", "true"})
_FALSE_WORDS = frozenset({"0", "off", "no", "false"})


def _dill_protocol() -> int:
    try:
        import dill  # optional; only its protocol number is needed here
    except ImportError:
        return -1
    return dill.HIGHEST_PROTOCOL


def _msg_waitall_usable() -> bool:
    # MSG_WAITALL is unreliable on Windows; elsewhere it saves a recv loop.
    return hasattr(socket, "MSG_WAITALL") and platform.system() != "Windows"


# item -> default, or a callable computing it when reset() runs. NS_HOST is absent: it is
# copied from HOST before the environment is read (so PYRO_HOST alone does not move it).
_DEFAULTS: Dict[str, Any] = {
    "HOST": "localhost",
    "NS_PORT": 9090,
    "NS_BCPORT": 9091,
    "NS_BCHOST": None,
    "NS_AUTOCLEAN": 0.0,
    "NATHOST": None,
    "NATPORT": 0,
    "COMPRESSION": False,
    "SERVERTYPE": "thread",
    "COMMTIMEOUT": 0.0,
    "POLLTIMEOUT": 2.0,
    "SOCK_REUSE": True,
    "SOCK_NODELAY": False,
    "ONEWAY_THREADED": True,
    "DETAILED_TRACEBACK": False,
    "THREADPOOL_SIZE": 40,
    "THREADPOOL_SIZE_MIN": 4,
    "AUTOPROXY": True,
    "MAX_MESSAGE_SIZE": 0,
    "BROADCAST_ADDRS": "<broadcast>, 0.0.0.0",
    "FLAME_ENABLED": False,
    "PREFER_IP_VERSION": 4,
    "SERIALIZER": "serpent",
    "SERIALIZERS_ACCEPTED": "serpent,marshal,json",
    "LOGWIRE": False,
    "PICKLE_PROTOCOL_VERSION": lambda: pickle.HIGHEST_PROTOCOL,
    "DILL_PROTOCOL_VERSION": _dill_protocol,
    "METADATA": True,
    "REQUIRE_EXPOSE": True,
    "USE_MSG_WAITALL": _msg_waitall_usable,
    "JSON_MODULE": "json",
    "MAX_RETRIES": 0,
    "ITER_STREAMING": True,
    "ITER_STREAM_LIFETIME": 0.0,
    "ITER_STREAM_LINGER": 30.0,
    "SSL": False,
    "SSL_SERVERCERT": "",
    "SSL_SERVERKEY": "",
    "SSL_SERVERKEYPASSWD": "",
    "SSL_REQUIRECLIENTCERT": False,
    "SSL_CLIENTCERT": "",
    "SSL_CLIENTKEY": "",
    "SSL_CLIENTKEYPASSWD": "",
    "SSL_CACERTS": "",
    # pyro4compat's own items
    "SHUTDOWN_GRACE": 1.0,
    "BUSYPOLL_US": 200.0,           # see pyro4compat._busypoll
    "KEEP_LARGE_BUFFERS": True,     # see pyro4compat._large_buffers
}
OWN_ITEMS = ("SHUTDOWN_GRACE", "BUSYPOLL_US", "KEEP_LARGE_BUFFERS")


def _from_env(item: str, default: Any, text: str) -> Any:
    """Cast an environment string to the type of ``default``, as Pyro4 does."""
    if default is None:
        return text
    if isinstance(default, bool):
        word = text.lower()
        if word in _FALSE_WORDS:
            return False
        if word in _TRUE_WORDS:
            return True
        raise ValueError("invalid boolean value: %s%s=%s" % (ENV_PREFIX, item, word))
    return type(default)(text)


class Configuration:
    """Pyro's settings. Unknown attribute names are refused."""

    # Pyro4's order, so asDict() lists the items as Pyro4 does.
    __slots__ = ("HOST", "NS_HOST", "NS_PORT", "NS_BCPORT", "NS_BCHOST", "NS_AUTOCLEAN",
                 "COMPRESSION", "SERVERTYPE", "COMMTIMEOUT", "POLLTIMEOUT", "ONEWAY_THREADED",
                 "DETAILED_TRACEBACK", "SOCK_REUSE", "SOCK_NODELAY", "PREFER_IP_VERSION",
                 "THREADPOOL_SIZE", "THREADPOOL_SIZE_MIN", "AUTOPROXY", "PICKLE_PROTOCOL_VERSION",
                 "BROADCAST_ADDRS", "NATHOST", "NATPORT", "MAX_MESSAGE_SIZE",
                 "FLAME_ENABLED", "SERIALIZER", "SERIALIZERS_ACCEPTED", "LOGWIRE",
                 "METADATA", "REQUIRE_EXPOSE", "USE_MSG_WAITALL", "JSON_MODULE",
                 "MAX_RETRIES", "DILL_PROTOCOL_VERSION", "ITER_STREAMING", "ITER_STREAM_LIFETIME",
                 "ITER_STREAM_LINGER", "SSL", "SSL_REQUIRECLIENTCERT", "SSL_CACERTS",
                 "SSL_SERVERCERT", "SSL_SERVERKEY", "SSL_SERVERKEYPASSWD",
                 "SSL_CLIENTCERT", "SSL_CLIENTKEY", "SSL_CLIENTKEYPASSWD") + OWN_ITEMS

    def __init__(self) -> None:
        self.reset()

    def reset(self, useenvironment: bool = True) -> None:
        """Restore the defaults, then (unless told not to) apply ``PYRO_<ITEM>`` variables."""
        for item, default in _DEFAULTS.items():
            setattr(self, item, default() if callable(default) else default)
        self.NS_HOST = self.HOST
        if useenvironment:
            for item in self.__slots__:
                text = os.environ.get(ENV_PREFIX + item)
                if text is not None:
                    setattr(self, item, self._env_value(item, text))
        self.SERIALIZERS_ACCEPTED = set(self.SERIALIZERS_ACCEPTED.split(","))

    def _env_value(self, item: str, text: str) -> Any:
        try:
            return _from_env(item, getattr(self, item), text)
        except ValueError:
            if item in OWN_ITEMS:
                return text     # refused where it is used, never at import
            raise

    def asDict(self) -> Dict[str, Any]:
        """The current settings as a plain dict."""
        return {item: getattr(self, item) for item in self.__slots__}

    def parseAddressesString(self, addresses: str) -> List[str]:
        """Split a comma separated address list; the literal ``''`` stands for the empty address."""
        result = []
        for address in addresses.split(","):
            address = address.strip()
            result.append("" if address == "''" else address)
        return result

    def dump(self) -> str:
        """A human readable report of the version, the platform and every setting."""
        settings = self.asDict()
        settings["LOGFILE"] = os.environ.get("PYRO_LOGFILE")
        settings["LOGLEVEL"] = os.environ.get("PYRO_LOGLEVEL")
        lines = [
            "Pyro version: %s" % constants.VERSION,
            "Loaded from: %s" % _PACKAGE_DIR,
            "Python version: %s %s (%s, %s)" % (
                platform.python_implementation(), platform.python_version(), platform.system(), os.name),
            "Protocol version: %d" % constants.PROTOCOL_VERSION,
            "Currently active configuration settings:",
        ]
        lines.extend("%s = %s" % (name, value) for name, value in sorted(settings.items()))
        return "\n".join(lines)


config = Configuration()


def main() -> None:
    """``python -m pyro4compat.configuration``: print the active configuration."""
    print(config.dump())


if __name__ == "__main__":
    main()
