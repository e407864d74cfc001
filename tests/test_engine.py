"""Rounds and the watch-mode scheduler."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from opsdash.engine import Scheduler, run_round
from opsdash.resources import Resources, run_async
from opsdash.results import CheckResult, Observation
from opsdash.status import Status
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
