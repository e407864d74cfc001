"""The registry's unit strings: durations (``500ms``), percentages (``80%``), rates (``1/min``).

Each parser takes a string (or a bare number) and returns a float in the unit the rest of
opsdash uses: seconds, percent (0-100) and events per minute. They raise ``ValueError`` with a
message that says what was expected; the registry loader adds file, line and key.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from opsdash.registry.schema import After, Unit

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_DURATION_FACTORS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# Percent, rate and size as text: re compiles each on first use (few registries write one).
_PERCENT = r"^\s*(\d+(?:\.\d+)?)\s*%\s*$"
_RATE = r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|min|minute|m|h|hour)\s*$"
_RATE_TO_PER_MINUTE = {
    "s": 60.0,
    "sec": 60.0,
    "second": 60.0,
    "min": 1.0,
    "minute": 1.0,
    "m": 1.0,
    "h": 1 / 60,
    "hour": 1 / 60,
}
_SIZE = r"^\s*(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$"
_SIZE_FACTORS = {
    None: 1,
    "B": 1,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
}


def _is_number(value: object) -> bool:
    """A bare figure that can stand for an amount: finite and not negative (YAML's ``.inf``,
    ``.nan`` and ``-1`` would otherwise slip through as a timeout or a threshold)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    return math.isfinite(value) and value >= 0


MAX_DURATION = 3650 * 86400.0
"""Ten years: the longest duration anything takes (a silence, a retention). Past it a time
stops being representable (``silence --for 9999999d`` overflowed every date after it)."""

MIN_INTERVAL = 0.1
"""The shortest period between two runs of one check: at most ten runs a second per target
(``interval: 0s`` sent 20,000 requests in 5 s to one service)."""

MIN_TIMEOUT = 0.01
"""The shortest deadline of one probe: less cannot even connect over loopback."""


def parse_duration(value: Any) -> float:
    """``"500ms"`` -> 0.5; ``"3s"`` -> 3.0; ``"1m"`` -> 60.0; a bare number is seconds.

    At most :data:`MAX_DURATION` (ten years)."""
    if _is_number(value):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _DURATION_FACTORS[match.group(2)]
    else:
        raise ValueError(f"expected a duration such as 500ms, 3s, 1m, 1h or 14d; found {value!r}")
    if seconds > MAX_DURATION:
        raise ValueError(f"expected a duration of at most 3650d (ten years); found {value!r}")
    return seconds


def _at_least(minimum: float, what: str) -> After:
    def check(seconds: float) -> float:
        if seconds < minimum:
            raise ValueError(
                f"expected {what} of at least {format_duration(minimum)}; "
                f"found {format_duration(seconds)}"
            )
        return seconds

    return After(check)


def parse_percent(value: Any) -> float:
    """``"80%"`` -> 80.0; a bare number is taken as percent already."""
    if _is_number(value):
        return float(value)
    if isinstance(value, str) and (match := re.match(_PERCENT, value)):
        return float(match.group(1))
    raise ValueError(f"expected a percentage such as 80%; found {value!r}")


def parse_rate(value: Any) -> float:
    """``"1/min"`` -> 1.0 per minute; ``"2/s"`` -> 120.0; a bare number is per minute."""
    if _is_number(value):
        return float(value)
    if isinstance(value, str) and (match := re.match(_RATE, value)):
        return float(match.group(1)) * _RATE_TO_PER_MINUTE[match.group(2)]
    raise ValueError(f"expected a rate such as 1/min, 10/h or 2/s; found {value!r}")


def parse_size(value: Any) -> int:
    """``"64KiB"`` -> 65536; a bare integer is bytes."""
    if isinstance(value, int) and _is_number(value):
        return value
    if isinstance(value, str) and (match := re.match(_SIZE, value)):
        return int(match.group(1)) * _SIZE_FACTORS[match.group(2)]
    raise ValueError(f"expected a size such as 65536, 64KiB or 1MiB; found {value!r}")


def format_duration(seconds: float) -> str:
    """The shortest registry-style spelling of ``seconds`` (``3s``, ``500ms``, ``2m``)."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    for unit, factor in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= factor and seconds % factor == 0:
            return f"{seconds / factor:g}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[
    float,
    Unit(
        parse_duration,
        pattern=_DURATION.pattern,
        description="a duration: 500ms, 3s, 1m, 1h, 14d (a number is seconds)",
        show=format_duration,
    ),
]
"""Seconds, written in the registry as ``500ms``, ``3s``, ``1m``..."""

Interval = Annotated[Duration, _at_least(MIN_INTERVAL, "an interval")]
"""The period between runs of a check: at least :data:`MIN_INTERVAL`."""

Timeout = Annotated[Duration, _at_least(MIN_TIMEOUT, "a timeout")]
"""The deadline of one probe or one delivery: at least :data:`MIN_TIMEOUT`."""

Percent = Annotated[
    float,
    Unit(
        parse_percent,
        pattern=_PERCENT,
        description="a percentage: 80% (a number is percent)",
    ),
]
"""Percent (0-100), written as ``80%``."""

Rate = Annotated[
    float,
    Unit(
        parse_rate,
        pattern=_RATE,
        description="a rate: 1/min, 10/h, 2/s (a number is per minute)",
    ),
]
"""Events per minute, written as ``1/min``, ``10/h`` or ``2/s``."""

Size = Annotated[
    int,
    Unit(parse_size, pattern=_SIZE, description="a size in bytes: 65536, 64KiB, 1MiB"),
]
"""Bytes, written as ``65536`` or ``64KiB``."""
