"""Several name servers in ``NS_HOST``: parsing the list and the order to try it in (our extension).

Pure code on strings and clock readings: no sockets, so every rule is a table row in a unit test.

A host string is a *list* only when it contains a comma (``"ns1:9090,ns2"``, or ``"ns1,"`` for a
list of one). Without a comma it is Pyro4's single host and :mod:`.resolve` handles it exactly as
Pyro4 does, so ``"host:9090"`` alone keeps Pyro4's meaning (an IPv6 address). List entries:

- ``host`` or ``host:port`` (no port: the default port given, normally ``NS_PORT``);
- ``[ipv6]`` or ``[ipv6]:port``; an unbracketed IPv6 address (two or more colons) takes the
  default port, since its last group could not be told from a port;
- ``./u:sockname`` for a Unix domain socket.

Whitespace around entries is ignored and so are empty entries (a trailing comma); whitespace
inside an entry is an error.

Order: as written, except that an address which failed within :data:`FAILED_PENALTY` seconds is
moved behind the others (still tried, as the last resort). A powered-off first name server would
otherwise cost every ``PYRONAME:`` connect one full timeout.
"""

from __future__ import annotations

import threading
from typing import Dict, List, NamedTuple, Optional, Sequence

from .. import constants, errors
from .._uri import UNIX_SOCKET_PREFIX

__all__ = ["NameServerAddress", "is_host_list", "parse_host_list", "FailedHosts", "FAILED_PENALTY"]

FAILED_PENALTY = 30.0  # seconds a name server that failed to answer stays at the back of the order


class NameServerAddress(NamedTuple):
    """One entry of a name server list; ``port`` is None for a Unix domain socket."""

    host: str
    port: Optional[int]

    @property
    def uri(self) -> str:
        """The ``PYRO:`` URI of the name server object at this address."""
        return "PYRO:%s@%s" % (constants.NAMESERVER_NAME, self)

    def __str__(self) -> str:
        if self.port is None:
            return self.host
        return ("[%s]:%d" if ":" in self.host else "%s:%d") % (self.host, self.port)


def is_host_list(host: Optional[str]) -> bool:
    """Whether ``host`` names several name servers (our extension) rather than Pyro4's one host."""
    return host is not None and "," in host


def _invalid(entry: str, text: str) -> errors.NamingError:
    return errors.NamingError("invalid name server address %r in %r" % (entry, text))


def _port(entry: str, text: str, port_text: str) -> int:
    try:
        port = int(port_text)
    except ValueError:
        raise _invalid(entry, text) from None
    if not 0 < port < 65536:
        raise _invalid(entry, text)
    return port


def _parse_entry(entry: str, text: str, default_port: int) -> NameServerAddress:
    if any(char.isspace() for char in entry):
        raise _invalid(entry, text)
    if entry.startswith(UNIX_SOCKET_PREFIX):
        if len(entry) == len(UNIX_SOCKET_PREFIX):
            raise _invalid(entry, text)
        return NameServerAddress(entry, None)
    if entry.startswith("["):
        address, bracket, rest = entry[1:].partition("]")
        if not bracket or not address or "[" in address:
            raise _invalid(entry, text)
        if not rest:
            return NameServerAddress(address, default_port)
        if not rest.startswith(":"):
            raise _invalid(entry, text)
        return NameServerAddress(address, _port(entry, text, rest[1:]))
    if "]" in entry:
        raise _invalid(entry, text)
    if entry.count(":") > 1:
        return NameServerAddress(entry, default_port)  # a bare IPv6 address
    host, colon, port_text = entry.partition(":")
    if not host:
        raise _invalid(entry, text)
    return NameServerAddress(host, _port(entry, text, port_text) if colon else default_port)


def parse_host_list(text: str, default_port: int) -> List[NameServerAddress]:
    """The addresses in a comma-separated name server list, in the order written.

    Raises NamingError for an entry that can't be an address, or a list without any entry.
    """
    entries = [entry.strip() for entry in text.split(",")]
    addresses = [_parse_entry(entry, text, default_port) for entry in entries if entry]
    if not addresses:
        raise errors.NamingError("no name server address in %r" % text)
    return addresses


class FailedHosts:
    """When each address last failed to answer, to try recently failed ones last.

    Shared by every thread of the process (one lock); a success forgets the address's failure.
    """

    def __init__(self, penalty: float = FAILED_PENALTY) -> None:
        self.penalty = penalty
        self._failed: Dict[NameServerAddress, float] = {}
        self._lock = threading.Lock()

    def failed(self, address: NameServerAddress, now: float) -> None:
        with self._lock:
            self._failed[address] = now

    def answered(self, address: NameServerAddress) -> None:
        with self._lock:
            self._failed.pop(address, None)

    def clear(self) -> None:
        with self._lock:
            self._failed.clear()

    def order(self, addresses: Sequence[NameServerAddress], now: float) -> List[NameServerAddress]:
        """``addresses`` as written, recent failures moved to the back (oldest failure first)."""
        with self._lock:
            recent = {address: when for address, when in self._failed.items() if now - when < self.penalty}
        fresh = [address for address in addresses if address not in recent]
        stale = sorted((address for address in addresses if address in recent), key=recent.__getitem__)
        return fresh + stale
