"""Reading ``services.yaml`` (plus an environment overlay) into a validated :class:`Registry`.

The steps, each of which adds to one list of problems so that all are reported together:

1. parse the YAML, recording the line of every key and rejecting duplicate keys;
2. with ``env``, deep-merge ``config/<env>.yaml`` (next to the registry) over it; the keys the
   overlay sets are attributed to the overlay file;
3. resolve ``${VAR}`` / ``${VAR:-default}`` in every string value;
4. validate into the typed, frozen :class:`~opsdash.registry.model.Registry`;
5. check what a schema cannot: cross references (``depends_on``, ``datastore``, names).

Any problem raises :class:`~opsdash.registry.problems.RegistryError`. Secrets found in the
document (URL passwords, header values, ``password`` keys) are masked in every message.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from opsdash.redact import Redactor, header_secrets, url_secrets
from opsdash.registry.files import Unreadable, check_file, max_file_size, read_bytes
from opsdash.registry.interpolate import interpolate
from opsdash.registry.model import Loc, Registry
from opsdash.registry.problems import Position, Problem, RegistryError, ordered
from opsdash.registry.schema import ValidationError
from opsdash.registry.yaml_lines import Parsed, parse_yaml

# As text: re compiles it on first use (only with --env).
_ENV_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
_SECRET_KEYS = frozenset({"password", "token", "secret", "api_key"})


def load_registry(
    path: Path, *, env: str | None = None, environ: Mapping[str, str] | None = None
) -> Registry:
    """The registry at ``path``, with ``config/<env>.yaml`` merged over it when ``env`` is
    given and ``${VAR}`` resolved from ``environ`` (default: the process environment).

    Raises :class:`RegistryError` listing every problem found, each with file, line and key.
    """
    environ = os.environ if environ is None else environ
    files = [str(path)]
    try:
        limit = max_file_size(environ)
    except ValueError as error:
        raise RegistryError([Problem(str(path), None, "", str(error))]) from None
    parsed = _read(path, missing=None, limit=limit)
    problems = list(parsed.problems)
    data, positions = parsed.data, dict(parsed.positions)
    unresolved = list(parsed.unusable)
    if env is not None:
        overlay_file, overlay = _read_overlay(path, env, limit)
        files.append(overlay_file)
        problems += overlay.problems
        unresolved += overlay.unusable
        if overlay.data is None and overlay.problems:
            # Without the overlay, the base alone would report what the overlay may fix.
            raise RegistryError(ordered(problems, files))
        if isinstance(data, dict) and isinstance(overlay.data, dict):
            _merge(data, overlay.data, (), positions, overlay.positions)
    if data is None:
        if not problems:
            message = "the file is empty; expected a registry (version: 1, platform: ...)"
            problems.append(Problem(str(path), None, "", message))
        raise RegistryError(ordered(problems, files))

    def place(loc: Loc) -> Position:
        return _position(loc, positions, str(path))

    interpolated = interpolate(data, environ)
    problems += [Problem.at(place(loc), loc, message) for loc, message in interpolated.errors]
    unresolved += [loc for loc, _ in interpolated.errors]
    registry: Registry | None = None
    try:
        registry = Registry.from_data(interpolated.data)
    except ValidationError as error:
        # Messages may quote values: mask the registry's secrets (found only when needed, as
        # the walk over a large registry is not free).
        mask = Redactor.of(_secrets(interpolated.data))
        broken: list[Loc] = []
        for loc, message in error.messages(mask):
            broken.append(loc)
            # A value left empty by an unset variable was reported once already.
            if not any(loc[: len(bad)] == bad for bad in unresolved):
                problems.append(Problem.at(place(loc), loc, mask(message)))
        references = _references_despite(interpolated.data, broken)
    else:
        references = registry.reference_problems()
        references += _file_problems(registry, Path(path).resolve().parent, limit)
        mask = Redactor.of(_secrets(interpolated.data)) if references else Redactor()
    problems += [Problem.at(place(loc), loc, mask(message)) for loc, message in references]
    if problems or registry is None:
        raise RegistryError(ordered(problems, files))
    return registry.located_at(Path(path).resolve().parent)


def _file_problems(registry: Registry, base_dir: Path, limit: int) -> list[tuple[Loc, str]]:
    """``.sql`` files outside the registry's tree, not regular files or over the size cap
    (checked without reading them: the planner reads each once). A missing file stays the
    check's own ``unknown`` at run time, as it may be deployed after the registry."""
    problems: list[tuple[Loc, str]] = []
    for name, datastore in registry.datastores.items():
        for check, sql_probe in getattr(datastore, "sql_checks", {}).items():
            problem = check_file(base_dir, sql_probe.file, limit=limit, missing_ok=True)
            if problem is not None:
                problems.append((("datastores", name, "sql_checks", check, "file"), problem))
    return problems


def _references_despite(data: Any, broken: list[Loc]) -> list[tuple[Loc, str]]:
    """Cross-reference problems of what did validate, so that a bad ``depends_on`` is reported
    in the same round as a bad duration elsewhere. The broken keys are left out (the whole
    entry when that is not enough), and so are references to a left-out datastore."""
    if not isinstance(data, dict) or any(map(_unprunable, broken)):
        return []
    pruned = copy.deepcopy(data)
    dropped: set[str] = set()
    cuts = [_fine_cut(loc) for loc in broken]
    for _ in range(3):
        for cut in cuts:
            parent = _value_at(pruned, cut[:-1])
            if isinstance(parent, dict):
                parent.pop(cut[-1], None)
            if len(cut) == 2 and cut[0] == "datastores":
                dropped.add(str(cut[1]))
        try:
            registry = Registry.from_data(pruned)
        except ValidationError as error:
            still = [loc for loc, _ in error.problems]
            if any(map(_unprunable, still)):
                return []
            cuts = [loc[:2] for loc in still]  # the whole entry (or ``defaults.x``) this time
            continue
        return [
            (loc, message)
            for loc, message in registry.reference_problems()
            if not _names_dropped(_value_at(data, loc), dropped)
        ]
    return []


