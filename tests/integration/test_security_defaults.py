"""Security defaults (issue 8, item 8): HMAC compared in constant time, TLS host name checks.

Client certificates with ``SSL_REQUIRECLIENTCERT`` are proved in ``test_ssl.py``
(``test_client_without_certificate_is_refused_in_two_way_tls``,
``test_untrusted_client_certificate_is_refused``); safe serializers by default in
``test_exposure_security.py`` (``test_safe_serializers_only_by_default``).
"""

from __future__ import annotations

import hmac
import os
import shutil
import subprocess
from typing import Any, List

import pytest

from pyro4compat import _protocol as proto
from pyro4compat import core, errors, message, socketutil
from pyro4compat.configuration import config

from remote_helpers import served

pytestmark = pytest.mark.timeout(30)


def test_hmac_comparison_is_the_constant_time_one():
    assert proto.secure_compare is hmac.compare_digest
    assert message.secure_compare is hmac.compare_digest


def test_every_received_hmac_goes_through_compare_digest(servertype, serve, monkeypatch):
    """A keyed call, both directions: each received message's HMAC is checked by compare_digest."""
    compared: List[Any] = []

    def recording(a: Any, b: Any) -> bool:
        compared.append((bytes(a), bytes(b)))
        return hmac.compare_digest(a, b)

    monkeypatch.setattr(proto, "secure_compare", recording)
    with served(serve) as (daemon, uri, thing):
        daemon._pyroHmacKey = b"sesame"
        with core.Proxy(uri) as proxy:
            proxy._pyroHmacKey = b"sesame"
            assert proxy.echo("signed") == "signed"
        # handshake + call on each side: at least 4 messages checked, all of them matching
        assert len(compared) >= 4 and all(a == b for a, b in compared)
        with core.Proxy(uri) as wrong:
            wrong._pyroHmacKey = b"guess"
            with pytest.raises(errors.CommunicationError):
                wrong.echo("refused")
        assert any(a != b for a, b in compared)        # the wrong key was compared, and refused


def _cert_for(directory: str, name: str, dns: str) -> tuple:
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not available")
    cert, key = os.path.join(directory, name + ".crt"), os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-keyout", key, "-out", cert, "-days", "2", "-nodes", "-subj", "/CN=" + dns,
                    "-addext", "subjectAltName=DNS:" + dns,
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,digitalSignature,keyCertSign"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


@pytest.fixture
def fresh_contexts():
    socketutil._clear_ssl_contexts()
    yield
    socketutil._clear_ssl_contexts()


@pytest.mark.parametrize("cert_host, connect_host, accepted", [
    ("localhost", "localhost", True),           # control: the right name is accepted
    ("otherhost.example", "localhost", False),  # a trusted certificate for another name is refused
    ("otherhost.example", "127.0.0.1", False),
])
def test_tls_client_checks_the_host_name(servertype, serve, tmp_path, fresh_contexts, cert_host, connect_host,
                                         accepted):
    cert, key = _cert_for(str(tmp_path), "server", cert_host)
    config.SSL = True
    config.SSL_SERVERCERT, config.SSL_SERVERKEY, config.SSL_CACERTS = cert, key, cert
    with served(serve, host=connect_host) as (daemon, uri, thing):
        with core.Proxy(uri) as proxy:
            if accepted:
                assert proxy.echo("secret") == "secret"
            else:
                with pytest.raises(errors.CommunicationError) as info:
                    proxy.echo("secret")
                text = str(info.value)
                assert "certificate verify failed" in text and "mismatch" in text, text
        with core.Proxy(uri) as after:      # the daemon is unharmed by the refused handshake
            if accepted:
                assert after.echo(1) == 1
