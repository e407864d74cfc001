"""How long applying one round of 1,000 results to the mounted dashboard takes (headless).

Measured inside ``run_test`` at 160x48: ``DashboardApp.ingest`` applies the results to the
state and updates the panels (changed cells only); then the next frame is rendered
(``pilot.pause``). Two figures: "apply" (state + panels) and "apply + frame". Baseline in the
same run: an empty round (no result: only the clock-driven refresh). Target: under 50 ms.

    .venv/bin/python -m bench.tui_apply
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta

from opsdash.plan import build_plan
from opsdash.registry.model import Registry
from opsdash.results import CheckResult
from opsdash.status import Status
from opsdash.tui.app import DashboardApp

SERVICES = 500  # x (health + ready) = 1,000 checks
REPEATS = 7


def registry() -> Registry:
    """500 services on loopback ports nobody answers (the probes never run here)."""
    return Registry.model_validate(
        {
            "version": 1,
            "platform": "bench",
            "services": {
                f"svc-{i:04d}": {"url": f"http://127.0.0.1:{20000 + i}"} for i in range(SERVICES)
            },
        }
    )


def a_round(specs: list, index: int, *, flip: bool) -> list[CheckResult]:
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
                details={"http_status": 503 if failing else 200},
                error=None,
                started_at=at,
            )
        )
    return results


async def main() -> None:
    reg = registry()
    specs = build_plan(reg)
    app = DashboardApp(reg, specs, live=False)
    flips: list[float] = []
    steady: list[float] = []
    applies: list[float] = []
    empty: list[float] = []
    async with app.run_test(size=(160, 48)) as pilot:
        app.ingest(a_round(specs, 0, flip=False))
        await pilot.pause()
        for index in range(1, REPEATS + 1):
            for flip, bucket in ((True, flips), (False, steady)):
                results = a_round(specs, 2 * index + flip, flip=flip)
                start = time.perf_counter()
                app.ingest(results)
                applies.append((time.perf_counter() - start) * 1000)
                await pilot.pause()
                bucket.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            app.ingest([])
            await pilot.pause()
            empty.append((time.perf_counter() - start) * 1000)
    flip_ms, steady_ms = statistics.median(flips), statistics.median(steady)
    apply_ms, empty_ms = statistics.median(applies), statistics.median(empty)
    print(f"checks: {len(specs)}, terminal 160x48, median of {REPEATS}")
    print(f"empty round (baseline), apply + frame:     {empty_ms:6.1f} ms")
    print(
        f"round of 1,000, apply only (state+cells):  {apply_ms:6.1f} ms  "
        f"({apply_ms / empty_ms:.1f}x)"
    )
    print(
        f"round, 10% status changes, apply + frame:  {flip_ms:6.1f} ms  ({flip_ms / empty_ms:.1f}x)"
    )
    print(
        f"round, latencies only, apply + frame:      {steady_ms:6.1f} ms  "
        f"({steady_ms / empty_ms:.1f}x)"
    )
    print(f"target 50 ms (apply only): {'met' if apply_ms < 50 else 'MISSED'}")


if __name__ == "__main__":
    asyncio.run(main())
