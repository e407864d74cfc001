"""Running checks: one round of everything (``check``, ``alert``), or each check on its own
interval (``ui``, ``serve``).

A round runs all probes concurrently under a semaphore; each probe is bounded by its own
deadline in the harness, so a hanging target delays nothing but itself. In watch mode each check
has one long-lived loop (run, publish, sleep), so two runs of the same check never overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from opsdash.harness import run_probe
from opsdash.plan import CheckSpec
from opsdash.resources import Resources
from opsdash.results import CheckResult


@dataclass(frozen=True, slots=True)
class Round:
    """The results of one round, in the order of the specs that produced them."""

    started_at: datetime
    duration_ms: float
    results: tuple[CheckResult, ...]


async def run_round(
    specs: Sequence[CheckSpec], resources: Resources, *, concurrency: int = 64
) -> Round:
    """Run every spec once, at most ``concurrency`` at a time."""
    started_at = datetime.now(UTC)
    start = time.perf_counter()
    gate = asyncio.Semaphore(concurrency)

    async def gated(spec: CheckSpec) -> CheckResult:
        async with gate:
            return await run_probe(spec, resources)

    results = await asyncio.gather(*(gated(spec) for spec in specs))
    return Round(started_at, round((time.perf_counter() - start) * 1000.0, 1), tuple(results))


ResultSink = Callable[[CheckResult], Awaitable[None] | None]


class Scheduler:
    """Runs each check on its interval until stopped; publishes every result to ``sink``.

    One task per check: run, publish, sleep. :meth:`run_now` wakes every loop early (the
    dashboard's ``r``); :meth:`pause` holds them after their current run.
    """

    def __init__(
        self,
        specs: Sequence[CheckSpec],
        resources: Resources,
        sink: ResultSink,
        *,
        concurrency: int = 64,
    ) -> None:
        self._specs = list(specs)
        self._resources = resources
        self._sink = sink
        self._gate = asyncio.Semaphore(concurrency)
        self._wake = {spec.id: asyncio.Event() for spec in self._specs}
        self._running = asyncio.Event()
        self._running.set()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def paused(self) -> bool:
        """True while :meth:`pause` holds the loops."""
        return not self._running.is_set()

    def start(self) -> None:
        """Start one loop per check (idempotent)."""
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._loop(spec), name=f"opsdash:{spec.id}")
                for spec in self._specs
            ]

    def run_now(self) -> None:
        """Wake every check that is sleeping; a check that is running is not run twice."""
        for event in self._wake.values():
            event.set()

    def pause(self) -> None:
        """Hold every loop after its current run."""
        self._running.clear()

    def resume(self) -> None:
        """Let the loops go on."""
        self._running.set()

    async def stop(self) -> None:
        """Cancel every loop and wait for them to end."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _loop(self, spec: CheckSpec) -> None:
        wake = self._wake[spec.id]
        while True:
            await self._running.wait()
            wake.clear()
            async with self._gate:
                result = await run_probe(spec, self._resources)
            published = self._sink(result)
            if published is not None:
                await published
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=spec.interval)
