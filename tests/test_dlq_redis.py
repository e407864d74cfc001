"""DLQ depth from Redis: lists, sorted sets, streams and BullMQ queues, on a real Redis.

The BullMQ queues are laid out key for key as BullMQ 5.x writes them (job hashes, ``wait``
and ``active`` lists, ``delayed``/``prioritized``/``failed``/``completed`` sorted sets scored as
BullMQ scores them, ``meta``, ``id``, ``events``, ``marker``), plus the 3.x wait-list marker
and the 6.x paused-in-meta layout.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from opsdash.engine import run_round
from opsdash.harness import run_probe
from opsdash.plan import CheckSpec, build_plan
from opsdash.probes import redis_batch
from opsdash.registry.model import Registry
from opsdash.resources import Resources
from opsdash.results import CheckResult, ErrorType
from opsdash.status import Status
from tests.servers import RedisServer, refused_port


def make_registry(url: str, dlq: dict[str, Any], *, timeout: str = "3s") -> Registry:
    return Registry.from_data(
        {
            "version": 1,
            "platform": "test",
            "defaults": {"timeout": timeout},
            "datastores": {"redis": {"kind": "redis", "url": url}},
            "workers": {"w": {"max_attempts": 3, "dlq": {"datastore": "redis", **dlq}}},
        }
    )


def dlq_spec(registry: Registry) -> CheckSpec:
    return next(spec for spec in build_plan(registry) if spec.id == "w.dlq")


async def check(registry: Registry) -> CheckResult:
    """One-shot, as ``opsdash check`` runs it: probe, then derive with no history."""
    spec = dlq_spec(registry)
    async with Resources() as resources:
        result = await run_probe(spec, resources)
    assert spec.derive is not None
    return spec.derive(result, [])


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
def ns() -> str:
    """A key namespace of this test's own on the shared server."""
    return f"t{uuid.uuid4().hex[:8]}"


# --- plain keys -------------------------------------------------------------------------


async def test_list_depth_is_llen_and_judged_by_thresholds(
    redis_server: RedisServer, redis: Redis, ns: str
) -> None:
    key = f"{ns}:dlq"
    await redis.rpush(key, *[json.dumps({"job": i}) for i in range(3)])
    result = await check(make_registry(redis_server.url, {"source": "redis-list", "key": key}))
    assert result.status is Status.WARN
    assert result.details["depth"] == 3
    assert result.summary.startswith("3 dead letters (warn at 1)")
    assert "growth not known yet" in result.summary
    assert result.details["growth_per_min"] is None
    assert result.error is None
    assert result.target.endswith(f"LLEN {key}")


async def test_missing_list_is_an_empty_dlq(redis_server: RedisServer, ns: str) -> None:
    result = await check(
        make_registry(redis_server.url, {"source": "redis-list", "key": f"{ns}:none"})
    )
    assert result.status is Status.OK
    assert result.details["depth"] == 0


async def test_zset_depth_reaches_crit(redis_server: RedisServer, redis: Redis, ns: str) -> None:
    key = f"{ns}:dead"
    await redis.zadd(key, {f"job-{i}": i for i in range(5)})
    registry = make_registry(
        redis_server.url, {"source": "redis-zset", "key": key, "depth": {"warn": 1, "crit": 5}}
    )
    result = await check(registry)
    assert result.status is Status.CRIT
    assert result.details["depth"] == 5
    assert "crit at 5" in result.summary


async def test_zset_scored_by_time_gives_the_oldest_age(
    redis_server: RedisServer, redis: Redis, ns: str
) -> None:
    key = f"{ns}:sidekiq-dead"  # Sidekiq's dead set: scored by the time of death, in seconds
    now = time.time()
    await redis.zadd(key, {"job-a": now - 90 * 60, "job-b": now - 60})
    result = await check(
        make_registry(redis_server.url, {"source": "redis-zset", "key": key, "score_time": "s"})
    )
    assert result.details["depth"] == 2
    assert 5390 < result.details["oldest_age_s"] < 5500
    assert "oldest 1h 30m" in result.summary
    unscaled = await check(make_registry(redis_server.url, {"source": "redis-zset", "key": key}))
    assert unscaled.details["oldest_age_s"] is None  # a score is not a time unless told so


