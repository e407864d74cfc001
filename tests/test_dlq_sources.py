"""DLQ depth from SQL (real PostgreSQL), MongoDB (mockupdb) and HTTP JSON (loopback server),
and the growth verdicts that need history."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from mockupdb import MockupDB

from opsdash.figures import DlqFigures
from opsdash.harness import run_probe
from opsdash.plan import CheckSpec, build_plan
from opsdash.registry.model import Registry
from opsdash.resources import Resources
from opsdash.results import CheckResult, ErrorType
from opsdash.status import Status
from tests.loopback import Platform
from tests.servers import PostgresServer, free_port

Route = tuple[int, str, bytes]


@pytest.fixture
async def http_server() -> AsyncIterator[Callable[[Mapping[str, Route]], Awaitable[str]]]:
    """Serve fixed answers on loopback: ``base = await serve({"/path": (200, type, body)})``."""
    platform = Platform()

    async def serve(routes: Mapping[str, Route]) -> str:
        return platform.add(dict(routes))

    yield serve
    platform.close()


def make_registry(dlq: dict[str, Any], datastores: dict[str, Any] | None = None) -> Registry:
    return Registry.from_data(
        {
            "version": 1,
            "platform": "test",
            "datastores": datastores or {},
            "workers": {"w": {"dlq": dlq}},
        }
    )


def dlq_spec(registry: Registry) -> CheckSpec:
    return next(spec for spec in build_plan(registry) if spec.id == "w.dlq")


async def check(registry: Registry, resources: Resources | None = None) -> CheckResult:
    spec = dlq_spec(registry)
    async with Resources() as own:
        result = await run_probe(spec, resources or own)
    assert spec.derive is not None
    return spec.derive(result, [])


# --- sql --------------------------------------------------------------------------------


async def test_sql_query_counts_dead_letters(postgres_server: PostgresServer) -> None:
    table = f"dead_letters_{uuid.uuid4().hex[:8]}"
    postgres_server.psql(
        f"CREATE TABLE {table} (id serial, resolved boolean);"
        f"INSERT INTO {table} (resolved) SELECT i % 3 = 0 FROM generate_series(1, 9) i;"
    )
    registry = make_registry(
        {
            "source": "sql",
            "datastore": "pg",
            "query": f"SELECT count(*) FROM {table} WHERE NOT resolved",
        },
        {"pg": {"kind": "postgres", "dsn": postgres_server.dsn}},
    )
    result = await check(registry)
    assert result.details["depth"] == 6
    assert result.status is Status.WARN
    assert result.summary.startswith("6 dead letters")


async def test_sql_query_runs_read_only(postgres_server: PostgresServer) -> None:
    table = f"guarded_{uuid.uuid4().hex[:8]}"
    postgres_server.psql(f"CREATE TABLE {table} (id int); INSERT INTO {table} VALUES (1)")
    registry = make_registry(
        {"source": "sql", "datastore": "pg", "query": f"DELETE FROM {table} RETURNING 1"},
        {"pg": {"kind": "postgres", "dsn": postgres_server.dsn}},
    )
    result = await check(registry)
    assert result.status is Status.UNKNOWN
    assert result.error is not None and result.error.type is ErrorType.CONFIG
    assert "read-only" in result.summary
    assert postgres_server.psql(f"SELECT count(*) FROM {table}") == "1"  # nothing deleted


async def test_sql_query_naming_a_missing_table_is_a_config_problem(
    postgres_server: PostgresServer,
) -> None:
    registry = make_registry(
        {"source": "sql", "datastore": "pg", "query": "SELECT count(*) FROM no_such_table"},
        {"pg": {"kind": "postgres", "dsn": postgres_server.dsn}},
    )
    result = await check(registry)
    assert result.status is Status.UNKNOWN
    assert result.error is not None and result.error.type is ErrorType.CONFIG
    assert "no_such_table" in result.summary


async def test_sql_query_returning_text_is_unknown(postgres_server: PostgresServer) -> None:
    registry = make_registry(
        {"source": "sql", "datastore": "pg", "query": "SELECT 'many'"},
        {"pg": {"kind": "postgres", "dsn": postgres_server.dsn}},
    )
    result = await check(registry)
    assert result.status is Status.UNKNOWN
    assert result.summary == "the DLQ query's result is 'many', not a number"


@pytest.mark.parametrize(("value", "shown"), [("-3", "-3"), ("2.5::float8", "2.5")])
async def test_sql_query_returning_no_count_is_unknown_and_says_why(
    postgres_server: PostgresServer, value: str, shown: str
) -> None:
    registry = make_registry(
        {"source": "sql", "datastore": "pg", "query": f"SELECT {value}"},
        {"pg": {"kind": "postgres", "dsn": postgres_server.dsn}},
    )
    result = await check(registry)
    assert result.status is Status.UNKNOWN
    assert result.summary == f"the DLQ query's result is {shown}, not a count"


# --- mongo ------------------------------------------------------------------------------


@pytest.fixture
def mongo() -> Any:
    server = MockupDB(auto_ismaster={"maxWireVersion": 21})
    server.seen = []

    def respond(request: Any) -> Any:
        if "aggregate" not in request.doc:
            return False
        server.seen.append(request.doc)
        batch = [{"_id": 1, "n": 7}]
        return request.reply(cursor={"id": 0, "firstBatch": batch, "ns": "platform.dead"})

    server.autoresponds(respond)
    server.run()
    yield server
    server.stop()


async def test_mongo_counts_documents_matching_the_filter(mongo: Any) -> None:
    registry = make_registry(
        {
            "source": "mongo",
            "datastore": "mongo",
            "collection": "dead",
            "filter": {"status": "dead"},
            "depth": {"warn": 5, "crit": 50},
        },
        {"mongo": {"kind": "mongo", "uri": f"mongodb://127.0.0.1:{mongo.port}/platform"}},
    )
    result = await check(registry)
    assert result.details["depth"] == 7
    assert result.status is Status.WARN
    (command,) = mongo.seen
    assert command["aggregate"] == "dead"
    assert command["$db"] == "platform"
    assert command["pipeline"][0] == {"$match": {"status": "dead"}}


async def test_mongo_without_a_database_says_where_to_name_one() -> None:
    # Said before any connection: nothing listens on the port (an attempt would be "refused").
    registry = make_registry(
        {"source": "mongo", "datastore": "mongo", "collection": "dead"},
        {"mongo": {"kind": "mongo", "uri": f"mongodb://127.0.0.1:{free_port()}"}},
    )
    result = await check(registry)
    assert result.status is Status.UNKNOWN
    assert result.summary == "no database: set dlq.database or name one in the URI"


# --- http-json --------------------------------------------------------------------------


async def test_http_json_reads_a_dotted_path(http_server: Any) -> None:
    body = json.dumps({"queues": [{"name": "dlq", "stats": {"depth": 12}}]}).encode()
    base = await http_server({"/stats": (200, "application/json", body)})
    registry = make_registry(
        {"source": "http-json", "url": f"{base}/stats", "path": "queues.0.stats.depth"}
    )
    result = await check(registry)
    assert result.details["depth"] == 12
    assert result.status is Status.WARN


@pytest.mark.parametrize(
    ("route", "summary"),
    [
        ((200, "application/json", b'{"queues": []}'), "no 'queues.0' in the JSON answer"),
        ((200, "text/html", b"<html>oops</html>"), "answer is not JSON: '<html>oops</html>'"),
        (
            (200, "application/json", b'{"queues": [{"stats": {"depth": "lots"}}]}'),
            "queues.0.stats.depth is 'lots', not a number",
        ),
        (
            (200, "application/json", b'{"queues": [{"stats": {"depth": 2.5}}]}'),
            "queues.0.stats.depth is 2.5, not a count",
        ),
    ],
)
async def test_http_json_garbage_is_unknown_with_a_plain_reason(
    http_server: Any, route: Route, summary: str
) -> None:
    base = await http_server({"/stats": route})
    registry = make_registry(
        {"source": "http-json", "url": f"{base}/stats", "path": "queues.0.stats.depth"}
    )
    result = await check(registry)
    assert result.status is Status.UNKNOWN
    assert result.summary == summary
    assert result.error is None


async def test_http_json_error_status_is_crit(http_server: Any) -> None:
    base = await http_server({"/stats": (503, "text/plain", b"busy")})
    registry = make_registry({"source": "http-json", "url": f"{base}/stats", "path": "depth"})
    result = await check(registry)
    assert result.status is Status.CRIT
    assert result.summary == "503 Service Unavailable instead of the JSON"


async def test_http_json_body_over_the_cap_is_not_read() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"[" + b"1," * 100_000 + b"1]")

    registry = make_registry({"source": "http-json", "url": "http://127.0.0.1:9/big", "path": "0"})
    async with Resources(http_transport=httpx.MockTransport(handler)) as resources:
        result = await check(registry, resources)
    assert result.status is Status.UNKNOWN
    assert result.summary == "JSON larger than 65536 bytes; not read"


# --- growth from history ----------------------------------------------------------------


def sample(spec: CheckSpec, depth: int, at: float) -> CheckResult:
    """A stored result as the probe would have produced it at time ``at``."""
    figures = DlqFigures("redis-list", depth, at)
    return CheckResult(
        id=spec.id, component=spec.component, check=spec.check, kind=spec.kind,
        status=Status.WARN if depth else Status.OK, summary=f"{depth} dead letters",
        latency_ms=1.0, target=spec.target, figures=figures, error=None,
        started_at=datetime.fromtimestamp(at, UTC),
    )  # fmt: skip


GROWTH = {
    "source": "http-json",
    "url": "http://127.0.0.1:9/x",
    "path": "d",
    "depth": {"warn": 1, "crit": 100},
    "growth": {"warn": "1/min", "crit": "10/min"},
}


def test_growth_per_minute_and_time_to_crit_from_history() -> None:
    spec = dlq_spec(make_registry(GROWTH))
    assert spec.derive is not None
    now = time.time()
    history = [sample(spec, 10, now - 240), sample(spec, 14, now - 120)]
    result = spec.derive(sample(spec, 20, now), history)
    assert result.details["growth_per_min"] == pytest.approx(2.5)
    # 80 more to go at 2.5 a minute: 32 minutes.
    assert result.details["eta_crit_s"] == pytest.approx(1920)
    assert result.details["window_s"] == pytest.approx(240)
    assert result.status is Status.WARN
    assert result.summary == "20 dead letters (warn at 1); +2.5/min; crit in ~32m"


def test_fast_growth_is_crit_even_while_the_depth_is_low() -> None:
    spec = dlq_spec(make_registry(GROWTH))
    assert spec.derive is not None
    now = time.time()
    result = spec.derive(sample(spec, 30, now), [sample(spec, 0, now - 60)])
    assert result.status is Status.CRIT
    assert result.details["growth_per_min"] == pytest.approx(30)


def test_a_draining_dlq_shows_negative_growth_and_no_eta() -> None:
    spec = dlq_spec(make_registry(GROWTH))
    assert spec.derive is not None
    now = time.time()
    result = spec.derive(sample(spec, 5, now), [sample(spec, 25, now - 120)])
    assert result.details["growth_per_min"] == pytest.approx(-10)
    assert result.details["eta_crit_s"] is None
    assert "-10/min" in result.summary
    assert result.status is Status.WARN  # the depth alone still warns


def test_growth_window_ignores_old_and_failed_samples() -> None:
    spec = dlq_spec(make_registry(GROWTH))
    assert spec.derive is not None
    now = time.time()
    failed = replace(
        sample(spec, 0, now - 60), error=None, figures=DlqFigures("redis-list", None, now - 60)
    )
    history = [sample(spec, 0, now - 3600), sample(spec, 10, now - 120), failed]
    result = spec.derive(sample(spec, 12, now), history)
    assert result.details["growth_per_min"] == pytest.approx(1.0)


def test_without_history_growth_is_not_known_yet_and_not_an_error() -> None:
    spec = dlq_spec(make_registry(GROWTH))
    assert spec.derive is not None
    current = sample(spec, 0, time.time())
    result = spec.derive(replace(current, summary="0 dead letters; growth not known yet"), [])
    assert result.status is Status.OK
    assert result.summary == "0 dead letters; growth not known yet"


async def test_a_mongo_dlq_honours_a_timeout_override_and_says_refused() -> None:
    from tests.servers import refused_port

    registry = make_registry(
        {"source": "mongo", "datastore": "mongo", "collection": "dead", "database": "jobs"},
        {
            "mongo": {
                "kind": "mongo",
                "uri": f"mongodb://127.0.0.1:{refused_port()}/?directConnection=true",
                "timeout": "10s",
            }
        },
    )
    spec = next(s for s in build_plan(registry, timeout=1.0) if s.id == "w.dlq")

    async with Resources() as resources:
        result = await run_probe(spec, resources)

    assert result.error is not None
    assert result.error.type is ErrorType.REFUSED
