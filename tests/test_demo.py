"""The demo platform over loopback, like any other service: status codes and bodies per the
story, the stand-in Redis going down and up, worker metrics and DLQ depths, and
``opsdash demo --check`` as a smoke test."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from opsdash.demo.platform import DemoPlatform
from opsdash.demo.resp import FakeRedis
from opsdash.demo.story import CYCLE, SERVICES, SLOW_DELAY, SLOW_SERVICE, scene_at
from opsdash.results import CheckResult

REDIS_SERVICES = {s.name for s in SERVICES if s.uses_redis}


class FakeClock:
    """Story time under the test's control."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def demo() -> tuple[DemoPlatform, FakeClock]:  # type: ignore[misc]
    clock = FakeClock()
    async with DemoPlatform(clock=clock, drive=False) as platform:
        yield platform, clock


async def _ready(client: httpx.AsyncClient, platform: DemoPlatform) -> dict[str, httpx.Response]:
    return {n: await client.get(f"{s.url}/ready") for n, s in platform.services.items()}


async def test_calm_platform_answers_200_everywhere(demo: tuple[DemoPlatform, FakeClock]) -> None:
    platform, _ = demo
    async with httpx.AsyncClient() as client:
        for name, server in platform.services.items():
            for path in ("/health", "/ready"):
                response = await client.get(server.url + path)
                assert response.status_code == 200, (name, path, response.text)
        spring = await client.get(platform.services["course-service"].url + "/ready")
        assert spring.json() == {
            "status": "UP",
            "components": {"db": {"status": "UP"}, "readinessState": {"status": "UP"}},
        }
        ietf = await client.get(platform.services["admin-service"].url + "/ready")
        assert ietf.headers["content-type"] == "application/health+json"
        text = await client.get(platform.services["analytics-service"].url + "/ready")
        assert text.text == "Healthy"
        missing = await client.get(platform.services["course-service"].url + "/nope")
        assert missing.status_code == 404
        post = await client.post(platform.services["course-service"].url + "/ready")
        assert post.status_code == 405


async def test_redis_outage_makes_its_dependants_unready(
    demo: tuple[DemoPlatform, FakeClock],
) -> None:
    platform, clock = demo
    clock.now += 15  # 10-30 s: redis is down
    await platform.sync()
    assert not platform.redis.up
    async with httpx.AsyncClient() as client:
        ready = await _ready(client, platform)
        assert {n for n, r in ready.items() if r.status_code == 503} == REDIS_SERVICES
        nest = ready["booking-service"].json()
        assert nest["status"] == "error" and nest["error"]["redis"]["status"] == "down"
        assert nest["details"]["database"] == {"status": "up"}
        assert ready["chat-service"].json()["checks"]["redis:connections"][0]["status"] == "fail"
        assert ready["student-auth-service"].json()["entries"]["redis"]["status"] == "Unhealthy"
        assert ready["trainer-auth-service"].json()["dependencies"]["redis"] == "down"
        # liveness stays up, except the one service that checks redis in /health
        health = {
            n: (await client.get(s.url + "/health")).status_code
            for n, s in platform.services.items()
        }
        assert {n for n, code in health.items() if code != 200} == {"notification-service"}
    with pytest.raises(OSError):
        await _redis_ping(platform.redis)
    clock.now += 20  # recovered
    await platform.sync()
    assert await _redis_ping(platform.redis) == b"+PONG\r\n"


async def _redis_ping(redis: FakeRedis) -> bytes:
    import asyncio

    reader, writer = await asyncio.open_connection("127.0.0.1", redis.port)
    writer.write(b"*1\r\n$4\r\nPING\r\n")
    await writer.drain()
    answer = await reader.readline()
    writer.close()
    return answer


async def test_fake_redis_speaks_enough_resp_for_redis_py(
    demo: tuple[DemoPlatform, FakeClock],
) -> None:
    import redis.asyncio

    platform, _ = demo
    for protocol in (2, 3):
        client = redis.asyncio.Redis.from_url(platform.redis.url, protocol=protocol)
        try:
            assert await client.ping() is True
            info = await client.info()
            assert info["role"] == "master" and info["maxmemory"] > info["used_memory"] > 0
        finally:
            await client.aclose()


