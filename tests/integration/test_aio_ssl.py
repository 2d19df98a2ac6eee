"""TLS on the asyncio transport (the thread server's TLS tests, re-run) and from aio.Proxy."""

from __future__ import annotations

import gc
from typing import Any, Dict, Iterator

import pytest

from pyro4compat import aio, errors, socketutil
from pyro4compat._server.daemon import Daemon as CoreDaemon
from pyro4compat.aio.server import AsyncioServer

from aio_support import SERVER_KINDS, run, served_any
from test_ssl import (Secret, _server_tls, certs, fresh_contexts,  # noqa: F401
                      test_client_without_certificate_is_refused_in_two_way_tls, test_one_way_tls,
                      test_two_way_tls_with_certificate_check_in_validate_handshake,
                      test_untrusted_client_certificate_is_refused,
                      test_untrusted_server_certificate_gives_a_clear_client_error,
                      test_validate_handshake_refuses_the_wrong_client_certificate)

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(autouse=True)
def _collect_now() -> Iterator[None]:
    """A transport a TLS test left unclosed is reported by that test, not by a later one."""
    yield
    gc.collect()


@pytest.fixture
def servertype(monkeypatch) -> str:
    """The re-run tests build core daemons: give every one of them the asyncio transport."""
    monkeypatch.setattr(CoreDaemon, "_transportServerClass", AsyncioServer)
    return "asyncio"


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_aio_proxy_over_tls(kind, certs: Dict[str, Any]):  # noqa: F811
    _server_tls(certs, require_client_cert=True)
    from pyro4compat.configuration import config
    config.SSL_CLIENTCERT, config.SSL_CLIENTKEY = certs["client"]

    async def main(uri: str) -> None:
        async with aio.Proxy(uri) as proxy:
            assert await proxy.whisper("tls") == "TLS"
            assert await proxy.peer() == {"commonName": "trusted-client"}

    with served_any(kind, {"secret": Secret()}) as daemon:
        run(lambda: main("PYRO:secret@" + daemon.locationStr))


def test_aio_proxy_refuses_an_untrusted_server(certs: Dict[str, Any]):  # noqa: F811
    _server_tls(certs, require_client_cert=False)
    from pyro4compat.configuration import config

    async def main(uri: str) -> None:
        async with aio.Proxy(uri) as proxy:
            with pytest.raises(errors.CommunicationError, match="CERTIFICATE_VERIFY_FAILED"):
                await proxy.whisper("x")

    with served_any("asyncio", {"secret": Secret()}) as daemon:
        socketutil._clear_ssl_contexts()
        config.SSL_CACERTS = certs["other_ca"][0]
        run(lambda: main("PYRO:secret@" + daemon.locationStr))