async def test_wrong_key_type_is_a_config_problem_not_a_crash(
    redis_server: RedisServer, redis: Redis, ns: str
) -> None:
    key = f"{ns}:string"
    await redis.set(key, "x")
    result = await check(make_registry(redis_server.url, {"source": "redis-list", "key": key}))
    assert result.status is Status.UNKNOWN
    assert result.error is not None and result.error.type is ErrorType.CONFIG
    assert result.summary == f"key '{key}' does not hold a list"


async def test_stream_depth_oldest_age_and_pending_per_group(
    redis_server: RedisServer, redis: Redis, ns: str
) -> None:
    key = f"{ns}:stream"
    two_hours_ago = int((time.time() - 7200) * 1000)
    await redis.xadd(key, {"job": "1"}, id=f"{two_hours_ago}-0")
    for i in range(2, 5):
        await redis.xadd(key, {"job": str(i)})
    await redis.xgroup_create(key, "replay", id="0")
    await redis.xgroup_create(key, "audit", id="$")
    # Consumer c1 takes two entries and acknowledges none: they stay pending.
    await redis.xreadgroup("replay", "c1", {key: ">"}, count=2)
    result = await check(make_registry(redis_server.url, {"source": "redis-stream", "key": key}))
    assert result.details["depth"] == 4
    assert 7190 < result.details["oldest_age_s"] < 7300
    groups = result.details["groups"]
    assert groups["replay"]["pending"] == 2
    assert groups["replay"]["consumers"] == {"c1": 2}
    assert groups["audit"]["pending"] == 0
    assert "oldest 2h" in result.summary
    assert "2 pending in group replay" in result.summary


async def test_unreachable_redis_is_crit_refused() -> None:
    registry = make_registry(
        f"redis://127.0.0.1:{refused_port()}/0", {"source": "redis-list", "key": "dlq"}
    )
    result = await check(registry)
    assert result.status is Status.CRIT
    assert result.error is not None and result.error.type is ErrorType.REFUSED


async def test_password_never_shows_in_target_or_summary(redis_factory: Any) -> None:
    server = redis_factory(password="s3cretpw")
    async with Redis.from_url(server.url) as client:
        await client.rpush("dlq", "a")
    result = await check(make_registry(server.url, {"source": "redis-list", "key": "dlq"}))
    assert result.details["depth"] == 1
    assert "s3cretpw" not in result.target
    assert "s3cretpw" not in json.dumps(result.details) + result.summary
    wrong = await check(
        make_registry(
            server.url.replace("s3cretpw", "wrongpass"), {"source": "redis-list", "key": "dlq"}
        )
    )
    assert wrong.status is Status.CRIT
    assert "wrongpass" not in wrong.summary + wrong.target


# --- BullMQ -----------------------------------------------------------------------------


async def add_job(
    redis: Redis, base: str, job_id: int, *, state: str, at_ms: int, attempts: int = 3
) -> None:
    """A job hash as BullMQ 5.x writes it, and its id in the state's key."""
    fields: dict[str, str | int] = {
        "name": "allocate",
        "data": json.dumps({"student": job_id}),
        "opts": json.dumps(
            {"attempts": attempts, "backoff": {"type": "exponential", "delay": 1000}}
        ),
        "timestamp": at_ms,
        "delay": 0,
        "priority": 0,
    }
    if state in ("active", "completed", "failed"):
        fields.update(processedOn=at_ms + 5, ats=1, atm=1 if state != "failed" else attempts)
    if state in ("completed", "failed"):
        fields["finishedOn"] = at_ms + 10
    if state == "failed":
        fields.update(failedReason="connect ECONNREFUSED 127.0.0.1:5432", stacktrace="[]")
    await redis.hset(f"{base}{job_id}", mapping=fields)
    if state in ("wait", "active", "paused"):
        await redis.lpush(base + state, str(job_id))
    elif state == "delayed":
        # BullMQ 4+/5: score = timestamp * 0x1000 + (id & 0xfff).
        await redis.zadd(base + "delayed", {str(job_id): (at_ms + 60_000) * 0x1000 + job_id})
    elif state == "prioritized":
        await redis.zadd(base + "prioritized", {str(job_id): 5 * 0x100000000 + job_id})
    elif state == "waiting-children":
        await redis.zadd(base + "waiting-children", {str(job_id): at_ms})
    else:  # completed, failed: scored by finishedOn
        await redis.zadd(base + state, {str(job_id): at_ms + 10})
    await redis.xadd(base + "events", {"event": "added", "jobId": str(job_id)})


