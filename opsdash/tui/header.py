"""The two header lines: the platform's verdict and counts, then how fresh the results are
and which modes are on (paused, filter, failing only, a stopped engine)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from rich.text import Text

from opsdash import formats
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
    last = state.last_update
    if last is None:
        text.append("no result yet", style="dim")
    else:
        age = formats.duration((view.now - last).total_seconds(), compact=True)
        text.append(f"last result {last.astimezone().strftime('%H:%M:%S')} ({age} ago)")
    stale = stale_count(state, view)
    if stale:
        text.append(f"   ⚠ {stale} stale (older than twice their interval)", style="bold yellow")
    if modes.paused:
        text.append("   ⏸ PAUSED (p resumes)", style="bold reverse yellow")
    if modes.engine_error:
        text.append(f"   ✖ checks stopped: {modes.engine_error}", style="bold red")
    if modes.query:
        text.append(f"   filter: {modes.query}", style="cyan")
    if modes.failing_only:
        text.append("   failing only", style="cyan")
    return text


def stale_count(state: PlatformState, view: View) -> int:
    """Checks whose latest result is older than twice their interval: the engine has fallen
    behind on them (or they hang), and their verdict may no longer hold."""
    count = 0
    for spec in state.specs:
        result = state.latest(spec.id)
        if result is not None and view.now - result.started_at > timedelta(
            seconds=2 * spec.interval
        ):
            count += 1
    return count
