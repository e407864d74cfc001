"""``opsdash check --format nagios``: opsdash as one Nagios plugin, for Icinga, check_mk and
Nagios itself (the monitoring-plugins output guidelines).

::

    OPSDASH CRITICAL - redis unreachable; 2 dependants not ready | checks_ok=20;;;0 ...
    [CRITICAL] redis: connection refused
    [CRITICAL] booking-service.ready: 503 Service Unavailable: redis down

The first line is the status word, the incidents (root causes first; the failing checks when
there is no incident) and the perfdata: a count per status and the round's duration. The long
output lists every check that is not ok, worst first. The exit code is the command's, as for
every format. ``|`` is the perfdata separator, so it never appears in the text part, and
nothing a server said reaches the monitoring system with control characters.
"""

from __future__ import annotations

from opsdash.state import Snapshot
from opsdash.status import Status

WORDS = {
    Status.OK: "OK",
    Status.WARN: "WARNING",
    Status.CRIT: "CRITICAL",
    Status.UNKNOWN: "UNKNOWN",
}
SUMMARY_CHARS = 400
_NAMED = 3


def _clean(text: str) -> str:
    """One line of plain text without ``|`` (it would start the perfdata)."""
    text = "".join(c if c.isprintable() else " " for c in text).replace("|", "/")
    return " ".join(text.split())


def _headline(snapshot: Snapshot) -> str:
    failing = [r for r in snapshot.results if r.status.failing]
    if not failing:
        count = len(snapshot.results)
        return f"{count} check{'s' if count != 1 else ''} ok"
    if snapshot.incidents:
        parts = [incident.summary for incident in snapshot.incidents[:_NAMED]]
        extra = len(snapshot.incidents) - _NAMED
    else:
        parts = [f"{r.id}: {r.summary}" for r in failing[:_NAMED]]
        extra = len(failing) - _NAMED
    if extra > 0:
        parts.append(f"and {extra} more")
    text = _clean("; ".join(parts))
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def perfdata(snapshot: Snapshot) -> str:
    """``checks_ok=20;;;0 checks_warn=1;;;0 ... duration=0.084s;;;0``."""
    items = [f"checks_{status}={count};;;0" for status, count in snapshot.counts.items()]
    if snapshot.duration_ms is not None:
        items.append(f"duration={snapshot.duration_ms / 1000.0:.3f}s;;;0")
    return " ".join(items)


def render_nagios(snapshot: Snapshot) -> str:
    """The plugin output: one status line with perfdata, then the checks that are not ok."""
    status = snapshot.status
    lines = [f"OPSDASH {WORDS[status]} - {_headline(snapshot)} | {perfdata(snapshot)}"]
    failing = sorted(
        (r for r in snapshot.results if r.status.failing), key=lambda r: -r.status.severity
    )
    lines += [f"[{WORDS[r.status]}] {r.id}: {_clean(r.summary)}" for r in failing]
    return "\n".join(lines) + "\n"


def unknown_output(message: str) -> str:
    """A run that could not happen (a broken registry): UNKNOWN, the first line of ``message``
    as the summary and the rest as long output."""
    first, *rest = message.splitlines() or [""]
    lines = [f"OPSDASH UNKNOWN - {_clean(first)}"]
    lines += [_clean(line) for line in rest if line.strip()]
    return "\n".join(lines) + "\n"
