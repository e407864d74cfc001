"""Rounds and the watch-mode scheduler."""

from __future__ import annotations

import asyncio
import itertools
import time
import types
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest

from opsdash import engine
from opsdash.engine import Scheduler, StartBudget, run_round, spread, start_order
from opsdash.plan import CheckSpec, build_plan
from opsdash.registry.model import Registry
from opsdash.resources import Resources, run_async
from opsdash.results import CheckResult, Observation
from opsdash.status import Status
from tests import adversarial
from tests.helpers import spec


async def test_hanging_probes_do_not_delay_the_round_beyond_their_deadline() -> None:
    async def fast(_: Resources) -> Observation:
        return Observation(Status.OK, "ok")

    async def hang(_: Resources) -> Observation:
        await asyncio.Event().wait()
        raise AssertionError

    specs = [spec(f"s{i}.health", hang if i % 5 == 0 else fast, timeout=0.3) for i in range(50)]
    async with Resources() as resources:
        start = time.perf_counter()
        round_ = await run_round(specs, resources, concurrency=64)
        elapsed = time.perf_counter() - start
    assert elapsed < 0.3 + 0.5
    statuses = [r.status for r in round_.results]
    assert statuses.count(Status.CRIT) == 10 and statuses.count(Status.OK) == 40
    assert [r.id for r in round_.results] == [s.id for s in specs]


async def test_a_round_keeps_to_its_concurrency() -> None:
    in_flight = 0
    peak = 0

    async def probe(_: Resources) -> Observation:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        in_flight -= 1
        return Observation(Status.OK, "ok")

    async with Resources() as resources:
        round_ = await run_round(
            [spec(f"s{i}.health", probe) for i in range(40)], resources, concurrency=7
        )
    assert len(round_.results) == 40
    assert peak == 7


async def test_the_scheduler_never_runs_a_check_twice_at_once() -> None:
    running: set[str] = set()
    overlaps: list[str] = []
    release = asyncio.Event()
    results: list[CheckResult] = []
    three = asyncio.Event()

    async def slow(_: Resources) -> Observation:
        if "a" in running:
            overlaps.append("a")
        running.add("a")
        await release.wait()
        running.discard("a")
        return Observation(Status.OK, "ok")

    def sink(result: CheckResult) -> None:
        results.append(result)
        if len(results) == 3:
            three.set()

    async with Resources() as resources:
        scheduler = Scheduler([spec("a.health", slow, interval=0.01)], resources, sink)
        scheduler.start()
        for _ in range(5):  # asking for runs while one is in flight must not start another
            scheduler.run_now()
            await asyncio.sleep(0)
        release.set()
        await asyncio.wait_for(three.wait(), 5)
        await scheduler.stop()
    assert overlaps == []


async def test_run_now_wakes_a_sleeping_check_and_pause_holds_it() -> None:
    results: list[CheckResult] = []
    arrived = asyncio.Event()

    async def probe(_: Resources) -> Observation:
        return Observation(Status.OK, "ok")

    def sink(result: CheckResult) -> None:
        results.append(result)
        arrived.set()

    async with Resources() as resources:
        scheduler = Scheduler([spec("a.health", probe, interval=3600)], resources, sink)
        scheduler.start()
        await asyncio.wait_for(arrived.wait(), 5)
        arrived.clear()
        scheduler.run_now()  # the interval is an hour: only run_now can bring a second run
        await asyncio.wait_for(arrived.wait(), 5)
        assert len(results) == 2
        scheduler.pause()
        assert scheduler.paused
        arrived.clear()
        scheduler.run_now()
        await asyncio.sleep(0.05)  # nothing to wait for: proving that nothing happens
        assert not arrived.is_set()
        scheduler.resume()
        await asyncio.wait_for(arrived.wait(), 5)
        await scheduler.stop()
    assert len(results) == 3


