"""How opsdash writes times, durations, numbers and clipped text: one formatter per concept,
so that every face says the same thing the same way.

(The registry's own spelling of a duration, ``500ms`` / ``3s`` / ``2m``, is the inverse of its
parser and lives beside it: :func:`opsdash.registry.units.format_duration`.)
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime, *, timespec: str = "milliseconds") -> str:
    """UTC ISO 8601 with a ``Z``, to milliseconds by default: ``2026-01-25T10:00:00.000Z``."""
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def iso_at(seconds: float, *, timespec: str = "milliseconds") -> str:
    """:func:`iso` of a time in seconds since the epoch."""
    return iso(datetime.fromtimestamp(seconds, UTC), timespec=timespec)


def duration(seconds: float, *, compact: bool = False) -> str:
    """An age or an ETA for a person: ``42s``, ``12m``, ``3h 5m``, ``2d 4h``.

    ``compact`` is for a narrow column that should seldom change once an age is old: ``3h05m``
    (always six characters at most below a day), then whole days only (``4d``)."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        if compact:
            return f"{hours}h{minutes:02d}m"
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    if compact:
        return f"{days}d"
    return f"{days}d {hours}h" if hours else f"{days}d"


def number(value: float) -> str:
    """A count or rate, to one decimal, without a trailing ``.0`` (14.998 per minute reads
    ``15``, not ``15.0``)."""
    rounded = round(float(value), 1)
    return f"{rounded:.0f}" if rounded.is_integer() else f"{rounded:.1f}"


def figure(value: float) -> str:
    """A figure for the detail screen, beside its unit: at most three decimals, fewer for
    larger numbers; no trailing zeros."""
    if value != value or value in (float("inf"), float("-inf")):  # NaN, infinities
        return "not a number"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    decimals = 2 if abs(value) >= 1 else 3
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".")


def span(seconds: float) -> str:
    """A duration for the detail screen, units spelled out: ``850 ms``, ``2.5 s``, ``42 s``,
    ``4 min 05 s``, ``2 h 05 min``, ``3 d 04 h``."""
    seconds = max(float(seconds), 0.0)
    if seconds == 0:
        return "0 s"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10 and not seconds.is_integer():
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    if whole < 86400:
        return f"{whole // 3600} h {(whole % 3600) // 60:02d} min"
    return f"{whole // 86400} d {(whole % 86400) // 3600:02d} h"


def clip(text: str, width: int) -> str:
    """One line (whitespace runs become one space), at most ``width`` characters, an ellipsis
    where it was cut."""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"
