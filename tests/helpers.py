"""Small builders shared by the unit tests: specs with in-process probes, fixed results."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from opsdash.figures import Figures
from opsdash.plan import CheckSpec
from opsdash.redact import Redactor
from opsdash.registry.model import LatencyThresholds
from opsdash.resources import Resources
from opsdash.results import CheckResult, ErrorType, Observation, ProbeError
from opsdash.status import Status


def spec(
    check_id: str,
    probe: Callable[[Resources], Awaitable[Observation]],
    *,
    timeout: float = 1.0,
    interval: float = 10.0,
    latency: LatencyThresholds | None = None,
    secrets: tuple[str, ...] = (),
    component_type: str = "service",
    depends_on: tuple[str, ...] = (),
) -> CheckSpec:
    """A spec around an in-process probe."""
    component, _, check = check_id.partition(".")
    return CheckSpec(
        id=check_id,
        component=component,
        component_type=component_type,  # type: ignore[arg-type]
        check=check or "ping",
        kind="test",
        target=f"test://{check_id}",
        probe=probe,
        timeout=timeout,
        interval=interval,
        latency=latency,
        depends_on=depends_on,
        redact=Redactor.of(secrets),
    )


def result(
    check_id: str,
    status: Status = Status.OK,
    summary: str = "",
    *,
    figures: Figures | None = None,
    error: ErrorType | None = None,
    at: datetime | None = None,
) -> CheckResult:
    """A fixed result, as a probe run would have produced it."""
    component, _, check = check_id.partition(".")
    return CheckResult(
        id=check_id,
        component=component,
        check=check or component,
        kind="http" if check in ("health", "ready") else "test",
        status=status,
        summary=summary or status.value,
        latency_ms=1.0,
        target=f"test://{check_id}",
        figures=figures,
        error=None if error is None else ProbeError(error, summary),
        started_at=at or datetime(2026, 1, 25, 10, 0, tzinfo=UTC),
    )
