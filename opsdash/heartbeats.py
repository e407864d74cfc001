"""Recording heartbeats: the use case behind ``opsdash heartbeat`` and ``POST /heartbeat/ID``
to ``opsdash serve``. Both find the heartbeat check the job names, and keep the beat as that
check's last one in the alerting state, where :mod:`opsdash.probes.heartbeat` reads it.

A job names its check by id (``billing.nightly-export``) or, when only one heartbeat check
has that name, by the part after the dot (``nightly-export``).
"""

from __future__ import annotations

import hmac
import time
from pathlib import Path

from opsdash.alertstate.store import open_store
from opsdash.beats import Heartbeat
from opsdash.records import dataclass
from opsdash.registry.model import HeartbeatCheck, Registry
from opsdash.status import Status

MESSAGE_CHARS = 500
REPORTABLE = ("ok", "warn", "crit")


class HeartbeatError(Exception):
    """The beat cannot be recorded: no such check, a bad status, a refused token."""


@dataclass(frozen=True, slots=True)
class HeartbeatDef:
    """A heartbeat check of the registry."""

    check_id: str
    spec: HeartbeatCheck


def heartbeat_checks(registry: Registry) -> dict[str, HeartbeatDef]:
    """Every heartbeat check, by id, in registry order."""
    found: dict[str, HeartbeatDef] = {}
    for section in (registry.datastores, registry.services, registry.workers):
        for name, entry in section.items():
            for check, spec in entry.custom_checks.items():
                if isinstance(spec, HeartbeatCheck):
                    found[f"{name}.{check}"] = HeartbeatDef(f"{name}.{check}", spec)
    return found


def find(registry: Registry, name: str) -> HeartbeatDef:
    """The heartbeat check ``name`` means (an id, or a check name used by one check)."""
    checks = heartbeat_checks(registry)
    if name in checks:
        return checks[name]
    by_check = [item for check_id, item in checks.items() if check_id.split(".", 1)[1] == name]
    if len(by_check) == 1:
        return by_check[0]
    known = ", ".join(checks) or "none"
    if len(by_check) > 1:
        ids = ", ".join(item.check_id for item in by_check)
        raise HeartbeatError(f"{name!r} names several heartbeat checks ({ids}): give the id")
    raise HeartbeatError(f"no heartbeat check {name!r} in the registry (heartbeat checks: {known})")


def reported_status(text: str | None) -> Status:
    """The status a job reports (``ok`` when it says nothing)."""
    if text is None or text == "":
        return Status.OK
    if text not in REPORTABLE:
        raise HeartbeatError(f"expected a status of ok, warn or crit; found {text!r}")
    return Status(text)


def clean_message(text: str | None) -> str:
    """A job's message as kept: one printable line, capped."""
    line = " ".join("".join(c if c.isprintable() else " " for c in text or "").split())
    return line if len(line) <= MESSAGE_CHARS else line[: MESSAGE_CHARS - 1] + "…"


def token_matches(definition: HeartbeatDef, authorization: str | None) -> bool:
    """Whether an ``Authorization: Bearer TOKEN`` header carries the check's token (never
    true for a check without one: it takes beats from ``opsdash heartbeat`` only)."""
    token = definition.spec.heartbeat.token
    if token is None or authorization is None:
        return False
    scheme, _, given = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def record(
    state_path: Path,
    definition: HeartbeatDef,
    *,
    status: Status,
    message: str,
    source: str,
    now: float | None = None,
) -> Heartbeat:
    """Keep the beat in the alerting state (created if missing). Blocking: the server calls
    it on a worker thread. Raises :class:`~opsdash.alertstate.store.StateFileError`."""
    beat = Heartbeat(
        definition.check_id,
        time.time() if now is None else now,
        status,
        clean_message(message),
        source,
    )
    with open_store(state_path, report=lambda _message: None) as store:
        store.record_heartbeat(beat)
    return beat
