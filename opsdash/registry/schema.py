"""The registry's validation layer: plain annotated classes, validated from YAML data.

A model is a subclass of :class:`Model` whose annotations are its fields (``from __future__
import annotations`` keeps them unevaluated strings, so defining a model costs no more than any
class) and whose class attributes are their defaults. Validation is compiled per class on its
first use: the type hints are resolved then, once, into one small check per field, so a registry
that has no workers never resolves the worker models at all.

:meth:`Model.from_data` validates plain data (dicts, lists and scalars from YAML) and raises
:class:`ValidationError` with every problem found, each as ``(key path, message)``; the loader
turns key paths into ``file:line``. The messages are final, in YAML terms ("expected a mapping
(key: value); found a list"); a value the message quotes is shown through the caller's mask.

What the annotations may say (everything the registry needs, nothing more):

- ``str``, ``int``, ``float``, ``bool``, ``None``, ``Any``, ``Literal[...]``, unions,
  ``tuple[X, ...]``, ``dict[K, V]`` and models; scalars convert as they did under pydantic's
  lax mode (``"64"`` is 64 for an ``int``, ``"yes"`` is true, ``2.0`` is 2), because ``${VAR}``
  interpolation makes every interpolated value a string;
- ``Annotated[T, ...]`` with :class:`Unit` (``500ms``), :class:`Bounds` (``ge``/``le``),
  :class:`After` (a check on the typed value), :class:`Alias` (the key users write),
  :class:`Schema` (the JSON Schema to print instead), :class:`Tagged` (a union chosen by a key's
  value: ``kind``, ``source``, ``type``) and :class:`Chosen` (a union chosen by a function).

Field checks that are methods live on the model (:func:`validator`); a model that must check
its fields together overrides :meth:`Model._check_whole`. Instances are immutable: only the
fields given are stored on the instance (``fields_set``), the rest are the class's defaults.
"""

from __future__ import annotations

import math
import re
import types
import typing
from collections.abc import Callable, Iterable
from typing import Annotated, Any, ClassVar, Literal, TypeVar, Union, dataclass_transform

Loc = tuple[str | int, ...]
"""A key path into the registry: ``("services", "x", "url")``."""

Check = Callable[[Any], Any]
"""Turns a raw value into a typed one, or raises :class:`Mismatch`, :class:`Invalid` or
``ValueError`` (whose text is the message)."""

_MAX_FOUND = 80


def describe_value(value: Any, mask: Callable[[str], str] = str) -> str:
    """``value`` as a user wrote it in YAML, secrets masked, long strings cut."""
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return mask(f"{value}")
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = mask(str(value))
    if len(text) > _MAX_FOUND:
        text = text[: _MAX_FOUND - 3] + "..."
    return repr(text) if isinstance(value, str) else text


# --- problems -----------------------------------------------------------------------------


class Mismatch(Exception):
    """A value of the wrong kind: ``expected <expected>; found <value>``. The value is shown
    only when the message is rendered, through the mask, so that a secret is masked before a
    long value is cut."""

    def __init__(self, expected: str, value: Any, suffix: str = "") -> None:
        super().__init__(expected)
        self.expected = expected
        self.value = value
        self.suffix = suffix

    def render(self, mask: Callable[[str], str]) -> str:
        return f"expected {self.expected}; found {describe_value(self.value, mask)}{self.suffix}"


Message = str | Mismatch
Problems = list[tuple[Loc, Message]]


class Invalid(Exception):
    """Problems inside one value, at key paths relative to it."""

    def __init__(self, problems: Problems) -> None:
        super().__init__(problems)
        self.problems = problems


_FAILURES = (Invalid, Mismatch, ValueError)
"""What a check raises for bad input (anything else is a bug, and propagates)."""


def _below(error: Exception, key: str | int) -> Problems:
    """The problems of ``error``, raised for the value at ``key``, relative to its parent."""
    if isinstance(error, Invalid):
        return [((key, *loc), message) for loc, message in error.problems]
    if isinstance(error, Mismatch):
        return [((key,), error)]
    return [((key,), str(error))]


