"""Awaitable name server discovery (``aio.locateNS``) and ``PYRONAME:``/``PYROMETA:`` resolution.

Theory of operation
-------------------
The rules are the synchronous resolver's (:mod:`pyro4compat._client.resolve`): a name server on
this machine first when ``NS_HOST`` is a loopback name, then a UDP broadcast, then a direct try
on ``NS_HOST:NS_PORT``; a comma-separated host list means direct tries only, recently failed
hosts last. The TCP parts run on the event loop through :class:`~pyro4compat.aio.Proxy`; the
broadcast (a few blocking ``sendto``/``recvfrom`` of at most 2 s in all) runs the synchronous
resolver's own function in the loop's default executor, so there is one broadcast
implementation and the loop never blocks on it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any, List, Optional

from .. import constants, errors
from .._client import resolve as _sync
from .._client.nshosts import NameServerAddress, is_host_list, parse_host_list
from .._uri import URI
from ..configuration import config
from .proxy import Proxy

__all__ = ["locateNS", "resolve"]

log = logging.getLogger("Pyro4.core")


async def resolve(uri: Any, hmac_key: Optional[bytes] = None) -> URI:
    """The ``PYRO:`` URI behind ``uri`` (looked up in the name server); ``PYRO:`` URIs come back as they are."""
    uri = _sync._to_resolve(uri)
    if uri.protocol == "PYRO":
        return uri
    if uri.protocol not in ("PYRONAME", "PYROMETA"):
        raise errors.PyroError("invalid uri protocol")
    async with await locateNS(uri.host, uri.port, hmac_key=hmac_key) as nameserver:
        if uri.protocol == "PYRONAME":
            return await nameserver.lookup(uri.object)
        candidates = await nameserver.list(metadata_all=uri.object)
    if candidates:
        candidate = random.choice(list(candidates.values()))
        log.debug("resolved to candidate %s", candidate)
        return URI(candidate)
    raise errors.NamingError("no registrations available with desired metadata properties %s" % uri.object)


async def _bound(uri: str, hmac_key: Optional[bytes], timeout: Optional[float] = None) -> Proxy:
    proxy = Proxy(uri)
    proxy._pyroHmacKey = hmac_key
    if timeout is not None:
        proxy._pyroTimeout = timeout
    await proxy._pyroBind()
    return proxy


def _ns_uri(host: str, port: Optional[int]) -> str:
    if URI.isUnixsockLocation(host):
        return "PYRO:%s@%s" % (constants.NAMESERVER_NAME, host)
    return "PYRO:%s@%s:%d" % (constants.NAMESERVER_NAME, "[%s]" % host if ":" in host else host,
                              port or config.NS_PORT)


async def _try_localhost(port: Optional[int], hmac_key: Optional[bytes]) -> Optional[Proxy]:
    host = config.NS_HOST
    if host not in ("localhost", "::1") and not host.startswith("127."):
        return None
    for candidate in _sync._local_hosts():
        uri = "PYRO:%s@%s:%d" % (constants.NAMESERVER_NAME, candidate, port or config.NS_PORT)
        try:
            return await _bound(uri, hmac_key)
        except errors.PyroError:
            continue
    return None


async def locateNS(host: Optional[str] = None, port: Optional[int] = None, broadcast: bool = True,
                   hmac_key: Optional[bytes] = None) -> Proxy:
    """An ``aio.Proxy`` bound to a name server: on ``host`` (and ``port``) if given, else discovered."""
    if host is None and is_host_list(config.NS_HOST):
        return await _locate_in_list(parse_host_list(config.NS_HOST, config.NS_PORT), hmac_key)
    if is_host_list(host):
        return await _locate_in_list(parse_host_list(host, port or config.NS_PORT), hmac_key)  # type: ignore[arg-type]
    if host is None:
        proxy = await _try_localhost(port, hmac_key)
        if proxy is not None:
            return proxy
        if broadcast and config.PREFER_IP_VERSION != 6:
            found = await asyncio.get_running_loop().run_in_executor(None, _sync._broadcast_lookup, port)
            if found:
                proxy = Proxy(found)
                proxy._pyroHmacKey = hmac_key
                return proxy
        host, port = config.NS_HOST, config.NS_PORT
    uri = _ns_uri(host, port)
    log.debug("locating the NS: %s", uri)
    try:
        return await _bound(uri, hmac_key)
    except errors.PyroError as exc:
        raise errors.NamingError("Failed to locate the nameserver") from exc


async def _locate_in_list(addresses: List[NameServerAddress], hmac_key: Optional[bytes]) -> Proxy:
    """The first listed name server that answers a ping, recently failed ones last; else NamingError."""
    timeout = config.COMMTIMEOUT or _sync.LIST_TRY_TIMEOUT
    tried: List[str] = []
    last_error: Optional[BaseException] = None
    for address in _sync.failed_hosts.order(addresses, time.monotonic()):
        try:
            proxy = await _bound(address.uri, hmac_key, timeout)
            try:
                await proxy.ping()
            except BaseException:
                proxy._pyroRelease()
                raise
        except errors.PyroError as exc:
            _sync.failed_hosts.failed(address, time.monotonic())
            tried.append("%s (%s)" % (address, exc))
            last_error = exc
            continue
        _sync.failed_hosts.answered(address)
        proxy._pyroTimeout = config.COMMTIMEOUT
        return proxy
    raise errors.NamingError("Failed to locate the nameserver; tried: " + ", ".join(tried)) from last_error
