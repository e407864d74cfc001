"""Running one probe: the deadline, the clock and the error mapping live here, not in probes.

:func:`run_probe` never raises (except cancellation of the caller): whatever a probe does —
answer, raise, hang — becomes a :class:`~opsdash.results.CheckResult` within its deadline.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from opsdash.errors import classify
from opsdash.figures import Figures, any_string, map_strings
from opsdash.plan import CheckSpec
from opsdash.registry.units import format_duration
from opsdash.resources import Resources
from opsdash.results import CheckResult, ErrorType, Observation, ProbeError, ProbeFailure
from opsdash.safetext import is_printable, printable
from opsdash.status import Status, worst


async def run_probe(spec: CheckSpec, resources: Resources) -> CheckResult:
    """Run ``spec``'s probe under its hard total deadline and judge what came back."""
    started_at = datetime.now(UTC)
    start = time.perf_counter()
    observation: Observation | None = None
    error: ProbeError | None = None
    figures: Figures | None = None
    try:
        with resources.deadlines.within(spec.timeout):
            observation = await spec.probe(resources)
    except TimeoutError:
        error = ProbeError(ErrorType.TIMEOUT, f"no answer within {format_duration(spec.timeout)}")
    except ProbeFailure as failure:
        error = ProbeError(failure.error_type, failure.message)
        figures = failure.figures
    except Exception as exc:  # a probe's bug or a library's surprise: still a result
        error = classify(exc)
    latency_ms = (time.perf_counter() - start) * 1000.0

    if observation is None:
        assert error is not None
        message = printable(spec.redact(error.message))
        return CheckResult(
            id=spec.id,
            component=spec.component,
            check=spec.check,
            kind=spec.kind,
            status=Status.UNKNOWN if error.type is ErrorType.CONFIG else spec.failure_status,
            summary=message,
            latency_ms=round(latency_ms, 1),
            target=spec.target,
            figures=_redacted(figures, spec),
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
        summary=printable(spec.redact(summary)),
        latency_ms=round(latency_ms, 1),
        target=spec.target,
        figures=_redacted(observation.figures, spec),
        error=None,
        started_at=started_at,
    )


def _redacted(figures: Figures | None, spec: CheckSpec) -> Figures | None:
    """``figures`` with every string in them scrubbed of the registry's secrets and their
    control characters escaped (:mod:`opsdash.safetext`); rebuilt only when that changes
    something."""
    if figures is None:
        return None
    if spec.redact.secrets:
        figures = map_strings(figures, spec.redact)
    if any_string(figures, _unsafe):
        figures = map_strings(figures, printable)
    return figures


def _unsafe(text: str) -> bool:
    return not is_printable(text)