def _here(error: Exception) -> Problems:
    """The problems of ``error``, raised for the value itself."""
    if isinstance(error, Invalid):
        return error.problems
    if isinstance(error, Mismatch):
        return [((), error)]
    return [((), str(error))]


class ValidationError(Exception):
    """Data that does not fit the model: every problem found, each at its key path."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        super().__init__("\n".join(f"{loc}: {text}" for loc, text in self.messages()))

    def messages(self, mask: Callable[[str], str] = str) -> list[tuple[Loc, str]]:
        """``(key path, message)`` pairs; the values the messages quote go through ``mask``."""
        return [
            (loc, message if isinstance(message, str) else message.render(mask))
            for loc, message in self.problems
        ]


# --- what annotations may carry -----------------------------------------------------------


class After:
    """A check on the typed value (``check_port`` on an address): returns it, or raises
    ``ValueError`` with the message."""

    def __init__(self, check: Callable[[Any], Any]) -> None:
        self.check = check


class Bounds:
    """Numeric limits, inclusive (``Field(ge=, le=)``)."""

    def __init__(self, *, ge: float | None = None, le: float | None = None) -> None:
        self.ge = ge
        self.le = le


class Alias:
    """The key users write, when the attribute cannot be named so (``json`` -> ``json_``)."""

    def __init__(self, key: str) -> None:
        self.key = key


class Schema:
    """The JSON Schema to print for this value instead of the generated one."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema


class Unit:
    """A figure written with a unit (``500ms``, ``80%``): ``parse`` runs before the type check
    and gives the number; ``pattern`` and ``description`` make its JSON Schema; ``show`` writes
    a number back the way users write it (schema defaults)."""

    def __init__(
        self,
        parse: Callable[[Any], Any],
        *,
        pattern: str,
        description: str,
        show: Callable[[Any], Any] | None = None,
    ) -> None:
        self.parse = parse
        self.show = show
        self.schema = {
            "anyOf": [{"type": "string", "pattern": pattern}, {"type": "number"}],
            "description": description,
        }


class Tagged:
    """A union of models chosen by the value of one key (``kind: postgres``)."""

    def __init__(self, key: str) -> None:
        self.key = key


class Chosen:
    """A union whose member ``choose`` picks from the raw value (``None``: none fits, and the
    value is reported as not being ``expected``). ``members`` are what the JSON Schema lists
    (default: the union's members)."""

    def __init__(
        self,
        choose: Callable[[Any], Any],
        *,
        expected: str = "a mapping (key: value)",
        members: tuple[Any, ...] | None = None,
    ) -> None:
        self.choose = choose
        self.expected = expected
        self.members = members


_F = TypeVar("_F")


class FieldCheck:
    """A check a model declares on some of its fields (see :func:`validator`)."""

    def __init__(
        self, check: Callable[..., Any], fields: tuple[str, ...], before: bool, siblings: bool
    ) -> None:
        self.check = check
        self.fields = fields
        self.before = before
        self.siblings = siblings


def validator(
    *fields: str, before: bool = False, siblings: bool = False
) -> Callable[[Any], FieldCheck]:
    """Declare a ``@staticmethod`` as a check of ``fields``: it takes the value (typed; the raw
    value with ``before=True``) and returns it, or raises ``ValueError``. With
    ``siblings=True`` it also takes the fields validated so far (declared earlier), by name."""

    def declare(function: Any) -> FieldCheck:
        check = function.__func__ if isinstance(function, staticmethod) else function
        return FieldCheck(check, fields, before, siblings)

    return declare


# --- scalars --------------------------------------------------------------------------------
# As pydantic's lax mode converted them, so that every registry that loaded still loads the same.


def _text(value: bytes, expected: str) -> str:
    """YAML's ``!!binary`` as text (pydantic's lax mode took UTF-8 bytes for a string)."""
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise Mismatch(expected, value) from None


