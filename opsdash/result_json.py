"""The JSON object of one check result: an entry of ``check --json``'s ``checks`` (schema
``opsdash.check/v1``), and the form in which ``opsdash alert`` keeps each check's last result.

One function below the faces, so that the JSON renderer and the alerting state never drift
apart and neither face imports the other.
"""

from __future__ import annotations

from typing import Any

from opsdash.results import CheckResult, ProbeError


def _error(error: ProbeError | None) -> dict[str, str] | None:
    return None if error is None else {"type": error.type.value, "message": error.message}


def check_object(result: CheckResult) -> dict[str, Any]:
    """One entry of ``checks``."""
    return {
        "id": result.id,
        "component": result.component,
        "check": result.check,
        "kind": result.kind,
        "status": result.status.value,
        "summary": result.summary,
        "latency_ms": result.latency_ms,
        "target": result.target,
        "details": dict(result.details),
        "error": _error(result.error),
    }
