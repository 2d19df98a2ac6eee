"""class_to_dict / dict_to_class rules, user hooks, wire-class registration, type replacements."""

from __future__ import annotations

import copyreg

import pytest

from pyro4compat import errors
from pyro4compat import _serializers as S
from pyro4compat._serializers import wirenames
from pyro4compat._uri import URI

DICT_BASED = ("serpent", "json", "marshal", "msgpack")
PICKLES = ("pickle", "dill", "cloudpickle")
ALL = DICT_BASED + PICKLES
Base = S.SerializerBase


class Thing:
    """A test-only wire class using the uniform state protocol."""

    def __init__(self, a=None, b=None):
        self.a, self.b = a, b

    def __getstate_for_dict__(self):
        return [self.a, self.b]

    def __setstate_from_dict__(self, state):
        self.a, self.b = state

    def __eq__(self, other):
        return type(other) is type(self) and (self.a, self.b) == (other.a, other.b)


class SubThing(Thing):
    pass


class Plain:
    def __init__(self):
        self.x = 1


class WithGetstate:
    def __getstate__(self):
        return {"only": "this"}


class Slotted:
    __slots__ = ("p", "q")

    def __init__(self):
        self.p, self.q = 1, 2


class NoVars:
    __slots__ = ()

    def __getattribute__(self, name):
        if name == "__slots__":
            raise AttributeError(name)
        return object.__getattribute__(self, name)


@pytest.fixture
def thing_registered():
    wirenames.register_wire_class("tests.wire.Thing", Thing)
    yield
    wirenames.unregister_wire_class("tests.wire.Thing")


# --- wire class registration ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
def test_registered_wire_class_round_trips(thing_registered, name):
    ser = S.get_serializer(name)
    value = [Thing(1, "two"), SubThing(3, 4)]
    result = ser.loads(ser.dumps(value))
    assert result[0] == Thing(1, "two")
    if name in DICT_BASED:
        assert type(result[1]) is Thing and (result[1].a, result[1].b) == (3, 4)  # nearest wire class


@pytest.mark.parametrize("name", DICT_BASED)
def test_registered_wire_class_dict_form(thing_registered, name):
    ser = S.get_serializer(name)
    assert Base.class_to_dict(Thing(1, 2)) == {"__class__": "tests.wire.Thing", "state": [1, 2]}
    assert b"tests.wire.Thing" in ser.dumps(Thing(1, 2))


def test_late_registration_reaches_serpent():
    class Late:
        def __getstate_for_dict__(self):
            return (7,)

        def __setstate_from_dict__(self, state):
            self.v = state

    ser = S.get_serializer("serpent")
    assert b"tests.wire.Late" not in ser.dumps(Late())
    wirenames.register_wire_class("tests.wire.Late", Late)
    try:
        assert ser.dumps(Late()).endswith(b"{'__class__':'tests.wire.Late','state':(7,)}")
        assert ser.loads(ser.dumps(Late())).v == (7,)
    finally:
        wirenames.unregister_wire_class("tests.wire.Late")


def test_unregistered_wire_name_is_refused():
    for name in DICT_BASED:
        ser = S.get_serializer(name)
        with pytest.raises(errors.SerializeError, match="unsupported serialized class: tests.wire.Thing"):
            ser.loads(ser.dumps({"__class__": "tests.wire.Thing", "state": [1, 2]}))


def test_wirenames_lookups():
    assert wirenames.wire_name_for(URI) == "Pyro4.core.URI"
    assert wirenames.class_for_wire_name("Pyro4.core.URI") is URI
    assert wirenames.class_for_wire_name("Pyro4.errors.NamingError") is errors.NamingError
    assert wirenames.class_for_wire_name("Pyro4.futures._ExceptionWrapper") is S._ExceptionWrapper
    assert wirenames.class_for_wire_name("Pyro4.util.DillSerializer") is S.DillSerializer
    assert wirenames.exception_wire_name(errors.TimeoutError) == "Pyro4.errors.TimeoutError"
    assert wirenames.exception_wire_name(TimeoutError) == "builtins.TimeoutError"
    assert wirenames.exception_class_for("builtins.TimeoutError") is TimeoutError
    assert wirenames.exception_class_for("TimeoutError") is errors.TimeoutError
    assert wirenames.exception_class_for("exceptions.KeyError") is KeyError
    assert wirenames.exception_class_for("builtins.print") is None
    assert wirenames.exception_class_for("os.system") is None
    assert wirenames.split_wire_name("Pyro4.core.URI") == ("Pyro4.core", "URI")
    assert wirenames.module_namespace("Pyro4.core").URI is URI
    assert wirenames.module_namespace("Pyro4.nothing") is None
    with pytest.raises(ValueError):
        wirenames.register_wire_class("nodots", Thing)