async def lay_out_queue(
    redis: Redis, prefix: str, queue: str, states: dict[str, int], *, oldest_failed_ms: int
) -> str:
    base = f"{prefix}:{queue}:"
    await redis.hset(base + "meta", mapping={"opts.maxLenEvents": 10000})
    job_id = 0
    for state, count in states.items():
        for i in range(count):
            job_id += 1
            at = oldest_failed_ms + i * 1000 if state == "failed" else int(time.time() * 1000)
            await add_job(redis, base, job_id, state=state, at_ms=at)
    await redis.set(base + "id", job_id)
    await redis.zadd(base + "marker", {"0": 0})  # 5.x wake-up marker: not a job
    return base


EVERY_STATE = {
    "wait": 3,
    "active": 1,
    "delayed": 2,
    "prioritized": 2,
    "waiting-children": 1,
    "failed": 4,
    "completed": 5,
}


async def test_bullmq_counts_every_state_and_failed_is_the_depth(
    redis_server: RedisServer, redis: Redis, ns: str
) -> None:
    two_hours_ago = int((time.time() - 7200) * 1000)
    await lay_out_queue(redis, ns, "allocation", EVERY_STATE, oldest_failed_ms=two_hours_ago)
    registry = make_registry(
        redis_server.url, {"source": "bullmq", "queue": "allocation", "prefix": ns}
    )
    result = await check(registry)
    assert result.details["counts"] == {**EVERY_STATE, "paused": 0}
    assert result.details["depth"] == 4
    assert result.status is Status.WARN
    assert result.details["paused"] is False
    # The failed set is scored by finish time: the oldest failure is two hours old.
    assert 7190 < result.details["oldest_age_s"] < 7300
    assert "4 dead letters" in result.summary
    assert "3 waiting" in result.summary and "2 delayed" in result.summary
    assert result.target.endswith(f"bullmq {ns}:allocation")


async def test_bullmq_default_prefix_and_v3_wait_marker_is_not_a_job(
    redis_server: RedisServer, redis: Redis, ns: str
) -> None:
    queue = f"{ns}-legacy"
    base = await lay_out_queue(
        redis, "bull", queue, {"wait": 2, "failed": 1}, oldest_failed_ms=int(time.time() * 1000)
    )
    # BullMQ 3.x/4.x: a delay marker "0:<timestamp>" at the tail of the wait list.
    await redis.rpush(base + "wait", f"0:{int(time.time() * 1000) + 5000}")
    result = await check(make_registry(redis_server.url, {"source": "bullmq", "queue": queue}))
    assert result.details["counts"]["wait"] == 2
    assert result.details["depth"] == 1
    await redis.delete(*(await redis.keys(f"bull:{queue}:*")))


async def test_bullmq_paused_queue_in_v5_and_v6_layouts(
    redis_server: RedisServer, redis: Redis, ns: str
) -> None:
    now = int(time.time() * 1000)
    # 5.x: pausing renames wait to paused and sets meta.paused.
    base5 = await lay_out_queue(redis, ns, "v5", {"paused": 2}, oldest_failed_ms=now)
    await redis.hset(base5 + "meta", "paused", 1)
    # 6.x: no paused list; the jobs stay in wait and meta.paused says the queue is paused.
    base6 = await lay_out_queue(redis, ns, "v6", {"wait": 3}, oldest_failed_ms=now)
    await redis.hset(base6 + "meta", "paused", 1)
    for queue, paused in (("v5", 2), ("v6", 3)):
        registry = make_registry(
            redis_server.url, {"source": "bullmq", "queue": queue, "prefix": ns}
        )
        result = await check(registry)
        assert result.details["counts"]["paused"] == paused, queue
        assert result.details["counts"]["wait"] == 0, queue
        assert result.details["paused"] is True
        assert "queue paused" in result.summary
        assert result.status is Status.OK


