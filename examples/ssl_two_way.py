"""Two-way TLS: the server checks the client's certificate, the client checks the server's.

Run it with ``python examples/ssl_two_way.py`` (needs the ``openssl`` command). It makes
throwaway self-signed certificates in a temporary directory, then runs a daemon and a proxy
in this process on 127.0.0.1 (random free port). Exits 0 when every step worked.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading

import pyro4compat as Pyro4


def make_certificate(directory: str, name: str, common_name: str):
    """A self-signed certificate (its own CA) valid for localhost/127.0.0.1, and its key."""
    cert, key = os.path.join(directory, name + ".crt"), os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-keyout", key, "-out", cert, "-days", "1", "-nodes", "-subj", "/CN=" + common_name,
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,digitalSignature,keyCertSign"],
                   check=True, capture_output=True)
    return cert, key


class CertCheckingDaemon(Pyro4.Daemon):
    def validateHandshake(self, conn, data):
        # With SSL_REQUIRECLIENTCERT the TLS layer already verified the client's certificate
        # against SSL_CACERTS; here we also check *who* it is.
        cert = conn.getpeercert()
        subject = dict(item[0] for item in cert["subject"])
        print("server: client certificate subject:", subject)
        if subject.get("commonName") != "example-client":
            raise Pyro4.errors.SecurityError("unknown client " + subject.get("commonName", "?"))
        return super().validateHandshake(conn, data)


@Pyro4.expose
class Vault:
    def secret(self) -> str:
        return "the secret is 42"


def main() -> int:
    with tempfile.TemporaryDirectory() as directory:
        server_cert, server_key = make_certificate(directory, "server", "localhost")
        client_cert, client_key = make_certificate(directory, "client", "example-client")
        trusted = os.path.join(directory, "trusted.pem")  # both sides trust these two certificates
        with open(trusted, "w") as bundle:
            for cert in (server_cert, client_cert):
                with open(cert) as src:
                    bundle.write(src.read())

        # Client and server share this process, so one config holds both sides' settings.
        config = Pyro4.config
        config.SSL = True
        config.SSL_REQUIRECLIENTCERT = True  # two-way: the server asks for a client certificate
        config.SSL_SERVERCERT, config.SSL_SERVERKEY = server_cert, server_key
        config.SSL_CLIENTCERT, config.SSL_CLIENTKEY = client_cert, client_key
        config.SSL_CACERTS = trusted

        with CertCheckingDaemon(host="127.0.0.1") as daemon:
            uri = daemon.register(Vault())
            threading.Thread(target=daemon.requestLoop, daemon=True).start()
            with Pyro4.Proxy(uri) as vault:
                print("client:", vault.secret())
                server_subject = dict(item[0] for item in vault._pyroConnection.getpeercert()["subject"])
                print("client: server certificate subject:", server_subject)
            daemon.shutdown()
    print("ssl example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
