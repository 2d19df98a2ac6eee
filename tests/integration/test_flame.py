"""Flame on loopback: its guards, every method of the Flame object, the console, and the flameserver tool.

The Flame server runs in this process on 127.0.0.1, port 0, with pickle as the only accepted
serializer and the client sending pickle, as Flame demands. One test runs the flameserver as a
real process (``python -W error -m pyro4compat.utils.flameserver``) and stops it itself.
"""

from __future__ import annotations

import copy
import inspect
import io
import json.decoder
import os
import pickle
import stat
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

import pytest

from pyro4compat import constants, errors
from pyro4compat._serializers import get_serializer
from pyro4compat._server.daemon import Daemon
from pyro4compat.configuration import config
from pyro4compat.utils import flame, flameserver

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[2]
KEY_WARNING = "using -k to supply HMAC key on the command line is a security problem"


def enable_flame() -> None:
    config.FLAME_ENABLED = True
    config.SERIALIZERS_ACCEPTED = {"pickle"}
    config.SERIALIZER = "pickle"


@pytest.fixture
def flame_location(serve) -> Iterator[str]:
    """``host:port`` of a Flame server serving in a thread of this process."""
    enable_flame()
    with Daemon(host="127.0.0.1") as daemon:
        uri = flame.start(daemon)
        assert uri.object == constants.FLAME_NAME == "Pyro.Flame"
        with serve(daemon):
            yield uri.location


@pytest.fixture
def remote(flame_location) -> Iterator[Any]:
    with flame.connect(flame_location) as proxy:
        yield proxy


