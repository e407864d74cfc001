"""What each panel shows, as plain data: pure functions of the state, a clock and the registry.

Every panel is a list of :class:`Row` (a stable key, cells, a status and the text the filter
searches). Cells are ``(text, style)`` pairs, cheap to build and to compare, so the tables
update only the cells whose pair changed. Status always travels as glyph + word; the style only
adds colour. Nothing here imports textual.

A :class:`RowMemo` keeps each row with the results it was built from: a row whose checks have no
new result is reused (only its clock-driven "since" cell is recomputed), so a refresh after a
burst of 50 results rebuilds 50 rows, not 1,000.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from opsdash import formats
from opsdash.figures import (
    DlqFigures,
    HttpFigures,
    MongoFigures,
    PostgresFigures,
    RedisFigures,
    WorkerFigures,
)
from opsdash.incidents import Incident
from opsdash.marks import CheckMark
from opsdash.plan import CheckSpec
from opsdash.results import CheckResult
from opsdash.state import Event, PlatformState, Snapshot
from opsdash.status import Status, worst

Cell = tuple[str, str]
"""``(text, rich style)``; the style is only colour on top of the text."""

STATUS_STYLE = {
    Status.OK: "green",
    Status.WARN: "bold yellow",
    Status.CRIT: "bold red",
    Status.UNKNOWN: "bold magenta",
}
SPARK = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 8
EVENTS_SHOWN = 200
DASH: Cell = ("-", "dim")


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a panel."""

    key: str
    cells: tuple[Cell, ...]
    status: Status
    search: str
    """Lower-case names and tags the ``/`` filter matches against."""
    checks: tuple[str, ...] = ()
    """The check ids the detail screen opens for this row."""


def status_cell(status: Status | None) -> Cell:
    """Glyph and word, coloured."""
    if status is None:
        return DASH
    return (f"{status.glyph} {status.value}", STATUS_STYLE[status])


def latency_text(value: float | None) -> str:
    """``12 ms``, ``3.4 ms``, ``1.2 s``."""
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value / 1000:.1f} s"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def sparkline(values: Sequence[float | None], width: int = SPARK_WIDTH) -> str:
    """The last ``width`` values as block characters scaled to their maximum (gaps blank)."""
    recent = list(values)[-width:]
    known = [v for v in recent if v is not None]
    top = max(known, default=0.0)
    if top <= 0:
        return "".join(SPARK[0] if v is not None else " " for v in recent)
    return "".join(
        " " if v is None else SPARK[min(int(v / top * (len(SPARK) - 1) + 0.5), len(SPARK) - 1)]
        for v in recent
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}/m" if value < 10 else f"{value:.0f}/m"


def failing_dependencies(result: CheckResult | None) -> list[str]:
    """The dependencies a readiness body reports not ok."""
    if result is None or not isinstance(result.figures, HttpFigures):
        return []
    return result.figures.failing_dependencies()


def with_alert_marks(cell: Cell, marks_of: Iterable[CheckMark | None]) -> Cell:
    """``cell`` followed by ``[silenced]`` / ``[flapping]`` when ``opsdash alert``'s state says
    so of any of the checks (the snapshot's marks: see :class:`opsdash.alerting.AlertView`)."""
    marks: dict[str, None] = {}
    for mark in marks_of:
        if mark is None:
            continue
        if mark.silence is not None:
            marks["silenced"] = None
        if mark.flapping:
            marks["flapping"] = None
    if not marks:
        return cell
    suffix = " ".join(f"[{mark}]" for mark in marks)
    text, style = cell
    return (suffix, "italic") if cell == DASH else (f"{text} {suffix}", style)


def specs_by_component(specs: Iterable[CheckSpec]) -> dict[str, list[CheckSpec]]:
    """Each component's checks, in plan order."""
    out: dict[str, list[CheckSpec]] = {}
    for spec in specs:
        out.setdefault(spec.component, []).append(spec)
    return out


