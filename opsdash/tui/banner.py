"""The top of the screen: what is wrong, why, and what it affects, in full sentences.

One paragraph per incident, worst first, wrapped by the widget and never cut: the incident's
summary (from the incident model), the cause's own words when a datastore is down, the reason
of a component incident (its failing checks' verdicts, "retry ratio 23.9% (over 5%)"), what
it affects and the incident's notes. When all is well it is one line, and the panels below
take back the space. Pure text building here; :class:`IncidentBanner` only shows it.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from opsdash.incidents import Incident
from opsdash.status import Status
from opsdash.tui.rows import STATUS_STYLE, View, affected_names, ordered_incidents

_NAMED = 12
"""Affected components named before "and N more" (the Incidents panel lists them all)."""
SHOWN = 6
"""Incidents told in full; past them a line points at the Incidents panel (a thousand failing
checks must not bury the worst one, nor cost a paragraph each per refresh)."""


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if text.endswith((".", "!", "?", ")")) else text + "."


def _reasons(view: View, incident: Incident) -> list[str]:
    """The failing checks' own verdicts not already in the incident's summary."""
    reasons: list[str] = []
    for check_id in incident.checks:
        result = view.latest(check_id)
        if result is None or not result.status.failing:
            continue
        if result.summary and result.summary not in incident.summary:
            label = result.check if result.component == incident.cause else result.id
            reasons.append(f"{label}: {result.summary}")
    return list(dict.fromkeys(reasons))


def incident_paragraph(view: View, incident: Incident) -> Text:
    """One incident as sentences: status, summary, why, what it affects, notes."""
    text = Text()
    status = incident.status
    text.append(f"{status.glyph} {status.value.upper()}", style=f"reverse {STATUS_STYLE[status]}")
    text.append(" ")
    text.append(_sentence(incident.summary), style="bold")
    notes = list(incident.notes)
    if incident.kind == "datastore-down" and notes:
        text.append(f" {incident.cause} says: {_sentence(notes.pop(0))}")
    elif incident.kind in ("component", "datastore"):
        reasons = _reasons(view, incident)
        if reasons:
            text.append(" Why: " + _sentence("; ".join(reasons)))
    names = affected_names(incident)
    if names:
        shown = ", ".join(names[:_NAMED])
        more = f" and {len(names) - _NAMED} more" if len(names) > _NAMED else ""
        text.append(f" Affects {len(names)}: {shown}{more}.")
    for note in notes:
        text.append(" ⚠ " + _sentence(note), style="yellow")
    return text


def banner_text(view: View, pending: int) -> Text:
    """The incidents' paragraphs (the worst :data:`SHOWN` in full), or one line when nothing
    is wrong."""
    incidents = ordered_incidents(view)
    if incidents:
        text = Text("\n").join(incident_paragraph(view, incident) for incident in incidents[:SHOWN])
        if len(incidents) > SHOWN:
            more = len(incidents) - SHOWN
            text.append(
                f"\n… and {more} more incident{'s' if more > 1 else ''}: the Incidents panel "
                "lists every one.",
                style="dim",
            )
        return text
    total = len(view.state.specs)
    if pending == total:
        return Text(f"… {total} checks started; no result yet", style="dim")
    if view.snapshot.status is Status.OK:
        line = Text(f"{Status.OK.glyph} All is well: ", style=STATUS_STYLE[Status.OK])
        line.append(f"{total - pending} checks ok", style="")
        if pending:
            line.append(f", {pending} pending", style="dim")
        return line
    # failing checks without an incident (unknown results): say so rather than "all is well"
    return Text("No incident; some checks could not decide (see the panels).", style="dim")


class IncidentBanner(Static):
    """The incident-first area: updated only when its text changes."""

    def __init__(self) -> None:
        super().__init__(id="incident-banner")
        self._shown: Text | None = None

    def show(self, text: Text, *, calm: bool) -> None:
        """Show ``text`` (a no-op when it is what is shown); ``calm``: nothing is wrong."""
        if text != self._shown:
            self._shown = text
            self.update(text)
            self.set_class(calm, "calm")
