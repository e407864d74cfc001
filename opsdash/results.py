"""What a probe finds, and what the harness records: the data every later stage reads.

A probe returns an :class:`Observation` (or raises); the harness wraps it into a
:class:`CheckResult` with timing, the target and, when the probe got no answer to judge, a
:class:`ProbeError`. Results are immutable; what a probe measured travels as typed
:mod:`~opsdash.figures`, never as a free-form mapping.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from opsdash.figures import Figures, details_json
from opsdash.records import dataclass, field
from opsdash.status import Status


class ErrorType(StrEnum):
    """Why a probe got no answer to judge (``error.type`` in the JSON contract)."""

    TIMEOUT = "timeout"
    REFUSED = "refused"
    DNS = "dns"
    TLS = "tls"
    RESET = "reset"
    PROTOCOL = "protocol"
    AUTH = "auth"
    CONFIG = "config"
    INTERNAL = "internal"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Observation:
    """A probe's verdict on an answer it got."""

    status: Status
    summary: str
    figures: Figures | None = None

    @property
    def details(self) -> dict[str, Any]:
        """The JSON ``details`` these figures make (:func:`opsdash.figures.details_json`)."""
        return details_json(self.figures)


class ProbeFailure(Exception):
    """Raised by a probe that knows exactly why it got no answer to judge."""

    def __init__(self, error_type: ErrorType, message: str, figures: Figures | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.figures = figures
        """What the probe measured before it failed (a TLS failure's certificate)."""


@dataclass(frozen=True, slots=True)
class ProbeError:
    """The ``error`` object of a check in the JSON contract."""

    type: ErrorType
    message: str


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One run of one check."""

    id: str
    component: str
    check: str
    kind: str
    status: Status
    summary: str
    latency_ms: float | None
    target: str
    figures: Figures | None
    error: ProbeError | None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def details(self) -> dict[str, Any]:
        """The JSON ``details`` object (:func:`opsdash.figures.details_json`): what
        ``check --json`` prints. Faces read :attr:`figures` instead."""
        return details_json(self.figures)

    def with_figures(self, figures: Figures | None) -> CheckResult:
        """A copy with other figures (a derive step's rates)."""
        return replace(self, figures=figures)
