"""The alerting state: one embedded SQLite file per installation.

It holds, per check, the alerting state machine (streaks, recent statuses, firing, flapping),
every run's result for ``opsdash history`` (kept for ``alerts.history_retention``), the open
alert groups (one per incident), the outbox of notifications not yet delivered, and silences.

Why SQLite: a run killed at any point must leave a consistent state, and two runs at once must
not both send. Every run's changes go in one ``BEGIN IMMEDIATE`` transaction (WAL journal, so a
SIGKILL loses at most the uncommitted run and never half of one); the outbox is written in the
same transaction as the state that caused it, so a notification is never lost between "state
changed" and "sent". :class:`RunLock` (an ``flock`` on a file next to the database) keeps a
second ``opsdash alert`` out while one is running.

A file that is not an opsdash state database (corrupt, or someone else's) is never
overwritten: :func:`open_store` renames it aside and says so through ``report``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from opsdash.beats import TABLE as HEARTBEATS_TABLE
from opsdash.beats import Heartbeat, select_heartbeat
from opsdash.beats import default_state_path as default_state_path  # where it always was
from opsdash.records import dataclass
from opsdash.status import Status

APPLICATION_ID = 0x6F707364
"""``PRAGMA application_id`` of an opsdash state file ("opsd"): tells ours from foreign files."""
SCHEMA_VERSION = 1
_SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE checks (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    since REAL NOT NULL,
    fail_streak INTEGER NOT NULL,
    ok_streak INTEGER NOT NULL,
    recent TEXT NOT NULL,
    firing INTEGER NOT NULL,
    flapping INTEGER NOT NULL,
    alert_status TEXT,
    group_key TEXT,
    last_result TEXT
);
CREATE TABLE history (
    check_id TEXT NOT NULL,
    at REAL NOT NULL,
    status TEXT NOT NULL,
    summary TEXT NOT NULL,
    latency_ms REAL
);
CREATE INDEX history_check_at ON history (check_id, at);
CREATE INDEX history_at ON history (at);
CREATE TABLE groups (
    key TEXT PRIMARY KEY,
    cause TEXT NOT NULL,
    kind TEXT NOT NULL,
    summary TEXT NOT NULL,
    affected TEXT NOT NULL,
    notes TEXT NOT NULL,
    opened_at REAL NOT NULL,
    notified_status TEXT,
    last_notified REAL
);
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    target TEXT NOT NULL,
    kind TEXT NOT NULL,
    group_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt REAL NOT NULL DEFAULT 0,
    sending REAL,
    interrupted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE silences (
    id INTEGER PRIMARY KEY,
    matcher TEXT NOT NULL,
    reason TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    author TEXT NOT NULL
);
"""


_OUTBOX_COLUMNS = {
    "next_attempt": "REAL NOT NULL DEFAULT 0",
    "sending": "REAL",
    "interrupted": "INTEGER NOT NULL DEFAULT 0",
}
"""Outbox columns added after schema version 1 shipped: added in place to older files (a plain
``ADD COLUMN``; readers that do not know them are unaffected)."""

MAX_TIMESTAMP = 253_402_300_799.0
"""9999-12-31T23:59:59Z: the last moment a datetime can hold. A stored time past it (a silence
made by a version that did not cap durations) is read as this, never as an overflow."""


class StateFileError(Exception):
    """The state file cannot be used (and was not touched): unreadable, locked, or corrupt."""


# --- rows ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckState:
    """Where one check stands in the alerting state machine."""

    id: str
    status: Status
    since: float
    """When ``status`` began (seconds since the epoch)."""
    fail_streak: int
    ok_streak: int
    recent: str
    """The last statuses, one letter each (``o w c u``), oldest first: for flapping."""
    firing: bool
    flapping: bool
    alert_status: Status | None
    """The status the check fires with (its last failing status), while firing."""
    group_key: str | None
    """The alert group (incident) the check fired in; kept until it resolves."""
    last_result: str | None = None
    """The previous run's result as JSON, so that rates can be derived across runs."""