@pytest.fixture
def scratch_modules() -> Iterator[None]:
    """Forget the modules a test creates with ``createModule``/``sendmodule``."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]


# --- the guards ----------------------------------------------------------------------------------

# (FLAME_ENABLED, SERIALIZERS_ACCEPTED, exception, text): start() checks the switch first
START_GUARDS = [
    (False, {"pickle"}, errors.SecurityError, "Flame is disabled in the server configuration"),
    (False, {"serpent"}, errors.SecurityError, "Flame is disabled in the server configuration"),
    (True, {"pickle", "serpent"}, errors.SerializeError, "Flame requires the pickle serializer exclusively"),
    (True, {"serpent"}, errors.SerializeError, "Flame requires the pickle serializer exclusively"),
]


@pytest.mark.parametrize("enabled, accepted, exception, text", START_GUARDS)
def test_start_refuses_unless_enabled_and_pickle_only(enabled, accepted, exception, text):
    config.FLAME_ENABLED, config.SERIALIZERS_ACCEPTED = enabled, accepted
    with Daemon(host="127.0.0.1") as daemon:
        with pytest.raises(exception) as caught:
            flame.start(daemon)
        assert str(caught.value) == text
        assert constants.FLAME_NAME not in daemon.objectsById


def test_the_flame_object_itself_demands_pickle_only():
    config.SERIALIZERS_ACCEPTED = {"pickle", "json"}
    with pytest.raises(RuntimeError, match="^flame requires the pickle serializer exclusively$"):
        flame.Flame()
    config.SERIALIZERS_ACCEPTED = ["pickle"]
    assert isinstance(flame.Flame(), flame.Flame)


@pytest.mark.parametrize("serializer", ["serpent", "json", "marshal"])
def test_connect_demands_the_pickle_serializer(serializer):
    config.SERIALIZER = serializer
    with pytest.raises(errors.SerializeError, match="^Flame requires the pickle serializer$"):
        flame.connect("127.0.0.1:1")  # refused before any connection attempt


def test_a_non_pickle_client_is_refused_by_the_server(flame_location):
    with flame.connect(flame_location) as proxy:
        config.SERIALIZER = "serpent"
        with pytest.raises(errors.SerializeError, match="^message used serializer that is not accepted: 1$"):
            proxy.evaluate("1")


def test_connect_binds_and_uses_the_hmac_key(serve):
    enable_flame()
    with Daemon(host="127.0.0.1") as daemon:
        daemon._pyroHmacKey = b"flamekey"
        location = flame.start(daemon).location
        with serve(daemon):
            with flame.connect(location, hmac_key=b"flamekey") as proxy:
                assert proxy._pyroConnection is not None
                assert proxy.evaluate("6*7") == 42
            with pytest.raises(errors.CommunicationError):
                flame.connect(location)


# --- the Flame object's methods ------------------------------------------------------------------

def test_module_calls_functions_of_a_remote_module(remote):
    module = remote.module("os.path")
    assert isinstance(module, flame.FlameModule) and module.module == "os.path"
    assert module.join("a", "b") == os.path.join("a", "b")
    assert remote.module("os").path.basename("/x/y.txt") == "y.txt"  # dotted lookup on the server
    assert remote.module("json").dumps({"a": 1}, sort_keys=True) == '{"a": 1}'  # kwargs travel
    with pytest.raises(ImportError):
        remote.module("no_such_module_here")
    with pytest.raises(AttributeError):
        module.no_such_function()


def test_builtin_calls_a_remote_builtin(remote):
    builtin = remote.builtin("max")
    assert isinstance(builtin, flame.FlameBuiltin) and builtin.builtin == "max"
    assert builtin(3, 9, 4) == 9
    assert remote.builtin("sorted")([3, 1, 2], reverse=True) == [3, 2, 1]
    with pytest.raises(AttributeError):
        remote.builtin("no_such_builtin")()


def test_execute_and_evaluate_share_a_namespace(remote):
    assert remote.execute("flame_test_value = 41 + 1\n\n   ") is None  # trailing whitespace is fine
    assert remote.evaluate("flame_test_value") == 42
    assert remote.evaluate("sys.platform") == sys.platform  # sys and os are there, as in Pyro4
    assert remote.evaluate("[n * 2 for n in range(3)]") == [0, 2, 4]
    with pytest.raises(ZeroDivisionError):
        remote.evaluate("1/0")
    with pytest.raises(SyntaxError):
        remote.execute("def broken(:")


def test_sendmodule_then_module_and_dotted_names(remote, scratch_modules):
    source = "def double(n):\n    return n * 2\n\nclass Box:\n    size = 3\n"
    assert remote.sendmodule("flamepkg.tools", source) is None
    tools = remote.module("flamepkg.tools")
    assert tools.double(21) == 42
    assert remote.module("flamepkg").tools.double(2) == 4
    assert remote.evaluate("__import__('flamepkg.tools').tools.Box.size") == 3
    remote.sendmodule("flamepkg.tools", "def double(n):\n    return n * 3\n")  # replaced in place
    assert tools.double(2) == 6


def test_getmodule_returns_the_modules_source(remote):
    assert remote.getmodule("json.decoder") == inspect.getsource(json.decoder)
    assert remote.getmodule("json") == inspect.getsource(sys.modules["json"])
    with pytest.raises(ImportError):
        remote.getmodule("no_such_module_here")


def test_sendfile_and_getfile(remote, tmp_path):
    target = tmp_path / "sent.bin"
    data = bytes(range(256)) * 10
    assert remote.sendfile(str(target), data) is None
    assert target.read_bytes() == data
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IRUSR | stat.S_IWUSR
    assert remote.getfile(str(target)) == data
    with pytest.raises(IOError):
        remote.getfile(str(tmp_path / "missing"))


def test_invoke_builtin_and_invoke_module_directly(remote):
    assert remote.invokeBuiltin("len", ([1, 2, 3],), {}) == 3
    assert remote.invokeModule("os.path.join", ("a", "b"), {}) == os.path.join("a", "b")
    with pytest.raises(KeyError):
        remote.invokeModule("module_never_imported_xyz.f", (), {})


def test_proxies_to_modules_and_builtins_are_context_managers_with_pyro4s_reprs(remote, flame_location):
    with remote.module("os.path") as module:
        assert module.basename("/a/b") == "b"
        assert module.flameserver._pyroConnection is not None
        assert repr(module).startswith("<pyro4compat.utils.flame.FlameModule at 0x")
        assert repr(module).endswith("; module 'os.path' at %s>" % flame_location)
    assert module.flameserver._pyroConnection is None
    with remote.builtin("abs") as builtin:
        assert builtin(-2) == 2
        assert repr(builtin).endswith("; builtin 'abs' at %s>" % flame_location)
    assert builtin.flameserver._pyroConnection is None


def test_flame_module_copies_and_pickles_as_a_plain_object(remote):
    module = remote.module("os.path")
    assert copy.copy(module).module == "os.path"
    clone = pickle.loads(pickle.dumps(module))
    assert clone.join("x", "y") == os.path.join("x", "y")
    with pytest.raises(AttributeError):
        module.__deepcopy_helper__  # dunders are never remote functions
    assert not hasattr(module, "__getnewargs_ex__") and not hasattr(module, "__deepcopy__")


@pytest.mark.parametrize("cls", [flame.FlameModule, flame.FlameBuiltin, flame.RemoteInteractiveConsole])
def test_flame_objects_travel_under_pyro4s_wire_names(cls):
    data = get_serializer("pickle").dumps(cls)
    assert b"Pyro4.utils.flame" in data and b"pyro4compat" not in data
    assert get_serializer("pickle").loads(data) is cls


# --- the console ---------------------------------------------------------------------------------

def test_console_through_its_api(remote, flame_location):
    console = remote.console()
    assert isinstance(console, flame.RemoteInteractiveConsole)
    assert repr(console).endswith("; for %s>" % flame_location)
    banner = console.remoteconsole.get_banner()
    assert banner == "Python %s on %s\n(Remote console on %s)" % (sys.version, sys.platform, flame_location)
    session = console.remoteconsole
    assert session.push_and_get_output("answer = 6 * 7") == ("", False)
    assert session.push_and_get_output("answer") == ("42\n", False)  # the value echo of a console
    assert session.push_and_get_output("print(answer)") == ("42\n", False)
    assert session.push_and_get_output("for i in range(2):") == ("", True)
    assert session.push_and_get_output("    print(i)") == ("", True)
    assert session.push_and_get_output("") == ("0\n1\n", False)
    output, more = session.push_and_get_output("1/0")
    assert not more and output.endswith("ZeroDivisionError: division by zero\n")
    output, more = session.push_and_get_output("def broken(:")
    assert not more and "SyntaxError" in output and '"<remoteconsole>", line 1' in output
    console.close()
    with pytest.raises(errors.CommunicationError, match="unknown object"):  # unregistered on the server
        session.push_and_get_output("1")


def test_console_errors_reach_the_client_despite_a_custom_excepthook(remote, monkeypatch):
    hooked = []
    monkeypatch.setattr(sys, "excepthook", lambda *exc_info: hooked.append(exc_info))
    with remote.console() as console:
        output, _ = console.remoteconsole.push_and_get_output("1/0")
        assert output.endswith("ZeroDivisionError: division by zero\n")
        output, _ = console.remoteconsole.push_and_get_output("1 +* 2")
        assert output.endswith("SyntaxError: invalid syntax\n")
    assert hooked == []


def test_console_interact_reads_lines_from_stdin(remote, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("y = 5\nprint(y * 2)\nundefined_name\n"))
    with remote.console() as console:
        console.interact()
    out, err = capsys.readouterr()
    assert "10\n" in out
    assert "NameError: name 'undefined_name' is not defined" in out
    assert out.endswith("(Remote session ended)\n")
    assert "(Remote console on " in err  # the banner, as code.InteractiveConsole writes it


# --- createModule ----------------------------------------------------------------------------------

def test_create_module_builds_the_package_chain(scratch_modules):
    namespace: Dict[str, Any] = {}
    module = flame.createModule("flamechain.inner.leaf", "value = 7\n", namespace=namespace)
    assert isinstance(module, types.ModuleType) and module.__name__ == "flamechain.inner.leaf"
    assert sys.modules["flamechain.inner.leaf"] is module
    assert namespace["flamechain"] is sys.modules["flamechain"]
    assert namespace["flamechain"].inner.leaf.value == 7


def test_create_module_reuses_loaded_modules_and_names_the_file(scratch_modules):
    first = flame.createModule("flamereuse", "a = 1\n")
    second = flame.createModule("flamereuse", "b = 2\n", filename="<mine>")
    assert first is second and (second.a, second.b) == (1, 2)
    with pytest.raises(ZeroDivisionError) as caught:
        flame.createModule("flamereuse", "\n1/0\n", filename="<mine>")
    assert caught.traceback[-1].frame.code.raw.co_filename == "<mine>"


def test_fix_exec_source_newlines_strips_trailing_whitespace():
    assert flame.fixExecSourceNewlines("x = 1\n  \n\t\n") == "x = 1"


def test_exec_function_runs_source_in_the_given_globals():
    namespace: dict = {}
    flame.exec_function("if True:\r\n  total = 5 + 6\r\n   ", "<mine>", namespace)
    assert namespace["total"] == 11
    with pytest.raises(ZeroDivisionError) as caught:
        flame.exec_function("1/0", "<mine>", {})
    assert caught.traceback[-1].frame.code.raw.co_filename == "<mine>"


# --- the flameserver tool --------------------------------------------------------------------------

def test_flameserver_main_prints_pyro4s_lines_and_accepts_only_pickle(capsys):
    config.FLAME_ENABLED = True
    config.SERIALIZERS_ACCEPTED = {"serpent", "json", "marshal", "pickle"}
    daemon, uri = flameserver.main(["-H", "127.0.0.1"], returnWithoutLooping=True)
    with daemon:
        assert config.SERIALIZERS_ACCEPTED == {"pickle"}
        assert isinstance(daemon.objectsById[constants.FLAME_NAME], flame.Flame)
    assert capsys.readouterr().out.splitlines() == [
        "Starting Pyro Flame server.", "Warning: HMAC key not set. Anyone can connect to this server!",
        "server uri: %s" % uri, "server is running."]


def test_flameserver_quiet_and_key_options(capsys, monkeypatch):
    config.FLAME_ENABLED = True
    with pytest.warns(UserWarning, match=KEY_WARNING):
        daemon, _ = flameserver.main(["-H", "127.0.0.1", "-q", "-k", "abc"], returnWithoutLooping=True)
    daemon.close()
    assert daemon._pyroHmacKey == b"abc" and capsys.readouterr().out == ""
    monkeypatch.setenv("PYRO_HMAC_KEY", "fromenv")
    daemon, _ = flameserver.main(["-H", "127.0.0.1"], returnWithoutLooping=True)
    daemon.close()
    assert daemon._pyroHmacKey == b"fromenv" and "HMAC key not set" not in capsys.readouterr().out
    with pytest.warns(UserWarning, match=KEY_WARNING), pytest.raises(SystemExit) as caught:
        flameserver.main(["-k", "abc"], returnWithoutLooping=True)
    assert str(caught.value) == "error: don't use -k and PYRO_HMAC_KEY at the same time"


def test_flameserver_refuses_when_disabled_and_closes_its_socket(monkeypatch):
    created = []

    class RecordingDaemon(Daemon):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            created.append(self)

    monkeypatch.setattr(flameserver, "Daemon", RecordingDaemon)
    config.FLAME_ENABLED = False
    with pytest.raises(errors.SecurityError, match="^Flame is disabled in the server configuration$"):
        flameserver.main(["-H", "127.0.0.1", "-q"], returnWithoutLooping=True)
    assert len(created) == 1 and created[0].transportServer is None


def _flameserver_process(env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("PYRO_")}
    child_env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.Popen([sys.executable, "-W", "error", "-m", "pyro4compat.utils.flameserver", "-H", "127.0.0.1"],
                            cwd=str(ROOT), env=child_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_flameserver_process_serves_and_refuses_when_disabled():
    proc = _flameserver_process({"PYRO_FLAME_ENABLED": "true"})
    try:
        lines = [proc.stdout.readline().rstrip("\n") for _ in range(3)]
        assert lines[:2] == ["Starting Pyro Flame server.",
                             "Warning: HMAC key not set. Anyone can connect to this server!"]
        assert lines[2].startswith("server uri: PYRO:Pyro.Flame@127.0.0.1:")
        config.SERIALIZER = "pickle"
        with flame.connect(lines[2].rpartition("@")[2]) as proxy:
            assert proxy.evaluate("__import__('os').getpid()") == proc.pid
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    proc = _flameserver_process()
    try:
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 1
    assert stderr.rstrip().endswith("SecurityError: Flame is disabled in the server configuration")