class RowMemo:
    """Rows built at the last refresh, each with the inputs (a *stamp*) it was built from.

    Results and events are immutable, so the tuple of a row's latest results is an exact stamp:
    the same objects, the same row.
    """

    def __init__(self) -> None:
        self._rows: dict[str, tuple[tuple[object, ...], Row]] = {}

    def get(self, key: str, stamp: tuple[object, ...]) -> Row | None:
        """The row built from exactly ``stamp``, if any."""
        kept = self._rows.get(key)
        if kept is None or len(kept[0]) != len(stamp):
            return None
        return kept[1] if all(a is b for a, b in zip(kept[0], stamp, strict=True)) else None

    def last(self, key: str) -> Row | None:
        """The row last built for ``key``, whatever it was built from."""
        kept = self._rows.get(key)
        return None if kept is None else kept[1]

    def put(self, key: str, stamp: tuple[object, ...], row: Row) -> Row:
        """Remember ``row``; returns it."""
        self._rows[key] = (stamp, row)
        return row

    def keep_only(self, keys: Iterable[str]) -> None:
        """Forget rows not in ``keys`` (events that fell off the panel)."""
        wanted = set(keys)
        for key in [key for key in self._rows if key not in wanted]:
            del self._rows[key]


class View:
    """Everything the row builders read: one state, at one instant."""

    def __init__(
        self,
        state: PlatformState,
        snapshot: Snapshot,
        now: datetime,
        *,
        by_component: dict[str, list[CheckSpec]] | None = None,
    ) -> None:
        self.state = state
        self.snapshot = snapshot
        self.now = now
        self.registry = state.registry
        self.by_component = (
            by_component if by_component is not None else specs_by_component(state.specs)
        )

    def latest(self, check_id: str) -> CheckResult | None:
        """The newest result of a check."""
        return self.state.latest(check_id)

    def marks(self, check_ids: Iterable[str]) -> list[CheckMark | None]:
        """The alerting marks of these checks (``None`` where there is none)."""
        marks = self.snapshot.marks
        return [marks.get(check_id) for check_id in check_ids]

    def since_cell(self, check_ids: Iterable[str]) -> Cell:
        """How long the component has been in its current state."""
        starts = [s for i in check_ids if (s := self.state.since(i)) is not None]
        if not starts:
            return DASH
        return (formats.duration((self.now - max(starts)).total_seconds(), compact=True), "")

    def search_text(self, name: str, specs: Sequence[CheckSpec]) -> str:
        """Names, ids and tags the filter matches."""
        words = {name, *(s.id for s in specs), *(t for s in specs for t in s.tags)}
        return " ".join(sorted(words)).lower()


SINCE_COLUMN = 5
"""The services panel's clock-driven column."""


def service_rows(view: View, memo: RowMemo | None = None) -> list[Row]:
    """Services: health, ready, latency and its trend, time in state, failing dependencies."""
    rows = []
    for name in view.registry.services:
        specs = view.by_component.get(name)
        if not specs:
            continue
        health = view.latest(f"{name}.health")
        ready = view.latest(f"{name}.ready")
        stamp = (health, ready, *view.marks((f"{name}.health", f"{name}.ready")))
        row = memo.get(name, stamp) if memo is not None else None
        if row is None:
            previous = memo.last(name) if memo is not None else None
            row = _service_row(view, name, specs, health, ready, previous)
        elif health is not None or ready is not None:
            since = view.since_cell(row.checks)
            if row.cells[SINCE_COLUMN] != since:
                cells = (*row.cells[:SINCE_COLUMN], since, *row.cells[SINCE_COLUMN + 1 :])
                row = replace(row, cells=cells)
        rows.append(row if memo is None else memo.put(name, stamp, row))
    return rows


