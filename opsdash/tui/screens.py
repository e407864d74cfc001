"""Screens over the dashboard: a check's detail, written for people, and the keys."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

from opsdash.figures import details_json
from opsdash.formats import span
from opsdash.results import CheckResult
from opsdash.state import PlatformState
from opsdash.status import Status
from opsdash.tui.humane import fact_rows, is_table, label, local_time, plain, table_of
from opsdash.tui.rows import STATUS_STYLE, latency_text, sparkline, status_cell

HISTORY_SHOWN = 20
EXCERPT_LINES = 12
EXCERPT_CHARS = 1200
_SHOWN_APART = ("dependencies", "dependency_messages", "body", "excerpt", "body_truncated")
"""Figures the detail shows in sections of their own, not among the facts."""

Clock = Callable[[], datetime]


def _status_text(status: Status) -> Text:
    text, style = status_cell(status)
    return Text(text, style=style)


def _excerpt(details: Mapping[str, Any]) -> str | None:
    """The first lines of the response the probe kept (of a body that was not ok)."""
    lines = details.get("excerpt")
    if isinstance(lines, list | tuple) and lines:
        return "\n".join(plain(line) for line in lines[:EXCERPT_LINES])
    for key in ("body",):
        value = details.get(key)
        if isinstance(value, str) and value.strip():
            lines = plain(value[:EXCERPT_CHARS].replace("\t", "    ")).splitlines()
            return "\n".join(lines[:EXCERPT_LINES])
    return None


def _dependencies(details: Mapping[str, Any]) -> list[RenderableType]:
    """A heading and a table: each dependency the body reports, its status, what it says."""
    dependencies = details.get("dependencies")
    if not isinstance(dependencies, Mapping) or not dependencies:
        return []
    messages = details.get("dependency_messages")
    messages = messages if isinstance(messages, Mapping) else {}
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("dependency", no_wrap=True)
    table.add_column("status", no_wrap=True)
    if messages:
        table.add_column("says")
    for name, status in dependencies.items():
        try:
            shown = _status_text(Status(str(status)))
        except ValueError:
            shown = Text(plain(status))
        said = [plain(messages.get(name, "")) or "-"] if messages else []
        table.add_row(plain(name), shown, *said)
    return [Text("Dependencies, as the service reports them", style="bold"), table]


def _history(history: Sequence[CheckResult], now: datetime) -> list[RenderableType]:
    if not history:
        return []
    first, last = history[0].started_at, history[-1].started_at
    spark = Text.assemble(
        ("Recent history ", "bold"),
        (f"({len(history)} runs, latency) ", "dim"),
        (first.astimezone().strftime("%H:%M:%S") + " ", "dim"),
        (sparkline([r.latency_ms for r in history], 40), "cyan"),
        (" " + last.astimezone().strftime("%H:%M:%S"), "dim"),
    )
    table = Table(show_edge=False, pad_edge=False)
    for column in ("time", "status", "latency", "summary"):
        table.add_column(column, no_wrap=column != "summary")
    for run in reversed(history[-HISTORY_SHOWN:]):
        table.add_row(
            run.started_at.astimezone().strftime("%H:%M:%S"),
            _status_text(run.status),
            latency_text(run.latency_ms),
            plain(run.summary),
        )
    return [spark, table]


def check_detail(state: PlatformState, check_id: str, now: datetime) -> RenderableType:
    """Everything known about one check, for people: what it checks and how often, its
    verdict, its figures with units, dependencies, the response excerpt, its history."""
    spec = state.spec(check_id)
    result = state.latest(check_id)
    parts: list[RenderableType] = []
    title = Text(check_id, style="bold")
    title.append("  ")
    title.append_text(_status_text(result.status) if result else Text("… pending", style="dim"))
    parts.append(title)
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim", no_wrap=True)
    facts.add_column()
    if spec is not None:
        facts.add_row("checks", plain(spec.target))
        facts.add_row(
            "how",
            f"{spec.kind}, every {span(spec.interval)}, gives up after {span(spec.timeout)}",
        )
        if spec.depends_on:
            facts.add_row("depends on", ", ".join(spec.depends_on))
        if spec.tags:
            facts.add_row("tags", ", ".join(spec.tags))
    if result is None:
        facts.add_row("result", "not answered yet: the first run is under way")
        parts.append(facts)
        return Group(*parts)
    facts.add_row("verdict", Text(plain(result.summary), style=STATUS_STYLE[result.status]))
    facts.add_row("answered in", latency_text(result.latency_ms))
    facts.add_row("checked", local_time(result.started_at, now))
    since = state.since(check_id)
    if since is not None:
        facts.add_row("in this state since", local_time(since, now))
    if result.error is not None:
        facts.add_row(
            "no answer", Text(f"{result.error.type.value}: {plain(result.error.message)}", "red")
        )
    details = _details_of(result)
    shown = {k: v for k, v in details.items() if k not in _SHOWN_APART}
    for name, value in fact_rows(shown, now):
        facts.add_row(name, value)
    parts.append(facts)
    for key, value in shown.items():
        if is_table(value):
            titles, cells = table_of(value, now)
            table = Table(title=label(key)[0].capitalize(), title_justify="left")
            for column in titles:
                table.add_column(column)
            for row in cells:
                table.add_row(*row)
            parts.append(table)
    parts.extend(_dependencies(details))
    excerpt = _excerpt(details)
    if excerpt:
        parts.append(Text("Response excerpt (first lines)", style="bold"))
        parts.append(Text(excerpt, style="dim"))
    parts.extend(_history(state.history(check_id), now))
    return Group(*parts)


def _details_of(result: CheckResult) -> Mapping[str, Any]:
    """The result's figures as the JSON ``details`` object (one name per figure, units in the
    names): one generic reader for every kind of check, new kinds included."""
    return details_json(result.figures)


class DetailScreen(Screen[None]):
    """The detail of one or more checks (a service's health and ready, a worker's two)."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", tooltip="back to the dashboard"),
        Binding("q", "app.quit", "Quit", tooltip="quit"),
    ]

    def __init__(
        self, state: PlatformState, check_ids: Sequence[str], *, title: str, clock: Clock
    ) -> None:
        super().__init__()
        self._state = state
        self.check_ids = tuple(check_ids)
        self._title = title
        self._clock = clock
        self._body = Static(id="detail-body")
        self.content: RenderableType = Text("")
        """What the screen shows (a rich renderable)."""
        self._shown: tuple[object, ...] | None = None
        """The latest results and the second it was rendered from ("3 s ago" moves on)."""

    def compose(self) -> ComposeResult:
        """A title line, the scrolling detail and the footer."""
        yield Static(Text(self._title, style="bold"), id="detail-title")
        with VerticalScroll(id="detail-scroll"):
            yield self._body
        yield Footer()

    def on_mount(self) -> None:
        """Show the state as it is now."""
        self.refresh_from_state()

    def refresh_from_state(self) -> None:
        """Re-render from the state (the app calls this on every refresh): when one of its
        checks has a new result, or the clock has moved on a second."""
        now = self._clock()
        stamp = (*(self._state.latest(c) for c in self.check_ids), int(now.timestamp()))
        if self._shown is not None and all(
            a is b or a == b for a, b in zip(stamp, self._shown, strict=True)
        ):
            return
        self._shown = stamp
        parts: list[RenderableType] = []
        for index, check_id in enumerate(self.check_ids):
            if index:
                parts.append(Text(""))
            parts.append(check_detail(self._state, check_id, now))
        self.content = Group(*parts)
        self._body.update(self.content)


