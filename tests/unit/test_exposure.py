"""Exposure rules: the decorators, member listing, and remote attribute access.

The central promise beyond Pyro4: a refused name is judged from the class alone, so no getter,
descriptor or lookup hook of the served object runs for it.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, List

import pytest

from pyro4compat import configuration
from pyro4compat._server import exposure as ex
from pyro4compat._server.exposure import (
    behavior, callback, expose, get_exposed_members, get_exposed_property_value, getAttribute,
    is_private_attribute, lookup_exposed_attribute, oneway, reset_exposed_members,
    set_exposed_property_value,
)

# ------------------------------------------------------------------------------ private names

PRIVATE_NAMES = [
    ("method", False), ("x", False), ("", False), ("_x", True), ("__x", True), ("_x_", True),
    ("__len__", False), ("__getitem__", False), ("__doc__", False), ("__init__", True),
    ("__call__", True), ("__getstate__", True), ("__init_subclass__", True), ("__eq__", True),
    ("___", True), ("____", True), ("_____", False), ("__x_", True), ("_x__", True),
]


@pytest.mark.parametrize("name, private", PRIVATE_NAMES)
def test_is_private_attribute(name: str, private: bool) -> None:
    assert is_private_attribute(name) is private


def test_private_dunder_list_covers_object_machinery() -> None:
    for name in ("__new__", "__del__", "__repr__", "__str__", "__hash__", "__reduce__",
                 "__reduce_ex__", "__setattr__", "__getattribute__", "__subclasshook__"):
        assert name in ex._private_dunder_methods
    assert len(ex._private_dunder_methods) == 45


# ------------------------------------------------------------------------------ decorators

def _public() -> None:
    """A plain public function."""


def _make(name: str) -> Callable[..., Any]:
    def func(*args: Any) -> None:
        return None
    func.__name__ = name
    return func


class Plain:
    pass


DECORATOR_ERRORS = [
    ("classmethod outer", lambda: expose(classmethod(_make("cm"))), AttributeError,
     "using @expose on a classmethod/staticmethod must be done after @classmethod/@staticmethod. Method: cm"),
    ("staticmethod outer", lambda: expose(staticmethod(_make("sm"))), AttributeError,
     "using @expose on a classmethod/staticmethod must be done after @classmethod/@staticmethod. Method: sm"),
    ("no name", lambda: expose(42), AttributeError, "@expose cannot determine what this is: 42"),
    ("None", lambda: expose(None), AttributeError, "@expose cannot determine what this is: None"),
    ("private function", lambda: expose(_make("_hidden")), AttributeError,
     "exposing private names (starting with _) is not allowed"),
    ("private dunder", lambda: expose(_make("__init__")), AttributeError,
     "exposing private names (starting with _) is not allowed"),
    ("private property", lambda: expose(property(_make("_p"))), AttributeError,
     "exposing private names (starting with _) is not allowed"),
    ("private class", lambda: expose(type("_Hidden", (), {})), AttributeError,
     "exposing private names (starting with _) is not allowed"),
    ("empty property", lambda: expose(property()), AttributeError, "@expose cannot determine what this is: "),
    ("bare behavior", lambda: behavior(Plain), SyntaxError, "behavior decorator is missing argument(s)"),
    ("non-str mode", lambda: behavior(5), SyntaxError, "behavior decorator is missing argument(s)"),
    ("bad mode", lambda: behavior("sometimes")(Plain), ValueError, "invalid instance mode: sometimes"),
    ("bad creator", lambda: behavior("single", 5)(Plain), TypeError, "instance_creator must be a callable"),
    ("behavior on function", lambda: behavior()(_public), TypeError,
     "behavior decorator can only be used on a class"),
    ("class checked before mode", lambda: behavior("sometimes")(42), TypeError,
     "behavior decorator can only be used on a class"),
]


@pytest.mark.parametrize("label, action, exc_type, text", DECORATOR_ERRORS,
                         ids=[case[0] for case in DECORATOR_ERRORS])
def test_decorator_errors(label: str, action: Callable[[], Any], exc_type: type, text: str) -> None:
    with pytest.raises(exc_type) as info:
        action()
    assert type(info.value) is exc_type
    assert str(info.value).startswith(text)
    if not text.endswith(": "):
        assert str(info.value) == text


BEHAVIORS = [
    ((), ("session", None)),
    (("single",), ("single", None)),
    (("percall",), ("percall", None)),
    (("session", Plain), ("session", Plain)),
    (("single", 0), ("single", 0)),  # a falsy creator is not checked, as in Pyro4
]


@pytest.mark.parametrize("args, stored", BEHAVIORS)
def test_behavior_stores_instancing(args: tuple, stored: tuple) -> None:
    cls = type("Served", (), {})
    assert behavior(*args)(cls) is cls
    assert cls._pyroInstancing == stored


def test_oneway_and_callback_mark_and_return_the_function() -> None:
    f = _make("f")
    assert oneway(f) is f and f._pyroOneway is True
    assert callback(f) is f and f._pyroCallback is True
    assert not hasattr(f, "_pyroExposed")


def test_expose_on_method_and_property_parts() -> None:
    getter, setter, deleter = _make("value"), _make("value"), _make("value")
    assert expose(getter) is getter and getter._pyroExposed is True
    only_setter = property(None, setter, deleter)
    assert expose(only_setter) is only_setter
    assert setter._pyroExposed is True and not hasattr(deleter, "_pyroExposed")
    only_deleter = property(None, None, deleter)
    expose(only_deleter)
    assert deleter._pyroExposed is True


class Base:
    def inherited(self) -> None:
        pass


@expose
class Exposed(Base):
    upper = str.upper  # a builtin method descriptor: cannot carry a mark, stays unexposed
    limit = 10

    def method(self) -> None:
        pass

    def _private(self) -> None:
        pass

    def __len__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "Exposed()"

    @classmethod
    def klass(cls) -> None:
        pass

    @staticmethod
    def static() -> None:
        pass

    @property
    def prop(self) -> int:
        return 1

    @prop.setter
    def prop(self, value: int) -> None:
        pass


EXPOSED_MARKS = [
    (Exposed.__dict__["method"], True),
    (Exposed.__dict__["_private"], False),
    (Exposed.__dict__["__len__"], True),
    (Exposed.__dict__["__repr__"], False),
    (Exposed.__dict__["klass"].__func__, True),
    (Exposed.__dict__["static"].__func__, True),
    (Exposed.__dict__["prop"].fget, True),
    (Exposed.__dict__["prop"].fset, True),
    (Base.__dict__["inherited"], False),
    (Exposed, True),
    (Base, False),
]


@pytest.mark.parametrize("thing, marked", EXPOSED_MARKS)
def test_class_exposure_marks_only_own_public_members(thing: Any, marked: bool) -> None:
    assert getattr(thing, "_pyroExposed", False) is marked


def test_expose_innermost_on_classmethod_and_staticmethod() -> None:
    class Service:
        @classmethod
        @expose
        def make(cls) -> str:
            return "made"

        @staticmethod
        @oneway
        @expose
        def ping() -> None:
            pass

    members = get_exposed_members(Service, as_lists=True, use_cache=False)
    assert members == {"methods": ["make", "ping"], "oneway": ["ping"], "attrs": []}


def test_expose_as_function_on_third_party_class() -> None:
    ThirdParty = type("ThirdParty", (), {"run": lambda self: "ran", "_skip": lambda self: None})
    assert expose(ThirdParty) is ThirdParty
    assert get_exposed_members(ThirdParty(), as_lists=True, use_cache=False)["methods"] == ["run"]
    assert not hasattr(ThirdParty.__dict__["_skip"], "_pyroExposed")


# ------------------------------------------------------------------------------ member listing

class Metaclassy(type):
    evaluated: List[str] = []

    @property
    def meta_prop(cls) -> int:
        Metaclassy.evaluated.append("meta_prop")
        return 1


class Listed(Base, metaclass=Metaclassy):
    plain_value = 3

    @expose
    def exposed(self) -> None:
        pass

    @expose
    @oneway
    def fire(self) -> None:
        pass

    @oneway
    def unexposed_oneway(self) -> None:
        pass

    def hidden(self) -> None:
        pass

    @expose
    @property
    def readable(self) -> int:
        return 1

    @property
    def unreadable(self) -> int:
        return 2

    writeonly = expose(property(None, _make("writeonly")))

    @expose
    def __len__(self) -> int:
        return 0


class DictLike(dict):
    def own(self) -> None:
        pass


class Slotted:
    __slots__ = ("slot",)

    @expose
    def method(self) -> None:
        pass


LISTINGS = [
    (Listed, True, {"methods": ["__len__", "exposed", "fire"], "oneway": ["fire"],
                    "attrs": ["readable", "writeonly"]}),
    (Listed, False, {"methods": ["__len__", "exposed", "fire", "hidden", "inherited", "unexposed_oneway"],
                     "oneway": ["fire", "unexposed_oneway"],
                     "attrs": ["readable", "unreadable", "writeonly"]}),
    (Exposed, True, {"methods": ["__len__", "klass", "method", "static"], "oneway": [], "attrs": ["prop"]}),
    (Slotted, True, {"methods": ["method"], "oneway": [], "attrs": []}),
    (Slotted, False, {"methods": ["method"], "oneway": [], "attrs": []}),
    (DictLike, True, {"methods": [], "oneway": [], "attrs": []}),
]


@pytest.mark.parametrize("cls, only_exposed, expected", LISTINGS)
def test_get_exposed_members(cls: type, only_exposed: bool, expected: dict) -> None:
    as_lists = get_exposed_members(cls, only_exposed=only_exposed, as_lists=True, use_cache=False)
    assert as_lists == expected
    as_sets = get_exposed_members(cls, only_exposed=only_exposed, use_cache=False)
    assert as_sets == {key: set(names) for key, names in expected.items()}
    assert Metaclassy.evaluated == []


def test_builtin_classmethods_are_never_listed() -> None:
    # Read off the class they are builtin bound methods, which Pyro4 does not count as methods.
    members = get_exposed_members(DictLike, only_exposed=False, as_lists=True, use_cache=False)
    assert "own" in members["methods"] and "keys" in members["methods"]
    assert "fromkeys" not in members["methods"] and "__class_getitem__" not in members["methods"]


def test_cache_returns_same_answer_until_reset() -> None:
    cls = type("Cached", (), {"a": expose(_make("a"))})
    first = get_exposed_members(cls)
    assert get_exposed_members(cls()) is first  # an instance shares its class's entry
    assert get_exposed_members(cls, as_lists=True) is not first
    cls.b = expose(_make("b"))
    assert get_exposed_members(cls) is first and first["methods"] == {"a"}
    reset_exposed_members(cls(), only_exposed=True, as_lists=False)
    second = get_exposed_members(cls)
    assert second is not first and second["methods"] == {"a", "b"}
    cls.c = expose(_make("c"))
    refreshed = get_exposed_members(cls, use_cache=False)
    assert refreshed["methods"] == {"a", "b", "c"} and get_exposed_members(cls) is refreshed


def test_reset_of_unknown_class_is_harmless() -> None:
    reset_exposed_members(type("Never", (), {}), only_exposed=False, as_lists=True)


# ------------------------------------------------------------------------------ remote access

class Recorder:
    """Every getter, setter and lookup hook here records being run."""

    calls: List[str]

    def __init__(self) -> None:
        self.calls = []
        self.instance_value = expose(_make("instance_value"))

    @expose
    def method(self) -> str:
        return "called"

    def hidden(self) -> None:
        self.calls.append("hidden")

    @property
    def secret(self) -> int:
        self.calls.append("secret.get")
        return 42

    @secret.setter
    def secret(self, value: int) -> None:
        self.calls.append("secret.set")

    @expose
    @property
    def public(self) -> int:
        self.calls.append("public.get")
        return 7

    @public.setter
    def public(self, value: int) -> None:
        self.calls.append("public.set %d" % value)

    @expose
    @property
    def exposed_readonly(self) -> int:
        return 1

    @property
    def _private_prop(self) -> int:
        self.calls.append("_private_prop.get")
        return 0

    class_value = 5


class Dynamic(Recorder):
    def __getattr__(self, name: str) -> Any:
        self.calls.append("__getattr__ " + name)
        return expose(_make(name))


UNEXPOSED = "attempt to access unexposed attribute '%s'"
PRIVATE = "attempt to access private attribute '%s'"
REMOTE = "attempt to access unexposed or unknown remote attribute '%s'"

GET_ATTRIBUTE = [
    # (class, name, outcome: "ok" or error text)
    (Recorder, "method", "ok"),
    (Recorder, "instance_value", "ok"),
    (Recorder, "hidden", UNEXPOSED % "hidden"),
    (Recorder, "secret", UNEXPOSED % "secret"),
    (Recorder, "class_value", UNEXPOSED % "class_value"),
    (Recorder, "calls", UNEXPOSED % "calls"),
    (Recorder, "_private_prop", PRIVATE % "_private_prop"),
    (Recorder, "__init__", PRIVATE % "__init__"),
    (Recorder, "missing", "'Recorder' object has no attribute 'missing'"),
    (Recorder, "method.__func__", "'Recorder' object has no attribute 'method.__func__'"),
    (Dynamic, "method", "ok"),
    (Dynamic, "conjured", UNEXPOSED % "conjured"),
    (Dynamic, "secret", UNEXPOSED % "secret"),
]


@pytest.mark.parametrize("cls, name, outcome", GET_ATTRIBUTE)
def test_getAttribute_never_runs_refused_names(cls: type, name: str, outcome: str) -> None:
    obj = cls()
    if outcome == "ok":
        assert getAttribute(obj, name)._pyroExposed is True
    else:
        with pytest.raises(AttributeError) as info:
            getAttribute(obj, name)
        assert str(info.value) == outcome
    assert obj.calls == []


def test_getAttribute_on_exposed_property_evaluates_then_refuses_the_value() -> None:
    obj = Recorder()
    with pytest.raises(AttributeError, match="attempt to access unexposed attribute 'public'"):
        getAttribute(obj, "public")
    assert obj.calls == ["public.get"]  # exposed: reading it is allowed, calling its value is not


@pytest.mark.parametrize("name, outcome", [
    ("method", "ok"), ("hidden", "ok"), ("class_value", "ok"),
    ("_private_prop", PRIVATE % "_private_prop"),
])
def test_getAttribute_without_require_expose(monkeypatch: pytest.MonkeyPatch, name: str,
                                              outcome: str) -> None:
    monkeypatch.setattr(configuration.config, "REQUIRE_EXPOSE", False)
    obj = Recorder()
    if outcome == "ok":
        assert getAttribute(obj, name) == getattr(obj, name)
    else:
        with pytest.raises(AttributeError, match=outcome):
            getAttribute(obj, name)


def test_lookup_exposed_attribute_refuses_non_string_names() -> None:
    with pytest.raises(AttributeError, match="attempt to access private attribute '5'"):
        lookup_exposed_attribute(Recorder(), 5, True)  # type: ignore[arg-type]


GET_PROPERTY = [
    # (name, only_exposed, outcome: value or error text, calls recorded)
    ("public", True, 7, ["public.get"]),
    ("exposed_readonly", True, 1, []),
    ("secret", True, REMOTE % "secret", []),
    ("secret", False, 42, ["secret.get"]),
    ("method", True, REMOTE % "method", []),
    ("class_value", True, REMOTE % "class_value", []),
    ("_private_prop", True, REMOTE % "_private_prop", []),
    ("_private_prop", False, REMOTE % "_private_prop", []),
    ("missing", True, "type object 'Recorder' has no attribute 'missing'", []),
    ("_missing", True, "type object 'Recorder' has no attribute '_missing'", []),
]


@pytest.mark.parametrize("name, only_exposed, outcome, calls", GET_PROPERTY)
def test_get_exposed_property_value(name: str, only_exposed: bool, outcome: Any, calls: List[str]) -> None:
    obj = Recorder()
    if isinstance(outcome, str):
        with pytest.raises(AttributeError) as info:
            get_exposed_property_value(obj, name, only_exposed=only_exposed)
        assert str(info.value) == outcome
    else:
        assert get_exposed_property_value(obj, name, only_exposed=only_exposed) == outcome
    assert obj.calls == calls


SET_PROPERTY = [
    ("public", True, None, ["public.set 3"]),
    ("exposed_readonly", True, REMOTE % "exposed_readonly", []),
    ("secret", True, REMOTE % "secret", []),
    ("secret", False, None, ["secret.set"]),
    ("method", True, REMOTE % "method", []),
    ("missing", True, "type object 'Recorder' has no attribute 'missing'", []),
]


@pytest.mark.parametrize("name, only_exposed, outcome, calls", SET_PROPERTY)
def test_set_exposed_property_value(name: str, only_exposed: bool, outcome: Any, calls: List[str]) -> None:
    obj = Recorder()
    if isinstance(outcome, str):
        with pytest.raises(AttributeError) as info:
            set_exposed_property_value(obj, name, 3, only_exposed=only_exposed)
        assert str(info.value) == outcome
    else:
        assert set_exposed_property_value(obj, name, 3, only_exposed=only_exposed) is outcome
    assert obj.calls == calls


def test_metaclass_property_is_refused_without_evaluation() -> None:
    with pytest.raises(AttributeError, match=REMOTE % "meta_prop"):
        get_exposed_property_value(Listed(), "meta_prop")
    assert Metaclassy.evaluated == []


def test_slot_members_are_not_remote_attributes() -> None:
    obj = Slotted()
    obj.slot = 1
    for access in (lambda: getAttribute(obj, "slot"), lambda: get_exposed_property_value(obj, "slot")):
        with pytest.raises(AttributeError, match="attempt to access unexposed"):
            access()


def test_module_level_getattr_is_a_lookup_hook() -> None:
    import types

    module = types.ModuleType("served")
    ran: List[str] = []
    module.__getattr__ = lambda name: ran.append(name)  # type: ignore[attr-defined]
    module.run = expose(_make("run"))  # type: ignore[attr-defined]
    assert getAttribute(module, "run") is module.run  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match=UNEXPOSED % "other"):
        getAttribute(module, "other")
    assert ran == []


def test_partial_without_name_cannot_be_exposed() -> None:
    with pytest.raises(AttributeError, match="@expose cannot determine what this is: functools.partial"):
        expose(functools.partial(_public))