def test_sqlite3_errors_are_allowed():
    import sqlite3
    data = {"__class__": "sqlite3.OperationalError", "__exception__": True, "args": ["locked"]}
    result = Base.dict_to_class(data)
    assert type(result) is sqlite3.OperationalError and result.args == ("locked",)


# --- class_to_dict rules ----------------------------------------------------------------------------
def test_class_to_dict_plain_object_keeps_class_name():
    assert Base.class_to_dict(Plain()) == {"x": 1, "__class__": __name__ + ".Plain"}


def test_class_to_dict_own_getstate_dict_wins():
    assert Base.class_to_dict(WithGetstate()) == {"only": "this"}


def test_class_to_dict_slots():
    assert Base.class_to_dict(Slotted()) == {"p": 1, "q": 2, "__class__": __name__ + ".Slotted"}


@pytest.mark.parametrize("value", [{1}, {"a": 1}, (1,), [1]])
def test_class_to_dict_refuses_containers(value):
    with pytest.raises(ValueError, match="can't serialize type"):
        Base.class_to_dict(value)


def test_class_to_dict_without_vars():
    with pytest.raises(errors.SerializeError, match="don't know how to serialize class"):
        S.JsonSerializer.class_to_dict(NoVars())


def test_class_to_dict_clears_pyro_daemon():
    obj = Plain()
    obj._pyroDaemon = "a daemon"
    assert Base.class_to_dict(obj)["_pyroDaemon"] is None and obj._pyroDaemon is None


@pytest.mark.parametrize("name", ["json", "marshal", "msgpack", "serpent"])
def test_plain_objects_fail_on_receipt_as_in_pyro4(name):
    ser = S.get_serializer(name)
    with pytest.raises(errors.SerializeError, match="unsupported serialized class: " + __name__ + ".Plain"):
        ser.loads(ser.dumps(Plain()))


# --- user hooks ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", DICT_BASED)
def test_class_to_dict_and_dict_to_class_hooks(name):
    ser = S.get_serializer(name)
    Base.register_class_to_dict(Plain, lambda obj: {"__class__": "my.Plain", "x": obj.x})
    Base.register_dict_to_class("my.Plain", lambda classname, d: ("revived", classname, d["x"]))
    try:
        assert ser.loads(ser.dumps([Plain()])) == [("revived", "my.Plain", 1)]
    finally:
        Base.unregister_class_to_dict(Plain)
        Base.unregister_dict_to_class("my.Plain")
    with pytest.raises(errors.SerializeError, match="unsupported serialized class"):
        ser.loads(ser.dumps([Plain()]))


def test_dict_to_class_hook_may_claim_dunder_names():
    Base.register_dict_to_class("__main__.Thing", lambda classname, d: "ok")
    try:
        assert S.get_serializer("json").loads(b'{"__class__": "__main__.Thing"}') == "ok"
    finally:
        Base.unregister_dict_to_class("__main__.Thing")


def test_serpent_too_false_leaves_serpent_alone():
    Base.register_class_to_dict(Plain, lambda obj: {"converted": True}, serpent_too=False)
    try:
        assert S.get_serializer("json").loads(S.get_serializer("json").dumps(Plain())) == {"converted": True}
        assert b"converted" not in S.get_serializer("serpent").dumps(Plain())
    finally:
        Base.unregister_class_to_dict(Plain)


def test_unregister_unknown_is_harmless():
    Base.unregister_class_to_dict(Thing)
    Base.unregister_dict_to_class("never.registered")


