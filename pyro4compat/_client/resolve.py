"""Finding the name server and turning ``PYRONAME:`` / ``PYROMETA:`` URIs into ``PYRO:`` ones.

Discovery follows Pyro4's order: a name server on this machine first (when ``NS_HOST`` is a
loopback name), then a UDP broadcast ``GET_NSURI`` to every ``BROADCAST_ADDRS`` entry on
``NS_BCPORT`` (3 rounds of 0.7 s), then a direct try on ``NS_HOST:NS_PORT``.

Our extension: a host with a comma (``NS_HOST`` or ``locateNS(host=...)``) lists several name
servers (:mod:`.nshosts`). A list means direct tries only, no localhost shortcut and no
broadcast: whoever wrote the list chose the servers, and a broadcast could answer with one
outside it. Each entry must answer a ``ping`` within ``COMMTIMEOUT`` (``LIST_TRY_TIMEOUT``
when that is 0) and the first that does is returned. Nothing is cached: every resolution of a
``PYRONAME:``/``PYROMETA:`` URI walks the list again, so a dead name server is never sticky.
"""

from __future__ import annotations

import logging
import random
import socket
import time
from typing import Any, Callable, List, Optional

from .. import constants, errors, socketutil
from .._uri import URI
from ..configuration import config
from .nshosts import FailedHosts, NameServerAddress, is_host_list, parse_host_list
from .proxy import Proxy

__all__ = ["_resolve", "_locateNS", "locateNS", "resolve"]

log = logging.getLogger("Pyro4.core")

BROADCAST_TIMEOUT = 0.7
BROADCAST_ROUNDS = 3
NSURI_REQUEST = b"GET_NSURI"
NSURI_REPLY_MAX = 100
LIST_TRY_TIMEOUT = 5.0  # seconds per listed name server when COMMTIMEOUT is 0 (no limit)

failed_hosts = FailedHosts()  # process-wide: which listed name servers failed lately


def _resolve(uri: Any, hmac_key: Optional[bytes] = None) -> URI:
    """The ``PYRO:`` URI behind ``uri``; ``PYRO:`` URIs come back unchanged."""
    uri = _to_resolve(uri)
    if uri.protocol == "PYRO":
        return uri
    if uri.protocol == "PYRONAME":
        return _ask_nameserver(uri, hmac_key, lambda nameserver: nameserver.lookup(uri.object))
    if uri.protocol == "PYROMETA":
        return _ask_nameserver(uri, hmac_key, lambda nameserver: _meta_candidate(nameserver, uri.object))
    raise errors.PyroError("invalid uri protocol")


def _to_resolve(uri: Any) -> URI:
    """``uri`` as a URI object (TypeError for anything else), logged when it needs a name server."""
    if isinstance(uri, str):
        uri = URI(uri)
    elif not isinstance(uri, URI):
        raise TypeError("can only resolve Pyro URIs")
    if uri.protocol != "PYRO":
        log.debug("resolving %s", uri)
    return uri


def _meta_candidate(nameserver: Proxy, tags: Any) -> URI:
    candidates = nameserver.list(metadata_all=tags)
    if candidates:
        candidate = random.choice(list(candidates.values()))
        log.debug("resolved to candidate %s", candidate)
        return URI(candidate)
    raise errors.NamingError("no registrations available with desired metadata properties %s" % tags)


def _ask_nameserver(uri: URI, hmac_key: Optional[bytes], question: Callable[[Proxy], Any]) -> Any:
    """``question(nameserver)`` of the name server for ``uri``'s location (or the configured one).

    With a list of name servers, one that dies between answering the ping and answering the
    question is passed over like one that didn't answer at all.
    """
    listed = _listed_addresses(uri.host, uri.port)
    if listed is not None:
        return _locate_in_list(listed, hmac_key, question)
    with _locateNS(uri.host, uri.port, hmac_key=hmac_key) as nameserver:
        return question(nameserver)


def _listed_addresses(host: Optional[str], port: Optional[int]) -> Optional[List[NameServerAddress]]:
    """The name servers to try in order when ``host`` (or else ``NS_HOST``) is a list; else None."""
    if host is None and is_host_list(config.NS_HOST):
        return parse_host_list(config.NS_HOST, config.NS_PORT)
    if is_host_list(host):
        return parse_host_list(host, port or config.NS_PORT)  # type: ignore[arg-type]
    return None


def _local_hosts() -> List[str]:
    host = config.NS_HOST
    if ":" in host:
        return ["[%s]" % host]
    try:
        # Debian-style /etc/hosts maps the machine name to 127.0.1.1: try it too when it exists.
        socket.gethostbyaddr("127.0.1.1")
    except OSError:
        return [host]
    return [host] if host == "127.0.1.1" else [host, "127.0.1.1"]


def _bound_proxy(uri: Any, hmac_key: Optional[bytes], timeout: Optional[float] = None) -> Proxy:
    proxy = Proxy(uri)
    proxy._pyroHmacKey = hmac_key
    if timeout is not None:
        proxy._pyroTimeout = timeout
    proxy._pyroBind()
    return proxy


def _try_localhost(port: Optional[int], hmac_key: Optional[bytes]) -> Optional[Proxy]:
    host = config.NS_HOST
    if host not in ("localhost", "::1") and not host.startswith("127."):
        return None
    for candidate in _local_hosts():
        uri = "PYRO:%s@%s:%d" % (constants.NAMESERVER_NAME, candidate, port or config.NS_PORT)
        log.debug("locating the NS: %s", uri)
        try:
            proxy = _bound_proxy(uri, hmac_key)
        except errors.PyroError:
            continue
        log.debug("located NS")
        return proxy
    return None


