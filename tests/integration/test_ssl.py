"""SSL/TLS between a proxy and a daemon: one-way, two-way, certificate checks in the handshake hook.

Throwaway certificates are made with the ``openssl`` CLI in a temporary directory. Client and
server share this process, hence one ``config``: ``SSL_CACERTS`` is a bundle both sides trust.
TLS contexts are cached process-wide (Pyro4's behaviour), so every test starts with a clear cache.
"""

from __future__ import annotations

import ssl
from typing import Any, Dict, List

import pytest

import pyro4compat as Pyro4
from pyro4compat import errors, socketutil
from pyro4compat.configuration import config

from calls_support import bundle, daemon_serving, make_cert

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Dict[str, Any]:
    directory = str(tmp_path_factory.mktemp("tls"))
    made = {name: make_cert(directory, name, cn) for name, cn in
            [("server", "localhost"), ("client", "trusted-client"), ("stranger", "stranger"),
             ("other_ca", "localhost")]}
    made["trust"] = bundle(directory + "/trust.pem", made["server"][0], made["client"][0])
    return made


@pytest.fixture(autouse=True)
def fresh_contexts():
    socketutil._clear_ssl_contexts()
    yield
    socketutil._clear_ssl_contexts()


@Pyro4.expose
class Secret:
    def whisper(self, text: str) -> str:
        return text.upper()

    def peer(self) -> Any:
        """The client certificate's subject as the server sees it (None in one-way TLS)."""
        cert = Pyro4.current_context.client.getpeercert()
        return dict(item[0] for item in cert["subject"]) if cert else None


class CheckingDaemon(Pyro4.Daemon):
    """Accepts only clients whose certificate names the expected common name."""

    accepted_cn = "trusted-client"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: List[Any] = []

    def validateHandshake(self, conn: Any, data: Any) -> Any:
        cert = conn.getpeercert()
        subject = dict(item[0] for item in cert["subject"]) if cert else {}
        self.seen.append(subject.get("commonName"))
        if subject.get("commonName") != self.accepted_cn:
            raise errors.SecurityError("certificate not accepted: %s" % subject.get("commonName"))
        return super().validateHandshake(conn, data)


def _server_tls(certs: Dict[str, Any], require_client_cert: bool) -> None:
    config.SSL = True
    config.SSL_SERVERCERT, config.SSL_SERVERKEY = certs["server"]
    config.SSL_CACERTS = certs["trust"]
    config.SSL_REQUIRECLIENTCERT = require_client_cert


def test_one_way_tls(servertype, serve, certs):
    _server_tls(certs, require_client_cert=False)
    with daemon_serving({"secret": Secret()}, serve) as (daemon, uris):
        with Pyro4.Proxy(uris["secret"]) as proxy:
            assert proxy.whisper("psst") == "PSST"
            assert proxy.peer() is None  # no client certificate asked for
            assert isinstance(proxy._pyroConnection.sock, ssl.SSLSocket)
            assert proxy._pyroConnection.getpeercert()["subject"] == ((("commonName", "localhost"),),)


def test_two_way_tls_with_certificate_check_in_validate_handshake(servertype, serve, certs):
    _server_tls(certs, require_client_cert=True)
    config.SSL_CLIENTCERT, config.SSL_CLIENTKEY = certs["client"]
    daemon = CheckingDaemon(host="127.0.0.1")
    uri = daemon.register(Secret(), "secret")
    with serve(daemon):
        with Pyro4.Proxy(uri) as proxy:
            assert proxy.whisper("hello") == "HELLO"
            assert proxy.peer() == {"commonName": "trusted-client"}
    assert daemon.seen == ["trusted-client"]


def test_validate_handshake_refuses_the_wrong_client_certificate(servertype, serve, certs):
    _server_tls(certs, require_client_cert=True)
    config.SSL_CLIENTCERT, config.SSL_CLIENTKEY = certs["client"]
    daemon = CheckingDaemon(host="127.0.0.1")
    daemon.accepted_cn = "somebody-else"
    uri = daemon.register(Secret(), "secret")
    with serve(daemon):
        with Pyro4.Proxy(uri) as proxy:
            with pytest.raises(errors.CommunicationError, match="rejected: certificate not accepted: trusted-client"):
                proxy.whisper("hello")


def test_client_without_certificate_is_refused_in_two_way_tls(servertype, serve, certs):
    _server_tls(certs, require_client_cert=True)
    with daemon_serving({"secret": Secret()}, serve) as (daemon, uris):
        with Pyro4.Proxy(uris["secret"]) as proxy:
            with pytest.raises(errors.CommunicationError):
                proxy.whisper("hello")
        # the daemon carries on serving properly configured clients
        socketutil._clear_ssl_contexts()
        config.SSL_CLIENTCERT, config.SSL_CLIENTKEY = certs["client"]
        with Pyro4.Proxy(uris["secret"]) as proxy:
            assert proxy.whisper("again") == "AGAIN"


def test_untrusted_client_certificate_is_refused(servertype, serve, certs):
    _server_tls(certs, require_client_cert=True)
    config.SSL_CLIENTCERT, config.SSL_CLIENTKEY = certs["stranger"]  # not in the server's trust bundle
    with daemon_serving({"secret": Secret()}, serve) as (daemon, uris):
        with Pyro4.Proxy(uris["secret"]) as proxy:
            with pytest.raises(errors.CommunicationError):
                proxy.whisper("hello")


def test_untrusted_server_certificate_gives_a_clear_client_error(servertype, serve, certs):
    _server_tls(certs, require_client_cert=False)
    with daemon_serving({"secret": Secret()}, serve) as (daemon, uris):
        socketutil._clear_ssl_contexts()  # the server context exists; now a client trusting another CA
        config.SSL_CACERTS = certs["other_ca"][0]
        with Pyro4.Proxy(uris["secret"]) as proxy:
            with pytest.raises(errors.CommunicationError, match="CERTIFICATE_VERIFY_FAILED"):
                proxy.whisper("hello")


def test_plain_client_against_a_tls_daemon_fails_cleanly(servertype, serve, certs):
    _server_tls(certs, require_client_cert=False)
    with daemon_serving({"secret": Secret()}, serve) as (daemon, uris):
        config.SSL = False
        config.COMMTIMEOUT = 5
        with Pyro4.Proxy(uris["secret"]) as proxy:
            with pytest.raises(errors.CommunicationError):
                proxy.whisper("hello")


@pytest.mark.parametrize("setting, text", [
    ("SSL_SERVERCERT", "server cert file not found"),
    ("SSL_SERVERKEY", "server key file not found"),
])
def test_missing_certificate_files_are_reported(servertype, certs, tmp_path, setting, text):
    _server_tls(certs, require_client_cert=False)
    setattr(config, setting, str(tmp_path / "missing.crt"))
    with pytest.raises(IOError, match=text):
        Pyro4.Daemon(host="127.0.0.1")