# --- refusals -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", DICT_BASED)
@pytest.mark.parametrize("classname, error, message", [
    ("os.system", errors.SerializeError, "unsupported serialized class: os.system"),
    ("__main__.Evil", errors.SecurityError,
     "refused to deserialize types with double underscores in their name: __main__.Evil"),
    ("builtins.__import__", errors.SecurityError, "refused to deserialize types with double underscores"),
    ("Pyro4.errors.Nonexistent", errors.SerializeError, "unsupported serialized class: Pyro4.errors.Nonexistent"),
    ("Pyro4.core.Proxy2", errors.SerializeError, "unsupported serialized class"),
    ("noDotAtAll", errors.SerializeError, "unsupported serialized class: noDotAtAll"),
])
def test_refused_classes(name, classname, error, message):
    ser = S.get_serializer(name)
    payload = {"__class__": classname, "__exception__": True, "args": [], "attributes": {}}
    with pytest.raises(error) as info:
        ser.loads(ser.dumps(payload))
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("data, message", [
    ({"__class__": "builtins.ValueError", "__exception__": True}, "cannot recreate builtins.ValueError"),
    ({"__class__": "builtins.UnicodeDecodeError", "__exception__": True, "args": [1]}, "cannot recreate"),
    ({"__class__": "Pyro4.core.URI", "state": [1]}, "cannot recreate Pyro4.core.URI"),
    ({"__class__": "Pyro4.core.URI"}, "cannot recreate Pyro4.core.URI"),
    ({"__class__": "Pyro4.futures._ExceptionWrapper", "exception": "not one"}, "cannot recreate"),
    ({"__class__": "builtins.ValueError", "__exception__": True, "args": [], "attributes": 5}, "cannot recreate"),
    ({"__class__": 12}, "unsupported serialized class: 12"),
])
def test_broken_dict_forms_give_serialize_error(data, message):
    with pytest.raises(errors.SerializeError) as info:
        Base.dict_to_class(data)
    assert str(info.value).startswith(message)


def test_builtin_exception_needs_exception_flag():
    with pytest.raises(errors.SerializeError, match="unsupported serialized class: builtins.ValueError"):
        Base.dict_to_class({"__class__": "builtins.ValueError", "args": []})


def test_pyro_errors_need_no_flag_as_in_pyro4():
    assert type(Base.dict_to_class({"__class__": "Pyro4.errors.NamingError", "args": ["x"]})) is errors.NamingError


def test_make_exception():
    ex = Base.make_exception(KeyError, {"args": ("k",), "attributes": {"_pyroTraceback": ["tb"]}})
    assert type(ex) is KeyError and ex.args == ("k",) and ex._pyroTraceback == ["tb"]


def test_recreate_classes_walks_containers():
    ser = S.get_serializer("json")
    literal = {"a": [{"__class__": "Pyro4.core.URI", "state": ["PYRO", "o", None, "h", 1]}],
               "b": ({"__class__": "builtins.KeyError", "__exception__": True, "args": ["k"]},)}
    result = ser.recreate_classes(literal)
    assert result["a"][0] == URI("PYRO:o@h:1") and type(result["b"][0]) is KeyError


# --- type replacements -------------------------------------------------------------------------------
class Replaced:
    def __init__(self, v=0):
        self.v = v


@pytest.fixture
def replacement():
    def replace(obj):
        return URI("PYRO:replaced%d@h:1" % obj.v)

    for ser in S._serializers.values():
        ser.register_type_replacement(Replaced, replace)
    yield
    from pyro4compat._serializers import json_serializer, msgpack_serializer, pickle_serializers
    json_serializer._type_replacements.pop(Replaced, None)
    msgpack_serializer._type_replacements.pop(Replaced, None)
    pickle_serializers._replacements.pop(Replaced, None)
    import serpent
    serpent.unregister_class(Replaced)


@pytest.mark.parametrize("name", ("serpent", "json", "msgpack") + PICKLES)
def test_type_replacement(replacement, name):
    ser = S.get_serializer(name)
    assert ser.loads(ser.dumps([Replaced(3)])) == [URI("PYRO:replaced3@h:1")]


def test_pickle_replacement_doesnt_touch_copyreg(replacement):
    assert Replaced not in copyreg.dispatch_table


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("bad", [type, 42, "str"])
def test_type_replacement_refuses_non_types(name, bad):
    ser = S.get_serializer(name)
    if name == "marshal":
        ser.register_type_replacement(bad, lambda obj: obj)  # marshal ignores replacements, as Pyro4
        return
    with pytest.raises(ValueError, match="refusing to register replacement for a non-type"):
        ser.register_type_replacement(bad, lambda obj: obj)


class Same:
    def __init__(self):
        self.k = 1


def test_replacement_returning_the_object_serializes_it_normally():
    S.get_serializer("serpent").register_type_replacement(Same, lambda obj: obj)
    S.get_serializer("pickle").register_type_replacement(Same, lambda obj: obj)
    try:
        assert b"'k':1" in S.get_serializer("serpent").dumps(Same())
        assert S.get_serializer("pickle").loads(S.get_serializer("pickle").dumps(Same())).k == 1
    finally:
        import serpent
        from pyro4compat._serializers import pickle_serializers
        serpent.unregister_class(Same)
        pickle_serializers._replacements.pop(Same, None)