async def test_bullmq_queue_that_does_not_exist_is_unknown(
    redis_server: RedisServer, ns: str
) -> None:
    registry = make_registry(redis_server.url, {"source": "bullmq", "queue": "nope", "prefix": ns})
    result = await check(registry)
    assert result.status is Status.UNKNOWN
    assert result.summary == f"no BullMQ queue 'nope' under prefix '{ns}'"


# --- pipelining and deadlines -------------------------------------------------------------


async def test_a_round_of_many_dlq_checks_shares_few_pipelines(
    redis_server: RedisServer, redis: Redis, ns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    workers = {}
    for i in range(40):
        await redis.rpush(f"{ns}:q{i}", *range(i + 1))
        workers[f"w{i}"] = {
            "dlq": {"source": "redis-list", "datastore": "redis", "key": f"{ns}:q{i}"}
        }
    registry = Registry.from_data(
        {
            "version": 1,
            "platform": "test",
            "datastores": {"redis": {"kind": "redis", "url": redis_server.url}},
            "workers": workers,
        }
    )
    specs = [spec for spec in build_plan(registry) if spec.check == "dlq"]
    batches: list[int] = []
    original = redis_batch.RedisBatcher._send

    async def counting(self: redis_batch.RedisBatcher, batch: list[Any]) -> None:
        batches.append(len(batch))
        await original(self, batch)

    monkeypatch.setattr(redis_batch.RedisBatcher, "_send", counting)
    async with Resources() as resources:
        done = await run_round(specs, resources)
    depths = {r.component: r.details["depth"] for r in done.results}
    assert depths == {f"w{i}": i + 1 for i in range(40)}
    # Forty probes, one Redis: a pipeline or two, not forty round trips.
    assert sum(batches) == 40
    assert len(batches) <= 2


async def test_a_hung_redis_costs_the_deadline_and_leaves_nothing_running() -> None:
    accepted = asyncio.Event()
    closed = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await reader.read()  # never answers; returns when the client hangs up
        closed.set()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    registry = make_registry(
        f"redis://127.0.0.1:{port}/0", {"source": "redis-list", "key": "dlq"}, timeout="300ms"
    )
    spec = dlq_spec(registry)
    start = time.perf_counter()
    async with Resources() as resources:
        result = await run_probe(spec, resources)
    assert time.perf_counter() - start < 2.0
    assert result.status is Status.CRIT
    assert result.error is not None and result.error.type is ErrorType.TIMEOUT
    assert accepted.is_set()
    # The abandoned pipeline was cancelled and its connection dropped.
    await asyncio.wait_for(closed.wait(), 5)
    server.close()
    await server.wait_closed()


async def test_one_bad_key_fails_only_its_own_check_in_a_shared_pipeline(
    redis_server: RedisServer, redis: Redis, ns: str
) -> None:
    await redis.set(f"{ns}:bad", "not a list")
    await redis.rpush(f"{ns}:good", "a", "b")
    registry = Registry.from_data(
        {
            "version": 1,
            "platform": "test",
            "datastores": {"redis": {"kind": "redis", "url": redis_server.url}},
            "workers": {
                name: {"dlq": {"source": "redis-list", "datastore": "redis", "key": f"{ns}:{name}"}}
                for name in ("bad", "good")
            },
        }
    )
    specs = [spec for spec in build_plan(registry) if spec.check == "dlq"]
    async with Resources() as resources:
        done = await run_round(specs, resources)
    by_id = {result.id: result for result in done.results}
    assert by_id["bad.dlq"].status is Status.UNKNOWN
    assert by_id["good.dlq"].details["depth"] == 2
    assert by_id["good.dlq"].status is Status.WARN


async def test_dlq_check_recovers_when_redis_comes_back(redis_factory: Any) -> None:
    server = redis_factory()
    async with Redis.from_url(server.url) as client:
        await client.rpush("dlq", "a")
    spec = dlq_spec(make_registry(server.url, {"source": "redis-list", "key": "dlq"}))
    async with Resources() as resources:  # one process, as the dashboard keeps it
        assert (await run_probe(spec, resources)).details["depth"] == 1
        server.stop()
        down = await run_probe(spec, resources)
        assert down.status is Status.CRIT
        assert down.error is not None and down.error.type is ErrorType.REFUSED
        server.start()  # no persistence: the list is gone, the check must say 0, not fail
        back = await run_probe(spec, resources)
        assert back.error is None
        assert back.details["depth"] == 0