async def test_dlq_fills_and_drains(demo: tuple[DemoPlatform, FakeClock]) -> None:
    platform, clock = demo
    url = platform.workers["purchase-worker"].url + "/dlq"
    start = clock.now
    depths = {}
    async with httpx.AsyncClient() as client:
        for at in (5, 30, 45, 55, 61):
            clock.now = start + at
            depths[at] = (await client.get(url)).json()["depth"]
        assert (await client.get(platform.workers["cache-worker"].url + "/dlq")).status_code == 404
    assert depths[5] == 0 and 0 < depths[30] < depths[45] == 140 and depths[55] < 140
    assert depths[61] == 0
    assert scene_at(45 + CYCLE).dlq_depth["purchase-worker"] == 140  # the story loops


async def test_metrics_counters_grow_with_retries_during_the_outage(
    demo: tuple[DemoPlatform, FakeClock],
) -> None:
    platform, clock = demo
    url = platform.workers["allocation-worker"].url + "/metrics"

    async def scrape(client: httpx.AsyncClient) -> dict[str, float]:
        response = await client.get(url)
        assert response.headers["content-type"].startswith("text/plain")
        return {
            sample.name: sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
            if sample.labels.get("worker") == "allocation-worker" and sample.name.endswith("_total")
        }

    async with httpx.AsyncClient() as client:
        first = await scrape(client)
        clock.now += 12  # into the outage
        await scrape(client)
        clock.now += 10
        during = await scrape(client)
    assert during["worker_processed_total"] > first["worker_processed_total"]
    retries = during["worker_retries_total"] - first["worker_retries_total"]
    assert retries > 10  # 2/s during the outage, against 0.04/s when calm


async def test_slow_service_turns_slow(demo: tuple[DemoPlatform, FakeClock]) -> None:
    platform, clock = demo
    clock.now += 55
    async with httpx.AsyncClient() as client:
        begin = time.perf_counter()
        response = await client.get(platform.services[SLOW_SERVICE].url + "/ready")
        elapsed = time.perf_counter() - begin
        fast = await client.get(platform.services["payment-service"].url + "/ready")
    assert response.status_code == 200 and elapsed >= SLOW_DELAY
    assert fast.status_code == 200


def test_demo_check_smoke_json_during_the_outage() -> None:
    from opsdash.commands.demo import demo

    result = CliRunner().invoke(demo, ["--check", "--json", "--at", "25"])
    assert result.exit_code == 2, result.output
    document = json.loads(result.stdout)  # the document alone on stdout (notes go to stderr)
    assert document["status"] == "crit"
    redis_incident = document["incidents"][0]
    assert redis_incident["cause"] == "redis"
    assert set(redis_incident["affected"]) >= REDIS_SERVICES
    by_id = {check["id"]: check for check in document["checks"]}
    assert by_id["purchase-worker.dlq"]["status"] == "warn"
    assert len([c for c in document["checks"] if c["kind"] == "http"]) == 22


def test_demo_check_smoke_text_when_calm() -> None:
    from opsdash.commands.demo import demo

    result = CliRunner().invoke(demo, ["--check"])
    assert result.exit_code == 0, result.output
    assert "demo-learning-platform" in result.output and "✔ ok" in result.output


def test_demo_check_takes_every_output_option_of_check() -> None:
    from opsdash.commands.demo import demo

    runner = CliRunner()
    prometheus = runner.invoke(demo, ["--check", "--format", "prometheus", "--at", "16"])
    assert prometheus.exit_code == 2, prometheus.output
    samples = {
        (s.name, s.labels.get("cause"), s.labels.get("type")): s.value
        for family in text_string_to_metric_families(prometheus.output)
        for s in family.samples
    }
    assert samples[("opsdash_incident_affected", "redis", "service")] == len(REDIS_SERVICES)

    junit = runner.invoke(demo, ["--check", "--format", "junit", "--at", "16"])
    assert junit.exit_code == 2 and junit.output.startswith("<?xml")

    quiet = runner.invoke(demo, ["--check", "-q", "--at", "16"])
    assert quiet.exit_code == 2
    assert "✔ ok" not in quiet.output.split("Incidents")[0].split("\n", 1)[1]
    assert "redis unreachable; 6 services not ready, 1 worker failing" in quiet.output

    misuse = runner.invoke(demo, ["--json"])
    assert misuse.exit_code != 0 and "--check" in misuse.output


