"""Running checks: one round of everything (``check``, ``alert``), or each check on its own
interval (``ui``, ``serve``).

A round runs all probes concurrently, a fixed number at a time; each probe is bounded by its own
deadline in the harness, so a hanging target delays nothing but itself. In watch mode each check
has one long-lived loop (run, publish, sleep), so two runs of the same check never overlap.

Starting a probe costs the loop time (a new connection, a request written; a datastore
driver's connection set-up: 1-3 ms), and a turn of the loop that starts sixty probes reads no
answer until all sixty have started. So checks whose start is heavy (``CheckSpec.heavy_start``)
start after the light ones (:func:`start_order`), and starts are paced at about
:data:`START_BUDGET_S` of loop time per turn (:class:`StartBudget`): between two slices the loop
reads the answers that arrived, and the quick checks' verdicts do not wait for the starts of
slow or hostile ones (``bench/hostile.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from opsdash.harness import run_probe
from opsdash.plan import CheckSpec
from opsdash.records import dataclass
from opsdash.resources import Resources
from opsdash.results import CheckResult


@dataclass(frozen=True, slots=True)
class Round:
    """The results of one round, in the order of the specs that produced them."""

    started_at: datetime
    duration_ms: float
    results: tuple[CheckResult, ...]


async def run_round(
    specs: Sequence[CheckSpec], resources: Resources, *, concurrency: int = 64
) -> Round:
    """Run every spec once, at most ``concurrency`` at a time; results in the order given."""
    started_at = datetime.now(UTC)
    start = time.perf_counter()
    results: list[CheckResult | None] = [None] * len(specs)
    # ``concurrency`` workers take the next spec as they finish one: the same bound as one task
    # per spec behind a semaphore, without a task and a wait queue per spec.
    pending = ((index, specs[index]) for index in start_order(specs, concurrency))
    budget = StartBudget()

    async def worker() -> None:
        for index, spec in pending:
            await budget.wait()
            results[index] = await run_probe(spec, resources)

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(specs))))))
    done = tuple(result for result in results if result is not None)
    assert len(done) == len(specs)
    return Round(started_at, round((time.perf_counter() - start) * 1000.0, 1), done)


def start_order(specs: Sequence[CheckSpec], concurrency: int) -> list[int]:
    """The order a round starts ``specs`` in (indexes): the light checks, then those whose
    start is heavy (``heavy_start``), each class in :func:`spread`'s order.

    A heavy start (asyncpg parsing its DSN and building an SSL context, redis-py and pymongo
    setting up a connection) takes the loop 0.5-3 ms; started first, a round's few dozen of
    them made every HTTP check wait for them before it even sent its request. The results of
    a round stay in the order of its specs whatever the start order."""
    light, heavy = _by_weight(specs)
    if not heavy:
        return spread(specs, concurrency)
    return [
        indexes[position]
        for indexes in (light, heavy)
        for position in spread([specs[index] for index in indexes], concurrency)
    ]


def _by_weight(specs: Sequence[CheckSpec]) -> tuple[list[int], list[int]]:
    """The indexes of ``specs`` split into (light, heavy), each in the order given."""
    light: list[int] = []
    heavy: list[int] = []
    for index, spec in enumerate(specs):
        (heavy if spec.heavy_start else light).append(index)
    return light, heavy


START_BUDGET_S = 0.001
"""Loop time the probe starts of one turn of the event loop may take before the next start
waits for the following turn."""


class StartBudget:
    """Paces probe starts: about :data:`START_BUDGET_S` of loop time per turn of the loop.

    :meth:`wait` before each start. The first start of a turn notes the time (and asks, with
    ``call_soon``, to hear when the next turn begins); a later one in the same turn that finds
    the budget spent (by the starts before it, or by whatever else ran in between) yields with
    ``sleep(0)``. The loop then polls its sockets and runs what became ready (answers, their
    verdicts) before it resumes the waiting starts, a budget's worth per turn. A start that
    finds budget left costs one clock read and does not yield.
    """

    __slots__ = ("_limit", "_since")

    def __init__(self, limit_s: float = START_BUDGET_S) -> None:
        self._limit = limit_s
        self._since: float | None = None

    async def wait(self) -> None:
        """Return when a start may go ahead in this turn of the loop."""
        # Polled, one turn at a time: an Event or a future set by the next turn's callback
        # would resume its waiters one turn later still, and all of them at once as well.
        while self._since is not None and time.perf_counter() - self._since >= self._limit:  # noqa: ASYNC110
            await asyncio.sleep(0)
        if self._since is None:
            self._since = time.perf_counter()
            asyncio.get_running_loop().call_soon(self._new_turn)

    def _new_turn(self) -> None:
        self._since = None


def spread(specs: Sequence[CheckSpec], concurrency: int) -> list[int]:
    """The order to start ``specs`` in (indexes): components in blocks of twice
    ``concurrency``, each block's first checks, then their second checks, and so on.

    A component's next check then starts once at least ``concurrency`` checks have finished
    since its previous one started, so mostly after that one: a service's ``ready`` reuses the
    keep-alive connection (and TLS session) its ``health`` opened instead of opening a second
    one at the same moment, which halves the connections of a round. (The HTTP client keeps
    twice ``concurrency`` idle connections: a block's worth.)
    """
    by_component: dict[str, list[int]] = {}
    for index, spec in enumerate(specs):
        by_component.setdefault(spec.component, []).append(index)
    components = list(by_component.values())
    block = max(1, 2 * concurrency)
    order: list[int] = []
    for first in range(0, len(components), block):
        group = components[first : first + block]
        for rank in range(max(len(indexes) for indexes in group)):
            order += (indexes[rank] for indexes in group if rank < len(indexes))
    return order


ResultSink = Callable[[CheckResult], Awaitable[None] | None]


class Scheduler:
    """Runs each check on its interval until stopped; publishes every result to ``sink``.

    One task per check: run, publish, sleep. :meth:`run_now` wakes every loop early (the
    dashboard's ``r``); :meth:`pause` holds them after their current run.

    ``starts_per_s`` spreads the first runs (and those :meth:`run_now` asks for) at that many
    checks a second instead of all at once. The dashboard shares its event loop with the
    probes: 1,000 probes started together fill each loop turn with thousands of callbacks for a
    few hundred ms, and a key press needs several turns (``bench/tui_keypress.py``). Later runs
    stay spread, since each check sleeps its interval after its own run.

    As in a round, light checks start before heavy ones (``heavy_start``; otherwise in the
    order given), and every run goes through a :class:`StartBudget`.
    """

    def __init__(
        self,
        specs: Sequence[CheckSpec],
        resources: Resources,
        sink: ResultSink,
        *,
        concurrency: int = 64,
        starts_per_s: float | None = None,
    ) -> None:
        self._starts_per_s = starts_per_s
        self._specs = sorted(specs, key=lambda spec: spec.heavy_start)  # stable: light first
        self._budget = StartBudget()
        self._resources = resources
        self._sink = sink
        self._gate = asyncio.Semaphore(concurrency)
        self._wake = {spec.id: _Alarm() for spec in self._specs}
        self._running = asyncio.Event()
        self._running.set()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def paused(self) -> bool:
        """True while :meth:`pause` holds the loops."""
        return not self._running.is_set()

    def start(self) -> None:
        """Start one loop per check (idempotent)."""
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._loop(spec, self._offset(n)), name=f"opsdash:{spec.id}")
                for n, spec in enumerate(self._specs)
            ]

    def run_now(self) -> None:
        """Wake every check that is sleeping; a check that is running is not run twice."""
        loop = asyncio.get_running_loop()
        for n, alarm in enumerate(self._wake.values()):
            if offset := self._offset(n):
                loop.call_later(offset, alarm.ring)
            else:
                alarm.ring()

    def _offset(self, n: int) -> float:
        """When the ``n``-th check starts, after the first, when starts are spread."""
        return 0.0 if self._starts_per_s is None else n / self._starts_per_s

    def pause(self) -> None:
        """Hold every loop after its current run."""
        self._running.clear()

    def resume(self) -> None:
        """Let the loops go on."""
        self._running.set()

    async def stop(self) -> None:
        """Cancel every loop and wait for them to end."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _loop(self, spec: CheckSpec, delay: float) -> None:
        wake = self._wake[spec.id]
        if delay:
            await asyncio.sleep(delay)
        running = self._running
        while True:
            if not running.is_set():  # paused: most runs find it set, and await nothing
                await running.wait()
            wake.clear()
            async with self._gate:
                await self._budget.wait()
                result = await run_probe(spec, self._resources)
            published = self._sink(result)
            if published is not None:
                await published
            await wake.sleep(spec.interval)


class _Alarm:
    """A check's sleep between runs: it ends after the interval, or at once when rung
    (:meth:`Scheduler.run_now`; a ring during a run ends the next sleep before it starts).

    A future resolved by a timer: ``asyncio.timeout`` around an ``Event.wait`` ended every
    sleep by cancelling the task (a CancelledError raised, turned into a TimeoutError and
    caught, for each check's every run: serve's CPU per probe), and ``wait_for`` made a task
    per sleep on top of that."""

    __slots__ = ("_rung", "_waiter")

    def __init__(self) -> None:
        self._rung = False
        self._waiter: asyncio.Future[None] | None = None

    def ring(self) -> None:
        """End the current sleep, or the next one at once."""
        self._rung = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def clear(self) -> None:
        """Forget a ring (a run starts)."""
        self._rung = False

    async def sleep(self, seconds: float) -> None:
        """Until ``seconds`` have passed or :meth:`ring` is called."""
        if self._rung:
            return
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(seconds, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
