"""What the dashboard's screen shows, without a terminal: the marked snapshot, the rows the
filter lets through, the header's modes, when the banner needs rebuilding and the panel titles.

The app keeps only the widget calls; this is what they are given, so that it can be tested
without textual.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from opsdash.plan import CheckSpec
from opsdash.state import PlatformState, Snapshot
from opsdash.tui.alert_marks import AlertMarks
from opsdash.tui.header import Modes
from opsdash.tui.rows import Row, View
from opsdash.tui.sources import SourceDriver


def visible(rows: Iterable[Row], query: str, *, failing_only: bool) -> list[Row]:
    """The rows that match every word of ``query`` (and fail, with ``failing_only``)."""
    words = query.lower().split()
    return [
        row
        for row in rows
        if (not failing_only or row.status.failing) and all(word in row.search for word in words)
    ]


def modes(
    *,
    paused: bool,
    engine_error: str | None,
    query: str,
    failing_only: bool,
    sources: SourceDriver | None = None,
    source_count: int = 0,
) -> Modes:
    """The header's modes; with ``sources`` (``ui --from``), their connections too."""
    shown = Modes(paused, engine_error, query, failing_only)
    if sources is None:
        return shown
    return replace(
        shown,
        sources=tuple(sources.states.values()),
        source_count=source_count,
        cut_off=sources.cut_off(),
    )


def counted_title(base: str, shown: int, total: int) -> str:
    """A panel's title: how many of its rows the filter lets through, when not all."""
    return f"{base} ({shown}/{total})" if shown != total else base


def incidents_title(count: int) -> str:
    """The incidents panel's title: how many there are, or that there are none."""
    return f"Incidents ({count})" if count else "Incidents: none"


class ScreenState:
    """The marked snapshot the panels are drawn from, and what the banner was built from."""

    def __init__(
        self,
        state: PlatformState,
        alerts: AlertMarks,
        by_component: dict[str, list[CheckSpec]],
    ) -> None:
        self._state = state
        self._alerts = alerts
        self._by_component = by_component
        self._snapshot: Snapshot | None = None
        """The state's snapshot, until the next results (the clock does not change it)."""
        self._snapshot_marks = -1
        """The :attr:`AlertMarks.version` the snapshot was marked with."""
        self._banner_stamp: tuple[Snapshot, int] | None = None
        """What the banner was last built from (it changes only with the snapshot)."""

    def results_changed(self) -> None:
        """New results were applied: the next view takes a new snapshot."""
        self._snapshot = None

    def view(self, now: datetime) -> View:
        """The state at ``now``, its snapshot marked with the alerting state's current marks."""
        if self._snapshot is None or self._snapshot_marks != self._alerts.version:
            # marks are the snapshot's, never the results': a new read re-marks the same state
            self._snapshot = self._alerts.apply(self._state.snapshot())
            self._snapshot_marks = self._alerts.version
        return View(self._state, self._snapshot, now, by_component=self._by_component)

    def pending(self) -> int:
        """How many checks have not answered yet."""
        return len(self._state.specs) - len(self._state.results())

    def banner_due(self, view: View) -> int | None:
        """The pending count when the banner must be rebuilt for ``view``, else None."""
        pending = self.pending()
        shown = self._banner_stamp
        # nothing in it ages: only a new snapshot (new results, marks) changes it
        if shown is not None and shown[0] is view.snapshot and shown[1] == pending:
            return None
        self._banner_stamp = (view.snapshot, pending)
        return pending
