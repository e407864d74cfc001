"""Running one probe: the deadline, the clock and the error mapping live here, not in probes.

:func:`run_probe` never raises (except cancellation of the caller): whatever a probe does —
answer, raise, hang — becomes a :class:`~opsdash.results.CheckResult` within its deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from opsdash.deadline import deadline_in
from opsdash.errors import classify
from opsdash.plan import CheckSpec
from opsdash.registry.units import format_duration
from opsdash.resources import Resources
from opsdash.results import CheckResult, ErrorType, Observation, ProbeError, ProbeFailure
from opsdash.status import Status, worst


async def run_probe(spec: CheckSpec, resources: Resources) -> CheckResult:
    """Run ``spec``'s probe under its hard total deadline and judge what came back."""
    started_at = datetime.now(UTC)
    start = time.perf_counter()
    observation: Observation | None = None
    error: ProbeError | None = None
    details: dict[str, object] = {}
    try:
        with deadline_in(spec.timeout):
            async with asyncio.timeout(spec.timeout):
                observation = await spec.probe(resources)
    except TimeoutError:
        error = ProbeError(ErrorType.TIMEOUT, f"no answer within {format_duration(spec.timeout)}")
    except ProbeFailure as failure:
        error = ProbeError(failure.error_type, failure.message)
        details = dict(failure.details)
    except Exception as exc:  # a probe's bug or a library's surprise: still a result
        error = classify(exc)
    latency_ms = (time.perf_counter() - start) * 1000.0

    if observation is None:
        assert error is not None
        message = spec.redact(error.message)
        return CheckResult(
            id=spec.id,
            component=spec.component,
            check=spec.check,
            kind=spec.kind,
            status=Status.UNKNOWN if error.type is ErrorType.CONFIG else Status.CRIT,
            summary=message,
            latency_ms=round(latency_ms, 1),
            target=spec.target,
            details=_redact_values(details, spec),
            error=ProbeError(error.type, message),
            started_at=started_at,
        )

    status, summary = observation.status, observation.summary
    if spec.latency is not None:
        latency_status = spec.latency.judge(latency_ms / 1000.0)
        if latency_status.severity > status.severity:
            status = worst((status, latency_status))
            summary = f"{summary}; slow: {latency_ms:.0f} ms"
    return CheckResult(
        id=spec.id,
        component=spec.component,
        check=spec.check,
        kind=spec.kind,
        status=status,
        summary=spec.redact(summary),
        latency_ms=round(latency_ms, 1),
        target=spec.target,
        details=_redact_values(observation.details, spec)
        if spec.redact.secrets
        else observation.details,
        error=None,
        started_at=started_at,
    )


def _redact_values(value: Any, spec: CheckSpec) -> Any:
    """``value`` with every string in it scrubbed of the registry's secrets."""
    if isinstance(value, str):
        return spec.redact(value)
    if isinstance(value, Mapping):
        return {key: _redact_values(item, spec) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_values(item, spec) for item in value]
    return value
