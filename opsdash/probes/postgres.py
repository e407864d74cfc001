"""PostgreSQL checks (asyncpg): the server itself, the expected indexes, and ``.sql`` probes.

Three kinds of check per ``kind: postgres`` datastore, all through the datastore's one shared
pool (:func:`opsdash.probes.clients.postgres_pool`):

- ``<name>``: ``SELECT 1`` round trip, version, primary or replica (and replay lag), client
  connections against ``max_connections`` minus the reserved slots, transactions open longer
  than ``long_transactions.age``;
- ``<name>.indexes`` (when ``expect_indexes`` is set): each expected index present and valid
  (``pg_index.indisvalid``: a failed ``CREATE INDEX CONCURRENTLY`` leaves an invalid one that
  the planner ignores), with its scan count;
- ``<name>.<check>`` for each ``sql_checks`` entry: a query returning one number, judged by its
  thresholds, run in a read-only transaction.

The role opsdash connects as needs ``pg_monitor`` (or ``pg_read_all_stats``) to see other
sessions' ``xact_start``; without it long transactions of other roles are not counted.

The probes only make their calls; the harness owns the deadline and the error mapping. A pool
whose call was cut by the deadline is discarded, so that a wedged connection cannot make every
later run time out as well.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from opsdash.figures import IndexEntry, PostgresFigures, PostgresIndexFigures, SqlValueFigures
from opsdash.probe_plan import Planned, bind
from opsdash.probes.clients import with_postgres_connection
from opsdash.records import dataclass
from opsdash.redact import redact_url
from opsdash.registry.files import (
    DEFAULT_MAX_FILE_SIZE,
    Unreadable,
    confined,
    max_file_size,
    read_bytes,
)
from opsdash.registry.model import PostgresDatastore, Registry, SqlProbe
from opsdash.registry.units import format_duration
from opsdash.resources import Resources
from opsdash.results import ErrorType, Observation, ProbeFailure
from opsdash.status import Status, worst

T = TypeVar("T")

KIND = "postgres"

# One round trip for every figure of the main check. Lag per the reference: 0 on a primary and
# on a replica that has replayed all it received (an idle primary sends nothing, so the age of
# the last replayed transaction would grow forever).
_STATUS_SQL = """
SELECT current_setting('server_version') AS version,
       pg_is_in_recovery() AS is_replica,
       CASE WHEN NOT pg_is_in_recovery() THEN 0
            WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE GREATEST(0, EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()))
       END::float8 AS lag,
       (SELECT count(*) FROM pg_stat_activity
         WHERE backend_type = 'client backend')::int AS connections,
       current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int
         + COALESCE(current_setting('reserved_connections', true)::int, 0) AS reserved,
       (SELECT count(*) FROM pg_stat_activity
         WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
           AND xact_start < now() - make_interval(secs => $1))::int AS long_transactions
"""

# Every index of each named table (``to_regclass`` resolves schema-qualified names and the
# search path, NULL for a missing table), with validity and scans since the stats reset.
_INDEXES_SQL = """
SELECT w.name AS table_name,
       t.oid IS NOT NULL AS table_exists,
       i.relname AS index_name,
       x.indisvalid AS valid,
       s.idx_scan AS scans
  FROM unnest($1::text[]) AS w(name)
  LEFT JOIN pg_class t ON t.oid = to_regclass(w.name)
  LEFT JOIN pg_index x ON x.indrelid = t.oid
  LEFT JOIN pg_class i ON i.oid = x.indexrelid
  LEFT JOIN pg_stat_all_indexes s ON s.indexrelid = x.indexrelid
