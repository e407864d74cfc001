"""How long applying one round of 1,000 results to the mounted dashboard takes (headless).

Measured inside ``run_test`` at 160x48, every check's result new each round (so every service
row changes: the worst case for the row memo). Two figures per round:

- "apply": ``DashboardApp.ingest`` (state, rows, table sync; synchronous, so wall = work);
- "apply + frame": from the same start until the screen has painted the change: the widgets'
  pending messages processed (``pilot._wait_for_screen``: event-driven, no idle sleeps) and the
  screen's update run (``screen._on_timer_update``, what Textual's frame timer calls). CPU time
  is shown too: wall minus CPU is waiting, not work.

No ``pilot.pause()`` in the timed part: it sleeps until the process looks idle, which measured
its own sleeps. Baseline in the same run: an empty round (nothing new; the clock-driven
refresh). Target: under 50 ms to apply a round (apply + frame, p95 and max).

    .venv/bin/python -m bench.tui_apply
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from textual.pilot import Pilot

from opsdash.figures import HttpFigures
from opsdash.plan import CheckSpec, build_plan
from opsdash.registry.model import Registry
from opsdash.results import CheckResult
from opsdash.status import Status
from opsdash.tui.app import DashboardApp

SERVICES = 500  # x (health + ready) = 1,000 checks
REPEATS = 15
TARGET_MS = 50.0


def registry() -> Registry:
    """500 services on loopback ports nobody answers (the probes never run here)."""
    return Registry.from_data(
        {
            "version": 1,
            "platform": "bench",
            "services": {
                f"svc-{i:04d}": {"url": f"http://127.0.0.1:{20000 + i}"} for i in range(SERVICES)
            },
        }
    )


def a_round(specs: Sequence[CheckSpec], index: int, *, flip: bool) -> list[CheckResult]:
    """One result per check; with ``flip`` a tenth of them change status."""
    at = datetime(2026, 1, 25, 10, 0, tzinfo=UTC) + timedelta(seconds=10 * index)
    results = []
    for n, spec in enumerate(specs):
        failing = flip and n % 10 == index % 10
        results.append(
            CheckResult(
                id=spec.id,
                component=spec.component,
                check=spec.check,
                kind=spec.kind,
                status=Status.CRIT if failing else Status.OK,
                summary="503 Service Unavailable" if failing else "200 OK",
                latency_ms=5.0 + (n + index) % 40,
                target=spec.target,
                figures=HttpFigures(http_status=503 if failing else 200),
                error=None,
                started_at=at,
            )
        )
    return results


@dataclass
class Timing:
    """Milliseconds per round: apply, apply + frame (wall) and apply + frame (CPU)."""

    apply: list[float] = field(default_factory=list)
    frame: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


async def timed_round(
    pilot: Pilot[None], app: DashboardApp, results: list[CheckResult], into: Timing
) -> None:
    """Apply ``results`` and paint them; record the three figures."""
    cpu = time.process_time()
    start = time.perf_counter()
    app.ingest(results)
    into.apply.append((time.perf_counter() - start) * 1000)
    await pilot._wait_for_screen()
    app.screen._on_timer_update()
    into.frame.append((time.perf_counter() - start) * 1000)
    into.cpu.append((time.process_time() - cpu) * 1000)


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def line(label: str, values: list[float], baseline: list[float] | None = None) -> str:
    """median / p95 / max, and the ratio of the median to the baseline's."""
    median = statistics.median(values)
    ratio = "" if baseline is None else f"  ({median / statistics.median(baseline):.1f}x)"
    return (
        f"{label:<40} median {median:6.1f}  p95 {pct(values, 0.95):6.1f}  "
        f"max {max(values):6.1f} ms{ratio}"
    )


async def main() -> None:
    reg = registry()
    specs = build_plan(reg)
    app = DashboardApp(reg, specs, live=False)
    flips, steady, empty = Timing(), Timing(), Timing()
    async with app.run_test(size=(160, 48)) as pilot:
        app.ingest(a_round(specs, 0, flip=False))
        await pilot.pause()
        for index in range(1, REPEATS + 1):
            for flip, into in ((True, flips), (False, steady)):
                await timed_round(pilot, app, a_round(specs, 2 * index + flip, flip=flip), into)
                await pilot.pause()  # untimed: let the idle work settle between rounds
            await timed_round(pilot, app, [], empty)
            await pilot.pause()
    rounds = Timing(flips.apply + steady.apply, flips.frame + steady.frame, flips.cpu + steady.cpu)
    print(f"checks: {len(specs)}, terminal 160x48, {REPEATS} rounds of each kind")
    print(line("empty round (baseline), apply + frame", empty.frame))
    print(line("round of 1,000, apply (state+rows+cells)", rounds.apply, empty.frame))
    print(line("round, 10% status changes, apply + frame", flips.frame, empty.frame))
    print(line("round, latencies only, apply + frame", steady.frame, empty.frame))
    print(line("round of 1,000, apply + frame, CPU time", rounds.cpu, empty.cpu))
    worst = max(rounds.frame)
    verdict = "met" if worst < TARGET_MS else "MISSED"
    print(f"target {TARGET_MS:.0f} ms (apply + frame, every round): {verdict}")


if __name__ == "__main__":
    asyncio.run(main())