def check_str(value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return _text(value, "a valid string, unable to parse raw data as a unicode string")
    raise Mismatch("a string", value)


_INT_TEXT = r"[+-]?[0-9](?:_?[0-9])*(?:\.0+)?"  # as text: compiled by re on first use


def check_int(value: Any) -> int:
    kind = type(value)
    if kind is int:
        return value  # type: ignore[no-any-return]
    if kind is bool:
        return int(value)
    if kind is float:
        if not math.isfinite(value):
            raise Mismatch("a finite number", value)
        if value.is_integer():
            return int(value)
        raise Mismatch("a whole number", value)
    if isinstance(value, str | bytes):
        text = (value if isinstance(value, str) else _text(value, "a whole number")).strip()
        if re.fullmatch(_INT_TEXT, text):
            return int(text.partition(".")[0])
    raise Mismatch("a whole number", value)


def check_float(value: Any) -> float:
    kind = type(value)
    if kind is float:
        return value  # type: ignore[no-any-return]
    if kind is int or kind is bool:
        return float(value)
    if isinstance(value, str | bytes):
        text = (value if isinstance(value, str) else _text(value, "a number")).strip()
        if text.isascii():
            try:
                return float(text)
            except ValueError:
                pass
    raise Mismatch("a number", value)


_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


def check_bool(value: Any) -> bool:
    kind = type(value)
    if kind is bool:
        return value  # type: ignore[no-any-return]
    if (kind is int or kind is float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str | bytes):
        text = (value if isinstance(value, str) else _text(value, "true or false")).lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise Mismatch("true or false", value)


def check_none(value: Any) -> None:
    if value is not None:
        raise Mismatch("None", value)


def _as_is(value: Any) -> Any:
    return value


_EXACT: dict[Any, tuple[type, ...]] = {
    str: (str,),
    int: (int,),
    float: (float,),
    bool: (bool,),
    type(None): (type(None),),
}
"""The types a union member takes without converting (tried before any member converts)."""


def _literal(choices: tuple[Any, ...]) -> Check:
    words = [repr(choice) for choice in choices]
    expected = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
    expected = expected.replace("False", "false").replace("True", "true")
    texts = frozenset(choice for choice in choices if type(choice) is str)
    others = [choice for choice in choices if type(choice) is not str]

    def check(value: Any) -> Any:
        if type(value) is str:
            if value in texts:
                return value
        elif type(value) in (bool, int, float):
            # 1.0 and true are 1; 0 is false (pydantic's lax literals).
            for choice in others:
                if value == choice:
                    return choice
        raise Mismatch(expected, value)

    return check


def _bounded(check: Check, bounds: Bounds) -> Check:
    low, high = bounds.ge, bounds.le

    def bounded(value: Any) -> Any:
        number = check(value)
        if low is not None and number < low:
            raise Mismatch(f"a number at least {low}", value)
        if high is not None and number > high:
            raise Mismatch(f"a number at most {high}", value)
        return number

    return bounded


# --- containers, unions, models -------------------------------------------------------------


def _tuple(item: Check) -> Check:
    def check(value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list | tuple | set | frozenset):
            raise Mismatch("a list such as [a, b]", value)
        if item is check_str and all(type(x) is str for x in value):
            return tuple(value)
        items = []
        problems: Problems = []
        for index, element in enumerate(value):
            try:
                items.append(item(element))
            except _FAILURES as error:
                problems += _below(error, index)
        if problems:
            raise Invalid(problems)
        return tuple(items)

    return check


def _dict(key_check: Check, value_check: Check) -> Check:
    plain = key_check is check_str and value_check in (check_str, _as_is)

    def check(value: Any) -> dict[Any, Any]:
        if not isinstance(value, dict):
            raise Mismatch("a mapping (key: value)", value)
        if (
            plain
            and all(type(k) is str for k in value)
            and (value_check is _as_is or all(type(v) is str for v in value.values()))
        ):
            return dict(value)
        result = {}
        problems: Problems = []
        for key, element in value.items():
            try:
                key = key_check(key)
            except _FAILURES as error:
                problems += _below(error, key)
            try:
                result[key] = value_check(element)
            except _FAILURES as error:
                problems += _below(error, key)
        if problems:
            raise Invalid(problems)
        return result

    return check


def _union(members: tuple[Any, ...]) -> Check:
    checks = [(compile_check(member), _EXACT.get(member, ())) for member in members]

    def check(value: Any) -> Any:
        # A member that takes the value as it is wins (``true`` stays a bool, not 1), then the
        # first that converts it; none: one message naming every alternative.
        kind = type(value)
        for member, exact in checks:
            if kind in exact:
                try:
                    return member(value)
                except _FAILURES:
                    pass
        expected: list[str] = []
        for member, _ in checks:
            try:
                return member(value)
            except Mismatch as error:
                expected.append(error.expected)
            except (Invalid, ValueError) as error:
                expected.append(str(error))
        raise Mismatch(" or ".join(dict.fromkeys(expected)), value)

    return check


def _optional(inner: Check) -> Check:
    def check(value: Any) -> Any:
        return None if value is None else inner(value)

    return check


def _tagged(key: str, members: tuple[type[Model], ...]) -> Check:
    table: dict[str, type[Model]] = {}

    def choices() -> dict[str, type[Model]]:
        if not table:
            for member in members:
                for tag in typing.get_args(member._plan().hints[key]):
                    table[tag] = member
        return table

    def check(value: Any) -> Any:
        if not isinstance(value, dict):
            if isinstance(value, members):
                return value
            raise Mismatch("a mapping (key: value)", value)
        tags = choices()
        names = ", ".join(tags)
        if key not in value:
            raise Invalid([((), f"missing required key {key!r} (one of {names})")])
        tag = value[key]
        member = tags.get(tag) if type(tag) is str else None
        if member is None:
            found = str(tag)
            suffix = ""
            import difflib

            close = difflib.get_close_matches(found, list(tags), n=1, cutoff=0.6)
            if close:
                suffix = f"; did you mean {close[0]!r}?"
            raise Invalid([((key,), Mismatch(f"one of {names}", found, suffix))])
        return member.from_value(value)

    return check


def _chosen(chosen: Chosen) -> Check:
    def check(value: Any) -> Any:
        member = chosen.choose(value)
        if member is None:
            raise Mismatch(chosen.expected, value)
        return compile_check(member)(value)

    return check


def _annotated(base: Any, metadata: Iterable[Any]) -> Check:
    before: list[Callable[[Any], Any]] = []
    after: list[Callable[[Any], Any]] = []
    bounds: Bounds | None = None
    check: Check | None = None
    for item in metadata:
        if isinstance(item, Unit):
            before.append(item.parse)
        elif isinstance(item, After):
            after.append(item.check)
        elif isinstance(item, Bounds):
            bounds = item
        elif isinstance(item, Tagged):
            check = _tagged(item.key, typing.get_args(base))
        elif isinstance(item, Chosen):
            check = _chosen(item)
    if check is None:
        check = compile_check(base)
    if bounds is not None:
        check = _bounded(check, bounds)
    return _chain(before, check, after)


def _chain(before: list[Check], check: Check, after: list[Check]) -> Check:
    if not before and not after:
        return check

    def chained(value: Any) -> Any:
        for step in before:
            value = step(value)
        value = check(value)
        for step in after:
            value = step(value)
        return value

    return chained


_COMPILED: dict[Any, Check] = {}


def compile_check(hint: Any) -> Check:
    """The check of a (resolved) type hint, built once per distinct hint."""
    found = _COMPILED.get(hint)
    if found is None:
        found = _COMPILED[hint] = _compile(hint)
    return found


def _compile(hint: Any) -> Check:
    scalar = {str: check_str, int: check_int, float: check_float, bool: check_bool}.get(hint)
    if scalar is not None:
        return scalar
    if hint is type(None):
        return check_none
    if hint is Any:
        return _as_is
    if isinstance(hint, type) and issubclass(hint, Model):
        return hint.from_value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        return _annotated(args[0], hint.__metadata__)
    if origin is Literal:
        return _literal(args)
    if origin in (Union, types.UnionType):
        others = tuple(arg for arg in args if arg is not type(None))
        if len(others) < len(args):
            rest = others[0] if len(others) == 1 else Union[others]  # noqa: UP007
            return _optional(compile_check(rest))
        return _union(args)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _tuple(compile_check(args[0]))
    if origin is dict:
        return _dict(compile_check(args[0]), compile_check(args[1]))
    raise TypeError(f"the registry schema cannot validate {hint!r}")


# --- models -------------------------------------------------------------------------------


class _Plan:
    """A model class's validation, compiled on first use."""

    def __init__(self, cls: type[Model]) -> None:
        self.hints: dict[str, Any] = typing.get_type_hints(cls, include_extras=True)
        checks: dict[str, list[FieldCheck]] = {}
        for klass in reversed(cls.__mro__):
            for attribute in vars(klass).values():
                if isinstance(attribute, FieldCheck):
                    for name in attribute.fields:
                        checks.setdefault(name, []).append(attribute)
        self.fields: dict[str, tuple[str, Check]] = {}
        """Input key -> (attribute name, check)."""
        self.later: dict[str, tuple[str, Callable[..., Any]]] = {}
        """The fields whose checks read the fields validated before them."""
        self.known: list[str] = []
        self.required: list[str] = []
        for name in cls.field_names:
            hint = self.hints[name]
            key = _alias(hint) or name
            self.known.append(key)
            if not hasattr(cls, name):
                self.required.append(key)
            check = compile_check(hint)
            declared = checks.get(name, [])
            befores = [c.check for c in declared if c.before]
            afters = [c.check for c in declared if not c.before and not c.siblings]
            check = _chain(befores, check, afters)
            siblings = [c.check for c in declared if c.siblings]
            target: dict[str, tuple[str, Callable[..., Any]]] = self.fields
            if siblings:
                check, target = _with_siblings(check, siblings), self.later
            target[key] = (name, check)
            if key != name:
                target[name] = (name, check)
        self.whole = cls._check_whole is not Model._check_whole

    def unknown_key(self, key: Any) -> str:
        import difflib

        name = str(key)
        message = f"unknown key {name!r}"
        close = difflib.get_close_matches(name, self.known, n=1, cutoff=0.6)
        if close:
            return f"{message}; did you mean {close[0]!r}?"
        if self.known:
            return f"{message}; expected one of: {', '.join(self.known)}"
        return message


def _alias(hint: Any) -> str | None:
    if typing.get_origin(hint) is Annotated:
        for item in hint.__metadata__:
            if isinstance(item, Alias):
                return item.key
    return None


def _with_siblings(check: Check, siblings: list[Callable[..., Any]]) -> Callable[..., Any]:
    def run(value: Any, known: dict[str, Any]) -> Any:
        value = check(value)
        for step in siblings:
            value = step(value, known)
        return value

    return run


@dataclass_transform(kw_only_default=True, frozen_default=True)
class Model:
    """Base of every registry model: immutable, strict about keys, validated by
    :meth:`from_data`. Constructing one in code (``LatencyThresholds(warn=0.5)``) takes the
    values as they are: mypy checks their types."""

    field_names: ClassVar[tuple[str, ...]] = ()
    """The fields, in declaration order (inherited ones first)."""
    _compiled: ClassVar[_Plan | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        names: dict[str, None] = {}
        for klass in reversed(cls.__mro__):
            for name, annotation in vars(klass).get("__annotations__", {}).items():
                if not name.startswith("_") and not str(annotation).startswith("ClassVar"):
                    names[name] = None
        cls.field_names = tuple(names)
        cls._compiled = None

    def __init__(self, **values: Any) -> None:
        cls = type(self)
        unknown = [name for name in values if name not in cls.field_names]
        missing = [n for n in cls.field_names if n not in values and not hasattr(cls, n)]
        if unknown or missing:
            raise TypeError(f"{cls.__name__}: unknown {unknown}, missing {missing}")
        object.__setattr__(self, "__dict__", values)

    @classmethod
    def _plan(cls) -> _Plan:
        plan = cls.__dict__.get("_compiled")
        if plan is None:
            plan = _Plan(cls)
            cls._compiled = plan
        return plan

    @classmethod
    def from_data(cls: type[_M], data: Any) -> _M:
        """``data`` (plain values, as YAML gives them) validated into this model; raises
        :class:`ValidationError` listing every problem."""
        try:
            return cls.from_value(data)
        except _FAILURES as error:
            raise ValidationError(_here(error)) from None

    @classmethod
    def from_value(cls: type[_M], data: Any) -> _M:
        """Like :meth:`from_data`, for use inside a validation: raises what checks raise."""
        if type(data) is not dict:
            if isinstance(data, cls):
                return data
            if not isinstance(data, dict):
                raise Mismatch("a mapping (key: value)", data)
        plan = cls._compiled or cls._plan()
        fields = plan.fields
        values: dict[str, Any] = {}
        problems: Problems | None = None
        later = False
        for key, value in data.items():
            field = fields.get(key)
            if field is None:
                if key in plan.later:
                    later = True
                    continue
                problems = problems or []
                problems.append(((key,), plan.unknown_key(key)))
                continue
            try:
                values[field[0]] = field[1](value)
            except _FAILURES as error:
                problems = problems or []
                problems += _below(error, key)
        if later:
            for key, (name, check) in plan.later.items():
                if key in data:
                    try:
                        values[name] = check(data[key], values)
                    except _FAILURES as error:
                        problems = problems or []
                        problems += _below(error, key)
        for key in plan.required:
            if key not in data:
                problems = problems or []
                problems.append(((), f"missing required key {key!r}"))
        if problems:
            raise Invalid(problems)
        instance = object.__new__(cls)
        object.__setattr__(instance, "__dict__", values)
        if plan.whole:
            instance._check_whole()
        return instance

    def _check_whole(self) -> None:
        """Raise ``ValueError`` when the fields, each valid, cannot work together."""

    @property
    def fields_set(self) -> frozenset[str]:
        """The fields the data (or the constructor) gave; the others are defaults."""
        return frozenset(name for name in self.__dict__ if not name.startswith("_"))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.field_names)

    def __hash__(self) -> int:
        return hash((type(self), *(getattr(self, name) for name in self.field_names)))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.field_names)
        return f"{type(self).__name__}({fields})"