def _broadcast_lookup(port: Optional[int]) -> Optional[str]:
    """The name server URI a broadcast responder sends back, or None."""
    port = port or config.NS_BCPORT
    log.debug("broadcast locate")
    sock = socketutil.createBroadcastSocket(reuseaddr=config.SOCK_REUSE, timeout=BROADCAST_TIMEOUT)
    try:
        for _ in range(BROADCAST_ROUNDS):
            for address in config.parseAddressesString(config.BROADCAST_ADDRS):
                try:
                    sock.sendto(NSURI_REQUEST, 0, (address, port))
                except OSError as exc:
                    if exc.errno not in socketutil.ERRNO_EADDRNOTAVAIL + socketutil.ERRNO_EADDRINUSE:
                        log.debug("broadcast to %s failed: %s", address, exc)
            try:
                data, _ = sock.recvfrom(NSURI_REPLY_MAX)
            except socket.timeout:
                continue
            return data.decode("iso-8859-1")
    finally:
        sock.close()
    log.debug("broadcast locate failed, try direct connection on NS_HOST")
    return None


def _locateNS(host: Optional[str] = None, port: Optional[int] = None, broadcast: bool = True,
              hmac_key: Optional[bytes] = None) -> Proxy:
    """A proxy bound to a name server: on ``host`` (and ``port``) if given, else discovered."""
    listed = _listed_addresses(host, port)
    if listed is not None:
        return _locate_in_list(listed, hmac_key)
    if host is None:
        proxy = _try_localhost(port, hmac_key)
        if proxy is not None:
            return proxy
        if broadcast and config.PREFER_IP_VERSION != 6:  # IPv6 has no broadcast
            found = _broadcast_lookup(port)
            if found:
                log.debug("located NS: %s", found)
                proxy = Proxy(found)
                proxy._pyroHmacKey = hmac_key
                return proxy
        host, port = config.NS_HOST, config.NS_PORT
    port = port or config.NS_PORT
    if URI.isUnixsockLocation(host):
        uri = "PYRO:%s@%s" % (constants.NAMESERVER_NAME, host)
    else:
        uri = "PYRO:%s@%s:%d" % (constants.NAMESERVER_NAME, "[%s]" % host if ":" in host else host, port)
    log.debug("locating the NS: %s", uri)
    try:
        proxy = _bound_proxy(uri, hmac_key)
    except errors.PyroError as exc:
        raise errors.NamingError("Failed to locate the nameserver") from exc
    log.debug("located NS")
    return proxy


def _try_listed(address: NameServerAddress, hmac_key: Optional[bytes], timeout: float) -> Proxy:
    """A proxy to the name server at ``address`` once it answered a ping; raises PyroError if it didn't."""
    proxy = _bound_proxy(address.uri, hmac_key, timeout)
    try:
        proxy.ping()  # a daemon's handshake is not enough: the name server object must answer
    except BaseException:
        proxy._pyroRelease()
        raise
    proxy._pyroTimeout = config.COMMTIMEOUT  # the caller gets a proxy like any other
    return proxy


class _DiedWhileAsked(Exception):
    """A listed name server answered the ping, then failed to answer the question."""


def _asked(proxy: Proxy, question: Callable[[Proxy], Any]) -> Any:
    """``question(proxy)``; a communication error becomes _DiedWhileAsked, any other error is the answer."""
    with proxy:
        try:
            return question(proxy)
        except errors.CommunicationError as exc:
            raise _DiedWhileAsked(str(exc)) from exc


def _passed_over(address: NameServerAddress, exc: BaseException, tried: List[str]) -> BaseException:
    """Note that ``address`` failed (it goes to the back of the order for a while); return ``exc``."""
    failed_hosts.failed(address, time.monotonic())
    tried.append("%s (%s)" % (address, exc))
    return exc


def _locate_in_list(addresses: List[NameServerAddress], hmac_key: Optional[bytes],
                    question: Optional[Callable[[Proxy], Any]] = None) -> Any:
    """The first listed name server that answers (recently failed ones last), else NamingError.

    Without ``question`` that is a proxy to it; with one, ``question(proxy)``'s answer, where a
    communication error while asking moves on to the next name server. A NamingError is an answer.
    """
    timeout = config.COMMTIMEOUT or LIST_TRY_TIMEOUT
    tried: List[str] = []
    last_error: Optional[BaseException] = None
    for address in failed_hosts.order(addresses, time.monotonic()):
        log.debug("locating the NS: %s", address.uri)
        try:
            proxy = _try_listed(address, hmac_key, timeout)
        except errors.PyroError as exc:
            last_error = _passed_over(address, exc, tried)
            continue
        if question is None:
            answer = proxy
        else:
            try:
                answer = _asked(proxy, question)    # its own errors (unknown name ...) are answers
            except _DiedWhileAsked as exc:
                last_error = _passed_over(address, exc, tried)
                continue
        failed_hosts.answered(address)
        log.debug("located NS")
        return answer
    raise errors.NamingError("Failed to locate the nameserver; tried: " + ", ".join(tried)) from last_error


locateNS = _locateNS
resolve = _resolve