"""


def plan(
    name: str,
    datastore: PostgresDatastore,
    registry: Registry,
) -> Iterator[Planned]:
    """The checks of one postgres datastore: the server, its indexes, its ``.sql`` probes.

    ``.sql`` files are read here, once, relative to the registry's directory.
    """
    target = redact_url(datastore.dsn)  # asyncpg itself is imported with this module
    yield Planned(None, KIND, target, bind(probe_postgres, name, datastore), heavy_start=True)
    if datastore.expect_indexes:
        probe = bind(probe_indexes, name, datastore)
        yield Planned("indexes", KIND, target, probe, heavy_start=True)
    for check, sql_probe in datastore.sql_checks.items():
        query = load_sql(sql_probe, registry.base_dir)
        probe = bind(probe_sql, name, datastore, check, query)
        yield Planned(check, KIND, target, probe, heavy_start=True)


# --- the server -------------------------------------------------------------------------


async def probe_postgres(
    resources: Resources, name: str, datastore: PostgresDatastore
) -> Observation:
    """``SELECT 1``, then version, role, lag, connections and long transactions in one query."""

    async def work(connection: asyncpg.Connection) -> tuple[float, asyncpg.Record]:
        start = time.perf_counter()
        await connection.fetchval("SELECT 1")
        ping_ms = (time.perf_counter() - start) * 1000.0
        row = await connection.fetchrow(_STATUS_SQL, datastore.long_transactions.age)
        assert row is not None
        return ping_ms, row

    ping_ms, row = await with_postgres_connection(resources, name, datastore, work)
    return judge_status(datastore, ping_ms, dict(row))


def judge_status(
    datastore: PostgresDatastore, ping_ms: float, row: Mapping[str, Any]
) -> Observation:
    """The verdict on the figures of :data:`_STATUS_SQL` (a pure function, for tests)."""
    version = str(row["version"]).split()[0]
    is_replica = bool(row["is_replica"])
    used = int(row["connections"])
    usable = max(int(row["max_connections"]) - int(row["reserved"]), 1)
    pct = round(used * 100.0 / usable, 1)
    long_count = int(row["long_transactions"])
    lag = float(row["lag"]) if is_replica else None
    long_limits = datastore.long_transactions

    connections_status = datastore.connections.judge(pct)
    long_status = long_limits.judge(long_count)
    lag_status = datastore.replication_lag.judge(lag)

    parts = [f"PostgreSQL {version} {'replica' if is_replica else 'primary'}"]
    if lag is not None:
        parts[0] += f" (lag {lag:.0f}s)"
    parts.append(f"{used}/{usable} connections")
    if long_count:
        parts.append(
            f"{long_count} transaction{'s' if long_count != 1 else ''} open"
            f" > {format_duration(long_limits.age)}"
        )
    figures = PostgresFigures(
        version=version,
        role="replica" if is_replica else "primary",
        ping_ms=round(ping_ms, 2),
        connections_used=used,
        connections_max=usable,
        connections_pct=pct,
        long_transactions=long_count,
        long_transaction_age_s=long_limits.age,
        replication_lag_s=None if lag is None else round(lag, 1),
    )
    return Observation(
        worst((connections_status, long_status, lag_status)), "; ".join(parts), figures
    )


# --- indexes ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IndexRow:
    """One index as the catalogue reports it."""

    table: str
    index: str
    valid: bool
    scans: int | None


async def probe_indexes(
    resources: Resources, name: str, datastore: PostgresDatastore
) -> Observation:
    """Every expected index present and valid on its table; scans in the details."""
    tables = sorted(datastore.expect_indexes)

    async def work(connection: asyncpg.Connection) -> list[asyncpg.Record]:
        return list(await connection.fetch(_INDEXES_SQL, tables))

    rows = await with_postgres_connection(resources, name, datastore, work)
    missing_tables = sorted({r["table_name"] for r in rows if not r["table_exists"]})
    found = [
        IndexRow(r["table_name"], r["index_name"], bool(r["valid"]), r["scans"])
        for r in rows
        if r["index_name"] is not None
    ]
    return judge_indexes(datastore, found, missing_tables)


def judge_indexes(
    datastore: PostgresDatastore, found: Sequence[IndexRow], missing_tables: Sequence[str] = ()
) -> Observation:
    """Compare the catalogue's indexes with ``expect_indexes`` (a pure function, for tests)."""
    by_key = {(row.table, row.index): row for row in found}
    entries: list[IndexEntry] = []
    problems = [f"missing table {table}" for table in missing_tables]
    missing: list[str] = []
    invalid: list[str] = []
    for table, indexes in datastore.expect_indexes.items():
        for index in indexes:
            row = by_key.get((table, index))
            if row is None:
                missing.append(index)
                if table not in missing_tables:  # else the table's absence says it, once
                    problems.append(f"missing {index}")
            elif not row.valid:
                invalid.append(index)
            entries.append(
                IndexEntry(
                    table=table,
                    index=index,
                    present=row is not None,
                    valid=row is not None and row.valid,
                    scans=None if row is None else row.scans,
                )
            )
    problems += [f"invalid {index}" for index in invalid]
    figures = PostgresIndexFigures(tuple(entries), tuple(missing), tuple(invalid))
    if not problems:
        return Observation(Status.OK, f"{len(entries)} expected indexes present and valid", figures)
    status = Status.CRIT if datastore.missing_index == "crit" else Status.WARN
    return Observation(status, "; ".join(problems), figures)


