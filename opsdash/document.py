"""The ``opsdash.check/v1`` document (DESIGN.md): what ``opsdash check --json`` prints and
what ``opsdash serve`` answers at ``GET /api/v1/check``. Below the faces, so that the JSON
renderer (:mod:`opsdash.render.json`), the exporter's API and its clients share one builder.

The document's shape is a contract: every key is always present (null when empty), numbers are
numbers, times are UTC ISO 8601 with milliseconds and a ``Z``. ``opsdash/schemas/check-v1.json``
is the JSON Schema the tests validate every emitted document against.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from opsdash.formats import iso
from opsdash.incidents import AFFECTED_TYPES, Incident
from opsdash.marks import SilenceMark
from opsdash.result_json import check_object, silence_object
from opsdash.results import ErrorType
from opsdash.state import Snapshot

SCHEMA = "opsdash.check/v1"


def incident_object(incident: Incident, silence: SilenceMark | None = None) -> dict[str, Any]:
    """One entry of ``incidents``: ``affected`` is exactly what the summary counts."""
    return {
        "cause": incident.cause,
        "status": incident.status.value,
        "affected": list(incident.affected.names),
        "summary": incident.summary,
        "kind": incident.kind.value,
        "checks": list(incident.checks),
        "notes": list(incident.notes),
        "cause_type": incident.cause_type,
        "affected_by_type": {t: list(incident.affected.of_type(t)) for t in AFFECTED_TYPES},
        "silenced": silence_object(silence),
    }


def check_document(snapshot: Snapshot) -> dict[str, Any]:
    """The whole ``opsdash.check/v1`` document of a snapshot."""
    return {
        "schema": SCHEMA,
        "platform": snapshot.platform,
        "status": snapshot.status.value,
        "started_at": iso(snapshot.started_at),
        "duration_ms": snapshot.duration_ms,
        "counts": snapshot.counts,
        "checks": [check_object(r, snapshot.marks.get(r.id)) for r in snapshot.results],
        "components": [
            {
                "name": component.name,
                "type": component.type,
                "status": component.status.value,
                "checks": list(component.checks),
            }
            for component in snapshot.components
        ],
        "incidents": [
            incident_object(incident, snapshot.incident_silences.get(incident.cause))
            for incident in snapshot.incidents
        ],
        "error": None,
    }


def error_document(message: str, *, platform: str | None = None) -> dict[str, Any]:
    """The document printed when no round could run (a broken configuration)."""
    return {
        "schema": SCHEMA,
        "platform": platform,
        "status": "unknown",
        "started_at": iso(datetime.now(UTC)),
        "duration_ms": None,
        "counts": {"ok": 0, "warn": 0, "crit": 0, "unknown": 0},
        "checks": [],
        "components": [],
        "incidents": [],
        "error": {"type": ErrorType.CONFIG.value, "message": message},
    }


def dumps(document: dict[str, Any]) -> str:
    """Serialise a document on one line: UTF-8 text, stable key order, values made JSON-safe.

    Not indented: only the compact form runs on json's C encoder (4x faster with 2,000
    checks); ``| jq .`` makes it readable."""
    return json.dumps(document, ensure_ascii=False, default=_fallback)


def _fallback(value: object) -> object:
    # details may carry datetimes or tuples from a probe; never fail the whole document.
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)