@dataclass(frozen=True, slots=True)
class Group:
    """An open alert: one incident and the firing checks it explains."""

    key: str
    cause: str
    kind: str
    summary: str
    affected: tuple[str, ...]
    notes: tuple[str, ...]
    opened_at: float
    notified_status: Status | None
    """The worst status a firing notification was sent for; ``None`` before the first one."""
    last_notified: float | None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A notification for one target, kept until that target accepted it."""

    id: int
    target: str
    kind: str
    group_key: str
    payload: dict[str, Any]
    created: float
    attempts: int
    last_error: str | None
    next_attempt: float = 0.0
    """Not to be tried again before this time (backoff after a failure)."""
    sending: float | None = None
    """When an attempt started that has no outcome yet: set only while a run delivers it, so
    at the start of a run it means the run that sent it died in flight."""
    interrupted: int = 0
    """How many runs died while delivering it (re-sent once, then given up)."""


@dataclass(frozen=True, slots=True)
class Silence:
    """Planned work: notifications about matching checks are held until ``expires``."""

    id: int
    matcher: str
    """A check id, a component name, a tag, or a glob over ids and components."""
    reason: str
    created: float
    expires: float
    author: str

    @property
    def expires_at(self) -> datetime:
        """``expires`` as a UTC datetime (capped at :data:`MAX_TIMESTAMP`)."""
        return datetime.fromtimestamp(min(self.expires, MAX_TIMESTAMP), UTC)


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One run of one check, as kept for ``opsdash history``."""

    check_id: str
    at: float
    status: Status
    summary: str
    latency_ms: float | None


# --- opening --------------------------------------------------------------------------------


def set_aside(path: Path) -> Path:
    """Rename ``path`` (and its WAL files) out of the way; the new name."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    counter = 1
    while aside.exists():
        counter += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}")
    os.replace(path, aside)
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            os.replace(companion, aside.with_name(aside.name + suffix))
    return aside


def _problem_with(path: Path) -> str | None:
    """Why ``path`` is not an opsdash state database, or ``None`` when it is one (or empty)."""
    with path.open("rb") as handle:
        header = handle.read(100)
    if not header:
        return None
    if not header.startswith(_SQLITE_MAGIC):
        return "it is not an SQLite database"
    try:
        connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            application_id = connection.execute("PRAGMA application_id").fetchone()[0]
            tables = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        return f"it cannot be read ({exc})"
    if application_id == 0 and tables == 0:
        return None
    if application_id != APPLICATION_ID:
        return "it is an SQLite database of another application"
    return None


def _connect(target: str, *, uri: bool = False) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN IMMEDIATE / COMMIT ourselves, so that every
    # transaction boundary is explicit.
    connection = sqlite3.connect(target, isolation_level=None, timeout=10.0, uri=uri)
    connection.execute("PRAGMA busy_timeout = 10000")
    return connection


def _initialise(connection: sqlite3.Connection) -> None:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        connection.execute(HEARTBEATS_TABLE)
        _add_outbox_columns(connection)
        return
    if version != 0:
        raise sqlite3.DatabaseError(f"unsupported state schema version {version}")
    connection.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have initialised it between our read and our lock.
        if connection.execute("PRAGMA user_version").fetchone()[0] == 0:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    connection.execute(statement)
            connection.execute(HEARTBEATS_TABLE)
            connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _add_outbox_columns(connection: sqlite3.Connection) -> None:
    """Give a state file written before the delivery bookkeeping its columns (idempotent)."""
    have = {row[1] for row in connection.execute("PRAGMA table_info(outbox)")}
    missing = [name for name in _OUTBOX_COLUMNS if name not in have]
    if not missing:
        return
    connection.execute("BEGIN IMMEDIATE")
    try:
        have = {row[1] for row in connection.execute("PRAGMA table_info(outbox)")}
        for name in missing:
            if name not in have:
                connection.execute(f"ALTER TABLE outbox ADD COLUMN {name} {_OUTBOX_COLUMNS[name]}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _open_writable(path: Path) -> Store:
    connection = _connect(str(path))
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable against a killed process in WAL mode (only power loss can drop
        # the last commits), and keeps a run off fsync's latency.
        connection.execute("PRAGMA synchronous = NORMAL")
        _initialise(connection)
    except BaseException:
        connection.close()
        raise
    return Store(connection)


def open_store(path: Path, *, report: Callable[[str], None]) -> Store:
    """The store at ``path``, created if missing. A corrupt or foreign file is renamed aside
    (reported through ``report``) and a fresh store is created in its place."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            problem = _problem_with(path)
            if problem is not None:
                aside = set_aside(path)
                report(f"the state file {path} is not usable ({problem}); moved it to {aside.name}")
    except OSError as exc:  # a read-only or unreadable directory: the file is left alone
        raise StateFileError(f"cannot use the state file {path}: {exc.strerror or exc}") from None
    try:
        return _open_writable(path)
    except sqlite3.OperationalError as exc:
        raise StateFileError(f"cannot open the state file {path}: {exc}") from None
    except sqlite3.DatabaseError as exc:
        aside = set_aside(path)
        report(f"the state file {path} is not usable ({exc}); moved it to {aside.name}")
        return _open_writable(path)


