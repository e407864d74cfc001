"""The live dashboard: the engine's scheduler on the app's own event loop, panels fed by one state.

Data flow: the :class:`~opsdash.engine.Scheduler` runs in an async worker on the app's loop (one
event loop: the shared clients and pools live on it and are closed when the app exits). Its sink
only queues each result and posts :class:`ResultsArrived` once per burst; the handler applies the
queued results to the :class:`~opsdash.state.PlatformState` and refreshes the panels at most every
:data:`FLUSH_GAP` seconds, so a round of 1,000 results costs a few refreshes, and each refresh
rebuilds only the rows whose checks changed and writes only the cells that changed. That keeps a
key press within a few loop turns even while 1,000 probes are in flight
(``bench/tui_keypress.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.events import Resize
from textual.message import Message
from textual.widgets import Footer, Input, Static
from textual.worker import Worker, WorkerState

from opsdash.alertstate.view import AlertView
from opsdash.engine import Scheduler
from opsdash.plan import CheckSpec
from opsdash.registry.model import Registry
from opsdash.resources import Resources, run_async
from opsdash.results import CheckResult
from opsdash.state import PlatformState, Snapshot
from opsdash.status import Status
from opsdash.tui.rows import (
    STATUS_STYLE,
    Row,
    RowMemo,
    View,
    age_text,
    datastore_rows,
    event_rows,
    incident_rows,
    queue_rows,
    service_rows,
    specs_by_component,
)
from opsdash.tui.screens import DetailScreen, HelpScreen
from opsdash.tui.widgets import Column, KeyedTable

FLUSH_GAP = 0.2
"""Seconds between two panel refreshes while results pour in."""
TICK = 1.0
"""Ages, staleness and the header move on this period even when no result arrives."""
FIRST_RUNS_PER_S = 1000.0
"""Checks start (first runs, and `r`) at this rate, not all at once: the probes share the
app's event loop, and a key press must not wait behind 1,000 starting probes."""
ALERT_STATE_EVERY = 15.0
"""Seconds between two reads of the alerting state file (silences change rarely)."""
ENGINE_CLOSE_S = 5.0
"""At exit, how long to wait for the engine to close its clients and pools."""
WIDE = (120, 32)
"""From this size (columns, rows) the panels sit in two columns."""

Clock = Callable[[], datetime]

SERVICE_COLUMNS = (
    Column("Service", 20),
    Column("Health", 9),
    Column("Ready", 9),
    Column("Latency", 7),
    Column("Trend", 8),
    Column("Since", 6),
    Column("Failing / why", 40),
)
DATASTORE_COLUMNS = (
    Column("Check", 18),
    Column("Status", 9),
    Column("Latency", 7),
    Column("Conn", 5),
    Column("Mem", 5),
    Column("Role", 8),
    Column("Lag", 6),
    Column("Summary", 50),
)
QUEUE_COLUMNS = (
    Column("Worker", 17),
    Column("Status", 9),
    Column("DLQ", 18),
    Column("Retry", 7),
    Column("Fail", 7),
    Column("Ratio", 6),
    Column("Max", 3),
    Column("Summary", 50),
)
INCIDENT_COLUMNS = (
    Column("Status", 9),
    Column("Cause", 20),
    Column("Affects", 30),
    Column("Summary", 80),
)
EVENT_COLUMNS = (
    Column("Time", 8),
    Column("Check", 26),
    Column("Change", 14),
    Column("Summary", 60),
)


@dataclass
class ResultsArrived(Message):
    """New results are in the state: the panels are out of date."""


GC_YOUNG = 20_000
"""Allocations between two young-generation collections (Python's default: 700)."""


def _spare_collector() -> None:
    """Keep every object alive now out of the cyclic collector's full passes (``gc.freeze``).

    A full collection walks every tracked object and stops the process while it does: with
    textual, httpx and 1,000 checks' tasks that is ~120,000 objects and 55-90 ms here, enough
    to make a key press miss its 100 ms. What is alive at mount (modules, widgets) and after
    the first round (tasks, clients) lives as long as the app, so walking it again finds
    nothing. Reference counting still frees frozen objects; :meth:`DashboardApp.on_unmount`
    unfreezes them.
    """
    gc.freeze()


