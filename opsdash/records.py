"""Frozen records: ``@dataclass(frozen=True, slots=True)`` classes, made cheap to define.

Every one-shot command pays for the classes it defines, and opsdash defines about a hundred
frozen dataclasses on the ``check`` path (figures, results, incidents, the plan, the wire).
The standard decorator compiles six methods per class with ``exec`` when the class is
defined: 1-2 ms a class on a slow machine, a large part of ``opsdash check``'s start-up.

Modules import ``dataclass`` and ``field`` from here instead of :mod:`dataclasses`. For the
type checker they *are* the standard ones (the import below is under ``TYPE_CHECKING``), so
mypy checks these classes as dataclasses. At run time, ``dataclass(frozen=True, slots=True)``
builds the same class without compiling anything up front:

- ``__init__``, ``__eq__`` and ``__hash__`` are compiled the first time each is called, as
  the code the standard decorator writes (most kinds of figures are never made in a given
  run, fewer still compared), so they run as fast as the standard ones;
- ``__repr__``, ``__setattr__``/``__delattr__`` (frozen) and the pickling pair are closures
  over the class's field names, behaving as the standard ones;
- ``__dataclass_fields__`` holds :class:`dataclasses.Field` objects, so :func:`dataclasses.fields`,
  :func:`~dataclasses.replace`, :func:`~dataclasses.asdict` and
  :func:`~dataclasses.is_dataclass` work on them unchanged.

Anything else (another combination of options, ``InitVar``, ``KW_ONLY``, ``init=False`` or
keyword-only fields) goes to the standard decorator. ``tests/test_records.py`` holds the two
side by side.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

__all__ = ["dataclass", "field", "field_values"]

field = dataclasses.field

if TYPE_CHECKING:
    from dataclasses import dataclass as dataclass
else:

    def dataclass(cls: type | None = None, /, **options: Any) -> Any:
        """:func:`dataclasses.dataclass`, built without ``exec`` for ``frozen=True,
        slots=True`` (the only options opsdash's records use)."""

        def wrap(cls: type) -> type:
            if options == _FAST_OPTIONS:
                record = _record(cls)
                if record is not None:
                    return record
            return dataclasses.dataclass(cls, **options)

        return wrap if cls is None else wrap(cls)


_FAST_OPTIONS = {"frozen": True, "slots": True}
_CLASSVAR = ("ClassVar", "typing.ClassVar", "t.ClassVar")
_UNSUPPORTED = ("InitVar", "KW_ONLY", "dataclasses.InitVar", "dataclasses.KW_ONLY")
_CLASSVAR_OF = tuple(f"{name}[" for name in _CLASSVAR)
"""How string annotations (``from __future__ import annotations``) spell these."""
_MISSING = dataclasses.MISSING
_FIELD: Any = getattr(dataclasses, "_FIELD")  # noqa: B009 - the marker fields() filters on
_FROZEN_PARAMS: Any = object.__new__(getattr(dataclasses, "_DataclassParams"))  # noqa: B009
"""What ``dataclasses`` records of these options (its slots differ between Python versions)."""
for _option, _value in {
    "init": True, "repr": True, "eq": True, "order": False, "unsafe_hash": False,
    "frozen": True, "match_args": True, "kw_only": False, "slots": True, "weakref_slot": False,
}.items():  # fmt: skip
    if _option in type(_FROZEN_PARAMS).__slots__:
        setattr(_FROZEN_PARAMS, _option, _value)
del _option, _value


class _Factory:
    """Stands for "no argument given" where a field has a default factory."""

    def __repr__(self) -> str:
        return "<factory>"


_HAS_FACTORY = _Factory()


def _record(cls: type) -> type | None:
    """``cls`` as a frozen slotted dataclass, or ``None`` when it needs the standard
    decorator."""
    fields: dict[str, dataclasses.Field[Any]] = {}
    for base in cls.__mro__[-1:0:-1]:
        base_fields = base.__dict__.get("__dataclass_fields__")
        if base_fields is not None:
            if not base.__dict__["__dataclass_params__"].frozen:
                return None  # the standard decorator says why that cannot be
            fields.update(base_fields)
    own: list[str] = []
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():  # noqa: RUF063
        if _is_classvar(annotation):
            continue
        if isinstance(annotation, str) and annotation.startswith(_UNSUPPORTED):
            return None
        if annotation is dataclasses.KW_ONLY or isinstance(annotation, dataclasses.InitVar):
            return None
        default = cls.__dict__.get(name, _MISSING)
        if isinstance(default, dataclasses.Field):
            spec = default
            if not spec.init or spec.kw_only is True:
                return None
        else:
            spec = dataclasses.field(default=default)
        if spec.default is not _MISSING and type(spec.default).__hash__ is None:
            raise ValueError(
                f"mutable default {type(spec.default)} for field {name} is not allowed: "
                "use default_factory"
            )
        spec.name, spec.type, spec.kw_only = name, annotation, False
        spec._field_type = _FIELD  # type: ignore[attr-defined]
        fields[name] = spec
        own.append(name)
    for name, value in cls.__dict__.items():
        if isinstance(value, dataclasses.Field) and name not in own:
            raise TypeError(f"{name!r} is a field but has no type annotation")
    for name in ("__setattr__", "__delattr__"):
        if name in cls.__dict__:
            raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
    _check_order(fields)

    namespace = dict(cls.__dict__)
    for name in own:
        namespace.pop(name, None)  # the defaults live in __init__; the names become slots
    namespace.pop("__dict__", None)
    namespace.pop("__weakref__", None)
    inherited = {slot for base in cls.__mro__[1:-1] for slot in _slots_of(base)}
    namespace["__slots__"] = tuple(name for name in fields if name not in inherited)
    namespace["__dataclass_params__"] = _FROZEN_PARAMS
    namespace["__dataclass_fields__"] = fields
    names = tuple(fields)
    shown = tuple(name for name, spec in fields.items() if spec.repr)
    methods: dict[str, Any] = {
        "__init__": _lazy("__init__", _compile_init),
        "__repr__": _repr(shown),
        "__eq__": _lazy("__eq__", _compile_eq),
        "__match_args__": names,
        "__getstate__": _getstate(names),
        "__setstate__": _setstate(names),
    }
    for name, value in methods.items():
        if name not in cls.__dict__:
            namespace[name] = value
    explicit_hash = cls.__dict__.get("__hash__", _MISSING)
    if explicit_hash is _MISSING or (explicit_hash is None and "__eq__" in cls.__dict__):
        namespace["__hash__"] = _lazy("__hash__", _compile_hash)

    record = type(cls)(cls.__name__, cls.__bases__, namespace)
    record.__qualname__ = cls.__qualname__
    record.__setattr__ = _frozen_setattr(record, frozenset(names))  # type: ignore[assignment]
    record.__delattr__ = _frozen_delattr(record, frozenset(names))  # type: ignore[assignment]
    for name in ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__"):
        method = record.__dict__.get(name)
        if method is not None and name not in cls.__dict__:
            method.__qualname__ = f"{cls.__qualname__}.{name}"
    return record


def _is_classvar(annotation: object) -> bool:
    if isinstance(annotation, str):
        return annotation in _CLASSVAR or annotation.startswith(_CLASSVAR_OF)
    return annotation is ClassVar or getattr(annotation, "__origin__", None) is ClassVar


def _check_order(fields: dict[str, dataclasses.Field[Any]]) -> None:
    """The rule the standard decorator's compiled ``__init__`` enforces at definition."""
    seen_default = False
    for name, spec in fields.items():
        has_default = spec.default is not _MISSING or spec.default_factory is not _MISSING
        if seen_default and not has_default:
            raise TypeError(f"non-default argument {name!r} follows default argument")
        seen_default = seen_default or has_default


def _slots_of(cls: type) -> tuple[str, ...]:
    slots = cls.__dict__.get("__slots__", ())
    return (slots,) if isinstance(slots, str) else tuple(slots)


def _lazy(name: str, compile_method: Callable[[type], Callable[..., Any]]) -> Callable[..., Any]:
    """A stand-in for the method ``name`` that compiles the real one (``compile_method``) the
    first time it is called, puts it in the class in its place, and calls it."""

    # The instance is positional-only: a field may be called ``self`` and come by keyword.
    def stand_in(instance: Any, /, *args: Any, **kwargs: Any) -> Any:
        owner = _owner(type(instance), name, stand_in)
        real = compile_method(owner)
        real.__qualname__ = f"{owner.__qualname__}.{name}"
        type.__setattr__(owner, name, real)
        return real(instance, *args, **kwargs)

    return stand_in


def _owner(cls: type, name: str, method: object) -> type:
    """The class in ``cls``'s MRO whose own ``name`` is ``method``."""
    for klass in cls.__mro__:
        if klass.__dict__.get(name) is method:
            return klass
    raise AssertionError(f"unreachable: {name} not found in its class's MRO")


def _compiled(source: str, scope: dict[str, Any], name: str) -> Callable[..., Any]:
    exec(source, scope)  # our own source, as dataclasses does
    method: Callable[..., Any] = scope[name]
    return method


def _compile_init(cls: type) -> Callable[..., None]:
    """The ``__init__`` the standard decorator writes for a frozen dataclass: each argument
    stored with ``object.__setattr__``, a factory called when its argument was left out,
    ``__post_init__`` called when the class has one."""
    fields: dict[str, dataclasses.Field[Any]] = cls.__dict__["__dataclass_fields__"]
    scope: dict[str, Any] = {"__set": object.__setattr__, "__factory_marker": _HAS_FACTORY}
    me = "__record_self__" if "self" in fields else "self"  # a field may be called self
    params, body = [me], []
    for name, spec in fields.items():
        if spec.default_factory is not _MISSING:
            scope[f"__factory_{name}"] = spec.default_factory
            params.append(f"{name}=__factory_marker")
            value = f"__factory_{name}() if {name} is __factory_marker else {name}"
        elif spec.default is not _MISSING:
            scope[f"__default_{name}"] = spec.default
            params.append(f"{name}=__default_{name}")
            value = name
        else:
            params.append(name)
            value = name
        body.append(f"  __set({me}, {name!r}, {value})")
    if hasattr(cls, "__post_init__"):
        body.append(f"  {me}.__post_init__()")
    source = f"def __init__({', '.join(params)}):\n" + ("\n".join(body) or "  pass") + "\n"
    return _compiled(source, scope, "__init__")


def _compile_eq(cls: type) -> Callable[..., Any]:
    """The standard ``__eq__``: the compared fields as tuples, for an instance of the very
    same class only."""
    fields: dict[str, dataclasses.Field[Any]] = cls.__dict__["__dataclass_fields__"]
    names = [name for name, spec in fields.items() if spec.compare]
    mine, theirs = _tuple("self", names), _tuple("other", names)
    source = (
        "def __eq__(self, other):\n"
        "  if other.__class__ is self.__class__:\n"
        f"    return {mine} == {theirs}\n"
        "  return NotImplemented\n"
    )
    return _compiled(source, {}, "__eq__")


def _compile_hash(cls: type) -> Callable[..., Any]:
    """The standard ``__hash__`` of a frozen dataclass: the hashed fields' tuple."""
    fields: dict[str, dataclasses.Field[Any]] = cls.__dict__["__dataclass_fields__"]
    names = [
        name for name, spec in fields.items() if (spec.compare if spec.hash is None else spec.hash)
    ]
    return _compiled(
        f"def __hash__(self):\n  return hash({_tuple('self', names)})\n", {}, "__hash__"
    )


def _tuple(owner: str, names: list[str]) -> str:
    return "(" + "".join(f"{owner}.{name}," for name in names) + ")"


def _repr(names: tuple[str, ...]) -> Callable[[Any], str]:
    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{type(self).__qualname__}({inner})"

    return __repr__


def _frozen_setattr(cls: type, names: frozenset[str]) -> Callable[[Any, str, Any], None]:
    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)  # type: ignore[arg-type]

    return __setattr__


def _frozen_delattr(cls: type, names: frozenset[str]) -> Callable[[Any, str], None]:
    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)  # type: ignore[arg-type]

    return __delattr__


def _getstate(names: tuple[str, ...]) -> Callable[[Any], list[Any]]:
    def __getstate__(self: Any) -> list[Any]:
        return [getattr(self, name) for name in names]

    return __getstate__


def _setstate(names: tuple[str, ...]) -> Callable[[Any, list[Any]], None]:
    def __setstate__(self: Any, state: list[Any]) -> None:
        for name, value in zip(names, state, strict=False):
            object.__setattr__(self, name, value)

    return __setstate__


def field_values(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """The values of an object's fields ``names`` in one call (``operator.attrgetter``, always
    a tuple): for walks that visit the same fields of many instances of one class."""
    if len(names) >= 2:
        return operator.attrgetter(*names)
    if names:
        one = operator.attrgetter(names[0])
        return lambda value: (one(value),)
    return lambda _value: ()
