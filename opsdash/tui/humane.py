"""Values for people: units, human durations, local times, no Python reprs, no None.

The detail screen shows a result's figures through :func:`fact_rows`, which reads them as the
JSON ``details`` object (one name per figure, units in the name's suffix: ``_ms``, ``_s``,
``_pct``...), so any kind of check, a new one included, is shown without a reader of its own.
Pure functions; nothing here imports textual.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from opsdash.formats import figure, span

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_EPOCH_RANGE = (1e9, 4e9)
"""Numbers in this range under a time-like name are Unix times (2001 to 2096)."""
_TIME_WORDS = ("_at", "time", "timestamp", "_since", "not_after", "not_before", "last_")
_UNIT_SUFFIXES = (
    ("_ms", "ms"),
    ("_seconds", "s"),
    ("_s", "s"),
    ("_pct", "%"),
    ("_percent", "%"),
    ("_per_min", "/min"),
    ("_per_minute", "/min"),
    ("_bytes", "bytes"),
)


def plain(text: object) -> str:
    """Text as it may reach a terminal: control characters (escape sequences) removed."""
    return _CONTROL.sub("", str(text))


def local_time(at: datetime, now: datetime) -> str:
    """``02:20:14 (3 s ago)``: the local time, with the date when it is not today."""
    local = at.astimezone()
    shown = local.strftime("%H:%M:%S")
    if local.date() != now.astimezone().date():
        shown = local.strftime("%Y-%m-%d %H:%M:%S")
    delta = (now - at).total_seconds()
    relative = f"{span(delta)} ago" if delta >= 0 else f"in {span(-delta)}"
    return f"{shown} ({relative})"


def label(key: str) -> tuple[str, str]:
    """A figure's name for people, and its unit (from the name's suffix)."""
    for suffix, unit in _UNIT_SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)].replace("_", " "), unit
    return key.replace("_", " "), ""


def _time_like(key: str) -> bool:
    return any(word in key for word in _TIME_WORDS)


def value_text(key: str, value: Any, now: datetime) -> str | None:
    """One figure for people (None: nothing to show, as for a missing figure)."""
    _, unit = label(key)
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return local_time(value if value.tzinfo else value.replace(tzinfo=UTC), now)
    if isinstance(value, int | float):
        if _time_like(key) and _EPOCH_RANGE[0] <= value <= _EPOCH_RANGE[1]:
            return local_time(datetime.fromtimestamp(value, UTC), now)
        if unit == "s":
            return span(value)
        if unit == "ms":
            return span(value / 1000)
        if unit == "%":
            return f"{value:.1f}".removesuffix(".0") + "%"
        return f"{figure(value)} {unit}".strip()
    if isinstance(value, str):
        if _time_like(key):
            try:
                return local_time(datetime.fromisoformat(value.replace("Z", "+00:00")), now)
            except ValueError:
                pass
        return plain(value) or None
    if isinstance(value, Mapping):
        parts = [
            f"{label(str(k))[0]} {text}"
            for k, v in value.items()
            if (text := value_text(str(k), v, now)) is not None
        ]
        return ", ".join(parts) or None
    if isinstance(value, Sequence):
        items = [text for item in value if (text := value_text(key, item, now)) is not None]
        return ", ".join(items) or None
    return plain(value)


def fact_rows(details: Mapping[str, Any], now: datetime) -> list[tuple[str, str]]:
    """``(name, value)`` rows of the scalar figures (lists of objects go to :func:`tables`)."""
    rows: list[tuple[str, str]] = []
    for key, value in details.items():
        if is_table(value):
            continue
        if isinstance(value, Mapping):
            for inner, inner_value in value.items():
                text = value_text(str(inner), inner_value, now)
                if text is not None:
                    rows.append((f"{label(key)[0]}: {label(str(inner))[0]}", text))
            continue
        text = value_text(key, value, now)
        if text is not None:
            rows.append((label(key)[0], text))
    return rows


def is_table(value: Any) -> bool:
    """A list of objects (replica set members, expected indexes, consumer groups)."""
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and bool(value)
        and all(isinstance(item, Mapping) for item in value)
    )


def table_of(rows: Sequence[Mapping[str, Any]], now: datetime) -> tuple[list[str], list[list[str]]]:
    """Column titles and cells of a list of objects: every figure, humanised ("-" if absent)."""
    keys = list(dict.fromkeys(key for row in rows for key in row))
    titles = [label(key)[0] for key in keys]  # the cells carry their units
    cells = [[value_text(k, row.get(k), now) or "-" for k in keys] for row in rows]
    return titles, cells