def _unprunable(loc: Loc) -> bool:
    """Whether a problem at ``loc`` leaves nothing sensible to cross-check."""
    return loc in ((), ("datastores",)) or loc[0] in ("version", "platform")


def _names_dropped(value: Any, dropped: set[str]) -> bool:
    return isinstance(value, str) and value in dropped


def _fine_cut(loc: Loc) -> Loc:
    """The key to remove for a problem at ``loc``: the key itself, a list as a whole."""
    first_index = next((i for i, part in enumerate(loc) if isinstance(part, int)), len(loc))
    return loc[:first_index]


def _value_at(data: Any, loc: Loc) -> Any:
    """The raw value at ``loc`` (``None`` when absent)."""
    for part in loc:
        if isinstance(data, dict) and isinstance(part, str):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def _read(path: Path, *, missing: str | None, limit: int) -> Parsed:
    """``path`` parsed; unreadable files become a problem (``missing`` words a missing one).

    Only a regular file of at most ``limit`` bytes is read (:mod:`opsdash.registry.files`).
    """
    file = str(path)
    try:
        content = read_bytes(path, limit=limit)
        text = content.decode("utf-8")
    except FileNotFoundError:
        return Parsed(None, {}, [Problem(file, None, "", missing or "the file does not exist")])
    except Unreadable as error:
        return Parsed(None, {}, [Problem(file, None, "", str(error))])
    except UnicodeDecodeError as error:
        line = error.object[: error.start].count(b"\n") + 1
        return Parsed(None, {}, [Problem(file, line, "", "cannot read the file: not UTF-8 text")])
    return parse_yaml(text, file)


def _read_overlay(path: Path, env: str, limit: int) -> tuple[str, Parsed]:
    """``config/<env>.yaml`` next to the registry (its display name and content), checked to
    be a mapping."""
    directory = path.parent / "config"
    overlay = directory / f"{env}.yaml"
    if not re.match(_ENV_NAME, env):
        message = f"expected an environment name such as local or staging; found {env!r}"
        return str(overlay), Parsed(None, {}, [Problem(str(path), None, "", message)])
    available = ", ".join(sorted(p.stem for p in directory.glob("*.yaml"))) or "none"
    missing = f"no overlay for environment {env!r}: the file does not exist (found: {available})"
    parsed = _read(overlay, missing=missing, limit=limit)
    if parsed.data is not None and not isinstance(parsed.data, dict):
        line = parsed.positions[()].line
        message = "expected a mapping of registry keys to override"
        problem = Problem(str(overlay), line, "", message)
        return str(overlay), Parsed(None, {}, [*parsed.problems, problem])
    return str(overlay), parsed


def _merge(
    base: dict[str, Any],
    overlay: dict[str, Any],
    loc: Loc,
    positions: dict[Loc, Position],
    overlay_positions: Mapping[Loc, Position],
) -> None:
    """Deep-merge ``overlay`` into ``base`` in place: mappings merge key by key, anything else
    (lists included) is replaced, and a replaced value's positions become the overlay's."""
    for key, value in overlay.items():
        here = (*loc, key)
        current = base.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            _merge(current, value, here, positions, overlay_positions)
            continue
        base[key] = value
        # Only a mapping or a list has positions below its own: scanning every position for
        # each replaced scalar made a 1,000-entry overlay quadratic (a second at start-up).
        if isinstance(current, dict | list):
            for stale in [p for p in positions if p[: len(here)] == here]:
                del positions[stale]
        else:
            positions.pop(here, None)
        if isinstance(value, dict | list):
            positions.update(
                (p, at) for p, at in overlay_positions.items() if p[: len(here)] == here
            )
        elif here in overlay_positions:
            positions[here] = overlay_positions[here]


def _position(loc: Loc, positions: Mapping[Loc, Position], file: str) -> Position:
    """Where ``loc`` (or its nearest written ancestor, for a missing key) is in the files."""
    for length in range(len(loc), -1, -1):
        found = positions.get(loc[:length])
        if found is not None:
            return found
    return Position(file, 1)


def _secrets(data: Any, key: str | int | None = None, *, alerting: bool = False) -> Iterator[str]:
    """Every secret the document holds: URL passwords and secret query values, header values,
    the values of ``password``-like keys, and the URLs of ``alerts`` targets (webhook URLs
    carry their token in the path)."""
    if isinstance(data, dict):
        if key == "headers":
            yield from header_secrets({k: v for k, v in data.items() if isinstance(v, str)})
        for name, value in data.items():
            in_alerts = alerting or (key is None and name == "alerts")
            yield from _secrets(value, name, alerting=in_alerts)
    elif isinstance(data, list):
        for value in data:
            yield from _secrets(value, key, alerting=alerting)
    elif isinstance(data, str):
        if (alerting and key in ("url", "urls")) or (
            isinstance(key, str) and key.lower() in _SECRET_KEYS
        ):
            yield data
        yield from url_secrets(data)
    elif isinstance(key, str) and key.lower() in _SECRET_KEYS and data is not None:
        yield str(data)  # ``password: 123456`` is a number to YAML, and still a secret