def _service_row(
    view: View,
    name: str,
    specs: Sequence[CheckSpec],
    health: CheckResult | None,
    ready: CheckResult | None,
    previous: Row | None = None,
) -> Row:
    """One service's row, built from its latest results (``previous`` lends what never
    changes: the check ids and the filter's text)."""
    ids = previous.checks if previous is not None else tuple(spec.id for spec in specs)
    main = ready or health
    latest = [r for r in (health, ready) if r is not None]
    status = worst((r.status for r in latest), default=Status.UNKNOWN) if latest else None
    history = view.state.history(main.id) if main is not None else ()
    failing = failing_dependencies(ready) or failing_dependencies(health)
    if failing:
        why: Cell = (", ".join(failing), "bold red")
    elif status is not None and status.failing:
        worst_result = max(latest, key=lambda r: r.status.severity)
        why = (formats.clip(worst_result.summary, 60), STATUS_STYLE[worst_result.status])
    else:
        why = DASH
    return Row(
        key=name,
        cells=(
            (name, "bold" if status is not None and status.failing else ""),
            status_cell(health.status if health else None),
            status_cell(ready.status if ready else None),
            (latency_text(main.latency_ms if main else None), ""),
            (sparkline([r.latency_ms for r in history[-SPARK_WIDTH:]]), "cyan"),
            view.since_cell(ids) if latest else DASH,
            with_alert_marks(why, view.marks(r.id for r in latest)),
        ),
        status=status or Status.UNKNOWN,
        search=previous.search if previous is not None else view.search_text(name, specs),
        checks=ids,
    )


def datastore_rows(view: View) -> list[Row]:
    """Datastores: status, latency, connections %, memory %, role and replication lag."""
    rows = []
    for name in view.registry.datastores:
        for spec in view.by_component.get(name, ()):
            result = view.latest(spec.id)
            figures = result.figures if result else None
            lag = connections = memory = None
            role: str | None = None
            if isinstance(figures, PostgresFigures):
                lag, connections, role = (
                    figures.replication_lag_s,
                    figures.connections_pct,
                    figures.role,
                )
            elif isinstance(figures, RedisFigures):
                memory, role = figures.memory_pct, figures.role
            elif isinstance(figures, MongoFigures):
                lag, role = figures.replication_lag_s, figures.role
            rows.append(
                Row(
                    key=spec.id,
                    cells=(
                        (spec.id, "bold" if result and result.status.failing else ""),
                        status_cell(result.status if result else None),
                        (latency_text(result.latency_ms if result else None), ""),
                        (_pct(connections), ""),
                        (_pct(memory), ""),
                        (role or "-", ""),
                        ("-" if lag is None else f"{lag:.1f}s", ""),
                        with_alert_marks(
                            (formats.clip(result.summary, 80), "") if result else DASH,
                            view.marks((spec.id,)),
                        ),
                    ),
                    status=result.status if result else Status.UNKNOWN,
                    search=view.search_text(name, [spec]),
                    checks=(spec.id,),
                )
            )
    return rows


def _dlq_cells(view: View, dlq: CheckResult | None, has_dlq: bool) -> tuple[Cell, Cell]:
    """The DLQ's depth with its direction, and its trend (a column that gives way first)."""
    if not has_dlq:
        return ("no DLQ", "dim"), ("", "")  # by design: the summary says so
    if dlq is None:
        return DASH, ("", "")
    figures = dlq.figures
    if not isinstance(figures, DlqFigures) or figures.depth is None:
        return (("?", STATUS_STYLE[Status.UNKNOWN]) if dlq.error else DASH), ("", "")
    depth, growth = figures.depth, figures.growth_per_min
    arrow = "" if growth is None else " ↑" if growth > 0 else " ↓" if growth < 0 else " →"
    trend = sparkline([_depth(r) for r in view.state.history(dlq.id)], 6)
    style = STATUS_STYLE[dlq.status] if dlq.status.failing else ""
    return (f"{depth:.0f}{arrow}", style), (trend, "cyan")


def _depth(result: CheckResult) -> float | None:
    figures = result.figures
    if isinstance(figures, DlqFigures) and figures.depth is not None:
        return float(figures.depth)
    return None


def _ratio(figures: WorkerFigures | None) -> str:
    pct = None if figures is None else figures.retry_ratio_pct
    return "-" if pct is None else f"{pct:.1f}%"


