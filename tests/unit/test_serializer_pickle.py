"""Pickle, dill and cloudpickle: Pyro4's wire names both ways, without importing Pyro4."""

from __future__ import annotations

import io
import logging
import pickle
import pickletools
import sys

import pytest

from pyro4compat import errors
from pyro4compat import _serializers as S
from pyro4compat._uri import URI

PICKLES = ("pickle", "dill", "cloudpickle")
URI_STATE = ("PYRO", "obj", None, "h", 5)


def pyro4_style_stream(protocol: int, module: str, name: str, state) -> bytes:
    """A stream shaped like real Pyro4's: a direct global for ``module.name``, NEWOBJ, BUILD."""
    if protocol >= 4:
        head = (pickle.PROTO + bytes([protocol]) + pickle.SHORT_BINUNICODE + bytes([len(module)]) +
                module.encode() + pickle.SHORT_BINUNICODE + bytes([len(name)]) + name.encode() +
                pickle.STACK_GLOBAL)
    else:
        head = pickle.PROTO + bytes([protocol]) + pickle.GLOBAL + ("%s\n%s\n" % (module, name)).encode()
    body = pickle.dumps(state, 2)[2:-1]  # the state's opcodes (no frames), without PROTO and STOP
    return head + pickle.EMPTY_TUPLE + pickle.NEWOBJ + body + pickle.BUILD + pickle.STOP


@pytest.mark.parametrize("name", PICKLES)
@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_reads_pyro4_globals(name, protocol):
    data = pyro4_style_stream(protocol, "Pyro4.core", "URI", URI_STATE)
    pickletools.dis(data, out=io.StringIO())  # a well-formed stream
    before = {key for key in sys.modules if key.startswith("Pyro4")}
    result = S.get_serializer(name).loads(data)
    assert type(result) is URI and result == URI("PYRO:obj@h:5")
    assert {key for key in sys.modules if key.startswith("Pyro4")} == before  # nothing imported or added


@pytest.mark.parametrize("name", PICKLES)
def test_reads_pyro4_exception_globals(name):
    data = (b"\x80\x02cPyro4.errors\nNamingError\nX\x03\x00\x00\x00bad\x85R}X\x0e\x00\x00\x00_pyroTraceback"
            b"]X\x02\x00\x00\x00tbasb.")
    result = S.get_serializer(name).loads(data)
    assert type(result) is errors.NamingError and result.args == ("bad",) and result._pyroTraceback == ["tb"]


@pytest.mark.parametrize("name", PICKLES)
@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_writes_pyro4_names(name, protocol, monkeypatch):
    from pyro4compat import configuration
    monkeypatch.setattr(configuration.config, "PICKLE_PROTOCOL_VERSION", protocol)
    monkeypatch.setattr(configuration.config, "DILL_PROTOCOL_VERSION", protocol)
    data = S.get_serializer(name).dumps([URI("PYRO:obj@h:5"), errors.SecurityError("s")])
    assert data[1] == protocol
    strings = [arg for op, arg, pos in pickletools.genops(data) if isinstance(arg, str)]
    if protocol >= 4 or name == "cloudpickle":
        assert "Pyro4.core" in strings and "Pyro4.errors" in strings
    else:   # GLOBAL's argument is "module name"
        assert "Pyro4.core URI" in strings and "Pyro4.errors SecurityError" in strings
    assert not any("pyro4compat" in text for text in strings)
    result = S.get_serializer(name).loads(data)
    assert result[0] == URI("PYRO:obj@h:5") and type(result[1]) is errors.SecurityError


def test_protocol_is_read_per_call(monkeypatch):
    from pyro4compat import configuration
    ser = S.get_serializer("pickle")
    monkeypatch.setattr(configuration.config, "PICKLE_PROTOCOL_VERSION", 2)
    assert ser.dumps(1)[:2] == b"\x80\x02"
    monkeypatch.setattr(configuration.config, "PICKLE_PROTOCOL_VERSION", 4)
    assert ser.dumps(1)[:2] == b"\x80\x04"


def test_other_globals_still_work():
    import collections
    value = collections.OrderedDict(a=1)
    for name in PICKLES:
        assert S.get_serializer(name).loads(S.get_serializer(name).dumps(value)) == value


