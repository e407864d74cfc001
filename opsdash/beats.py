"""Heartbeats as kept in the alerting state file: the row, the table, and the one read the
heartbeat probe makes.

A leaf (stdlib, :mod:`opsdash.status` and :mod:`opsdash.records` only), below the probes: the
heartbeat probe reads the last beat here, while :mod:`opsdash.alertstate.store`, which owns the
state file, creates the table and writes the beats (``opsdash heartbeat``, ``POST
/heartbeat/ID``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from opsdash.records import dataclass
from opsdash.status import Status

if TYPE_CHECKING:
    import sqlite3

TABLE = """
CREATE TABLE IF NOT EXISTS heartbeats (
    check_id TEXT PRIMARY KEY,
    at REAL NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL,
    source TEXT NOT NULL
)
"""
"""Added to the state's schema version 1 (an addition, no migration): every writable open
creates it, so a state file from before heartbeats gains it at its next write."""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The last beat a job sent for a heartbeat check."""

    check_id: str
    at: float
    """When it arrived (seconds since the epoch)."""
    status: Status
    """What the job reported: ok unless it said warn or crit."""
    message: str
    source: str
    """``cli`` (``opsdash heartbeat``) or ``http`` (``POST /heartbeat/ID`` to serve)."""


def default_state_path() -> Path:
    """``$XDG_STATE_HOME/opsdash/state.db``, else ``~/.local/state/opsdash/state.db``."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "opsdash" / "state.db"


def select_heartbeat(connection: sqlite3.Connection, check_id: str) -> Heartbeat | None:
    """The last beat of ``check_id`` through an open connection; ``None`` before the first
    one, or in a state file from before heartbeats (no table)."""
    import sqlite3  # here: `check` asks this module where the state is, and has none mostly

    try:
        row = connection.execute(
            "SELECT check_id, at, status, message, source FROM heartbeats WHERE check_id = ?",
            (check_id,),
        ).fetchone()
    except sqlite3.OperationalError:  # no such table: no beat was ever recorded there
        return None
    return None if row is None else Heartbeat(row[0], row[1], Status(row[2]), row[3], row[4])


def read_heartbeat(path: Path, check_id: str) -> Heartbeat | None:
    """The last beat of ``check_id`` in the state file at ``path``, read-only (never creates
    or changes anything); ``None`` without a file, a beat, or a readable database."""
    if not path.is_file():
        return None
    import sqlite3  # here: see select_heartbeat

    try:
        connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error:
        return None
    try:
        return select_heartbeat(connection, check_id)
    except sqlite3.DatabaseError:  # not SQLite, or damaged: opsdash alert reports that
        return None
    finally:
        connection.close()
