"""How opsdash writes times, durations, numbers and clipped text: one formatter per concept,
so that every face says the same thing the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with milliseconds: ``2026-01-25T10:00:00.000Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
