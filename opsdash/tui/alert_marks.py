"""The alerting state's marks (silences, flapping) on the snapshot the dashboard shows.

``opsdash alert`` keeps its state in a SQLite file; the dashboard reads it once before the
first round (a few ms, so that the first results already show their silences) and then every
:data:`ALERT_STATE_EVERY` seconds off the loop, since silences change rarely. The marks go on
the snapshot (:meth:`AlertMarks.apply`), never into the results.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from opsdash.alertstate.view import AlertView
from opsdash.marks import CheckMark
from opsdash.plan import CheckSpec
from opsdash.state import Snapshot

ALERT_STATE_EVERY = 15.0
"""Seconds between two reads of the alerting state file."""


class AlertMarks:
    """The latest read of the alerting state at ``path`` (the default state when ``None``)."""

    def __init__(self, path: Path | None, specs: Sequence[CheckSpec]) -> None:
        self._path = path
        self._specs = tuple(specs)
        self.view = AlertView()
        self.marks: dict[str, CheckMark] = {}
        """Each marked check's marks, the same objects until the state changes (rows reuse
        what they were built from)."""
        self.version = 0
        """Counts the reads that changed something: the app re-marks its snapshot then."""

    def _take(self, view: AlertView) -> None:
        if view == self.view:
            return
        self.view = view
        self.marks = view.check_marks(self._specs)
        self.version += 1

    def read(self) -> None:
        """Read the state now, on the loop."""
        self._take(AlertView.read(self._path))

    async def watch(self, every: float = ALERT_STATE_EVERY) -> None:
        """Re-read the state every ``every`` seconds, in a thread, until cancelled."""
        while True:
            await asyncio.sleep(every)
            self._take(await asyncio.to_thread(AlertView.read, self._path))

    def apply(self, snapshot: Snapshot) -> Snapshot:
        """``snapshot`` with the silences and flapping of the last read marked on it."""
        return self.view.apply(snapshot, self._specs, self.marks)
