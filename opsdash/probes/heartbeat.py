"""Heartbeat checks: a dead man's switch for cron jobs.

A job reports in with ``opsdash heartbeat ID`` or ``POST /heartbeat/ID`` to ``opsdash serve``;
both record the beat in the alerting state (:mod:`opsdash.beats`). The check reads
the last beat: crit when it is older than ``max_age``, else the status the job reported (ok,
or warn/crit when the job said so). Before the first beat the check is unknown: a job that
has not run yet is not known to be broken.

The state is SQLite: read on a worker thread, so that the event loop never waits on the file.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from opsdash.beats import Heartbeat, default_state_path, read_heartbeat
from opsdash.figures import HeartbeatFigures
from opsdash.records import dataclass
from opsdash.registry.units import format_duration
from opsdash.resources import Resources
from opsdash.results import Observation
from opsdash.status import Status


@dataclass(frozen=True, slots=True)
class HeartbeatTarget:
    """Which check's beats to read, and how old the last may be."""

    check_id: str
    max_age: float


def state_path(resources: Resources) -> Path:
    """The alerting state the beats are in: the command's ``--state``, else ``OPSDASH_STATE``,
    else the default."""
    if resources.state_path is not None:
        return resources.state_path
    from_env = os.environ.get("OPSDASH_STATE")
    return Path(from_env) if from_env else default_state_path()


def ago(seconds: float) -> str:
    """``seconds`` in the unit a reader wants: ``45s``, ``12m``, ``5h``, ``3d``."""
    seconds = max(seconds, 0.0)
    for unit, size, up_to in (("s", 1, 120), ("m", 60, 7200), ("h", 3600, 172800)):
        if seconds < up_to:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds / 86400:.0f}d"


async def probe_heartbeat(resources: Resources, target: HeartbeatTarget) -> Observation:
    """The last beat's age against ``max_age``."""
    beat = await asyncio.to_thread(read_heartbeat, state_path(resources), target.check_id)
    return judge(beat, target, now=time.time())


def judge(beat: Heartbeat | None, target: HeartbeatTarget, *, now: float) -> Observation:
    """The verdict on the last beat (``None``: none yet)."""
    limit = format_duration(target.max_age)
    if beat is None:
        figures = HeartbeatFigures(max_age_s=target.max_age)
        return Observation(
            Status.UNKNOWN, f"no heartbeat yet (expected one every {limit})", figures
        )
    age = now - beat.at
    figures = HeartbeatFigures(
        max_age_s=target.max_age,
        last_beat_at=datetime.fromtimestamp(beat.at, UTC),
        age_s=round(age, 1),
        reported_status=beat.status,
        message=beat.message or None,
        source=beat.source,
    )
    said = f": {beat.message}" if beat.message else ""
    if age > target.max_age:
        summary = f"last heartbeat {ago(age)} ago, older than {limit}{said}"
        return Observation(Status.CRIT, summary, figures)
    reported = "" if beat.status is Status.OK else f" reporting {beat.status}"
    return Observation(beat.status, f"last heartbeat {ago(age)} ago{reported}{said}", figures)
