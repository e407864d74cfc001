"""One round of checks -> one snapshot: the use case behind ``check``, ``alert`` and
``demo --check``.

The engine runs probes and the state judges results; this module is the one place that puts
the two together for a command that runs everything once, so that every face that reports a
round reports it the same way (same derive steps, same incidents, same timing).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from opsdash.engine import run_round
from opsdash.plan import CheckSpec
from opsdash.registry.model import Registry
from opsdash.resources import Resources, pool_for
from opsdash.results import CheckResult
from opsdash.state import Snapshot, snapshot_of
from opsdash.status import Status

Progress = Callable[[str], None]

WAIT_RETRY_EVERY = 2.0
"""Seconds between two rounds while ``wait`` keeps re-running (at most: never past the end)."""


async def one_round(
    registry: Registry,
    specs: Sequence[CheckSpec],
    *,
    concurrency: int,
    resources: Resources | None = None,
    earlier: Iterable[CheckResult] = (),
    state_path: Path | None = None,
) -> Snapshot:
    """Run every spec once and judge the results; ``earlier`` results (the previous run's, kept
    by ``opsdash alert`` across cron runs) feed the derive steps. Opens its own resources
    unless given some (``state_path``: the alerting state heartbeat checks read)."""
    if resources is None:
        async with Resources(concurrency=concurrency, state_path=state_path) as own:
            return await one_round(
                registry, specs, concurrency=concurrency, resources=own, earlier=earlier
            )
    round_ = await run_round(specs, resources, concurrency=concurrency)
    return snapshot_of(
        registry,
        specs,
        round_.results,
        earlier=earlier,
        started_at=round_.started_at,
        duration_ms=round_.duration_ms,
    )


async def check_rounds(
    registry: Registry,
    specs: Sequence[CheckSpec],
    *,
    wait: float | None,
    concurrency: int,
    progress: Progress | None = None,
    state_path: Path | None = None,
) -> Snapshot:
    """One round, or rounds until all is ok or ``wait`` runs out; the last round's snapshot.
    While waiting, ``progress`` hears what each round left failing."""
    deadline = None if wait is None else time.monotonic() + wait
    say = progress or (lambda _message: None)
    # Rounds after the first (--wait) reuse the first one's connections.
    keepalive = None if wait is None else pool_for(len(specs), concurrency=concurrency)
    async with Resources(
        concurrency=concurrency, keepalive=keepalive, state_path=state_path
    ) as resources:
        attempt = 0
        while True:
            attempt += 1
            snapshot = await one_round(
                registry, specs, concurrency=concurrency, resources=resources
            )
            if deadline is None:
                return snapshot
            failing = [r.id for r in snapshot.results if r.status is not Status.OK]
            remaining = deadline - time.monotonic()
            if not failing or remaining <= 0:
                if failing:
                    say(f"opsdash: gave up waiting; {len(failing)} not ok")
                return snapshot
            shown = ", ".join(failing[:5]) + (" …" if len(failing) > 5 else "")
            say(
                f"opsdash: round {attempt}: {len(failing)} not ok ({shown}); "
                f"retrying, {remaining:.0f}s left"
            )
            await asyncio.sleep(min(WAIT_RETRY_EVERY, remaining))