# --- .sql probes ------------------------------------------------------------------------


def load_sql(sql_probe: SqlProbe, base_dir: Path) -> str | ProbeFailure:
    """The query of a ``.sql`` probe (its file, inside ``base_dir``'s tree), or the config
    failure to report at each run.

    The file is read once, only when it is a regular file within the registry's tree (symlinks
    resolved) and under the size cap (:mod:`opsdash.registry.files`).
    """
    try:
        limit = max_file_size(os.environ)
    except ValueError:
        limit = DEFAULT_MAX_FILE_SIZE  # the loader reported the bad value already
    try:
        path = confined(base_dir, sql_probe.file)
        query = read_bytes(path, limit=limit).decode("utf-8").strip().rstrip(";")
    except FileNotFoundError:
        return ProbeFailure(ErrorType.CONFIG, f"cannot read {sql_probe.file}: no such file")
    except Unreadable as exc:
        return ProbeFailure(ErrorType.CONFIG, f"{sql_probe.file}: {exc}")
    except UnicodeDecodeError:
        return ProbeFailure(ErrorType.CONFIG, f"{sql_probe.file} is not UTF-8 text")
    if not query:
        return ProbeFailure(ErrorType.CONFIG, f"{sql_probe.file} holds no query")
    return query


async def probe_sql(
    resources: Resources,
    name: str,
    datastore: PostgresDatastore,
    check: str,
    query: str | ProbeFailure,
) -> Observation:
    """Run a ``.sql`` probe read-only and judge the one number it returns."""
    if isinstance(query, ProbeFailure):
        raise query
    sql_probe = datastore.sql_checks[check]

    async def work(connection: asyncpg.Connection) -> object:
        try:
            async with connection.transaction(readonly=True):
                return await connection.fetchval(query)
        except asyncpg.PostgresConnectionError:
            raise
        except asyncpg.PostgresError as exc:
            # Connected, and the server refused the query (syntax, a write, privileges): the
            # check's configuration is wrong, the datastore is not down. (Failing to connect —
            # a wrong password, too many connections — is not the query's fault.)
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ProbeFailure(ErrorType.CONFIG, f"{check}: query failed: {first_line}") from exc

    value = await with_postgres_connection(resources, name, datastore, work)
    return judge_number(check, sql_probe, value)


def judge_number(check: str, sql_probe: SqlProbe, value: object) -> Observation:
    """The verdict on what a ``.sql`` probe returned (one number, or unknown)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        shown = "no row" if value is None else f"{type(value).__name__} {value!r:.40}"
        return Observation(Status.UNKNOWN, f"{check}: expected one number; got {shown}")
    number = float(value)
    status = sql_probe.judge(number)
    limit = sql_probe.crit if status is Status.CRIT else sql_probe.warn
    summary = f"{check} = {number:g}"
    if status is not Status.OK and limit is not None:
        summary += f" (>= {limit:g})"
    return Observation(status, summary, SqlValueFigures(number))