def _tune_collector() -> tuple[int, int, int]:
    """Collect the young generation every :data:`GC_YOUNG` allocations; the old thresholds.

    A round's rows, strips and results live a few hundred milliseconds: at the default 700 they
    were scanned and promoted many times a refresh (about 5 ms a round, and a promoted object
    brings the next full pass nearer); at 20,000 most die before their first scan.
    """
    before = gc.get_threshold()
    gc.set_threshold(GC_YOUNG, before[1], before[2])
    return before


def _set_title(table: KeyedTable, title: str) -> None:
    # setting a border title repaints the whole widget, even to the same text
    if table.border_title != title:
        table.border_title = title


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DashboardApp(App[None]):
    """The live dashboard over one registry's checks."""

    CSS_PATH = Path(__file__).with_name("app.tcss")
    """Absolute, so that subclasses defined elsewhere (tests) find it too."""
    TITLE = "opsdash"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("r", "refresh_now", "Refresh"),
        Binding("p", "toggle_pause", "Pause"),
        Binding("slash", "filter", "Filter"),
        Binding("f", "failing_only", "Failing"),
        Binding("enter", "detail", "Detail", show=True),
        Binding("escape", "go_back", "Back", show=False),
        Binding("z", "zoom", "Zoom"),
        Binding("question_mark", "help", "Help"),
    ]

    def __init__(
        self,
        registry: Registry,
        specs: Sequence[CheckSpec],
        *,
        live: bool = True,
        clock: Clock = _utc_now,
        resources: Callable[[], Resources] | None = None,
        concurrency: int | None = None,
        alert_state: Path | None = None,
    ) -> None:
        """``live=False`` runs no checks (snapshots and benchmarks feed :meth:`ingest`).
        ``alert_state``: ``opsdash alert``'s state file, read for silences and flapping."""
        super().__init__()
        self._alert_state = alert_state
        self._alerts = AlertView()
        self._tags = {spec.id: spec.tags for spec in specs}
        self.state = PlatformState(registry, specs)
        self.scheduler: Scheduler | None = None
        self.query_text = ""
        self.failing_only = False
        self.paused = False
        self._live = live
        self._clock = clock
        self._concurrency = concurrency or registry.defaults.concurrency
        self._resources = resources or (lambda: Resources(concurrency=self._concurrency))
        self._inbox: deque[CheckResult] = deque()
        """Results from the scheduler, not yet applied to the state."""
        self._posted = False
        self._engine_closed: asyncio.Event | None = None
        """Once the engine runs: set when its scheduler has stopped and its clients are closed."""
        self._last_flush = 0.0
        self._settled = False
        self._gc_thresholds = gc.get_threshold()
        self._snapshot: Snapshot | None = None
        """The state's snapshot, until the next results (the clock does not change it)."""
        self._by_component = specs_by_component(specs)
        # What the panels can show at most: the components --only/--tag selected.
        self._service_total = sum(1 for n in registry.services if n in self._by_component)
        self._worker_total = sum(1 for n in registry.workers if n in self._by_component)
        self._service_memo = RowMemo()
        self._event_memo = RowMemo()
        self._engine_error: str | None = None
        self._shown_header: Text | None = None
        self._header = Static(id="status-header")
        self._filter = Input(
            placeholder="filter by name or tag; enter keeps it, esc clears", id="filter"
        )
        self._panels = Container(id="panels")
        self.services = KeyedTable(SERVICE_COLUMNS, id="services", title="Services")
        self.datastores = KeyedTable(DATASTORE_COLUMNS, id="datastores", title="Datastores")
        self.queues = KeyedTable(QUEUE_COLUMNS, id="queues", title="Queues and workers")
        self.incidents = KeyedTable(INCIDENT_COLUMNS, id="incidents", title="Incidents")
        self.events = KeyedTable(EVENT_COLUMNS, id="events", title="Events")
        self.title = f"opsdash: {registry.platform}"

    # --- layout ---------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        """Header line, the five panels, the filter input (hidden) and the footer."""
        yield self._header
        with self._panels:
            yield from self._narrow_order()
        yield self._filter
        yield Footer()

    def _narrow_order(self) -> list[KeyedTable]:
        # one column: what is broken first
        return [self.incidents, self.services, self.datastores, self.queues, self.events]

    def _wide_order(self) -> list[KeyedTable]:
        # a two-column grid, filled row by row: events spans the right column's lower rows
        return [self.services, self.incidents, self.datastores, self.events, self.queues]

    def on_mount(self) -> None:
        """Fill the panels, start the engine and the clock tick."""
        self._gc_thresholds = _tune_collector()
        _spare_collector()
        self._filter.display = False
        self.datastores.display = bool(self.state.registry.datastores)
        self.services.focus()
        self.refresh_panels()
        self.set_interval(TICK, self._tick)
        if self._live:
            # Read once before the first round (a few ms of SQLite), so that its results show
            # their silences; later reads happen off the loop.
            self._alerts = AlertView.read(self._alert_state)
            self.run_engine()
            self.watch_alerting()

    @work(exit_on_error=False, group="alerting", name="alerting-state")
    async def watch_alerting(self) -> None:
        """Re-read ``opsdash alert``'s state (silences, flapping) now and then, off the loop:
        results arriving from then on carry its marks."""
        while True:
            await asyncio.sleep(ALERT_STATE_EVERY)
            self._alerts = await asyncio.to_thread(AlertView.read, self._alert_state)

    async def on_unmount(self) -> None:
        """Wait for the engine to close its clients; give the collector back its thresholds and
        the objects kept out of its reach."""
        if self._engine_closed is not None:
            # Textual cancels workers at exit without awaiting them: wait for the cleanup here,
            # while the loop still runs, so that no connection is left to the interpreter's exit
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ENGINE_CLOSE_S):
                    await self._engine_closed.wait()
        gc.set_threshold(*self._gc_thresholds)
        gc.unfreeze()

    def on_resize(self, event: Resize) -> None:
        """Two columns on a large terminal, one scrolling column on a small one."""
        wide = event.size.width >= WIDE[0] and event.size.height >= WIDE[1]
        if wide == self._panels.has_class("wide"):
            return
        self._panels.set_class(wide, "wide")
        order = self._wide_order() if wide else self._narrow_order()
        for previous, widget in itertools.pairwise(order):
            self._panels.move_child(widget, after=previous)

    # --- the engine -----------------------------------------------------------------

    @work(exit_on_error=False, group="engine", name="scheduler")
    async def run_engine(self) -> None:
        """Run every check on its interval until the app exits (which cancels this worker)."""
        self._engine_closed = closed = asyncio.Event()
        try:
            async with self._resources() as resources:
                scheduler = Scheduler(
                    self.state.specs,
                    resources,
                    self._on_result,
                    concurrency=self._concurrency,
                    starts_per_s=FIRST_RUNS_PER_S,
                )
                if self.paused:  # ``p`` before the engine was up
                    scheduler.pause()
                scheduler.start()
                self.scheduler = scheduler
                try:
                    await asyncio.Event().wait()  # until cancelled
                finally:
                    await scheduler.stop()
        finally:
            closed.set()

    def _on_scheduler(self, call: Callable[[Scheduler], None]) -> None:
        """``call(scheduler)`` once the engine is up (until then the flags are read at start)."""
        if self.scheduler is not None:
            call(self.scheduler)

    def _on_result(self, result: CheckResult) -> None:
        """The scheduler's sink: queue the result; one message per burst."""
        self._inbox.append(result)
        if not self._posted:
            self._posted = True
            self.post_message(ResultsArrived())

    def on_results_arrived(self, message: ResultsArrived) -> None:
        """Refresh now, or after the gap if the last refresh was just now (coalescing)."""
        delay = self._last_flush + FLUSH_GAP - time.monotonic()
        if delay <= 0:
            self._flush_results()
        else:
            self.set_timer(delay, self._flush_results)

    def _tick(self) -> None:
        self.refresh_panels()

    def _flush_results(self) -> None:
        # lower the flag before draining: a result queued meanwhile either is drained now or
        # posts a new message (an empty flush costs nothing)
        self._posted = False
        inbox = self._inbox
        self.ingest([inbox.popleft() for _ in range(len(inbox))])

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """An engine failure is shown, not fatal: the last results stay on screen."""
        if event.worker.group == "engine" and event.state is WorkerState.ERROR:
            self._engine_error = str(event.worker.error) or type(event.worker.error).__name__
            self.notify(f"checks stopped: {self._engine_error}", severity="error", timeout=30)
            self.refresh_panels()

    def ingest(self, results: Iterable[CheckResult]) -> int:
        """Apply ``results`` and refresh the panels at once; how many cells were written."""
        results = self._alerts.mark(list(results), self._tags)
        if results:
            self.state.apply_all(results)
            self._snapshot = None
        if not self._settled and len(self.state.results()) == len(self.state.specs):
            # the first round is in: the scheduler's tasks and the clients now live as long as
            # the app, like the widgets frozen at mount
            self._settled = True
            _spare_collector()
        return self.refresh_panels()

    # --- drawing --------------------------------------------------------------------

    def _visible(self, rows: list[Row]) -> list[Row]:
        words = self.query_text.lower().split()
        return [
            row
            for row in rows
            if (not self.failing_only or row.status.failing)
            and all(word in row.search for word in words)
        ]

    def refresh_panels(self) -> int:
        """Bring every panel and the header up to date with the state; the cells written."""
        self._last_flush = time.monotonic()
        now = self._clock()
        if self._snapshot is None:
            self._snapshot = self.state.snapshot()
        view = View(self.state, self._snapshot, now, by_component=self._by_component)
        with self.batch_update():
            written = self.services.sync(self._visible(service_rows(view, self._service_memo)))
            written += self.datastores.sync(self._visible(datastore_rows(view)))
            written += self.queues.sync(self._visible(queue_rows(view)))
            written += self.incidents.sync(self._visible(incident_rows(view)))
            written += self.events.sync(self._visible(event_rows(view, self._event_memo)))
            header = self._header_text(view)
            if header != self._shown_header:
                self._header.update(header)
                self._shown_header = header
            self._update_titles()
        if isinstance(self.screen, DetailScreen):
            self.screen.refresh_from_state()
        return written

    def _update_titles(self) -> None:
        shown = {self.services: self._service_total, self.queues: self._worker_total}
        for table, total in shown.items():
            base = table.panel_title
            _set_title(
                table, f"{base} ({table.row_count}/{total})" if table.row_count != total else base
            )
        count = self.incidents.row_count
        _set_title(self.incidents, f"Incidents ({count})" if count else "Incidents: none")

    def _header_text(self, view: View) -> Text:
        snapshot = view.snapshot
        results = snapshot.results
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(snapshot.platform, style="bold")
        text.append("  ")
        if results:
            status = snapshot.status
            text.append(
                f" {status.glyph} {status.value.upper()} ", style=f"reverse {STATUS_STYLE[status]}"
            )
        else:
            text.append(" … waiting for the first results ", style="reverse")
        counts = snapshot.counts
        for status in Status:
            text.append("  ")
            text.append(
                f"{status.glyph} {counts[status.value]} {status.value}",
                style=STATUS_STYLE[status] if counts[status.value] else "dim",
            )
        text.append("\n")
        text.append(f"{len(self.state.specs)} checks · ", style="dim")
        last = self.state.last_update
        if last is None:
            text.append("no result yet", style="dim")
        else:
            age = age_text((view.now - last).total_seconds())
            text.append(f"last result {last.astimezone().strftime('%H:%M:%S')} ({age} ago)")
        stale = self._stale(view)
        if stale:
            text.append(
                f"   ⚠ {stale} stale (older than twice their interval)", style="bold yellow"
            )
        if self.paused:
            text.append("   ⏸ PAUSED (p resumes)", style="bold reverse yellow")
        if self._engine_error:
            text.append(f"   ✖ checks stopped: {self._engine_error}", style="bold red")
        if self.query_text:
            text.append(f"   filter: {self.query_text}", style="cyan")
        if self.failing_only:
            text.append("   failing only", style="cyan")
        return text

    def _stale(self, view: View) -> int:
        """Checks whose latest result is older than twice their interval."""
        count = 0
        for spec in self.state.specs:
            result = self.state.latest(spec.id)
            if result is not None and view.now - result.started_at > timedelta(
                seconds=2 * spec.interval
            ):
                count += 1
        return count

    # --- actions --------------------------------------------------------------------

    def action_refresh_now(self) -> None:
        """Run every check now."""
        self._on_scheduler(Scheduler.run_now)
        self.notify("running every check now", timeout=2)

    def action_toggle_pause(self) -> None:
        """Hold the checks after their current run, or let them go on."""
        self.paused = not self.paused
        self._on_scheduler(Scheduler.pause if self.paused else Scheduler.resume)
        self.refresh_panels()

    def action_filter(self) -> None:
        """Show the filter input."""
        self._filter.display = True
        self._filter.focus()

    def action_failing_only(self) -> None:
        """Show only what is not ok (toggle)."""
        self.failing_only = not self.failing_only
        self.refresh_panels()

    def action_detail(self) -> None:
        """The detail of the selected row of the focused panel."""
        table = self.focused
        if isinstance(table, KeyedTable):
            self._open_detail(table, table.cursor_key())

    def action_go_back(self) -> None:
        """Close the filter, else clear it, else leave the zoom, else leave a screen."""
        if self._filter.display or self.query_text:
            self._close_filter(clear=True)
        elif self.screen.maximized is not None:
            self.screen.minimize()
        elif len(self.screen_stack) > 1:
            self.pop_screen()

    def action_zoom(self) -> None:
        """Give the focused panel the whole screen, or give it back."""
        if self.screen.maximized is not None:
            self.screen.minimize()
        elif isinstance(self.focused, KeyedTable):
            self.screen.maximize(self.focused)

    def action_help(self) -> None:
        """Show the keys."""
        self.push_screen(HelpScreen())

    # --- events ---------------------------------------------------------------------

    @on(KeyedTable.RowSelected)
    def _row_selected(self, event: KeyedTable.RowSelected) -> None:
        """Enter on a row (or a click on the selected row) opens its detail."""
        self._open_detail(event.table, event.key)

    def _open_detail(self, table: KeyedTable, key: str | None) -> None:
        if key is None:
            return
        checks = table.checks_of(key)
        if checks:
            # the failing check first: it is what the user came for
            checks = tuple(sorted(checks, key=self._severity_of, reverse=True))
            title = f"{table.panel_title}: {key}"
            self.push_screen(DetailScreen(self.state, checks, title=title))

    def _severity_of(self, check_id: str) -> int:
        result = self.state.latest(check_id)
        return -1 if result is None else result.status.severity

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.query_text = event.value.strip()
        self.refresh_panels()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self._close_filter(clear=False)

    def _close_filter(self, *, clear: bool) -> None:
        if clear:
            self._filter.value = ""
            self.query_text = ""
        self._filter.display = False
        self.services.focus()
        self.refresh_panels()


def run_dashboard(
    registry: Registry, specs: Sequence[CheckSpec], *, alert_state: Path | None = None
) -> None:
    """Open the dashboard on ``specs`` until the user quits (on opsdash's event loop: uvloop
    when installed, as ``check`` and the demo)."""
    run_async(DashboardApp(registry, specs, alert_state=alert_state).run_async())
