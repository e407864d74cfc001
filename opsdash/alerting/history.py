"""``opsdash history``: since when each check is in its status, and its uptime (ok runs %)."""

from __future__ import annotations

from typing import Any

from opsdash.alertstate.store import Store
from opsdash.formats import iso_at


def history_document(
    store: Store, check_id: str | None, *, since: float, window: str
) -> dict[str, Any]:
    """Every check's (or one check's) status, since when, runs and uptime over the window;
    with ``check_id``, also its status changes in the window, oldest first."""
    states = store.check_states()
    uptime = store.uptime(since=since)
    ids = [check_id] if check_id is not None else sorted(set(uptime) | set(states))
    checks: list[dict[str, Any]] = []
    for name in ids:
        ok, runs = uptime.get(name, (0, 0))
        state = states.get(name)
        if state is None and not runs:
            continue
        entry: dict[str, Any] = {
            "id": name,
            "status": None if state is None else state.status.value,
            "since": None if state is None else iso_at(state.since, timespec="seconds"),
            "firing": bool(state and state.firing),
            "flapping": bool(state and state.flapping),
            "runs": runs,
            "uptime_percent": round(100.0 * ok / runs, 2) if runs else None,
        }
        if check_id is not None:
            changes: list[dict[str, Any]] = []
            previous = None
            for row in store.history(name, since=since):
                if row.status is not previous:
                    changes.append(
                        {
                            "at": iso_at(row.at, timespec="seconds"),
                            "status": row.status.value,
                            "summary": row.summary,
                        }
                    )
                previous = row.status
            entry["changes"] = changes
        checks.append(entry)
    return {"schema": "opsdash.history/v1", "window": window, "checks": checks}


def render_history(document: dict[str, Any]) -> str:
    """The document as a plain table (and, for one check, its changes)."""
    checks = document["checks"]
    if not checks:
        return f"no runs recorded in the last {document['window']}"
    width = max(len(c["id"]) for c in checks)
    lines = [
        f"{'CHECK':<{width}}  STATUS   SINCE                 UPTIME({document['window']})  RUNS"
    ]
    for c in checks:
        uptime = "-" if c["uptime_percent"] is None else f"{c['uptime_percent']:.2f}%"
        marks = " firing" if c["firing"] else ""
        marks += " flapping" if c["flapping"] else ""
        lines.append(
            f"{c['id']:<{width}}  {c['status'] or '-':<7}  {c['since'] or '-':<20}  "
            f"{uptime:>12}  {c['runs']}{marks}"
        )
        for change in c.get("changes", ()):
            lines.append(f"  {change['at']}  -> {change['status']:<7} {change['summary']}")
    return "\n".join(lines)
