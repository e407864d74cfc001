"""Screens over the dashboard: a check's detail, and the keys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

from opsdash.figures import Figures, HttpFigures
from opsdash.figures import facts as facts_of
from opsdash.state import PlatformState
from opsdash.tui.rows import STATUS_STYLE, latency_text, sparkline, status_cell

HISTORY_SHOWN = 20
EXCERPT_CHARS = 1200

KEYS: tuple[tuple[str, str], ...] = (
    ("r", "refresh now: run every check at once"),
    ("p", "pause / resume the checks"),
    ("/", "filter by name or tag (enter keeps it, esc clears it)"),
    ("f", "failing only (toggle)"),
    ("enter", "detail of the selected row"),
    ("tab / shift+tab", "next / previous panel"),
    ("z", "zoom the focused panel (toggle)"),
    ("esc", "back (or clear the filter)"),
    ("?", "this help"),
    ("q", "quit"),
)


def _status_text(status: Any) -> Text:
    text, style = status_cell(status)
    return Text(text, style=style)


def _excerpt(figures: Figures | None) -> str | None:
    if isinstance(figures, HttpFigures) and figures.body:
        return figures.body[:EXCERPT_CHARS]
    return None


def check_detail(state: PlatformState, check_id: str) -> RenderableType:
    """Everything known about one check: target, verdict, dependencies, excerpt, history."""
    spec = state.spec(check_id)
    result = state.latest(check_id)
    parts: list[RenderableType] = []
    title = Text(check_id, style="bold")
    if result is not None:
        title.append("  ")
        title.append_text(_status_text(result.status))
    parts.append(title)
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim", no_wrap=True)
    facts.add_column()
    if spec is not None:
        facts.add_row("target", spec.target)
        facts.add_row("kind", f"{spec.kind}, every {spec.interval:g}s, deadline {spec.timeout:g}s")
        if spec.depends_on:
            facts.add_row("depends on", ", ".join(spec.depends_on))
        if spec.tags:
            facts.add_row("tags", ", ".join(spec.tags))
    if result is None:
        facts.add_row("result", "not run yet")
        parts.append(facts)
        return Group(*parts)
    facts.add_row("summary", Text(result.summary, style=STATUS_STYLE[result.status]))
    facts.add_row("latency", latency_text(result.latency_ms))
    facts.add_row("checked at", result.started_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"))
    since = state.since(check_id)
    if since is not None:
        facts.add_row("in this state since", since.astimezone().strftime("%H:%M:%S"))
    if result.error is not None:
        facts.add_row("error", Text(f"{result.error.type}: {result.error.message}", style="red"))
    figures = result.figures
    for key, value in facts_of(figures):
        if not (isinstance(figures, HttpFigures) and key == "body"):  # shown as the excerpt
            facts.add_row(key.replace("_", " "), str(value))
    parts.append(facts)

    dependencies = figures.dependencies if isinstance(figures, HttpFigures) else None
    if dependencies:
        table = Table(title="dependencies (as the service reports them)", title_justify="left")
        table.add_column("name")
        table.add_column("status")
        for name, status in dependencies.items():
            word = str(status)
            ok = word == "ok"
            table.add_row(str(name), Text(word, style="green" if ok else "bold red"))
        parts.append(table)

    excerpt = _excerpt(figures)
    if excerpt:
        parts.append(Text("response excerpt", style="bold"))
        parts.append(Text(excerpt, style="dim"))

    history = list(state.history(check_id))
    latencies = [r.latency_ms for r in history]
    parts.append(
        Text.assemble(
            ("recent history ", "bold"),
            (f"({len(history)} runs) ", "dim"),
            (sparkline(latencies, 40), "cyan"),
        )
    )
    table = Table(show_edge=False, pad_edge=False)
    for column in ("time", "status", "latency", "summary"):
        table.add_column(column, no_wrap=column != "summary")
    for run in reversed(history[-HISTORY_SHOWN:]):
        table.add_row(
            run.started_at.astimezone().strftime("%H:%M:%S"),
            _status_text(run.status),
            latency_text(run.latency_ms),
            run.summary,
        )
    parts.append(table)
    return Group(*parts)


class DetailScreen(Screen[None]):
    """The detail of one or more checks (a service's health and ready, a worker's two)."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, state: PlatformState, check_ids: Sequence[str], *, title: str) -> None:
        super().__init__()
        self._state = state
        self.check_ids = tuple(check_ids)
        self._title = title
        self._body = Static(id="detail-body")
        self.content: RenderableType = Text("")
        """What the screen shows (a rich renderable)."""
        self._shown: tuple[object, ...] | None = None
        """The latest results it was rendered from (it shows absolute times only)."""

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
        """Re-render from the state (the app calls this on every refresh): only when one of
        its checks has a new result, since nothing else it shows changes."""
        latest = tuple(self._state.latest(check_id) for check_id in self.check_ids)
        if self._shown is not None and all(
            a is b for a, b in zip(latest, self._shown, strict=True)
        ):
            return
        self._shown = latest
        parts: list[RenderableType] = []
        for index, check_id in enumerate(self.check_ids):
            if index:
                parts.append(Text(""))
            parts.append(check_detail(self._state, check_id))
        self.content = Group(*parts)
        self._body.update(self.content)


class HelpScreen(ModalScreen[None]):
    """The keys."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("question_mark", "app.pop_screen", "Back", show=False),
        Binding("q", "app.pop_screen", "Back", show=False),
    ]

    def compose(self) -> ComposeResult:
        """A table of keys in a box."""
        table = Table(title="opsdash keys", show_edge=False, expand=True)
        table.add_column("key", style="bold cyan", no_wrap=True)
        table.add_column("does")
        for key, does in KEYS:
            table.add_row(key, does)
        footnote = Text(
            "\nStatus is glyph + word: ✔ ok  ▲ warn  ✖ crit  ? unknown. The mouse works: click a "
            "row to select it, click it again for its detail.",
            style="dim",
        )
        yield Static(Group(table, footnote), id="help-box")
