"""``expect:`` conditions of custom HTTP checks, judged on an answer: status codes or ranges,
JSON values at ``$.paths`` (equal to a value, or compared: ``{gt: 3}``), a body regex, header
regexes and the latency. Every failed condition is described in words, so that the summary
names each one: ``$.status is DOWN, expected UP``.

Pure functions of the answer: the probe (:mod:`opsdash.probes.http_check`) makes the call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from opsdash.registry.model import HttpExpect, JsonComparison
from opsdash.registry.targets import parse_json_path
from opsdash.registry.units import format_duration

_SHOWN = 60
_MISSING = object()


def shown(value: Any) -> str:
    """A JSON value as a reader wants it in a sentence: strings bare, the rest as JSON."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def value_at(document: Any, path: str) -> Any:
    """The value at ``path`` in ``document``, or ``_MISSING``."""
    value = document
    for part in parse_json_path(path):
        in_list = isinstance(part, int) and isinstance(value, list) and part < len(value)
        in_object = isinstance(part, str) and isinstance(value, dict) and part in value
        if not (in_list or in_object):
            return _MISSING
        value = value[part]
    return value


def _same(actual: Any, expected: Any) -> bool:
    """JSON equality: ``true`` is not ``1``, ``1`` is ``1.0``."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    return bool(actual == expected)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _compare(path: str, actual: Any, condition: JsonComparison) -> str | None:
    """Why ``actual`` fails ``condition`` (``None``: it holds)."""
    if condition.exists is not None:
        if condition.exists and actual is _MISSING:
            return f"{path} is missing, expected it to exist"
        if not condition.exists:
            return None if actual is _MISSING else f"{path} is {shown(actual)}, expected no value"
    if actual is _MISSING:
        return f"{path} is missing"
    is_ = f"{path} is {shown(actual)}"
    if "eq" in condition.fields_set and not _same(actual, condition.eq):
        return f"{is_}, expected {shown(condition.eq)}"
    if "ne" in condition.fields_set and _same(actual, condition.ne):
        return f"{is_}, expected anything but {shown(condition.ne)}"
    if condition.bounds():
        number = _number(actual)
        if number is None:
            return f"{is_}, expected a number {condition.bounds()}"
        holds = (
            (condition.gt is None or number > condition.gt)
            and (condition.ge is None or number >= condition.ge)
            and (condition.lt is None or number < condition.lt)
            and (condition.le is None or number <= condition.le)
        )
        if not holds:
            return f"{is_}, expected {condition.bounds()}"
    if condition.matches is not None:
        text = actual if isinstance(actual, str) else json.dumps(actual)
        if re.search(condition.matches, text) is None:
            return f"{is_}, expected a match of /{condition.matches}/"
    return None


def failed_conditions(
    expect: HttpExpect,
    *,
    status_code: int,
    headers: Mapping[str, str],
    body: bytes,
    truncated: bool,
    latency_s: float,
) -> list[str]:
    """Each condition the answer fails, in words; empty when all hold."""
    failed: list[str] = []
    if not any(low <= status_code <= high for low, high in expect.status_ranges()):
        failed.append(f"status {status_code}, expected {' or '.join(expect.status or ('2xx',))}")
    if expect.json_:
        failed += _json_failures(expect, body, truncated)
    if expect.body is not None:
        text = body.decode("utf-8", errors="replace")
        if re.search(expect.body, text) is None:
            failed.append(f"body does not match /{expect.body}/")
    for name, pattern in expect.headers.items():
        value = headers.get(name.lower())
        if value is None:
            failed.append(f"header {name} missing, expected /{pattern}/")
        elif re.search(pattern, value) is None:
            failed.append(f"header {name} is {shown(value)}, expected /{pattern}/")
    if expect.latency is not None and latency_s > expect.latency:
        failed.append(
            f"latency {latency_s * 1000:.0f} ms, expected under {format_duration(expect.latency)}"
        )
    return failed


def _json_failures(expect: HttpExpect, body: bytes, truncated: bool) -> list[str]:
    if truncated:
        return [f"body is larger than {len(body) // 1024} KiB: cannot judge its JSON"]
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return ["body is not JSON"]
    failed: list[str] = []
    for path, condition in expect.json_.items():
        actual = value_at(document, path)
        if isinstance(condition, JsonComparison):
            reason = _compare(path, actual, condition)
        elif actual is _MISSING:
            reason = f"{path} is missing, expected {shown(condition)}"
        elif not _same(actual, condition):
            reason = f"{path} is {shown(actual)}, expected {shown(condition)}"
        else:
            reason = None
        if reason is not None:
            failed.append(reason)
    return failed
