"""The two header lines: the platform's verdict and counts, then how fresh the results are
and which modes are on (paused, filter, failing only, a stopped engine)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from rich.text import Text

from opsdash import formats
from opsdash.remote import SourceState
from opsdash.state import PlatformState
from opsdash.status import Status
from opsdash.tui.rows import STATUS_STYLE, View


@dataclass(frozen=True, slots=True)
class Modes:
    """What the user (or a failure) switched on, shown after the freshness line."""

    paused: bool = False
    engine_error: str | None = None
    query: str = ""
    failing_only: bool = False
    sources: tuple[SourceState, ...] | None = None
    """``ui --from``: every source's connection (None when the dashboard probes itself)."""
    source_count: int = 0
    cut_off: frozenset[str] = field(default_factory=frozenset)
    """Checks whose source is unreachable now: stale whatever their age."""


def header_text(state: PlatformState, view: View, modes: Modes) -> Text:
    """The header for ``view`` (the state's snapshot at ``view.now``)."""
    snapshot = view.snapshot
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(snapshot.platform, style="bold")
    text.append("  ")
    if snapshot.results:
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
    text.append(f"{len(state.specs)} checks · ", style="dim")
    pending = len(state.specs) - len(state.results())
    if pending:  # not answered yet: counted, so that a silent check is not taken for an ok one
        text.append(f"{pending} pending · ", style="bold")
    last = state.last_update
    if last is None:
        text.append("no result yet", style="dim")
    else:
        age = formats.duration((view.now - last).total_seconds(), compact=True)
        text.append(f"last result {last.astimezone().strftime('%H:%M:%S')} ({age} ago)")
    if modes.sources is not None:  # first: an unreachable source explains what follows
        _sources(text, modes.sources, modes.source_count)
    stale = stale_count(state, view, modes.cut_off)
    if stale:
        why = "their source is unreachable" if modes.cut_off else "older than twice their interval"
        text.append(f"   ⚠ {stale} stale ({why})", style="bold yellow")
    if modes.paused:
        text.append("   ⏸ PAUSED (p resumes)", style="bold reverse yellow")
    if modes.engine_error:
        text.append(f"   ✖ checks stopped: {modes.engine_error}", style="bold red")
    if modes.query:
        text.append(f"   filter: {modes.query}", style="cyan")
    if modes.failing_only:
        text.append("   failing only", style="cyan")
    return text


def _sources(text: Text, sources: tuple[SourceState, ...], total: int) -> None:
    """Where the results come from (``ui --from``), and each source that is unreachable."""
    broken = [source for source in sources if not source.connected]
    if not broken:
        connected = sum(1 for source in sources if source.connected)
        text.append(f"   ⇄ from {connected}/{total} serve", style="dim")
        return
    for source in broken:
        text.append(
            f"   ✖ {source.url} unreachable since {source.since.astimezone():%H:%M:%S}, "
            f"reconnecting: {source.reason}",
            style="bold red",
        )


def stale_count(state: PlatformState, view: View, cut_off: frozenset[str] = frozenset()) -> int:
    """Checks whose latest result is older than twice their interval: the engine has fallen
    behind on them (or they hang), and their verdict may no longer hold; and checks in
    ``cut_off`` (their source is unreachable)."""
    count = 0
    for spec in state.specs:
        result = state.latest(spec.id)
        if result is None:
            continue
        if spec.id in cut_off or view.now - result.started_at > timedelta(
            seconds=2 * spec.interval
        ):
            count += 1
    return count
