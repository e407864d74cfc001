"""``opsdash check`` for people: a table of checks, then the incidents that explain them.

Status is carried by a glyph and a word, colour only adds to it (and is off when piped or when
``NO_COLOR`` is set: the caller decides and passes ``color``).
"""

from __future__ import annotations

import textwrap

import click

from opsdash import formats
from opsdash.incidents import IncidentKind
from opsdash.marks import CheckMark
from opsdash.results import CheckResult
from opsdash.state import Snapshot
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


def _lines(text: str, indent: int, width: int | None) -> list[str]:
    """``text`` on one line (``width`` None: piped, printed whole) or wrapped to ``width``
    with continuation lines indented by ``indent``: the reason is never cut off."""
    text = " ".join(text.split())
    if width is None:
        return [text]
    room = max(width - indent, 20)
    return textwrap.wrap(text, room, break_on_hyphens=False) or [""]


def _block(prefix: str, text: str, indent: int, width: int | None) -> list[str]:
    first, *rest = _lines(text, indent, width)
    return [prefix + first, *(" " * indent + line for line in rest)]


def _by_severity(snapshot: Snapshot) -> list[CheckResult]:
    # failing checks first (crit, warn, unknown), registry order within a status
    return sorted(snapshot.results, key=lambda r: -r.status.severity)


def render_text(
    snapshot: Snapshot, *, color: bool = False, width: int | None = None, quiet: bool = False
) -> str:
    """The whole report as text lines: failing checks first, then the incidents.

    ``width`` is the terminal's: summaries wrap to it. ``None`` (stdout is not a terminal)
    prints every summary whole on its line, never cut. ``quiet`` leaves out the checks that
    are ok (the header still counts them)."""
    if width is not None:
        width = max(width, 60)
    counts = snapshot.counts
    head = f"{snapshot.platform}  {_badge(snapshot.status, color).rstrip()}  " + " · ".join(
        f"{counts[s.value]} {s.value}" for s in Status
    )
    if snapshot.duration_ms is not None:
        head += f"  ({snapshot.duration_ms:.0f} ms)"
    lines = [head]
    results = [r for r in _by_severity(snapshot) if not quiet or r.status.failing]
    if results:
        longest = max(len(r.id) for r in results)
        id_width = min(longest, 40) if width is not None else longest
        fixed = 10 + id_width + 2 + 9
        lines += ["", f"{'STATUS':<10}{'CHECK':<{id_width}}  {'LATENCY':>7}  SUMMARY"]
        for result in results:
            shown_id = formats.clip(result.id, id_width) if width is not None else result.id
            prefix = (
                f"{_badge(result.status, color)} "
                f"{shown_id:<{id_width}}  "
                f"{_latency(result.latency_ms):>7}  "
            )
            summary = result.summary + _marks(snapshot.marks.get(result.id))
            lines += _block(prefix, summary, fixed, width)
    if snapshot.incidents:
        lines += ["", "Incidents (root causes first)"]
        pad = " " * 10
        for incident in snapshot.incidents:
            silence = snapshot.incident_silences.get(incident.cause)
            held = f" [silenced: {silence.reason}]" if silence is not None else ""
            lines += _block(
                _badge(incident.status, color) + " ", incident.summary + held, 10, width
            )
            names = incident.affected.names
            if names and names != (incident.cause,):
                lines += _block(pad, f"affected: {', '.join(names)}", 10, width)
            # a datastore-down incident's first note is the cause's own summary: said above
            down = incident.kind is IncidentKind.DATASTORE_DOWN
            for note in incident.notes[1:] if down else incident.notes:
                lines += _block(pad, f"note: {note}", 10, width)
    return "\n".join(lines)
