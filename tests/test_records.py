"""opsdash.records builds frozen slotted dataclasses that behave as the standard decorator's:
the same fields, equality, hashing, repr, immutability, pickling, ``replace`` and ``asdict``."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import pickle
import sys
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import pytest

from opsdash import records
from opsdash.figures import FIGURE_TYPES, HttpFigures
from opsdash.status import Status

Decorator = Callable[[type], type]


def _standard(cls: type) -> type:
    return dataclasses.dataclass(frozen=True, slots=True)(cls)


def _fast(cls: type) -> type:
    made: type = records.dataclass(frozen=True, slots=True)(cls)
    return made


def _family(decorate: Decorator) -> tuple[type, type, type]:
    """A base, a subclass with defaults of every sort, and a one-field record."""

    @decorate
    class Base:
        """A base with a class variable."""

        kind: ClassVar[str] = ""
        name: str

        def shout(self) -> str:
            return self.name.upper()

    @decorate
    class Child(Base):  # type: ignore[misc,valid-type]
        """Every kind of field."""

        kind: ClassVar[str] = "child"
        count: int
        ratio: float | None = None
        tags: tuple[str, ...] = ()
        labels: dict[str, str] = dataclasses.field(default_factory=dict)
        hidden: object = dataclasses.field(default=None, repr=False, compare=False)
        status: Status = dataclasses.field(default=Status.OK, metadata={"flat": True})

    @decorate
    class One:
        value: float
        self: bool = False  # a field may be called so (MongoMember has one)

    return Base, Child, One


@pytest.fixture(params=["standard", "fast"])
def family(request: pytest.FixtureRequest) -> tuple[type, type, type]:
    return _family(_standard if request.param == "standard" else _fast)


STANDARD = _family(_standard)
FAST = _family(_fast)


def _describe(cls: type) -> list[tuple[Any, ...]]:
    return [
        (f.name, f.type, f.default, f.default_factory, f.init, f.repr, f.hash, f.compare,
         dict(f.metadata), f.kw_only)
        for f in dataclasses.fields(cls)
    ]  # fmt: skip


@pytest.mark.parametrize("index", range(3))
def test_the_fields_are_the_standard_decorators(index: int) -> None:
    standard, fast = STANDARD[index], FAST[index]
    assert dataclasses.is_dataclass(fast)
    assert _describe(fast) == _describe(standard)
    assert fast.__slots__ == standard.__slots__  # type: ignore[attr-defined]
    assert fast.__match_args__ == standard.__match_args__  # type: ignore[attr-defined]
    assert fast.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert fast.__qualname__.replace("_fast", "") == standard.__qualname__.replace("_standard", "")


def test_instances_compare_hash_and_show_as_the_standard_ones() -> None:
    for (s_base, standard, s_one), (f_base, fast, f_one) in [(STANDARD, FAST)]:
        a_std = standard("a", 1, ratio=0.5, tags=("x",), labels={"k": "v"}, hidden=1)
        a_fast = fast("a", 1, ratio=0.5, tags=("x",), labels={"k": "v"}, hidden=1)
        assert repr(a_fast).split("(", 1)[1] == repr(a_std).split("(", 1)[1]
        assert repr(f_one(0.5)).endswith("One(value=0.5, self=False)")
        assert repr(f_one(0.5)).split("(", 1)[1] == repr(s_one(0.5)).split("(", 1)[1]
        same = fast("a", 1, ratio=0.5, tags=("x",), labels={"k": "v"}, hidden=2)
        assert same == a_fast  # compare=False fields do not count
        assert fast("a", 2) != a_fast
        assert (a_fast == a_std) is False  # another class: NotImplemented both ways
        assert hash(f_base("b")) == hash(s_base("b")) and hash(f_one(2.0)) == hash(s_one(2.0))
        assert {f_base("b"): 1}[f_base("b")] == 1
        with pytest.raises(TypeError, match="unhashable"):
            hash(fast("b", 3))  # its dict field, as the standard one
        with pytest.raises(TypeError, match="unhashable"):
            hash(standard("b", 3))
        nan = float("nan")
        assert (f_one(nan) == f_one(nan)) is (s_one(nan) == s_one(nan))


def test_instances_are_frozen_and_slotted(family: tuple[type, type, type]) -> None:
    base, child, _one = family
    item = child("a", 1)
    assert item.shout() == "A" and item.kind == "child" and base.kind == ""
    assert item.labels == {} and item.labels is not child("a", 1).labels  # a fresh factory value
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'count'"):
        item.count = 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        del item.name
    with pytest.raises((dataclasses.FrozenInstanceError, TypeError)):  # 3.11's own: TypeError
        item.other = 1
    assert not hasattr(item, "__dict__")
    with pytest.raises(TypeError):
        child("a")  # count is required
    with pytest.raises(TypeError):
        child("a", 1, nope=2)


def test_replace_asdict_pickle_and_copy_work_on_them(family: tuple[type, type, type]) -> None:
    _base, child, _one = family
    item = child("a", 1, tags=("x",), labels={"k": "v"})
    changed = dataclasses.replace(item, count=5)
    assert (changed.count, changed.name, changed.labels) == (5, "a", {"k": "v"})
    assert dataclasses.asdict(item)["labels"] == {"k": "v"}
    assert copy.copy(item) == item and copy.deepcopy(item) == item
    match item:
        case child(name, count):
            assert (name, count) == ("a", 1)
        case _:
            raise AssertionError("no match")


@records.dataclass(frozen=True, slots=True)
class Pickled:
    name: str
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)


def test_records_pickle() -> None:
    item = Pickled("a", {"k": "v"})
    assert pickle.loads(pickle.dumps(item)) == item
    assert pickle.loads(pickle.dumps(item)).labels == {"k": "v"}


def test_definition_errors_are_the_standard_ones() -> None:
    for decorate in (_standard, _fast):
        with pytest.raises(TypeError, match="non-default argument"):

            @decorate
            class Disorder:
                first: int = 0
                second: int

        with pytest.raises(ValueError, match="mutable default"):

            @decorate
            class Mutable:
                items: list[int] = []


def test_other_options_get_the_standard_decorator() -> None:
    @records.dataclass(order=True, frozen=True)
    class Ordered:
        rank: int

    assert Ordered(1) < Ordered(2)
    assert "__init__" in Ordered.__dict__ and inspect.signature(Ordered).parameters["rank"]


def test_the_figures_are_records() -> None:
    for cls in FIGURE_TYPES:
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    figures = HttpFigures(http_status=200, dependencies={"redis": Status.OK})
    assert dataclasses.replace(figures, http_status=503).http_status == 503
    assert isinstance(figures.dependencies, Mapping)


def test_the_check_paths_frozen_records_are_built_without_exec() -> None:
    """Every frozen slotted dataclass that ``opsdash check`` defines on its way to a verdict
    (registry loading included) is a record: the standard decorator would compile its methods
    when the module loads, a cost every one-shot command pays at start-up."""
    path = [
        "opsdash.registry.loader",
        "opsdash.plan",
        "opsdash.probes.http",
        "opsdash.rounds",
        "opsdash.render.json",
    ]
    for name in path:
        importlib.import_module(name)
    built_by_standard = []
    checked = 0
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("opsdash.") or module_name.startswith("opsdash.tui"):
            continue
        for value in vars(module).values():
            if not (
                isinstance(value, type)
                and value.__module__ == module_name
                and dataclasses.is_dataclass(value)
            ):
                continue
            params = value.__dict__.get("__dataclass_params__")
            if params is None or not params.frozen or "__slots__" not in value.__dict__:
                continue  # other options go to the standard decorator by design
            checked += 1
            if params is not records._FROZEN_PARAMS:  # the parameters every record shares
                built_by_standard.append(f"{module_name}.{value.__qualname__}")
    assert checked > 40  # the walk reached the path's records
    assert built_by_standard == []


def test_a_field_called_self_may_come_by_keyword_on_the_first_call() -> None:
    """The first call compiles ``__init__``; a keyword ``self`` (MongoMember's flag) must
    reach the field, not collide with the instance."""
    for decorate in (_standard, _fast):
        one = _family(decorate)[2]  # a class never built before: its first call is this one
        made = one(value=1.0, self=True)
        assert (made.value, made.self) == (1.0, True)
