"""Pyro object URIs: the text form that names a remote object, or the name-server query for one.

Four forms exist, told apart by the protocol keyword (matched case-insensitively, stored upper case):

    PYRO:objectid@host:port            PYRO:objectid@[ipv6]:port       PYRO:objectid@./u:sockname
    PYRONAME:name[@nshost[:nsport]]    PYROMETA:tag1,tag2[@nshost[:nsport]]

The name-server forms take ``config.NS_PORT`` when the location names a host but no port. The
config is read while parsing, as Pyro4 does, so a URI built after ``config.NS_PORT`` changes sees
the new port. Malformed text raises :class:`~pyro4compat.errors.PyroError` with Pyro4's messages,
because user code and tests match on them.

On the wire this class is ``Pyro4.core.URI`` (see the serializers' wire-name table); its state is
the 5-tuple ``(protocol, object, sockname, host, port)``, which every serializer carries as is.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, Optional, Sequence, Set, Tuple, Union

from . import errors
from .configuration import config

__all__ = ["URI"]

UNIX_SOCKET_PREFIX = "./u:"

# The bracketed IPv6 location; like Pyro4 it is anchored only at the start, so text after a
# well-formed "[addr]:port" is ignored and a non-numeric port reads as "no port".
_IPV6_LOCATION = re.compile(r"\[(?P<host>[0-9a-fA-F:%]+)\](?::(?P<port>\d+))?")

UriState = Tuple[str, Union[str, Set[str]], Optional[str], Optional[str], Optional[int]]


def _no_default_port() -> None:
    return None


def _ns_port() -> Any:
    return config.NS_PORT


def _plain_object(text: str) -> str:
    return text


def _meta_tags(text: str) -> Set[str]:
    return {tag.strip() for tag in text.split(",")}


# protocol -> (location required, default port when only a host is given, object converter)
_PROTOCOLS: Dict[str, Tuple[bool, Callable[[], Any], Callable[[str], Any]]] = {
    "PYRO": (True, _no_default_port, _plain_object),
    "PYRONAME": (False, _ns_port, _plain_object),
    "PYROMETA": (False, _ns_port, _meta_tags),
}


def _split_bracketed(location: str) -> Tuple[str, Optional[str]]:
    """``"[addr]:port"`` -> (addr, port text or None)."""
    if location.startswith("[["):
        raise errors.PyroError("invalid ipv6 address: enclosed in too many brackets")
    match = _IPV6_LOCATION.match(location)
    if match is None:
        raise errors.PyroError("invalid ipv6 address: the part between brackets must be a numeric ipv6 address")
    return match.group("host"), match.group("port")


def _to_port(value: Any) -> int:
    try:
        return int(value)
    except (ValueError, TypeError):
        raise errors.PyroError("invalid port in uri, port=" + str(value)) from None


class URI:
    """A parsed Pyro URI. Plain attributes (no ``__slots__``), so users may add their own."""

    uriRegEx = re.compile(r"(?P<protocol>[Pp][Yy][Rr][Oo][a-zA-Z]*):(?P<object>\S+?)(@(?P<location>.+))?$")

    protocol: str
    object: Union[str, Set[str]]
    sockname: Optional[str]
    host: Optional[str]
    port: Optional[int]

    def __init__(self, uri: Union[str, "URI"]) -> None:
        if isinstance(uri, URI):
            self.__setstate__(uri.__getstate__())
            return
        if not isinstance(uri, str):
            raise TypeError("uri parameter object is of wrong type")
        self.sockname = self.host = self.port = None
        match = self.uriRegEx.match(uri)
        if match is None:
            raise errors.PyroError("invalid uri")
        self.protocol = match.group("protocol").upper()
        rule = _PROTOCOLS.get(self.protocol)
        if rule is None:
            raise errors.PyroError("invalid uri (protocol)")
        location_required, default_port, to_object = rule
        location = match.group("location")
        if location_required and not location:
            raise errors.PyroError("invalid uri")
        self.object = to_object(match.group("object"))
        if location:
            self._parse_location(location, default_port())

    def _parse_location(self, location: str, default_port: Any) -> None:
        if location.startswith(UNIX_SOCKET_PREFIX):
            sockname = location[len(UNIX_SOCKET_PREFIX):]
            if not sockname or ":" in sockname:
                raise errors.PyroError("invalid uri (location)")
            self.sockname = sockname
            return
        if location.startswith("["):
            host, port = _split_bracketed(location)
        else:
            host, _, port = location.partition(":")
        self.host = host
        self.port = _to_port(port or default_port)

    @staticmethod
    def isUnixsockLocation(location: str) -> bool:
        """Whether a location string names a Unix domain socket (``./u:...``)."""
        return location.startswith(UNIX_SOCKET_PREFIX)

    @property
    def location(self) -> Optional[str]:
        """``"host:port"``, ``"[ipv6]:port"``, ``"./u:sockname"``, or None for a bare PYRONAME/PYROMETA."""
        if self.host:
            template = "[%s]:%d" if ":" in self.host else "%s:%d"
            return template % (self.host, self.port)
        if self.sockname:
            return UNIX_SOCKET_PREFIX + self.sockname
        return None

    def asString(self) -> str:
        """The URI as text; PYROMETA tags come out in set order."""
        if self.protocol == "PYROMETA":
            text = "PYROMETA:" + ",".join(self.object)
        else:
            text = self.protocol + ":" + self.object  # type: ignore[operator]
        location = self.location
        if location:
            text += "@" + location
        return text

    def __str__(self) -> str:
        return self.asString()

    def __repr__(self) -> str:
        # Pyro4 users see (and sometimes parse) "Pyro4.core.URI" here; subclasses show their own name.
        cls = type(self)
        name = "Pyro4.core.URI" if cls is URI else "%s.%s" % (cls.__module__, cls.__name__)
        return "<%s at 0x%x; %s>" % (name, id(self), self)

    def _identity(self) -> Tuple[Any, ...]:
        return self.protocol, self.object, self.sockname, self.host, self.port

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, URI):
            return False
        return self._identity() == other._identity()

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash((self.protocol, str(self.object), self.sockname, self.host, self.port))

    # State as a bare tuple: smaller pickles, and the exact shape Pyro4 peers send and expect.
    def __getstate__(self) -> UriState:
        return self.protocol, self.object, self.sockname, self.host, self.port

    def __setstate__(self, state: Sequence[Any]) -> None:
        self.protocol, self.object, self.sockname, self.host, self.port = state

    def __getstate_for_dict__(self) -> UriState:
        return self.__getstate__()

    def __setstate_from_dict__(self, state: Sequence[Any]) -> None:
        self.__setstate__(state)