def key_rows(app: App[Any]) -> list[tuple[str, str]]:
    """The keys bound right now (app, screen and the focused panel), as ``(keys, does)``:
    what the help screen lists, so that it cannot drift from the bindings."""
    rows: dict[tuple[str, str], list[str]] = {}
    ours: set[tuple[str, str]] = set()
    for active in app.active_bindings.values():
        binding = active.binding
        does = binding.tooltip or binding.description
        if not does or binding.system:
            continue
        row = (binding.action, does)
        rows.setdefault(row, []).append(app.get_key_display(binding))
        if binding.tooltip:
            ours.add(row)  # opsdash's own keys (they carry a description) come first
    listed = sorted(rows, key=lambda row: row not in ours)
    return [(" / ".join(dict.fromkeys(rows[row])), row[1]) for row in listed]


class HelpScreen(ModalScreen[None]):
    """The keys, as the dashboard binds them."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("question_mark", "app.pop_screen", "Back", show=False),
        Binding("q", "app.pop_screen", "Back", show=False),
    ]

    def __init__(self, keys: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self.keys = tuple(keys)

    def compose(self) -> ComposeResult:
        """A table of keys in a box."""
        table = Table(title="opsdash keys", show_edge=False, expand=True)
        table.add_column("key", style="bold cyan", no_wrap=True)
        table.add_column("does")
        for key, does in self.keys:
            table.add_row(key, does)
        footnote = Text(
            "\nStatus is glyph + word: ✔ ok  ▲ warn  ✖ crit  ? unknown. The mouse works: click a "
            "row to select it, click it again for its detail.",
            style="dim",
        )
        with VerticalScroll(id="help-box"):  # scrolls where the screen is short (80x24)
            yield Static(Group(table, footnote))