def queue_rows(view: View) -> list[Row]:
    """Workers: DLQ depth and trend, retries and failures per minute, retry ratio, attempts."""
    rows = []
    for name, worker in view.registry.workers.items():
        specs = view.by_component.get(name)
        if not specs:
            continue
        ids = tuple(spec.id for spec in specs)
        dlq = view.latest(f"{name}.dlq")
        retries = view.latest(f"{name}.retries")
        latest = [r for r in (dlq, retries) if r is not None]
        status = worst(r.status for r in latest) if latest else None
        figures = retries.figures if retries else None
        metrics = figures if isinstance(figures, WorkerFigures) else None
        attempts = (metrics.max_attempts if metrics else None) or worker.max_attempts
        failing = [r for r in latest if r.status.failing]
        summary: Cell = (
            (formats.clip("; ".join(r.summary for r in failing), 80), STATUS_STYLE[status])
            if failing and status is not None
            else (formats.clip(latest[0].summary, 80), "dim")
            if latest
            else DASH
        )
        rows.append(
            Row(
                key=name,
                cells=(
                    (name, "bold" if status is not None and status.failing else ""),
                    status_cell(status),
                    # the registry says whether there is a DLQ, not the --only selection
                    *_dlq_cells(view, dlq, worker.dlq is not None),
                    (_rate(metrics.retries_per_min if metrics else None), ""),
                    (_rate(metrics.failures_per_min if metrics else None), ""),
                    (_ratio(metrics), ""),
                    ("-" if attempts is None else f"{attempts:.0f}", ""),
                    with_alert_marks(summary, view.marks(ids)),
                ),
                status=status or Status.UNKNOWN,
                search=view.search_text(name, specs),
                checks=ids,
            )
        )
    return rows


_KIND_RANK = {"datastore-down": 0, "unreachable-from-dependants": 1, "datastore": 2}


def ordered_incidents(view: View) -> list[Incident]:
    """Incidents, worst first; root causes (datastores down) before components failing alone."""
    return sorted(
        view.snapshot.incidents,
        key=lambda i: (-i.status.severity, _KIND_RANK.get(i.kind, 3)),
    )


def affected_names(incident: Incident) -> list[str]:
    """What an incident affects besides its cause, in the incident's order."""
    return [name for name in incident.affected.names if name != incident.cause]


def incident_rows(view: View) -> list[Row]:
    """Incidents, root causes first (datastores down before components failing alone)."""
    rows = []
    for incident in ordered_incidents(view):
        names = affected_names(incident)
        affected = ", ".join(names)
        rows.append(
            Row(
                key=f"{incident.kind}:{incident.cause}",
                cells=(
                    status_cell(incident.status),
                    (incident.cause, "bold"),
                    (f"{len(names)}: {affected}" if names else "-", ""),
                    (formats.clip(incident.summary, 120), ""),
                ),
                status=incident.status,
                search=" ".join((incident.cause, *names)).lower(),
                checks=incident.checks,
            )
        )
    return rows


def event_rows(view: View, memo: RowMemo | None = None) -> list[Row]:
    """State changes, newest first, with their local time."""
    rows = []
    events: list[Event] = list(itertools.islice(view.state.events, EVENTS_SHOWN))
    for event in events:
        key = f"{event.at.isoformat()}|{event.check_id}"
        row = memo.get(key, (event,)) if memo is not None else None
        if row is None:
            row = _event_row(key, event)
            if memo is not None:
                memo.put(key, (event,), row)
        rows.append(row)
    if memo is not None:
        memo.keep_only(row.key for row in rows)
    return rows


def _event_row(key: str, event: Event) -> Row:
    # the new state as glyph and word (it reads without colour), the old one as its glyph
    before = "new" if event.previous is None else event.previous.glyph
    return Row(
        key=key,
        cells=(
            (event.at.astimezone().strftime("%H:%M:%S"), "dim"),
            (event.check_id, ""),
            (
                f"{before} → {event.current.glyph} {event.current.value}",
                STATUS_STYLE[event.current],
            ),
            (formats.clip(event.summary, 100), ""),
        ),
        status=event.current,
        search=event.check_id.lower(),
        checks=(event.check_id,),
    )
