"""Statuses and exit codes: part of the public contract (DESIGN.md, "Check ids and statuses").

Statuses are ordered by severity for roll-ups. ``unknown`` ranks above ``ok`` (a check that
cannot decide needs a look) and below ``warn`` (a confirmed problem outranks a doubt). Never
take a numeric ``max`` over statuses: use :func:`worst`.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum, StrEnum


class Status(StrEnum):
    """The verdict of one check, a component or the whole platform."""

    OK = "ok"
    WARN = "warn"
    CRIT = "crit"
    UNKNOWN = "unknown"

    @property
    def severity(self) -> int:
        """Rank used to pick the worst of several statuses."""
        return _SEVERITY[self]

    @property
    def glyph(self) -> str:
        """A symbol that carries the status without colour."""
        return _GLYPH[self]

    @property
    def exit_code(self) -> ExitCode:
        """The Nagios-convention exit code for this status."""
        return _EXIT[self]

    @property
    def failing(self) -> bool:
        """True for anything that is not ok."""
        return self is not Status.OK

    def __str__(self) -> str:
        return self.value


_SEVERITY = {Status.OK: 0, Status.UNKNOWN: 1, Status.WARN: 2, Status.CRIT: 3}
_GLYPH = {Status.OK: "✔", Status.WARN: "▲", Status.CRIT: "✖", Status.UNKNOWN: "?"}


class ExitCode(IntEnum):
    """Exit codes of every command (Nagios plugin convention)."""

    OK = 0
    """Everything selected is ok."""
    WARN = 1
    """At least one check warns and none is critical."""
    CRIT = 2
    """At least one check is critical."""
    UNKNOWN = 3
    """A check could not decide, the configuration is broken, or the command was misused."""


_EXIT = {
    Status.OK: ExitCode.OK,
    Status.WARN: ExitCode.WARN,
    Status.CRIT: ExitCode.CRIT,
    Status.UNKNOWN: ExitCode.UNKNOWN,
}


def worst(statuses: Iterable[Status], default: Status = Status.OK) -> Status:
    """The most severe of ``statuses``; ``default`` when there are none."""
    return max(statuses, key=lambda s: s.severity, default=default)
