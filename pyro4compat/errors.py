"""Pyro4's exception tree, unchanged in names and shape.

    Exception
     └── PyroError
          ├── CommunicationError
          │    ├── ConnectionClosedError
          │    ├── TimeoutError          (not the builtin TimeoutError)
          │    └── ProtocolError
          │         ├── MessageTooLargeError
          │         └── SerializeError
          ├── NamingError
          ├── DaemonError
          └── SecurityError

On the wire these travel as ``"Pyro4.errors.<Name>"`` whatever our own module is called;
see :mod:`pyro4compat._serializers.wirenames`.
"""

__all__ = [
    "PyroError", "CommunicationError", "ConnectionClosedError", "TimeoutError", "ProtocolError",
    "MessageTooLargeError", "NamingError", "DaemonError", "SecurityError", "SerializeError",
]


class PyroError(Exception):
    """Root of every error pyro4compat raises on purpose."""


class CommunicationError(PyroError):
    """The network or the peer failed us."""


class ConnectionClosedError(CommunicationError):
    """The other side closed the connection."""


class TimeoutError(CommunicationError):
    """A socket operation ran past its timeout (shadows the builtin on purpose, as Pyro4 does)."""


class ProtocolError(CommunicationError):
    """The bytes received do not follow protocol 48."""


class MessageTooLargeError(ProtocolError):
    """A message is bigger than ``MAX_MESSAGE_SIZE``."""


class NamingError(PyroError):
    """A name server lookup or registration failed."""


class DaemonError(PyroError):
    """The daemon could not do what was asked (unknown object, registration clash, ...)."""


class SecurityError(PyroError):
    """A security check failed (HMAC, refused class names, ...)."""


class SerializeError(ProtocolError):
    """A value could not be serialized or deserialized."""

