"""The engine's life inside the dashboard: one scheduler on the app's own event loop, its
clients opened and closed with it, and the user's pause and run-now passed on.

One event loop for the app and the probes: the shared clients and pools live on it and are
closed before the app's loop ends. Nothing here knows textual; the app runs :meth:`run` in a
worker and cancels it at exit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from opsdash.engine import ResultSink, Scheduler
from opsdash.plan import CheckSpec
from opsdash.resources import Resources

FIRST_RUNS_PER_S = 1000.0
"""Checks start (first runs, and `r`) at this rate, not all at once: the probes share the
app's event loop, and a key press must not wait behind 1,000 starting probes."""
ENGINE_CLOSE_S = 5.0
"""At exit, how long to wait for the engine to close its clients and pools."""


class EngineDriver:
    """Runs every check on its interval for as long as :meth:`run` is not cancelled."""

    def __init__(
        self,
        specs: Sequence[CheckSpec],
        sink: ResultSink,
        *,
        resources: Callable[[], Resources],
        concurrency: int,
        paused: bool = False,
        starts_per_s: float | None = FIRST_RUNS_PER_S,
    ) -> None:
        self._specs = list(specs)
        self._sink = sink
        self._resources = resources
        self._concurrency = concurrency
        self._starts_per_s = starts_per_s
        self.paused = paused
        self.scheduler: Scheduler | None = None
        """Once the engine is up: the scheduler (pause and run-now before that are held)."""
        self._closed: asyncio.Event | None = None

    async def run(self) -> None:
        """Open the clients, start the checks, and run until cancelled; then stop them and
        close the clients."""
        self._closed = closed = asyncio.Event()
        try:
            async with self._resources() as resources:
                scheduler = Scheduler(
                    self._specs,
                    resources,
                    self._sink,
                    concurrency=self._concurrency,
                    starts_per_s=self._starts_per_s,
                )
                if self.paused:  # paused before the engine was up
                    scheduler.pause()
                scheduler.start()
                self.scheduler = scheduler
                try:
                    await asyncio.Event().wait()  # until cancelled
                finally:
                    await scheduler.stop()
        finally:
            closed.set()

    def run_now(self) -> None:
        """Run every check now (a check that is running is not run twice)."""
        if self.scheduler is not None:
            self.scheduler.run_now()

    def set_paused(self, paused: bool) -> None:
        """Hold the checks after their current run, or let them go on."""
        self.paused = paused
        if self.scheduler is not None:
            if paused:
                self.scheduler.pause()
            else:
                self.scheduler.resume()

    async def wait_closed(self, timeout: float = ENGINE_CLOSE_S) -> None:
        """Wait (up to ``timeout``) until a cancelled :meth:`run` has closed the clients.

        Textual cancels workers at exit without awaiting them: the app waits here, while the
        loop still runs, so that no connection is left to the interpreter's exit."""
        if self._closed is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._closed.wait()
