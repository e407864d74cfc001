"""``${VAR}`` and ``${VAR:-default}`` in the registry's string values.

Shell semantics: ``${VAR:-default}`` takes the default when ``VAR`` is unset *or empty*;
``${VAR}`` takes the value as it is (empty included) and is an error when ``VAR`` is unset.
A default may hold references itself. ``$${`` writes a literal ``${``. Substituted values are
not scanned again, so a password containing ``${`` stays what it is. Keys are names and are
never interpolated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from opsdash.records import dataclass, field
from opsdash.registry.model import Loc

MAX_NESTING = 16
"""How deeply references may nest in defaults (``${A:-${B:-x}}`` is two): a hostile file with
thousands of levels must cost a message, not a stack overflow or quadratic time."""

_NESTED_TOO_DEEP = f"references nest deeper than {MAX_NESTING} levels in a default"
# As text: re compiles it on first use (a registry without ${...} never needs it).
_BODY = r"(?s)^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?$"


@dataclass(frozen=True, slots=True)
class Interpolated:
    """The data with every reference replaced, and what went wrong where."""

    data: Any
    errors: list[tuple[Loc, str]] = field(default_factory=list)
    """``(key path, message)`` for each unset variable or malformed reference."""


def interpolate(data: Any, environ: Mapping[str, str]) -> Interpolated:
    """``data`` (dicts, lists, scalars) with ``${...}`` resolved in every string value."""
    errors: list[tuple[Loc, str]] = []
    return Interpolated(_walk(data, (), environ, errors), errors)


def _walk(value: Any, loc: Loc, environ: Mapping[str, str], errors: list[tuple[Loc, str]]) -> Any:
    if isinstance(value, dict):
        return {key: _walk(item, (*loc, key), environ, errors) for key, item in value.items()}
    if isinstance(value, list):
        return [_walk(item, (*loc, index), environ, errors) for index, item in enumerate(value)]
    if isinstance(value, str) and "${" in value:
        return _substitute(value, loc, environ, errors)
    return value


def _substitute(
    text: str,
    loc: Loc,
    environ: Mapping[str, str],
    errors: list[tuple[Loc, str]],
    nesting: int = 1,
) -> str:
    """``text`` with its references resolved; a default may itself hold references
    (``${A:-https://${HOST:-localhost}:3001}``), resolved only when the default is used."""
    out: list[str] = []
    position = 0
    while (start := text.find("$", position)) != -1:
        out.append(text[position:start])
        if text.startswith("$${", start):
            out.append("${")
            position = start + 3
        elif text.startswith("${", start):
            end = _closing_brace(text, start + 2, nesting)
            if end == _TOO_DEEP:
                errors.append((loc, _NESTED_TOO_DEEP))
                return ""
            if end is None:
                errors.append((loc, "expected ${NAME} or ${NAME:-default}; found an unclosed '${'"))
                return "".join(out)
            out.append(_resolve(text[start : end + 1], loc, environ, errors, nesting))
            position = end + 1
        else:
            out.append("$")
            position = start + 1
    out.append(text[position:])
    return "".join(out)


_TOO_DEEP = -1


def _closing_brace(text: str, index: int, nesting: int) -> int | None:
    """The index of the ``}`` that closes a reference (at ``nesting``) whose body starts at
    ``index``; :data:`_TOO_DEEP` as soon as a reference inside would nest deeper than
    :data:`MAX_NESTING` (so a hostile string costs a few characters' scan, not its length)."""
    depth = 1
    while index < len(text):
        if text.startswith("${", index):
            depth, index = depth + 1, index + 2
            if nesting + depth - 1 > MAX_NESTING:
                return _TOO_DEEP
            continue
        if text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return None


def _resolve(
    reference: str,
    loc: Loc,
    environ: Mapping[str, str],
    errors: list[tuple[Loc, str]],
    nesting: int,
) -> str:
    """The value of one ``${...}`` reference."""
    match = re.match(_BODY, reference[2:-1])
    if match is None:
        errors.append((loc, f"expected ${{NAME}} or ${{NAME:-default}}; found {reference!r}"))
        return ""
    name, default = match.group("name"), match.group("default")
    value = environ.get(name)
    if default is not None:
        return value or _substitute(default, loc, environ, errors, nesting + 1)
    if value is None:
        message = (
            f"the environment variable {name} is not set "
            f"(set it, or write ${{{name}:-default}} to give a default)"
        )
        errors.append((loc, message))
        return ""
    return value