_M = TypeVar("_M", bound=Model)


# --- JSON Schema ----------------------------------------------------------------------------


def json_schema(model: type[Model]) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``model``: the nested models under ``$defs``."""
    writer = _SchemaWriter()
    top = writer.model(model)
    return {"$defs": dict(sorted(writer.defs.items())), **top} if writer.defs else top


class _SchemaWriter:
    def __init__(self) -> None:
        self.defs: dict[str, dict[str, Any]] = {}

    def ref(self, model: type[Model]) -> dict[str, Any]:
        if model.__name__ not in self.defs:
            self.defs[model.__name__] = {}  # placeholder: models may nest themselves
            self.defs[model.__name__] = self.model(model)
        return {"$ref": f"#/$defs/{model.__name__}"}

    def model(self, model: type[Model]) -> dict[str, Any]:
        import inspect

        plan = model._plan()
        properties: dict[str, Any] = {}
        for name, key in zip(model.field_names, plan.known, strict=True):
            hint = plan.hints[name]
            schema = self.hint(hint)
            if not (set(schema) <= {"$ref"} or _is_nullable_ref(schema)):
                schema["title"] = name.removesuffix("_").replace("_", " ").title()
            if hasattr(model, name):
                schema["default"] = _jsonable(getattr(model, name), hint)
            properties[key] = schema
        result: dict[str, Any] = {"additionalProperties": False}
        if model.__doc__:
            result["description"] = inspect.cleandoc(model.__doc__)
        result["properties"] = properties
        if plan.required:
            result["required"] = list(plan.required)
        result["title"] = model.__name__
        result["type"] = "object"
        return result

    def hint(self, hint: Any) -> dict[str, Any]:
        simple = {str: "string", int: "integer", float: "number", bool: "boolean"}
        if hint in simple:
            return {"type": simple[hint]}
        if hint is type(None):
            return {"type": "null"}
        if hint is Any:
            return {}
        if isinstance(hint, type) and issubclass(hint, Model):
            return self.ref(hint)
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin is Annotated:
            return self.annotated(args[0], hint.__metadata__)
        if origin is Literal:
            kinds = {type(arg) for arg in args}
            kind = simple.get(kinds.pop()) if len(kinds) == 1 else None
            schema: dict[str, Any] = {"const": args[0]} if len(args) == 1 else {"enum": list(args)}
            return {**schema, "type": kind} if kind else schema
        if origin in (Union, types.UnionType):
            return {"anyOf": [self.hint(arg) for arg in args]}
        if origin is tuple:
            return {"items": self.hint(args[0]), "type": "array"}
        if origin is dict:
            values = True if args[1] is Any else self.hint(args[1])
            return {"additionalProperties": values, "type": "object"}
        raise TypeError(f"no JSON Schema for {hint!r}")

    def annotated(self, base: Any, metadata: Iterable[Any]) -> dict[str, Any]:
        schema: dict[str, Any] | None = None
        limits: dict[str, Any] = {}
        for item in metadata:
            if isinstance(item, Schema | Unit):
                schema = dict(item.schema)
            elif isinstance(item, Bounds):
                limits.update(
                    {k: v for k, v in (("minimum", item.ge), ("maximum", item.le)) if v is not None}
                )
            elif isinstance(item, Tagged):
                members = typing.get_args(base)
                mapping = {
                    tag: f"#/$defs/{member.__name__}"
                    for member in members
                    for tag in typing.get_args(member._plan().hints[item.key])
                }
                schema = {
                    "discriminator": {
                        "mapping": dict(sorted(mapping.items())),
                        "propertyName": item.key,
                    },
                    "oneOf": [self.ref(member) for member in members],
                }
            elif isinstance(item, Chosen):
                members = item.members or typing.get_args(base)
                schema = {"oneOf": [self.hint(member) for member in members]}
        if schema is None:
            schema = self.hint(base)
        return {**schema, **limits}


def _is_nullable_ref(schema: dict[str, Any]) -> bool:
    options = schema.get("anyOf")
    return (
        set(schema) == {"anyOf"}
        and isinstance(options, list)
        and len(options) == 2
        and set(options[0]) == {"$ref"}
        and options[1] == {"type": "null"}
    )


def _jsonable(value: Any, hint: Any = None) -> Any:
    """A default as JSON: models field by field, units as users write them (``500ms``)."""
    if isinstance(value, Model):
        plan = type(value)._plan()
        return {
            key: _jsonable(getattr(value, name), plan.hints[name])
            for name, key in zip(type(value).field_names, plan.known, strict=True)
        }
    show = _unit_show(hint)
    if show is not None and value is not None:
        return show(value)
    if isinstance(value, tuple | list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return value


def _unit_show(hint: Any) -> Callable[[Any], Any] | None:
    for member in (hint, *typing.get_args(hint)):
        if typing.get_origin(member) is Annotated:
            for item in member.__metadata__:
                if isinstance(item, Unit):
                    return item.show
    return None
