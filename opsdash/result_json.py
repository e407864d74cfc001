"""The JSON object of one check result: an entry of ``check --json``'s ``checks`` (schema
``opsdash.check/v1``), and the form in which ``opsdash alert`` keeps each check's last result.

One function below the faces, so that the JSON renderer and the alerting state never drift
apart and neither face imports the other.
"""

from __future__ import annotations

from typing import Any

from opsdash.figures import details_json
from opsdash.marks import CheckMark, SilenceMark
from opsdash.results import CheckResult, ProbeError


def _error(error: ProbeError | None) -> dict[str, str] | None:
    return None if error is None else {"type": error.type.value, "message": error.message}


def silence_object(mark: SilenceMark | None) -> dict[str, str] | None:
    """A silence as the JSON shows it next to what it holds back (``null`` when none)."""
    if mark is None:
        return None
    return {
        "matcher": mark.matcher,
        "reason": mark.reason,
        "until": mark.until.isoformat(timespec="seconds"),
    }


def _details(result: CheckResult, mark: CheckMark | None) -> dict[str, Any]:
    details = details_json(result.figures)
    # The alerting marks sit in ``details`` (where v1 has always shown them), but they are the
    # snapshot's, not the probe's: a result is never edited to carry them.
    if mark is not None and mark.silence is not None:
        details["silenced"] = silence_object(mark.silence)
    if mark is not None and mark.flapping:
        details["flapping"] = True
    return details


def check_object(result: CheckResult, mark: CheckMark | None = None) -> dict[str, Any]:
    """One entry of ``checks``, with the snapshot's alerting ``mark`` for the check."""
    return {
        "id": result.id,
        "component": result.component,
        "check": result.check,
        "kind": result.kind,
        "status": result.status.value,
        "summary": result.summary,
        "latency_ms": result.latency_ms,
        "target": result.target,
        "details": _details(result, mark),
        "error": _error(result.error),
    }
