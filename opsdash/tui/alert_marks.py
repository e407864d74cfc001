"""The alerting state's marks (silences, flapping) on the results the dashboard shows.

``opsdash alert`` keeps its state in a SQLite file; the dashboard reads it once before the
first round (a few ms, so that the first results already show their silences) and then every
:data:`ALERT_STATE_EVERY` seconds off the loop, since silences change rarely.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path

from opsdash.alertstate.view import AlertView
from opsdash.results import CheckResult

ALERT_STATE_EVERY = 15.0
"""Seconds between two reads of the alerting state file."""


class AlertMarks:
    """The latest read of the alerting state at ``path`` (the default state when ``None``)."""

    def __init__(self, path: Path | None, tags: Mapping[str, Sequence[str]]) -> None:
        self._path = path
        self._tags = tags
        self.view = AlertView()

    def read(self) -> None:
        """Read the state now, on the loop."""
        self.view = AlertView.read(self._path)

    async def watch(self, every: float = ALERT_STATE_EVERY) -> None:
        """Re-read the state every ``every`` seconds, in a thread, until cancelled."""
        while True:
            await asyncio.sleep(every)
            self.view = await asyncio.to_thread(AlertView.read, self._path)

    def mark(self, results: Sequence[CheckResult]) -> list[CheckResult]:
        """``results`` with their silences and flapping marked (see :meth:`AlertView.mark`)."""
        return self.view.mark(results, self._tags)