def open_readonly(path: Path) -> Store | None:
    """The store at ``path`` for reading only, or ``None`` when there is none (or it is not
    one of ours at this schema version). Never creates, changes or moves anything: for the
    dashboard and ``check``, so one connection checks what it is and then reads."""
    if not path.is_file():
        return None
    try:
        connection = _connect(f"{path.as_uri()}?mode=ro", uri=True)
    except sqlite3.DatabaseError:
        return None
    try:
        ours = (
            connection.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
            and connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        )
    except sqlite3.DatabaseError:  # not SQLite at all, or a damaged file
        ours = False
    if not ours:
        connection.close()
        return None
    return Store(connection)


def in_memory_copy(path: Path) -> Store:
    """A private in-memory copy of the store at ``path`` (empty if none): ``--dry-run`` works
    on it so that nothing it does can reach the file."""
    memory = _connect(":memory:")
    source = open_readonly(path)
    if source is not None:
        with source:
            source.connection.backup(memory)
    _initialise(memory)
    return Store(memory)


# --- the store ----------------------------------------------------------------------------


def _status(value: str | None) -> Status | None:
    return None if value is None else Status(value)


class Store:
    """Typed access to the state database. Use as a context manager (closes the file)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the database."""
        self.connection.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: ``BEGIN IMMEDIATE`` (takes the write lock now) ... ``COMMIT``."""
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    # checks

    def flapping(self) -> frozenset[str]:
        """The ids of the checks that flap now."""
        rows = self.connection.execute("SELECT id FROM checks WHERE flapping")
        return frozenset(row[0] for row in rows)

    def check_states(self) -> dict[str, CheckState]:
        """Every check's alerting state, by id."""
        rows = self.connection.execute(
            "SELECT id, status, since, fail_streak, ok_streak, recent, firing, flapping,"
            " alert_status, group_key, last_result FROM checks"
        )
        return {
            row[0]: CheckState(
                id=row[0],
                status=Status(row[1]),
                since=row[2],
                fail_streak=row[3],
                ok_streak=row[4],
                recent=row[5],
                firing=bool(row[6]),
                flapping=bool(row[7]),
                alert_status=_status(row[8]),
                group_key=row[9],
                last_result=row[10],
            )
            for row in rows
        }

    def save_check_states(self, states: Sequence[CheckState]) -> None:
        """Insert or replace these checks' states."""
        self.connection.executemany(
            "INSERT OR REPLACE INTO checks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    s.id,
                    s.status.value,
                    s.since,
                    s.fail_streak,
                    s.ok_streak,
                    s.recent,
                    int(s.firing),
                    int(s.flapping),
                    None if s.alert_status is None else s.alert_status.value,
                    s.group_key,
                    s.last_result,
                )
                for s in states
            ],
        )

    # history

    def add_history(self, rows: Sequence[HistoryRow]) -> None:
        """Record one run of each of these checks."""
        self.connection.executemany(
            "INSERT INTO history VALUES (?, ?, ?, ?, ?)",
            [(r.check_id, r.at, r.status.value, r.summary, r.latency_ms) for r in rows],
        )

    def purge_history(self, before: float) -> None:
        """Forget runs older than ``before`` (retention)."""
        self.connection.execute("DELETE FROM history WHERE at < ?", (before,))

    def history(self, check_id: str | None = None, *, since: float = 0.0) -> list[HistoryRow]:
        """Kept runs since ``since``, oldest first (one check's, or all)."""
        query = "SELECT check_id, at, status, summary, latency_ms FROM history WHERE at >= ?"
        params: tuple[Any, ...] = (since,)
        if check_id is not None:
            query += " AND check_id = ?"
            params += (check_id,)
        rows = self.connection.execute(query + " ORDER BY at, rowid", params)
        return [HistoryRow(r[0], r[1], Status(r[2]), r[3], r[4]) for r in rows]

    def uptime(self, *, since: float = 0.0) -> dict[str, tuple[int, int]]:
        """Per check: (ok runs, all runs) since ``since``."""
        rows = self.connection.execute(
            "SELECT check_id, sum(status = 'ok'), count(*) FROM history WHERE at >= ?"
            " GROUP BY check_id",
            (since,),
        )
        return {row[0]: (int(row[1]), int(row[2])) for row in rows}

    # groups

    def groups(self) -> dict[str, Group]:
        """The open alert groups, by key."""
        rows = self.connection.execute(
            "SELECT key, cause, kind, summary, affected, notes, opened_at, notified_status,"
            " last_notified FROM groups"
        )
        return {
            row[0]: Group(
                key=row[0],
                cause=row[1],
                kind=row[2],
                summary=row[3],
                affected=tuple(json.loads(row[4])),
                notes=tuple(json.loads(row[5])),
                opened_at=row[6],
                notified_status=_status(row[7]),
                last_notified=row[8],
            )
            for row in rows
        }

    def save_group(self, group: Group) -> None:
        """Insert or replace an open group."""
        self.connection.execute(
            "INSERT OR REPLACE INTO groups VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                group.key,
                group.cause,
                group.kind,
                group.summary,
                json.dumps(list(group.affected)),
                json.dumps(list(group.notes)),
                group.opened_at,
                None if group.notified_status is None else group.notified_status.value,
                group.last_notified,
            ),
        )

    def delete_group(self, key: str) -> None:
        """Close a group (it resolved)."""
        self.connection.execute("DELETE FROM groups WHERE key = ?", (key,))

    # outbox

    def enqueue(
        self, target: str, kind: str, group_key: str, payload: dict[str, Any], now: float
    ) -> None:
        """Keep a notification for ``target`` until it is delivered."""
        self.connection.execute(
            "INSERT INTO outbox (target, kind, group_key, payload, created) VALUES (?, ?, ?, ?, ?)",
            (target, kind, group_key, json.dumps(payload, ensure_ascii=False), now),
        )

    def outbox(self) -> list[OutboxItem]:
        """Every undelivered notification, oldest first."""
        rows = self.connection.execute(
            "SELECT id, target, kind, group_key, payload, created, attempts, last_error,"
            " next_attempt, sending, interrupted FROM outbox ORDER BY id"
        )
        return [OutboxItem(r[0], r[1], r[2], r[3], json.loads(r[4]), *r[5:]) for r in rows]

    def sending(self, item_id: int, now: float) -> None:
        """An attempt starts: counted and marked in flight *before* anything is sent
        (committed at once), so that a run killed during the delivery is known to the next."""
        self.connection.execute(
            "UPDATE outbox SET attempts = attempts + 1, sending = ? WHERE id = ?",
            (now, item_id),
        )

    def interrupted(self, item_id: int) -> None:
        """The run that was sending it died: one more interruption, no longer in flight."""
        self.connection.execute(
            "UPDATE outbox SET interrupted = interrupted + 1, sending = NULL WHERE id = ?",
            (item_id,),
        )

    def delivered(self, item_id: int) -> None:
        """The target accepted it (or it was given up): forget it (one atomic statement)."""
        self.connection.execute("DELETE FROM outbox WHERE id = ?", (item_id,))

    def failed(self, item_id: int, error: str, *, retry_at: float = 0.0) -> None:
        """The attempt failed: keep it for a later run, not before ``retry_at``."""
        self.connection.execute(
            "UPDATE outbox SET last_error = ?, sending = NULL, next_attempt = ? WHERE id = ?",
            (error, retry_at, item_id),
        )

    # heartbeats

    def record_heartbeat(self, beat: Heartbeat) -> None:
        """Keep ``beat`` as its check's last one (one atomic statement)."""
        self.connection.execute(
            "INSERT OR REPLACE INTO heartbeats VALUES (?, ?, ?, ?, ?)",
            (beat.check_id, beat.at, beat.status.value, beat.message, beat.source),
        )

    def heartbeat(self, check_id: str) -> Heartbeat | None:
        """The last beat of ``check_id``; ``None`` before the first."""
        return select_heartbeat(self.connection, check_id)

    # silences

    def add_silence(
        self, matcher: str, reason: str, *, now: float, duration: float, author: str
    ) -> Silence:
        """Silence ``matcher`` for ``duration`` seconds from ``now`` (at most until
        :data:`MAX_TIMESTAMP`: the CLI caps durations, this guards any other caller)."""
        duration = max(0.0, min(duration, MAX_TIMESTAMP - now))
        with self.transaction():
            cursor = self.connection.execute(
                "INSERT INTO silences (matcher, reason, created, expires, author)"
                " VALUES (?, ?, ?, ?, ?)",
                (matcher, reason, now, now + duration, author),
            )
        assert cursor.lastrowid is not None
        return Silence(cursor.lastrowid, matcher, reason, now, now + duration, author)

    def silences(self, *, now: float) -> list[Silence]:
        """The silences still in force at ``now``, soonest to expire first."""
        rows = self.connection.execute(
            "SELECT id, matcher, reason, created, expires, author FROM silences"
            " WHERE expires > ? ORDER BY expires, id",
            (now,),
        )
        return [Silence(*row) for row in rows]

    def clear_silences(self, matcher: str | None = None) -> int:
        """End silences now (those on ``matcher``, or all); how many ended."""
        with self.transaction():
            if matcher is None:
                cursor = self.connection.execute("DELETE FROM silences")
            else:
                cursor = self.connection.execute(
                    "DELETE FROM silences WHERE matcher = ? OR CAST(id AS TEXT) = ?",
                    (matcher, matcher.lstrip("#")),
                )
        return cursor.rowcount

    def purge_silences(self, now: float) -> None:
        """Forget expired silences (they stopped applying at their end time anyway)."""
        self.connection.execute("DELETE FROM silences WHERE expires <= ?", (now,))


class RunLock:
    """An exclusive, non-blocking ``flock`` on ``<state>.lock``: one alert run at a time.

    The kernel drops the lock when the process dies, SIGKILL included, so a killed run never
    leaves a stale lock behind. The file itself is never removed (removing lock files races).
    """

    def __init__(self, state_path: Path) -> None:
        self.path = state_path.with_name(state_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock; ``False`` when another process holds it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StateFileError(
                f"cannot create the lock file {self.path}: {exc.strerror or exc}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> str:
        """The pid written by the holder, if readable (for the message)."""
        with contextlib.suppress(OSError):
            return self.path.read_text().strip() or "?"
        return "?"

    def release(self) -> None:
        """Let the next run in."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