# --- the datastores of the demo: PostgreSQL (real), MongoDB (a wire-protocol stand-in) -------


async def _round_of(platform: DemoPlatform, *components: str) -> dict[str, CheckResult]:
    """One check round of the given components' checks: result by check id."""
    from opsdash.plan import build_plan
    from opsdash.rounds import one_round

    registry = platform.registry
    specs = [s for s in build_plan(registry) if s.component in components]
    snapshot = await one_round(registry, specs, concurrency=8)
    return {result.id: result for result in snapshot.results}


def test_the_story_schedules_the_datastore_episodes() -> None:
    calm = scene_at(5)
    assert (calm.pg_extra_connections, calm.pg_index_dropped, calm.mongo_lag_s) == (0, False, 0)
    assert scene_at(35).pg_extra_connections > 0 and scene_at(40).pg_index_dropped
    assert scene_at(66).mongo_lag_s > 30 and scene_at(77).mongo_lag_s == 0
    assert not scene_at(57).pg_index_dropped  # the migration was re-run


async def test_mongo_stand_in_is_a_secondary_that_lags_during_the_story(
    demo: tuple[DemoPlatform, FakeClock],
) -> None:
    from opsdash.status import Status

    platform, clock = demo
    calm = (await _round_of(platform, "mongo"))["mongo"]
    assert calm.status is Status.OK, calm
    assert "secondary of demo-rs" in calm.summary
    clock.now += 66  # the secondary is at its furthest behind
    await platform.sync()
    lagging = (await _round_of(platform, "mongo"))["mongo"]
    assert lagging.status is Status.WARN, lagging
    assert "lag 90s" in lagging.summary


async def test_postgres_near_saturation_then_missing_an_index(
    demo: tuple[DemoPlatform, FakeClock],
) -> None:
    from opsdash.status import Status
    from tests.servers import unavailable

    platform, clock = demo
    if platform.postgres is None:
        unavailable(f"demo PostgreSQL: {platform.postgres_note}")
    start = clock.now
    calm = await _round_of(platform, "postgres")
    assert {r.status for r in calm.values()} == {Status.OK}, calm
    assert "7 expected indexes present" in calm["postgres.indexes"].summary

    clock.now = start + 33  # the connection storm after the redis outage
    await platform.sync()
    storm = await _round_of(platform, "postgres")
    assert storm["postgres"].status is Status.WARN, storm["postgres"]
    # 12 leaked, the demo's own control connection and one or two of opsdash's pool
    used = re.search(r"(\d+)/17 connections", storm["postgres"].summary)
    assert used is not None and 14 <= int(used.group(1)) <= 16, storm["postgres"].summary

    clock.now = start + 50  # the rollback dropped one of migration 019's indexes
    await platform.sync()
    rollback = await _round_of(platform, "postgres")
    indexes = rollback["postgres.indexes"]
    assert indexes.status is Status.WARN
    assert indexes.summary == "missing idx_sessions_trainer_status"
    assert rollback["postgres"].status is Status.OK  # the leaked connections are closed again

    clock.now = start + 60  # the migration is re-run
    await platform.sync()
    fixed = await _round_of(platform, "postgres")
    assert fixed["postgres.indexes"].status is Status.OK


async def test_postgres_in_the_background_holds_its_checks_until_it_runs() -> None:
    from opsdash.demo.platform import STARTING
    from opsdash.harness import run_probe
    from opsdash.plan import build_plan
    from opsdash.resources import Resources
    from opsdash.status import Status
    from tests.servers import unavailable

    async with DemoPlatform(drive=False, postgres_in_background=True) as platform:
        registry = platform.registry  # at once: the DSN is known before the server runs
        if "postgres" not in registry.datastores:
            unavailable(f"demo PostgreSQL: {platform.postgres_note}")
        specs = {s.id: s for s in platform.gated(build_plan(registry))}
        async with Resources() as resources:
            first = await run_probe(specs["postgres.indexes"], resources)
            # while initdb runs it says so, rather than "connection refused"
            assert first.status is Status.OK or first.summary == STARTING, first.summary
            await platform.postgres_settled.wait()
            if platform.postgres is None:
                unavailable(f"demo PostgreSQL: {platform.postgres_note}")
            after = await run_probe(specs["postgres.indexes"], resources)
        assert after.status is Status.OK, after.summary