async def test_spread_starts_run_checks_in_order_over_time() -> None:
    started: list[tuple[str, float]] = []
    all_ran = asyncio.Event()
    loop = asyncio.get_running_loop()

    def probe_for(name: str) -> Callable[[Resources], Awaitable[Observation]]:
        async def probe(_: Resources) -> Observation:
            started.append((name, loop.time()))
            if len(started) == 5:
                all_ran.set()
            return Observation(Status.OK, "ok")

        return probe

    specs = [spec(f"s{i}.health", probe_for(f"s{i}"), interval=3600) for i in range(5)]
    async with Resources() as resources:
        scheduler = Scheduler(specs, resources, lambda _: None, starts_per_s=50)
        scheduler.start()
        await asyncio.wait_for(all_ran.wait(), 5)
        await scheduler.stop()
    assert [name for name, _ in started] == ["s0", "s1", "s2", "s3", "s4"]
    first, last = started[0][1], started[-1][1]
    assert last - first >= 4 / 50 * 0.9  # five starts at 50 a second span at least 80 ms


def test_run_async_hands_back_a_round_without_building_its_repr() -> None:
    # The round's value used to be the main task's result: leaving asyncio.Runner built its
    # repr twice (Python's signal module reprs the SIGINT handler, which holds the task), which
    # cost a 1,000-service check 40-70 ms at exit.
    class Results:
        reprs = 0

        def __repr__(self) -> str:
            Results.reprs += 1
            return "Results()"

    async def produce() -> Results:
        await asyncio.sleep(0)
        return Results()

    value = run_async(produce())
    assert isinstance(value, Results)
    assert Results.reprs == 0


def _heavy(check: CheckSpec) -> CheckSpec:
    return replace(check, heavy_start=True)


async def test_a_round_starts_light_checks_before_heavy_ones_and_keeps_spec_order() -> None:
    started: list[str] = []

    def probe_for(check_id: str) -> Callable[[Resources], Awaitable[Observation]]:
        async def probe(_: Resources) -> Observation:
            started.append(check_id)
            await asyncio.sleep(0)
            return Observation(Status.OK, check_id)

        return probe

    ids = ["pg", "a.health", "redis", "b.health", "w.dlq", "c.health"]
    heavy = {"pg", "redis", "w.dlq"}
    specs = [spec(check_id, probe_for(check_id)) for check_id in ids]
    specs = [_heavy(s) if s.id in heavy else s for s in specs]
    async with Resources() as resources:
        round_ = await run_round(specs, resources, concurrency=2)
    assert started == ["a.health", "b.health", "c.health", "pg", "redis", "w.dlq"]
    assert [r.id for r in round_.results] == ids
    assert [r.summary for r in round_.results] == ids


def test_start_order_keeps_spread_within_each_class() -> None:
    async def probe(_: Resources) -> Observation:
        return Observation(Status.OK, "ok")

    ids = ["a.health", "a.ready", "pg", "pg.indexes", "b.health", "b.ready"]
    specs = [
        _heavy(spec(check_id, probe)) if check_id.startswith("pg") else spec(check_id, probe)
        for check_id in ids
    ]
    order = [ids[index] for index in start_order(specs, concurrency=1)]
    # Light: blocks of two components (a, b), firsts then seconds; then the heavy ones.
    assert order == ["a.health", "b.health", "a.ready", "b.ready", "pg", "pg.indexes"]
    light_only = [s for s in specs if not s.heavy_start]
    assert start_order(light_only, concurrency=1) == spread(light_only, concurrency=1)


async def test_heavy_starts_do_not_hold_a_light_probe_s_verdict() -> None:
    """Fifty heavy checks that each burn 3 ms of the loop when they start, and one real HTTP
    check against a loopback server: its verdict comes while heavy checks are still starting
    (paced a budget per loop turn), not after all of them."""
    events: list[str] = []

    async def heavy_start(_: Resources) -> Observation:
        events.append("heavy started")
        until = time.perf_counter() + 0.003
        while time.perf_counter() < until:  # a driver's connection set-up: loop time
            pass
        await asyncio.sleep(0)
        return Observation(Status.OK, "ok")

    handler = adversarial.fixed(200, "OK", b'{"status":"UP"}')
    async with adversarial.serve(handler) as server:
        registry = Registry.from_data(
            {
                "version": 1,
                "platform": "t",
                "services": {"web": {"url": server.url, "ready": False}},
            }
        )
        (light,) = build_plan(registry)
        assert not light.heavy_start

        async def verdict(resources: Resources) -> Observation:
            observation = await light.probe(resources)
            events.append("light verdict")
            return observation

        heavy = [_heavy(spec(f"db{i}", heavy_start)) for i in range(50)]
        specs = [*heavy, replace(light, probe=verdict)]
        async with Resources() as resources:
            round_ = await run_round(specs, resources, concurrency=64)
    assert [r.status for r in round_.results] == [Status.OK] * 51
    assert events.count("heavy started") == 50
    # The light check started first, and its verdict came after a few heavy starts (the
    # loop turns its request and answer took), not after all fifty.
    before = events.index("light verdict")
    assert 0 < before < 40, events


