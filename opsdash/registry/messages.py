"""Pydantic's validation errors, rewritten for people who edit YAML.

Pydantic reports ``Input should be a valid tuple`` at ``('datastores', 'pg', 'postgres',
'dsn')``: its key paths include union labels (the discriminator's value, or a member's name
such as ``literal[False]``) and its wording is Python's. :func:`translate` walks the
:class:`~opsdash.registry.model.Registry` type alongside each path to drop those labels, to
know the keys a mapping accepts (for "did you mean"), and to say what was expected and what
was found in YAML terms: a mapping, a list, true or false.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, Discriminator, Tag
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from opsdash.registry.model import Loc, Registry

_MAX_FOUND = 80
_TAGGED = "<tag>"
"""The discriminator of a union whose members are chosen by a function and carry a ``Tag``."""


@dataclass(frozen=True, slots=True)
class _Place:
    """Where a pydantic error points, in the registry's terms."""

    loc: Loc
    """The key path without union labels."""
    model: type[BaseModel] | None
    """The model whose field the last part of ``loc`` names (for unknown / missing keys)."""
    end: Any
    """The type reached at the end of ``loc`` (for discriminated unions: the union)."""
    in_union: bool
    """Whether a union member label was dropped (several errors then describe one value)."""


def _strip(tp: Any) -> tuple[Any, str | None]:
    """``tp`` without ``Annotated`` and ``None`` members, and its discriminator if any."""
    discriminator: str | None = None
    while True:
        if get_origin(tp) is Annotated:
            base, *metadata = get_args(tp)
            for item in metadata:
                if isinstance(item, FieldInfo) and isinstance(item.discriminator, str):
                    discriminator = item.discriminator
                elif isinstance(item, Discriminator):
                    discriminator = _TAGGED  # members carry a Tag; pydantic's loc names it
            tp = base
            continue
        members = _union_members(tp)
        if members is not None and len(members) == 1:
            tp = members[0]
            continue
        return tp, discriminator


def _union_members(tp: Any) -> list[Any] | None:
    if get_origin(tp) in (Union, types.UnionType):
        return [member for member in get_args(tp) if member is not type(None)]
    return None


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _tags(member: Any, discriminator: str) -> tuple[Any, ...]:
    if not _is_model(member):
        return ()
    field = member.model_fields.get(discriminator)
    return get_args(field.annotation) if field is not None else ()


def _tag_of(member: Any) -> str | None:
    """The ``Tag`` of a member of a union chosen by a callable discriminator."""
    if get_origin(member) is not Annotated:
        return None
    return next((item.tag for item in get_args(member)[1:] if isinstance(item, Tag)), None)


def _place(loc: Sequence[str | int]) -> _Place:
    """Walk ``Registry`` along pydantic's ``loc``."""
    clean: list[str | int] = []
    model: type[BaseModel] | None = None
    in_union = False
    tp: Any = Registry
    index = 0
    while index < len(loc):
        part = loc[index]
        tp, discriminator = _strip(tp)
        members = _union_members(tp)
        if members is not None:
            # The part is a union label, not a key: a discriminator value or a member's name.
            index += 1
            if discriminator is None:
                in_union, tp = True, None
                continue
            if discriminator == _TAGGED:
                tp = next((get_args(m)[0] for m in members if _tag_of(m) == part), None)
            else:
                tp = next((m for m in members if part in _tags(m, discriminator)), None)
            continue
        index += 1
        if part == "[key]":  # pydantic's label for an error in a mapping's key
            continue
        clean.append(part)
        if _is_model(tp):
            model = tp
            field = tp.model_fields.get(str(part)) or next(
                (f for f in tp.model_fields.values() if f.alias == part), None
            )
            tp = field.annotation if field is not None else None
        elif get_origin(tp) is dict:
            model, tp = None, get_args(tp)[1]
        elif get_origin(tp) in (tuple, list):
            model, tp = None, get_args(tp)[0]
        else:
            model, tp = None, None
    return _Place(tuple(clean), model, tp, in_union)


def describe_value(value: Any, mask: Callable[[str], str]) -> str:
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


_EXPECTED = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "tuple_type": "a list such as [a, b]",
    "list_type": "a list such as [a, b]",
    "finite_number": "a finite number",
}

_BOUNDS = {
    "greater_than": ("gt", "greater than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "at most"),
}


def _expected(error: ErrorDetails) -> str:
    """What the value should have been, for errors that are about the value's type or range."""
    kind, context = error["type"], error.get("ctx") or {}
    if kind in _EXPECTED:
        return _EXPECTED[kind]
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"a number {words} {context.get(key)}"
    if kind == "literal_error":
        expected = str(context.get("expected", ""))
        return expected.replace("False", "false").replace("True", "true")
    message = error["msg"]
    return message.removeprefix("Input should be ").removeprefix("Value should be ")


def _known_keys(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _unknown_key(name: str, known: list[str]) -> str:
    message = f"unknown key {name!r}"
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"{message}; did you mean {close[0]!r}?"
    if known:
        return f"{message}; expected one of: {', '.join(known)}"
    return message


def _tag_message(error: ErrorDetails, place: _Place, mask: Callable[[str], str]) -> tuple[Loc, str]:
    """Errors of discriminated unions (``kind``, ``source``, ``type``)."""
    context = error.get("ctx") or {}
    discriminator = str(context.get("discriminator", "")).strip("'\"")
    union, _ = _strip(place.end)
    tags = [
        str(tag) for member in _union_members(union) or [] for tag in _tags(member, discriminator)
    ]
    choices = ", ".join(tags)
    value = error["input"]
    if error["type"] == "union_tag_invalid":
        found = str(context.get("tag", ""))
        message = f"expected one of {choices}; found {describe_value(found, mask)}"
        close = difflib.get_close_matches(found, tags, n=1, cutoff=0.6)
        if close:
            message += f"; did you mean {close[0]!r}?"
        return (*place.loc, discriminator), message
    if isinstance(value, dict):
        return place.loc, f"missing required key {discriminator!r} (one of {choices})"
    found = describe_value(value, mask)
    return place.loc, f"expected a mapping with a {discriminator!r} key ({choices}); found {found}"


def translate(errors: Sequence[ErrorDetails], mask: Callable[[str], str]) -> list[tuple[Loc, str]]:
    """Each pydantic error as ``(key path, plain message)``; errors about one value that is
    checked against several alternatives (``health: str | false``) become one message."""
    results: list[tuple[Loc, str]] = []
    alternatives: dict[Loc, tuple[list[str], Any]] = {}
    for error in errors:
        place = _place(error["loc"])
        kind = error["type"]
        if kind == "missing":
            name = place.loc[-1]
            results.append((place.loc[:-1], f"missing required key {name!r}"))
        elif kind == "extra_forbidden":
            name = str(place.loc[-1])
            results.append((place.loc, _unknown_key(name, _known_keys(place.model))))
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            results.append(_tag_message(error, place, mask))
        elif kind in ("value_error", "assertion_error"):
            results.append((place.loc, mask(str((error.get("ctx") or {}).get("error", "")))))
        elif place.in_union:
            expected, _ = alternatives.setdefault(place.loc, ([], error["input"]))
            expected.append(_expected(error))
        else:
            found = describe_value(error["input"], mask)
            results.append((place.loc, f"expected {_expected(error)}; found {found}"))
    for loc, (expected, value) in alternatives.items():
        found = describe_value(value, mask)
        results.append((loc, f"expected {' or '.join(dict.fromkeys(expected))}; found {found}"))
    return results
