"""Probe deadlines (opsdash.deadline.ProbeDeadlines): one timer for every running probe, with
what asyncio.timeout promises: each probe cut at its own deadline, nothing else cut, other
cancellations passed through. On both loops a round may run on (asyncio's and uvloop's)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from opsdash.deadline import ProbeDeadlines, time_left
from opsdash.harness import run_probe
from opsdash.resources import Resources
from opsdash.results import CheckResult, ErrorType, Observation
from opsdash.status import Status
from tests.helpers import spec

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


def run_on(loop: str, coroutine: Coroutine[Any, Any, Any]) -> Any:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        return runner.run(coroutine)


async def _hang(_: Resources) -> Observation:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def _sleeper(seconds: float) -> Callable[[Resources], Coroutine[Any, Any, Observation]]:
    async def sleep(_: Resources) -> Observation:
        await asyncio.sleep(seconds)
        return Observation(Status.OK, f"slept {seconds}")

    return sleep


@pytest.mark.parametrize("loop", LOOPS)
def test_each_probe_is_cut_at_its_own_deadline_and_the_quick_ones_are_not(loop: str) -> None:
    timeouts = {"slow-a": 0.3, "slow-b": 0.1, "slow-c": 0.2}

    async def timed(name: str, resources: Resources) -> tuple[CheckResult, float]:
        check = spec(f"{name}.health", _hang, timeout=timeouts[name])
        start = time.perf_counter()
        result = await run_probe(check, resources)
        return result, time.perf_counter() - start

    async def main() -> tuple[list[tuple[CheckResult, float]], CheckResult]:
        async with Resources() as resources:
            slow = asyncio.gather(*(timed(name, resources) for name in timeouts))
            quick = await run_probe(spec("quick.health", _sleeper(0.05), timeout=0.15), resources)
            return list(await slow), quick

    slow, quick = run_on(loop, main())
    assert (quick.status, quick.summary) == (Status.OK, "slept 0.05")
    for (result, elapsed), timeout in zip(slow, timeouts.values(), strict=True):
        assert result.error is not None and result.error.type is ErrorType.TIMEOUT
        assert result.summary == f"no answer within {int(timeout * 1000)}ms"
        assert timeout - 0.002 <= elapsed < timeout + 0.1, (result.id, elapsed)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_finished_probes_deadline_never_cuts_the_next_one_in_the_same_task(loop: str) -> None:
    # A round's worker runs probe after probe in one task: the first's deadline (0.1 s) passes
    # while the second (0.3 s of its 1 s) is still running.
    async def main() -> list[CheckResult]:
        async with Resources() as resources:
            first = await run_probe(spec("a.health", _sleeper(0.0), timeout=0.1), resources)
            second = await run_probe(spec("b.health", _sleeper(0.3), timeout=1.0), resources)
            return [first, second]

    first, second = run_on(loop, main())
    assert (first.status, second.status) == (Status.OK, Status.OK)
    assert second.summary == "slept 0.3"


@pytest.mark.parametrize("loop", LOOPS)
def test_a_cancellation_from_outside_passes_through_and_later_deadlines_still_hold(
    loop: str,
) -> None:
    async def main() -> tuple[bool, CheckResult]:
        waiting = asyncio.Event()

        async def wait_forever(_: Resources) -> Observation:
            waiting.set()
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

        async with Resources() as resources:
            check = spec("a.health", wait_forever, timeout=5.0)
            task = asyncio.create_task(run_probe(check, resources))
            await waiting.wait()
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                cancelled = True
            else:
                cancelled = False
            later = await run_probe(spec("b.health", _hang, timeout=0.1), resources)
            return cancelled and task.cancelled(), later

    cancelled, later = run_on(loop, main())
    assert cancelled, "the caller's cancellation became something else"
    assert later.error is not None and later.error.type is ErrorType.TIMEOUT


@pytest.mark.parametrize("loop", LOOPS)
def test_the_code_inside_is_told_its_time_left(loop: str) -> None:
    async def main() -> tuple[float, float]:
        deadlines = ProbeDeadlines()
        with deadlines.within(2.0):
            inside = time_left(99.0)
        return inside, time_left(99.0)

    inside, outside = run_on(loop, main())
    assert 1.9 < inside <= 2.0
    assert outside == 99.0