async def test_start_budget_yields_once_the_turn_s_budget_is_spent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The budget's clock, advanced by the starts alone: a busy-wait on the real clock made the
    # test fail whenever the machine paused the process for a few ms mid-turn.
    now = [0.0]
    monkeypatch.setattr(engine, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))
    budget = StartBudget(limit_s=0.020)
    turns: list[int] = []
    turn = 0

    async def ticker() -> None:
        nonlocal turn
        for _ in range(100):
            turn += 1
            await asyncio.sleep(0)

    async def starter() -> None:
        for _ in range(6):
            await budget.wait()
            turns.append(turn)
            now[0] += 0.012  # each start: 12 ms of the loop

    tick = asyncio.create_task(ticker())
    await starter()
    tick.cancel()
    # Two starts fit in a 20 ms budget (the second one begins at 12 ms); the third waits for
    # a later turn of the loop.
    assert [b > a for a, b in itertools.pairwise(turns)] == [False, True, False, True, False]


def test_the_checks_read_through_a_datastore_driver_are_the_heavy_ones() -> None:
    registry = Registry.from_data(
        {
            "version": 1,
            "platform": "t",
            "datastores": {
                "pg": {
                    "kind": "postgres",
                    "dsn": "postgresql://u@127.0.0.1:9/db",
                    "expect_indexes": {"t": ["i"]},
                },
                "cache": {"kind": "redis", "url": "redis://127.0.0.1:9/0"},
                "docs": {"kind": "mongo", "uri": "mongodb://127.0.0.1:9/db"},
            },
            "services": {"web": {"url": "http://127.0.0.1:9"}},
            "workers": {
                "list": {"dlq": {"source": "redis-list", "datastore": "cache", "key": "k"}},
                "bull": {"dlq": {"source": "bullmq", "datastore": "cache", "queue": "q"}},
                "sql": {"dlq": {"source": "sql", "datastore": "pg", "query": "SELECT 1"}},
                "mongo": {"dlq": {"source": "mongo", "datastore": "docs", "collection": "c"}},
                "hash": {"metrics": {"source": "redis-hash", "datastore": "cache", "key": "h"}},
                "http": {
                    "dlq": {"source": "http-json", "url": "http://127.0.0.1:9/d", "path": "n"},
                    "metrics": {"source": "prometheus", "url": "http://127.0.0.1:9/metrics"},
                },
                "rabbit": {
                    "dlq": {
                        "source": "rabbitmq",
                        "management_url": "http://127.0.0.1:9",
                        "queue": "q",
                    }
                },
            },
        }
    )
    heavy = {s.id for s in build_plan(registry) if s.heavy_start}
    assert heavy == {
        "pg",
        "pg.indexes",
        "cache",
        "docs",
        "list.dlq",
        "bull.dlq",
        "sql.dlq",
        "mongo.dlq",
        "hash.retries",
    }


async def test_a_start_cancelled_while_it_waits_for_the_budget_holds_up_no_other() -> None:
    budget = StartBudget(limit_s=0.0)  # every start after a turn's first one waits
    went: list[int] = []

    async def start(n: int) -> None:
        await budget.wait()
        went.append(n)

    tasks = [asyncio.create_task(start(n)) for n in range(5)]
    await asyncio.sleep(0)  # all five asked: the first went ahead, four wait
    assert went == [0]
    tasks[2].cancel()
    _, pending = await asyncio.wait(tasks, timeout=5)
    assert pending == set()
    assert went == [0, 1, 3, 4]
    assert tasks[2].cancelled()