def test_cloudpickle_module_memo_is_shared_within_a_stream():
    data = S.get_serializer("cloudpickle").dumps([URI("PYRO:a@h:1"), URI("PYRO:b@h:2"),
                                                   S._ExceptionWrapper(KeyError())])
    strings = [arg for op, arg, pos in pickletools.genops(data) if isinstance(arg, str)]
    assert strings.count("Pyro4.core") == 1 and strings.count("import_module") == 1


@pytest.mark.parametrize("name", ["pickle", "dill"])
@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_pickle_and_dill_write_wire_classes_as_plain_globals(name, protocol, monkeypatch):
    from pyro4compat import configuration
    monkeypatch.setattr(configuration.config, "PICKLE_PROTOCOL_VERSION", protocol)
    monkeypatch.setattr(configuration.config, "DILL_PROTOCOL_VERSION", protocol)
    data = S.get_serializer(name).dumps([URI("PYRO:a@h:1"), URI("PYRO:b@h:2"), errors.NamingError("n")])
    ops = [(op.name, arg) for op, arg, pos in pickletools.genops(data)]
    assert not any(arg in ("builtins", "__builtin__", "importlib") for name_, arg in ops)
    if protocol >= 4:
        globals_ = [ops[i - 4][1] + " " + ops[i - 2][1] for i, (op, arg) in enumerate(ops) if op == "STACK_GLOBAL"]
    else:
        globals_ = [arg for op, arg in ops if op == "GLOBAL"]
    assert globals_ == ["Pyro4.core URI", "Pyro4.errors NamingError"]  # the second URI is a memo get


def test_a_stream_with_a_wire_class_is_the_c_picklers_stream_but_for_that_global():
    """The Python-level pickler rewrites such a stream; the rest is what pickle's C pickler writes."""
    import collections
    import dill  # noqa: F401 - importing dill changes pickle._Pickler's table; it must not matter
    value = [URI("PYRO:a@h:1"), 1, 2.5, "t\u00e9xt", b"b" * 70000, {"k": (1, 2)}, {3},
             collections.OrderedDict(a=1), KeyError("x"), print, int]
    ours = S.get_serializer("pickle").dumps(value)
    stock = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)  # writes our own module name

    def opcodes(data: bytes) -> list:
        return [(op.name, arg) for op, arg, pos in pickletools.genops(data) if op.name != "FRAME"]
    assert opcodes(ours) == [(op, "Pyro4.core" if arg == "pyro4compat._uri" else arg) for op, arg in opcodes(stock)]


def test_cloudpickle_still_pickles_lambdas():
    ser = S.get_serializer("cloudpickle")
    assert ser.loads(ser.dumps(lambda x: x + 1))(1) == 2


def test_dill_still_pickles_lambdas():
    ser = S.get_serializer("dill")
    assert ser.loads(ser.dumps(lambda x: x * 3))(2) == 6


@pytest.mark.parametrize("unavailable", ["/nonexistent/python3.zip/pickle.py", None])
def test_without_the_pickle_source_wire_classes_still_pickle(unavailable, monkeypatch, caplog):
    """A zipped or frozen standard library: no private copy of pickle, but replies still go out."""
    from pyro4compat._serializers import pickle_serializers

    if unavailable is None:
        monkeypatch.delattr(pickle, "__file__")
    else:
        monkeypatch.setattr(pickle, "__file__", unavailable)
    monkeypatch.setattr(pickle_serializers, "_python_pickler", None)
    caplog.set_level(logging.WARNING, logger="Pyro4")
    serializer = S.get_serializer("pickle")
    error = errors.NamingError("unknown name: x")
    uri = URI("PYRO:obj@127.0.0.1:9999")
    stream = serializer.dumps([uri, error])
    assert b"import_module" in stream and b"Pyro4.core" in stream   # cloudpickle's form
    loaded_uri, loaded_error = serializer.loads(stream)
    assert loaded_uri == uri and type(loaded_error) is errors.NamingError
    assert str(loaded_error) == "unknown name: x"
    assert "no private copy of the pickle module" in caplog.text
