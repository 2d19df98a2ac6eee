"""A real Pyro4 4.82 daemon serving ``service.py``'s objects, for interop tests.

Run as ``python pyro4_server.py '<json settings>'``. Settings: ``servertype``,
``serializers`` (accepted list), ``hmac`` (key or null), ``port`` (0 = any),
``metadata`` (bool), ``comm_timeout``, ``compression`` (bool), ``max_message_size``, ``ssl``
(a dict: ``servercert``, ``serverkey``, ``cacerts``, ``requireclientcert``). Prints ``READY <location>`` once it listens, then
serves until it is terminated by the test.
"""

import json
import sys
import warnings

warnings.simplefilter("ignore")  # Pyro4 4.82 is not warning-clean on new Pythons

import Pyro4  # noqa: E402  (real Pyro4, a test-only dependency)

import service  # noqa: E402

assert "pyro4compat" not in sys.modules


def main() -> None:
    settings = json.loads(sys.argv[1])
    Pyro4.config.SERVERTYPE = settings.get("servertype", "thread")
    Pyro4.config.SERIALIZERS_ACCEPTED = set(settings.get("serializers", ["serpent", "json", "marshal"]))
    Pyro4.config.COMMTIMEOUT = settings.get("comm_timeout", 0.0)
    Pyro4.config.COMPRESSION = settings.get("compression", False)
    Pyro4.config.MAX_MESSAGE_SIZE = settings.get("max_message_size", 0)
    tls = settings.get("ssl")
    if tls:
        Pyro4.config.SSL = True
        Pyro4.config.SSL_SERVERCERT = tls["servercert"]
        Pyro4.config.SSL_SERVERKEY = tls["serverkey"]
        Pyro4.config.SSL_CACERTS = tls.get("cacerts", "")
        Pyro4.config.SSL_REQUIRECLIENTCERT = tls.get("requireclientcert", False)
    daemon = Pyro4.Daemon(host="127.0.0.1", port=settings.get("port", 0))
    if settings.get("hmac"):
        daemon._pyroHmacKey = settings["hmac"].encode()
    service.register_all(Pyro4, daemon)
    print("READY", daemon.locationStr, flush=True)
    daemon.requestLoop()


if __name__ == "__main__":
    main()
