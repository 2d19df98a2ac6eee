"""Errors across the wire, on both server types: remote exceptions and their tracebacks, and
connection failures mapped to Pyro4's CommunicationError family with Pyro4's texts."""

from __future__ import annotations

import socket
import sys
import threading
from typing import Any, Callable, Iterator, Tuple

import contextlib
import pytest

from pyro4compat import core, errors, util
from pyro4compat._context import current_context
from pyro4compat.configuration import config

from remote_helpers import HOST, WAIT, served

pytestmark = pytest.mark.timeout(30)


class CustomError(Exception):
    """Importable on both ends, so pickle can carry it."""


class Unserializable(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.lock = threading.Lock()


@core.expose
class Failing:
    def value_error(self) -> None:
        local_marker = "visible in detailed tracebacks"  # noqa: F841
        raise ValueError("boom")

    def key_error(self) -> Any:
        return {}["nokey"]

    def pyro_error(self) -> None:
        raise errors.NamingError("a pyro error")

    def custom(self) -> None:
        raise CustomError("mine")

    def unserializable(self) -> None:
        raise Unserializable("cannot travel")

    def bad_result(self) -> Any:
        return threading.Lock()

    def cut(self) -> int:
        current_context.client.sock.shutdown(socket.SHUT_RDWR)  # the reply can't go out
        return 1

    def ok(self) -> str:
        return "ok"


REMOTE_ERRORS = [
    ("value_error", ValueError, "boom"),
    ("key_error", KeyError, "'nokey'"),
    ("pyro_error", errors.NamingError, "a pyro error"),
]


@pytest.mark.parametrize("serializer", ["serpent", "json", "marshal", "msgpack", "pickle"])
@pytest.mark.parametrize("method,exc_type,text", REMOTE_ERRORS)
def test_remote_exception_reraised_with_traceback(servertype, serve, serializer, method, exc_type, text):
    config.SERIALIZERS_ACCEPTED = {serializer}
    config.SERIALIZER = serializer
    with served(serve, obj=Failing()) as (daemon, uri, _):
        with core.Proxy(uri) as proxy:
            with pytest.raises(exc_type) as info:
                getattr(proxy, method)()
            assert str(info.value) == text
            remote_tb = info.value._pyroTraceback
            assert isinstance(remote_tb, list) and remote_tb[0] == "Traceback (most recent call last):\n"
            assert "in %s\n" % method in "".join(remote_tb)
            assert proxy._pyroConnection is not None  # a remote error leaves the connection usable
            assert proxy.ok() == "ok"


def test_custom_exception_with_pickle(servertype, serve):
    config.SERIALIZERS_ACCEPTED = {"pickle"}
    config.SERIALIZER = "pickle"
    with served(serve, obj=Failing()) as (daemon, uri, _):
        with core.Proxy(uri) as proxy:
            with pytest.raises(CustomError) as info:
                proxy.custom()
            assert str(info.value) == "mine" and info.value._pyroTraceback


def test_custom_exception_refused_by_dict_serializers(servertype, serve):
    with served(serve, obj=Failing()) as (daemon, uri, _):
        with core.Proxy(uri) as proxy:
            with pytest.raises(errors.SerializeError) as info:
                proxy.custom()
            assert str(info.value) == "unsupported serialized class: test_errors.CustomError"


@pytest.mark.parametrize("serializer,problem", [
    ("serpent", "don't know how to serialize class <class '_thread.lock'>. Give it vars() or an appropriate "
                "__getstate__"),
    ("json", "don't know how to serialize class <class '_thread.lock'> using serializer JsonSerializer. "
             "Give it vars() or an appropriate __getstate__"),
])
def test_exception_that_cannot_be_serialized(servertype, serve, serializer, problem):
    config.SERIALIZERS_ACCEPTED = {serializer}
    config.SERIALIZER = serializer
    with served(serve, obj=Failing()) as (daemon, uri, _):
        with core.Proxy(uri) as proxy:
            with pytest.raises(errors.PyroError) as info:
                proxy.unserializable()
            assert str(info.value) == ("Error serializing exception: %s. Original exception: <class "
                                       "'test_errors.Unserializable'>: cannot travel" % problem)
            assert info.value._pyroTraceback
            assert proxy.ok() == "ok"


def test_result_that_cannot_be_serialized(servertype, serve):
    with served(serve, obj=Failing()) as (daemon, uri, _):
        with core.Proxy(uri) as proxy:
            with pytest.raises(TypeError) as info:  # the serializer's own error, as in Pyro4
                proxy.bad_result()
            assert str(info.value) == ("don't know how to serialize class <class '_thread.lock'>. "
                                       "Give it vars() or an appropriate __getstate__")
            assert proxy.ok() == "ok"


# --- traceback helpers ---------------------------------------------------------------------------------

def _remote_failure(serve: Any, detailed: bool = False) -> Tuple[type, BaseException, Any]:
    config.DETAILED_TRACEBACK = detailed
    with served(serve, obj=Failing()) as (daemon, uri, _):
        with core.Proxy(uri) as proxy:
            try:
                proxy.value_error()
            except ValueError:
                return sys.exc_info()
    raise AssertionError("no remote error")


def test_get_pyro_traceback(servertype, serve):
    ex_type, ex_value, ex_tb = _remote_failure(serve)
    lines = util.getPyroTraceback(ex_type, ex_value, ex_tb)
    text = "".join(lines)
    local, remote = text.split(" +--- This exception occured remotely (Pyro) - Remote traceback:")
    assert local.startswith("Traceback (most recent call last):\n") and local.endswith("ValueError: boom\n")
    assert "test_errors.py" in local
    assert remote.endswith("\n | ValueError: boom\n +--- End of remote traceback\n")
    assert remote.startswith("\n | Traceback (most recent call last):")
    body = remote.split("\n")[1:-2]
    assert all(line.startswith(" | ") for line in body)
    assert any('raise ValueError("boom")' in line for line in body)
    try:
        raise ex_value
    except ValueError:
        assert util.getPyroTraceback()[-1] == "\n +--- End of remote traceback\n"  # from sys.exc_info()


def test_get_pyro_traceback_of_a_local_exception():
    try:
        raise KeyError("here")
    except KeyError:
        lines = util.getPyroTraceback()
    assert "remotely" not in "".join(lines) and lines[-1] == "KeyError: 'here'\n"


def test_detailed_traceback(servertype, serve):
    ex_type, ex_value, ex_tb = _remote_failure(serve, detailed=True)
    remote = "".join(ex_value._pyroTraceback)
    assert remote.startswith("-" * 52 + "\n EXCEPTION <class 'ValueError'>: boom\n Extended stacktrace follows "
                             "(most recent call last)\n")
    assert "Source code:" in remote and 'raise ValueError("boom")' in remote
    assert "local_marker = 'visible in detailed tracebacks'" in remote.replace('"', "'")
    local = "".join(util.formatTraceback(ex_type, ex_value, ex_tb, detailed=True))
    assert " EXCEPTION <class 'ValueError'>: boom" in local and "Local values:" in local
    assert "".join(util.formatTraceback(ex_type, ex_value, ex_tb)).startswith("Traceback (most recent call last)")
    assert util.formatTraceback(ValueError, ValueError("x"), None) == ["ValueError: x\n"]


def test_plain_traceback_when_not_detailed(servertype, serve):
    _, ex_value, _ = _remote_failure(serve, detailed=False)
    remote = "".join(ex_value._pyroTraceback)
    assert "Local values:" not in remote and "EXCEPTION" not in remote


def test_excepthook(servertype, serve, capsys):
    ex_type, ex_value, ex_tb = _remote_failure(serve)
    util.excepthook(ex_type, ex_value, ex_tb)
    err = capsys.readouterr().err
    assert err == "".join(util.getPyroTraceback(ex_type, ex_value, ex_tb))
    assert "occured remotely (Pyro)" in err


# --- connection failures --------------------------------------------------------------------------------

def test_connection_lost_mid_call(servertype, serve):
    with served(serve, obj=Failing()) as (daemon, uri, _):
        proxy = core.Proxy(uri)
        with pytest.raises(errors.ConnectionClosedError) as info:
            proxy.cut()
        assert str(info.value) == "receiving: not enough data"
        assert proxy._pyroConnection is None
        assert proxy.ok() == "ok"  # a new connection
        proxy._pyroRelease()


def test_keyboard_interrupt_releases_the_connection(servertype, serve):
    class Interrupted(core.Proxy):
        def _pyroResponseAnnotations(self, annotations: Any, msgtype: int) -> None:
            if msgtype != 2:  # not the handshake reply
                raise KeyboardInterrupt

    with served(serve) as (daemon, uri, _):
        proxy = Interrupted(uri)
        proxy._pyroBind()
        with pytest.raises(KeyboardInterrupt):
            proxy.echo(1)
        assert proxy._pyroConnection is None


@contextlib.contextmanager
def fake_server(behaviour: Callable[[socket.socket], None]) -> Iterator[str]:
    """A loopback server that treats its one client with ``behaviour``; yields a URI for it."""
    listener = socket.create_server((HOST, 0))
    listener.settimeout(WAIT)
    done = threading.Event()

    def run() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            behaviour(conn)
            done.wait(WAIT)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield "PYRO:obj@%s:%d" % listener.getsockname()
    finally:
        done.set()
        thread.join(WAIT)
        listener.close()


def _read_then_close(conn: socket.socket) -> None:
    conn.recv(65536)
    conn.shutdown(socket.SHUT_RDWR)


def _junk(conn: socket.socket) -> None:
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" + b"x" * 100)


def _silent(conn: socket.socket) -> None:
    conn.recv(65536)


def _half_header(conn: socket.socket) -> None:
    conn.recv(65536)
    conn.sendall(b"PYRO\x00\x30")
    conn.shutdown(socket.SHUT_WR)


CONNECT_FAILURES = [
    (_read_then_close, errors.ConnectionClosedError, "receiving: not enough data", None),
    (_half_header, errors.ConnectionClosedError, "receiving: not enough data", None),
    (_junk, errors.ProtocolError, "invalid data or unsupported protocol version", None),
    (_silent, errors.TimeoutError, "receiving: timeout", 0.2),
]


@pytest.mark.parametrize("behaviour,exc_type,text,timeout", CONNECT_FAILURES,
                         ids=[c[0].__name__ for c in CONNECT_FAILURES])
def test_connect_failures(behaviour, exc_type, text, timeout):
    with fake_server(behaviour) as uri:
        proxy = core.Proxy(uri)
        proxy._pyroTimeout = timeout
        with pytest.raises(exc_type) as info:
            proxy.anything()
        assert type(info.value) is exc_type and str(info.value) == text
        assert isinstance(info.value, errors.CommunicationError)
        assert proxy._pyroConnection is None


def test_connect_refused_is_a_communication_error():
    listener = socket.create_server((HOST, 0))
    port = listener.getsockname()[1]
    listener.close()
    with pytest.raises(errors.CommunicationError) as info:
        core.Proxy("PYRO:x@%s:%d" % (HOST, port))._pyroBind()
    assert type(info.value) is errors.CommunicationError
    assert str(info.value) == "cannot connect to ('%s', %d): [Errno 111] Connection refused" % (HOST, port)
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


def test_unix_socket_that_does_not_exist(tmp_path):
    path = str(tmp_path / "nothing.sock")
    with pytest.raises(errors.CommunicationError) as info:
        core.Proxy("PYRO:x@./u:" + path)._pyroBind()
    assert str(info.value) == "cannot connect to %s: [Errno 2] No such file or directory" % path


def test_daemon_survives_garbage_from_a_client(servertype, serve):
    with served(serve) as (daemon, uri, _):
        for junk in (b"GET / HTTP/1.0\r\n\r\n", b"PYRO" + b"\x00" * 20, b"\xff" * 3):
            with socket.create_connection((HOST, uri.port)) as raw:
                raw.sendall(junk)
                raw.shutdown(socket.SHUT_WR)
                raw.settimeout(WAIT)
                while raw.recv(4096):  # a CONNECTFAIL or nothing, then the daemon hangs up
                    pass
        with core.Proxy(uri) as proxy:
            assert proxy.echo("still fine") == "still fine"
