"""``opsdash check`` for people: a table of checks, then the incidents that explain them.

Status is carried by a glyph and a word, colour only adds to it (and is off when piped or when
``NO_COLOR`` is set: the caller decides and passes ``color``).
"""

from __future__ import annotations

import click

from opsdash.incidents import IncidentKind
from opsdash.state import CheckMark, Snapshot
from opsdash.status import Status

_COLOURS = {
    Status.OK: "green",
    Status.WARN: "yellow",
    Status.CRIT: "red",
    Status.UNKNOWN: "magenta",
}


def _badge(status: Status, color: bool) -> str:
    text = f"{status.glyph} {status.value:<7}"
    return click.style(text, fg=_COLOURS[status], bold=status is Status.CRIT) if color else text


def _latency(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _marks(mark: CheckMark | None) -> str:
    if mark is None:
        return ""
    marks = []
    if mark.silence is not None:
        until = mark.silence.until.isoformat(timespec="seconds")
        marks.append(f" [silenced until {until}: {mark.silence.reason}]")
    if mark.flapping:
        marks.append(" [flapping]")
    return "".join(marks)


def render_text(snapshot: Snapshot, *, color: bool = False, width: int = 100) -> str:
    """The whole report as text lines."""
    width = max(width, 60)
    counts = snapshot.counts
    head = f"{snapshot.platform}  {_badge(snapshot.status, color).rstrip()}  " + " · ".join(
        f"{counts[s.value]} {s.value}" for s in Status
    )
    if snapshot.duration_ms is not None:
        head += f"  ({snapshot.duration_ms:.0f} ms)"
    lines = [head, ""]
    id_width = min(max((len(r.id) for r in snapshot.results), default=10), 40)
    fixed = 10 + id_width + 2 + 9
    lines.append(f"{'STATUS':<10}{'CHECK':<{id_width}}  {'LATENCY':>7}  SUMMARY")
    for result in snapshot.results:
        lines.append(
            f"{_badge(result.status, color)} "
            f"{_clip(result.id, id_width):<{id_width}}  "
            f"{_latency(result.latency_ms):>7}  "
            f"{_clip(result.summary + _marks(snapshot.marks.get(result.id)), width - fixed)}"
        )
    if snapshot.incidents:
        lines += ["", "Incidents (root causes first)"]
        for incident in snapshot.incidents:
            lines.append(f"{_badge(incident.status, color)} {_clip(incident.summary, width - 10)}")
            names = incident.affected.names
            if names and names != (incident.cause,):
                affected = ", ".join(names)
                lines.append(" " * 10 + _clip(f"affected: {affected}", width - 10))
            # a datastore-down incident's first note is the cause's own summary: said above
            down = incident.kind is IncidentKind.DATASTORE_DOWN
            for note in incident.notes[1:] if down else incident.notes:
                lines.append(" " * 10 + _clip(f"note: {note}", width - 10))
    return "\n".join(lines)
