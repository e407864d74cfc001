"""The live dashboard: it composes the panels and routes messages; the work is elsewhere.

Data flow: :class:`~opsdash.tui.engine.EngineDriver` runs the engine's scheduler in a worker on
the app's loop; each result goes into the :class:`~opsdash.tui.inbox.ResultInbox`, which posts
:class:`ResultsArrived` with a batch of results at most every ``FLUSH_GAP`` seconds; the handler
applies the batch to the :class:`~opsdash.state.PlatformState` and refreshes the panels, each
rebuilding only the rows whose checks changed and writing only the cells that changed.
:class:`~opsdash.collector.CollectorPolicy` keeps the garbage collector's pauses out of
key presses, and :class:`~opsdash.tui.alert_marks.AlertMarks` brings in silences and flapping.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
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

from opsdash.collector import CollectorPolicy
from opsdash.engine import Scheduler
from opsdash.plan import CheckSpec
from opsdash.registry.model import Registry
from opsdash.resources import Resources, pool_for, run_async
from opsdash.results import CheckResult
from opsdash.state import PlatformState
from opsdash.tui.alert_marks import AlertMarks
from opsdash.tui.banner import IncidentBanner, banner_text
from opsdash.tui.columns import (
    DATASTORE_COLUMNS,
    EVENT_COLUMNS,
    INCIDENT_COLUMNS,
    QUEUE_COLUMNS,
    SERVICE_COLUMNS,
)
from opsdash.tui.engine import EngineDriver
from opsdash.tui.header import header_text
from opsdash.tui.inbox import ResultInbox
from opsdash.tui.rows import (
    Row,
    RowMemo,
    datastore_rows,
    event_rows,
    incident_rows,
    queue_rows,
    service_rows,
    specs_by_component,
)
from opsdash.tui.screen_state import ScreenState, counted_title, incidents_title, modes, visible
from opsdash.tui.screens import DetailScreen, HelpScreen, key_rows
from opsdash.tui.sources import SourceDriver, viewer_specs
from opsdash.tui.widgets import KeyedTable

TICK = 1.0
"""Ages, staleness and the header move on this period even when no result arrives."""
WIDE = (120, 32)
"""From this size (columns, rows) the panels sit in two columns."""

Clock = Callable[[], datetime]


@dataclass
class ResultsArrived(Message):
    """A batch of new results from the engine, oldest first."""

    results: tuple[CheckResult, ...]


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
    # The help screen (``?``) lists these as they are bound: the tooltip is its description.
    BINDINGS = [
        Binding("q", "quit", "Quit", tooltip="quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, tooltip="quit, like q"),
        Binding("r", "refresh_now", "Refresh", tooltip="refresh now: run every check at once"),
        Binding("p", "toggle_pause", "Pause", tooltip="pause / resume the checks"),
        Binding(
            "slash",
            "filter",
            "Filter",
            tooltip="filter by name or tag (enter keeps it, esc clears it)",
        ),
        Binding("f", "failing_only", "Failing", tooltip="failing only (toggle)"),
        Binding("enter", "detail", "Detail", show=True, tooltip="detail of the selected row"),
        Binding(
            "escape",
            "go_back",
            "Back",
            show=False,
            tooltip="back: close the filter, leave the zoom or the screen",
        ),
        Binding("z", "zoom", "Zoom", tooltip="zoom the focused panel (toggle)"),
        Binding("question_mark", "help", "Help", tooltip="this help"),
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
        sources: Sequence[str] = (),
        token: str | None = None,
    ) -> None:
        """``live=False`` runs no checks (snapshots and benchmarks feed :meth:`ingest`).
        ``alert_state``: ``opsdash alert``'s state file, read for silences and flapping.
        ``sources``: ``opsdash serve`` URLs whose event streams replace the probes."""
        super().__init__()
        if sources:
            specs = viewer_specs(specs)
        self._source_urls = tuple(sources)
        self._token = token
        self.state = PlatformState(registry, specs)
        self.query_text = ""
        self.failing_only = False
        self.paused = False
        self._live = live
        self._clock = clock
        self._concurrency = concurrency or registry.defaults.concurrency
        keepalive = pool_for(len(specs), concurrency=self._concurrency)
        self._resources = resources or (
            lambda: Resources(
                concurrency=self._concurrency,
                keepalive=keepalive,
                state_path=alert_state,  # heartbeat checks read their beats there
            )
        )
        self.alerts = AlertMarks(alert_state, specs)
        self.inbox = ResultInbox(lambda batch: self.post_message(ResultsArrived(batch)))
        self.engine: EngineDriver | None = None
        """Once mounted (when live): the engine's driver; it starts the scheduler."""
        self.sources: SourceDriver | None = None
        """Once mounted with ``sources``: their driver, in place of the engine."""
        self._collector = CollectorPolicy()
        self._by_component = specs_by_component(specs)
        self._screen_state = ScreenState(self.state, self.alerts, self._by_component)
        # What the panels can show at most: the components --only/--tag selected.
        self._service_total = sum(1 for n in registry.services if n in self._by_component)
        self._worker_total = sum(1 for n in registry.workers if n in self._by_component)
        self._service_memo = RowMemo()
        self._event_memo = RowMemo()
        self._engine_error: str | None = None
        self._shown_header: Text | None = None
        self._header = Static(id="status-header")
        self._banner = IncidentBanner()
        self._zoomed: KeyedTable | None = None
        """The panel that has the screen to itself (``z``), under the header and banner."""
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
        """Header lines, the incident banner, the five panels, the filter input (hidden) and
        the footer."""
        yield self._header
        yield self._banner
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

    @property
    def scheduler(self) -> Scheduler | None:
        """The engine's scheduler, once it runs."""
        return None if self.engine is None else self.engine.scheduler

    def on_mount(self) -> None:
        """Fill the panels, start the engine and the clock tick."""
        self._collector.start()
        self._filter.display = False
        self.datastores.display = bool(self.state.registry.datastores)
        self.services.focus()
        self.refresh_panels()
        self.set_interval(TICK, self._tick)
        if self._live and self._source_urls:
            self.alerts.read()
            self.sources = SourceDriver(
                self._source_urls,
                self._token,
                self.state.specs,
                self.inbox.put,
                on_change=self.refresh_panels,
            )
            self.follow_sources(self.sources)
            self.watch_alerting()
        elif self._live:
            self.alerts.read()  # before the first round, so that its results show silences
            self.engine = EngineDriver(
                self.state.specs,
                self.inbox.put,
                resources=self._resources,
                concurrency=self._concurrency,
                paused=self.paused,
            )
            self.run_engine(self.engine)
            self.watch_alerting()

    @work(exit_on_error=False, group="engine", name="scheduler")
    async def run_engine(self, engine: EngineDriver) -> None:
        """Run every check on its interval until the app exits (which cancels this worker)."""
        await engine.run()

    @work(exit_on_error=False, group="engine", name="sources")
    async def follow_sources(self, sources: SourceDriver) -> None:
        """Follow the sources' event streams until the app exits (which cancels this worker)."""
        await sources.run()

    @work(exit_on_error=False, group="alerting", name="alerting-state")
    async def watch_alerting(self) -> None:
        """Re-read ``opsdash alert``'s state now and then: results arriving from then on carry
        its marks."""
        await self.alerts.watch()

    async def on_unmount(self) -> None:
        """Let the engine close its clients; give the collector back what it was."""
        self.inbox.close()
        if self.engine is not None:
            await self.engine.wait_closed()
        if self.sources is not None:
            await self.sources.wait_closed()
        self._collector.stop()

    def on_resize(self, event: Resize) -> None:
        """Two columns on a large terminal, one scrolling column on a small one."""
        wide = event.size.width >= WIDE[0] and event.size.height >= WIDE[1]
        if wide == self._panels.has_class("wide"):
            return
        self._panels.set_class(wide, "wide")
        order = self._wide_order() if wide else self._narrow_order()
        for previous, widget in itertools.pairwise(order):
            self._panels.move_child(widget, after=previous)

    # --- results ------------------------------------------------------------------

    def on_results_arrived(self, message: ResultsArrived) -> None:
        """A batch from the inbox: onto the screen."""
        self.ingest(message.results)

    def _tick(self) -> None:
        self.refresh_panels()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """An engine failure is shown, not fatal: the last results stay on screen."""
        if event.worker.group == "engine" and event.state is WorkerState.ERROR:
            self._engine_error = str(event.worker.error) or type(event.worker.error).__name__
            self.notify(f"checks stopped: {self._engine_error}", severity="error", timeout=30)
            self.refresh_panels()

    def ingest(self, results: Iterable[CheckResult]) -> int:
        """Apply ``results`` and refresh the panels at once; how many cells were written."""
        results = list(results)
        if results:
            self.state.apply_all(results)
            self._screen_state.results_changed()
        if not self._collector.is_settled and len(self.state.results()) == len(self.state.specs):
            self._collector.settled()  # the first round is in
        return self.refresh_panels()

    # --- drawing --------------------------------------------------------------------

    def _visible(self, rows: list[Row]) -> list[Row]:
        return visible(rows, self.query_text, failing_only=self.failing_only)

    def refresh_panels(self) -> int:
        """Bring every panel and the header up to date with the state; the cells written."""
        self.inbox.refreshed()
        view = self._screen_state.view(self._clock())
        with self.batch_update():
            written = self.services.sync(self._visible(service_rows(view, self._service_memo)))
            written += self.datastores.sync(self._visible(datastore_rows(view)))
            written += self.queues.sync(self._visible(queue_rows(view)))
            written += self.incidents.sync(self._visible(incident_rows(view)))
            written += self.events.sync(self._visible(event_rows(view, self._event_memo)))
            shown_modes = modes(
                paused=self.paused,
                engine_error=self._engine_error,
                query=self.query_text,
                failing_only=self.failing_only,
                sources=self.sources,
                source_count=len(self._source_urls),
            )
            header = header_text(self.state, view, shown_modes)
            if header != self._shown_header:
                self._header.update(header)
                self._shown_header = header
            pending = self._screen_state.banner_due(view)
            if pending is not None:
                self._banner.show(banner_text(view, pending), calm=not view.snapshot.incidents)
            self._update_titles()
        # The stack is empty while the app shuts down, when a last timer tick may still come.
        top = self.screen_stack[-1] if self.screen_stack else None
        if isinstance(top, DetailScreen):
            top.refresh_from_state()
        return written

    def _update_titles(self) -> None:
        shown = {self.services: self._service_total, self.queues: self._worker_total}
        for table, total in shown.items():
            _set_title(table, counted_title(table.panel_title, table.row_count, total))
        _set_title(self.incidents, incidents_title(self.incidents.row_count))

    # --- actions --------------------------------------------------------------------

    def action_refresh_now(self) -> None:
        """Run every check now."""
        if self.sources is not None:
            self.notify("read-only: the results come from opsdash serve (--from)", timeout=3)
            return
        if self.engine is not None:
            self.engine.run_now()
        self.notify("running every check now", timeout=2)

    def action_toggle_pause(self) -> None:
        """Hold the checks after their current run, or let them go on."""
        if self.sources is not None:
            self.notify("read-only: the checks run in opsdash serve (--from)", timeout=3)
            return
        self.paused = not self.paused
        if self.engine is not None:
            self.engine.set_paused(self.paused)
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
        elif self._zoomed is not None:
            self._zoom(None)
        elif len(self.screen_stack) > 1:
            self.pop_screen()

    def action_zoom(self) -> None:
        """Give the focused panel the panels' space, or give it back; the header and the
        incident banner stay (textual's maximize would cover them)."""
        if self._zoomed is not None:
            self._zoom(None)
        elif isinstance(self.focused, KeyedTable):
            self._zoom(self.focused)

    def _zoom(self, table: KeyedTable | None) -> None:
        self._zoomed = table
        self._panels.set_class(table is not None, "zoomed")
        for panel in self._narrow_order():
            panel.set_class(panel is table, "zoom-target")
        if table is not None:
            table.focus()

    @property
    def zoomed(self) -> KeyedTable | None:
        """The zoomed panel, if any."""
        return self._zoomed

    def action_help(self) -> None:
        """Show the keys, as the dashboard binds them now."""
        self.push_screen(HelpScreen(key_rows(self)))

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
            self.push_screen(
                DetailScreen(
                    self.state, checks, title=self._detail_title(table, key), clock=self._clock
                )
            )

    def _detail_title(self, table: KeyedTable, key: str) -> str:
        """What the detail is of, in the user's words (row keys are internal)."""
        if table is self.incidents:
            return f"Incident: {table.cell_text(key, 1)}"
        if table is self.events:
            return f"Event: {table.cell_text(key, 1)} at {table.cell_text(key, 0)}"
        kinds = {self.services: "Service", self.datastores: "Datastore", self.queues: "Worker"}
        return f"{kinds.get(table, table.panel_title)}: {key}"

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
    registry: Registry,
    specs: Sequence[CheckSpec],
    *,
    alert_state: Path | None = None,
    sources: Sequence[str] = (),
    token: str | None = None,
) -> None:
    """Open the dashboard on ``specs`` until the user quits (on opsdash's event loop: uvloop
    when installed, as ``check`` and the demo); with ``sources``, on their event streams."""
    app = DashboardApp(registry, specs, alert_state=alert_state, sources=sources, token=token)
    run_async(app.run_async())
