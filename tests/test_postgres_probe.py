"""PostgreSQL checks against a real server started by the tests (``tests/servers.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import trustme

from opsdash.harness import run_probe
from opsdash.plan import CheckSpec, build_plan
from opsdash.probes.postgres import IndexRow, judge_indexes, judge_status
from opsdash.registry.model import PostgresDatastore, Registry
from opsdash.resources import Resources
from opsdash.results import CheckResult, ErrorType
from opsdash.status import Status
from tests.servers import PostgresServer

MIGRATION = Path(__file__).parent / "sql" / "migration_019.sql"
EXPECTED = {
    "payments": ["idx_payments_student_status_created"],
    "tutoring_sessions": [
        "idx_sessions_student_status_date_time",
        "idx_sessions_trainer_date",
        "idx_sessions_trainer_status",
    ],
    "trainer_allocations": [
        "idx_allocations_student_status_course",
        "idx_allocations_trainer_status",
    ],
    "student_course_purchases": ["idx_purchases_student_created"],
}


def specs(
    datastore: dict[str, Any], *, timeout: str = "3s", base_dir: Path | None = None
) -> dict[str, CheckSpec]:
    """The planned checks of one datastore named ``postgres``, by id (``.sql`` files relative
    to ``base_dir``, as to a registry file's directory)."""
    registry = Registry.from_data(
        {
            "version": 1,
            "platform": "test",
            "defaults": {"timeout": timeout},
            "datastores": {"postgres": {"kind": "postgres", **datastore}},
        }
    )
    if base_dir is not None:
        registry = registry.located_at(base_dir)
    return {spec.id: spec for spec in build_plan(registry)}


def shown(result: CheckResult) -> str:
    """Everything of a result a user could see, as one text."""
    return json.dumps(asdict(result), default=str)


@pytest.fixture
async def resources() -> AsyncIterator[Resources]:
    async with Resources() as shared:
        yield shared


@pytest.fixture
def platform_db(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database with migration 019 applied; its name."""
    name = f"platform_{uuid.uuid4().hex[:8]}"
    postgres_server.psql(f"CREATE DATABASE {name}")
    postgres_server.psql(MIGRATION.read_text(), database=name)
    yield name
    postgres_server.psql(f"DROP DATABASE {name} WITH (FORCE)")


async def opsdash_connections(server: PostgresServer) -> int:
    """Client connections opsdash holds on ``server`` (they carry application_name)."""
    connection = await asyncpg.connect(server.dsn)
    try:
        count = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'opsdash'"
        )
    finally:
        await connection.close()
    return int(count)


async def test_primary_summary_and_details(
    postgres_server: PostgresServer, resources: Resources
) -> None:
    spec = specs({"dsn": postgres_server.dsn})["postgres"]

    result = await run_probe(spec, resources)

    assert result.status is Status.OK, result.summary
    assert result.error is None
    assert result.summary.startswith("PostgreSQL 15.") or result.summary.startswith("PostgreSQL ")
    assert " primary; " in result.summary
    used, usable = result.details["connections_used"], result.details["connections_max"]
    assert f"{used}/{usable} connections" in result.summary
    assert usable == 100 - 3  # max_connections minus superuser_reserved_connections
    assert result.details["role"] == "primary"
    assert result.details["replication_lag_s"] is None
    assert result.details["long_transactions"] == 0
    assert result.details["ping_ms"] > 0


async def test_outage_turns_crit_then_recovers_without_leaking(
    postgres_server: PostgresServer, resources: Resources
) -> None:
    spec = specs({"dsn": postgres_server.dsn}, timeout="2s")["postgres"]
    assert (await run_probe(spec, resources)).status is Status.OK

    with postgres_server.outage():
        down = await run_probe(spec, resources)
        assert down.status is Status.CRIT
        assert down.error is not None and down.error.type is ErrorType.REFUSED
        assert down.summary == "connection refused"
        assert down.latency_ms is not None and down.latency_ms < 1000

    # Same Resources, no restart of anything: the pool reconnects by itself.
    results = [await run_probe(spec, resources) for _ in range(5)]
    assert [r.status for r in results] == [Status.OK] * 5
    assert await opsdash_connections(postgres_server) == 1


async def test_wrong_password_is_auth_and_never_shown(
    postgres_server: PostgresServer, resources: Resources
) -> None:
    postgres_server.psql(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'monitor') THEN "
        "CREATE ROLE monitor LOGIN PASSWORD 'Right-Horse-42'; END IF; END $$"
    )
    good = specs({"dsn": postgres_server.dsn_for("monitor", "Right-Horse-42")})["postgres"]
    bad = specs({"dsn": postgres_server.dsn_for("monitor", "Wrong-Battery-7")})["postgres"]

    ok = await run_probe(good, resources)
    async with Resources() as fresh:  # pools are per datastore name: another process, really
        failed = await run_probe(bad, fresh)

    assert ok.status is Status.OK, ok.summary
    assert failed.status is Status.CRIT
    assert failed.error is not None and failed.error.type is ErrorType.AUTH
    assert failed.summary == "authentication failed"
    assert "Right-Horse-42" not in shown(ok)
    assert "Wrong-Battery-7" not in shown(failed)
    assert failed.target == f"postgresql://monitor:***@127.0.0.1:{postgres_server.port}/postgres"


async def test_long_transaction_is_counted(
    postgres_server: PostgresServer, resources: Resources
) -> None:
    spec = specs({"dsn": postgres_server.dsn, "long_transactions": {"age": "0s", "warn": 1}})[
        "postgres"
    ]
    other = await asyncpg.connect(postgres_server.dsn)
    try:
        transaction = other.transaction()
        await transaction.start()
        await other.fetchval("SELECT 1")  # xact_start is set by the first statement
        result = await run_probe(spec, resources)
        await transaction.rollback()
    finally:
        await other.close()

    assert result.status is Status.WARN
    assert result.details["long_transactions"] == 1
    assert "1 transaction open > 0ms" in result.summary


async def test_index_audit_names_missing_and_invalid(
    postgres_server: PostgresServer, platform_db: str, resources: Resources
) -> None:
    dsn = postgres_server.dsn_for("postgres", database=platform_db)
    spec = specs({"dsn": dsn, "expect_indexes": EXPECTED})["postgres.indexes"]

    healthy = await run_probe(spec, resources)
    assert healthy.status is Status.OK
    assert healthy.summary == "7 expected indexes present and valid"
    assert {(i["table"], i["index"]) for i in healthy.details["indexes"]} == {
        (table, index) for table, names in EXPECTED.items() for index in names
    }
    assert all(isinstance(i["scans"], int) for i in healthy.details["indexes"])

    postgres_server.psql("DROP INDEX idx_payments_student_status_created", database=platform_db)
    postgres_server.psql(
        "UPDATE pg_index SET indisvalid = false "
        "WHERE indexrelid = 'idx_sessions_trainer_date'::regclass",
        database=platform_db,
    )
    broken = await run_probe(spec, resources)

    assert broken.status is Status.WARN
    assert broken.summary == (
        "missing idx_payments_student_status_created; invalid idx_sessions_trainer_date"
    )
    assert broken.details["missing"] == ["idx_payments_student_status_created"]
    assert broken.details["invalid"] == ["idx_sessions_trainer_date"]

    strict = specs({"dsn": dsn, "expect_indexes": EXPECTED, "missing_index": "crit"})
    assert (await run_probe(strict["postgres.indexes"], resources)).status is Status.CRIT


async def test_index_audit_names_a_missing_table(
    postgres_server: PostgresServer, resources: Resources
) -> None:
    spec = specs({"dsn": postgres_server.dsn, "expect_indexes": {"payments": ["idx_x"]}})

    result = await run_probe(spec["postgres.indexes"], resources)

    assert result.status is Status.WARN
    assert result.summary == "missing table payments"


async def test_sql_probe_is_judged_by_its_thresholds(
    postgres_server: PostgresServer, platform_db: str, resources: Resources, tmp_path: Path
) -> None:
    query = tmp_path / "stale.sql"
    query.write_text(
        (Path(__file__).parents[1] / "checks" / "pending_payments_stale.sql").read_text()
    )
    postgres_server.psql(
        "INSERT INTO payments (student_id, status, created_at) SELECT gen_random_uuid(), "
        "'pending', now() - interval '1 hour' FROM generate_series(1, 3)",
        database=platform_db,
    )
    dsn = postgres_server.dsn_for("postgres", database=platform_db)
    checks = {
        "stale_payments": {"file": query.name, "warn": 1, "crit": 20},
        "broken": {"file": "nope.sql"},
    }
    plan = specs({"dsn": dsn, "sql_checks": checks}, base_dir=tmp_path)

    stale = await run_probe(plan["postgres.stale_payments"], resources)
    broken = await run_probe(plan["postgres.broken"], resources)

    assert stale.status is Status.WARN
    assert stale.summary == "stale_payments = 3 (>= 1)"
    assert stale.details["value"] == 3
    assert broken.status is Status.UNKNOWN
    assert broken.error is not None and broken.error.type is ErrorType.CONFIG
    assert "nope.sql" in broken.summary


async def test_sql_probe_cannot_write(
    postgres_server: PostgresServer, platform_db: str, resources: Resources, tmp_path: Path
) -> None:
    query = tmp_path / "write.sql"
    query.write_text("DELETE FROM payments RETURNING 1")
    postgres_server.psql(
        "INSERT INTO payments (student_id, status) VALUES (gen_random_uuid(), 'paid')",
        database=platform_db,
    )
    dsn = postgres_server.dsn_for("postgres", database=platform_db)
    plan = specs({"dsn": dsn, "sql_checks": {"evil": {"file": query.name}}}, base_dir=tmp_path)

    result = await run_probe(plan["postgres.evil"], resources)

    assert result.status is Status.UNKNOWN
    assert result.summary == "evil: query failed: cannot execute DELETE in a read-only transaction"
    assert postgres_server.psql("SELECT count(*) FROM payments", database=platform_db) == "1"


async def test_server_that_never_answers_costs_the_deadline_and_the_pool_is_renewed(
    resources: Resources,
) -> None:
    # A listening socket nobody accepts from: the TCP handshake completes, nothing answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        spec = specs({"dsn": f"postgresql://postgres@127.0.0.1:{port}/x"}, timeout="300ms")

        loop = asyncio.get_running_loop()
        start = loop.time()
        result = await run_probe(spec["postgres"], resources)
        elapsed = loop.time() - start

    assert result.status is Status.CRIT
    assert result.error is not None and result.error.type is ErrorType.TIMEOUT
    assert result.summary == "no answer within 300ms"
    assert elapsed < 0.6
    # The pool whose call was cut is gone: the next run starts a fresh one.
    assert "postgres:postgres" not in resources._shared


def test_judge_status_replica_lag_and_connections() -> None:
    datastore = PostgresDatastore(kind="postgres", dsn="postgresql://x@h/db")
    row = {
        "version": "16.4 (Debian 16.4-1)",
        "is_replica": True,
        "lag": 42.4,
        "connections": 90,
        "max_connections": 100,
        "reserved": 3,
        "long_transactions": 0,
    }

    observation = judge_status(datastore, 0.4, row)

    # 90/97 = 92.8%: warn (80%); lag 42s: warn (30s)
    assert observation.status is Status.WARN
    assert observation.summary == "PostgreSQL 16.4 replica (lag 42s); 90/97 connections"
    assert observation.details["connections_pct"] == 92.8
    assert observation.details["replication_lag_s"] == 42.4


def test_judge_indexes_pure() -> None:
    datastore = PostgresDatastore(
        kind="postgres", dsn="postgresql://x@h/db", expect_indexes={"t": ("a", "b")}
    )

    observation = judge_indexes(datastore, [IndexRow("t", "a", True, 12)])

    assert observation.summary == "missing b"
    assert observation.details["indexes"][0] == {
        "table": "t",
        "index": "a",
        "present": True,
        "valid": True,
        "scans": 12,
    }


async def test_untrusted_server_certificate_is_a_tls_error(
    resources: Resources, tmp_path: Path
) -> None:
    # A server that accepts PostgreSQL's SSLRequest and presents a certificate from one CA,
    # while the DSN trusts another.
    server_ca, client_ca = trustme.CA(), trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ca.issue_cert("127.0.0.1").configure_cert(context)
    client_ca.cert_pem.write_to_path(str(tmp_path / "root.crt"))

    async def accept_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(8)  # SSLRequest
        writer.write(b"S")
        await writer.drain()
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await writer.start_tls(context)
        writer.close()

    server = await asyncio.start_server(accept_tls, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        dsn = (
            f"postgresql://monitor:Tls-Secret-3@127.0.0.1:{port}/x"
            f"?sslmode=verify-full&sslrootcert={tmp_path / 'root.crt'}"
        )
        result = await run_probe(specs({"dsn": dsn})["postgres"], resources)

    assert result.status is Status.CRIT
    assert result.error is not None and result.error.type is ErrorType.TLS
    assert result.summary.startswith("TLS error: ")
    assert "Tls-Secret-3" not in shown(result)


async def test_a_sql_probe_that_cannot_log_in_is_auth_not_config(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    postgres_server.psql(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'monitor') THEN "
        "CREATE ROLE monitor LOGIN PASSWORD 'Right-Horse-42'; END IF; END $$"
    )
    query = tmp_path / "one.sql"
    query.write_text("SELECT 1")
    dsn = postgres_server.dsn_for("monitor", "Wrong-Battery-7")
    plan = specs({"dsn": dsn, "sql_checks": {"one": {"file": query.name}}}, base_dir=tmp_path)

    async with Resources() as fresh:
        result = await run_probe(plan["postgres.one"], fresh)

    assert result.status is Status.CRIT
    assert result.error is not None
    assert result.error.type is ErrorType.AUTH


async def test_a_query_cut_by_its_deadline_leaves_other_checks_on_the_pool_alone(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    slow = tmp_path / "slow.sql"
    slow.write_text("SELECT count(*) FROM pg_sleep(5)")
    registry = Registry.from_data(
        {
            "version": 1,
            "platform": "test",
            "datastores": {
                "postgres": {
                    "kind": "postgres",
                    "dsn": postgres_server.dsn,
                    "timeout": "1s",
                    "sql_checks": {"slow": {"file": slow.name}},
                }
            },
            "workers": {
                "w": {
                    "timeout": "4s",
                    "dlq": {
                        "source": "sql",
                        "datastore": "postgres",
                        "query": "SELECT count(*) FROM pg_sleep(1.5)",
                    },
                }
            },
        }
    ).located_at(tmp_path)
    plan = {spec.id: spec for spec in build_plan(registry)}

    async with Resources() as shared:
        cut, dlq = await asyncio.gather(
            run_probe(plan["postgres.slow"], shared), run_probe(plan["w.dlq"], shared)
        )

    assert cut.error is not None
    assert cut.error.type is ErrorType.TIMEOUT
    assert dlq.error is None, dlq.summary  # its query outlived the other's cut, on the same pool
    assert dlq.details["depth"] == 1
