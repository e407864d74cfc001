"""The dashboard's parts that are not widgets: the engine's driver, the results inbox, the
collector policy, the alerting marks and the screen's state. Each without a terminal."""

from __future__ import annotations

import asyncio
import gc
import time
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from opsdash.alertstate.store import open_store
from opsdash.collector import CollectorPolicy
from opsdash.registry.model import Registry
from opsdash.resources import Resources
from opsdash.results import CheckResult, Observation
from opsdash.state import PlatformState, Snapshot
from opsdash.status import Status
from opsdash.tui.alert_marks import AlertMarks
from opsdash.tui.engine import EngineDriver
from opsdash.tui.inbox import ResultInbox
from opsdash.tui.rows import Row, specs_by_component
from opsdash.tui.screen_state import (
    ScreenState,
    counted_title,
    incidents_title,
    modes,
    visible,
)
from tests.helpers import result, spec


class CountingResources(AbstractAsyncContextManager[Resources]):
    """Real resources that say whether they were closed."""

    def __init__(self) -> None:
        self.inner = Resources()
        self.closed = False

    async def __aenter__(self) -> Resources:
        return await self.inner.__aenter__()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.inner.__aexit__(kind, exc, tb)
        self.closed = True


async def test_the_driver_holds_a_pause_from_before_the_start_and_runs_now_on_request() -> None:
    runs: asyncio.Queue[CheckResult] = asyncio.Queue()

    async def probe(_: Resources) -> Observation:
        return Observation(Status.OK, "ok")

    opened = CountingResources()
    driver = EngineDriver(
        [spec("a.health", probe, interval=3600)],
        runs.put_nowait,
        resources=lambda: opened,  # type: ignore[arg-type,return-value]
        concurrency=4,
        paused=True,
        starts_per_s=None,
    )
    task = asyncio.create_task(driver.run())
    for _ in range(1000):  # loop turns, not time: opening the resources does no I/O
        if driver.scheduler is not None:
            break
        await asyncio.sleep(0)
    assert driver.scheduler is not None
    assert driver.scheduler.paused  # paused before the engine was up: still paused
    driver.set_paused(False)
    first = await asyncio.wait_for(runs.get(), 5)
    assert first.id == "a.health"
    driver.run_now()  # the interval is an hour: only run-now brings a second run
    await asyncio.wait_for(runs.get(), 5)
    task.cancel()
    await driver.wait_closed(timeout=5)
    assert opened.closed  # the clients are closed once a cancelled run has ended


async def test_waiting_for_a_driver_that_never_ran_returns_at_once() -> None:
    driver = EngineDriver([], lambda _r: None, resources=Resources, concurrency=1)
    await driver.wait_closed(timeout=0)
    driver.run_now()  # nothing to run: no error either
    driver.set_paused(True)
    assert driver.paused


async def test_a_burst_of_results_is_delivered_as_one_batch_in_order() -> None:
    batches: list[tuple[CheckResult, ...]] = []
    delivered = asyncio.Event()

    def deliver(batch: tuple[CheckResult, ...]) -> None:
        batches.append(batch)
        delivered.set()

    inbox = ResultInbox(deliver, gap=0.0)
    burst = [result(f"s{i}.health") for i in range(5)]
    for item in burst:
        inbox.put(item)
    await asyncio.wait_for(delivered.wait(), 5)
    assert batches == [tuple(burst)]


async def test_results_right_after_a_refresh_wait_for_the_gap() -> None:
    now = [1000.0]
    batches: list[tuple[CheckResult, ...]] = []
    delivered = asyncio.Event()

    def deliver(batch: tuple[CheckResult, ...]) -> None:
        batches.append(batch)
        delivered.set()

    inbox = ResultInbox(deliver, gap=60.0, clock=lambda: now[0])
    inbox.refreshed()  # the panels were just redrawn
    inbox.put(result("a.health"))
    await asyncio.sleep(0)  # loop turns: the inbox has scheduled its batch by now
    await asyncio.sleep(0)
    assert batches == []  # held back: the panels were redrawn less than a gap ago
    inbox.close()  # the app goes away: the held batch is not delivered later
    now[0] += 120.0  # (a later put finds the gap over)
    inbox.put(result("b.health"))
    await asyncio.wait_for(delivered.wait(), 5)
    assert [[r.id for r in batch] for batch in batches] == [["a.health", "b.health"]]


def test_the_collector_policy_gives_back_what_it_changed() -> None:
    before = gc.get_threshold()
    policy = CollectorPolicy(young=12_345)
    try:
        policy.start()
        assert gc.get_threshold()[0] == 12_345
        assert gc.get_threshold()[1:] == before[1:]
        frozen = gc.get_freeze_count()
        assert frozen > 0
        assert not policy.is_settled
        policy.settled()
        assert policy.is_settled
        garbage = [object() for _ in range(10)]  # alive now: the second freeze would take it
        policy.settled()  # only once
        assert gc.get_freeze_count() >= frozen
        del garbage
    finally:
        policy.stop()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


async def _never(_: Resources) -> Observation:
    raise AssertionError("not run")


def _snapshot(*results: CheckResult) -> Snapshot:
    return Snapshot("p", datetime.now(UTC), None, results, (), ())


MARKED_SPECS = [
    replace(spec("redis", _never), component_type="datastore", tags=("core",)),
    spec("api.health", _never),
]


def test_alert_marks_show_a_silence_from_the_state_file(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    with open_store(state, report=print) as store:
        store.add_silence("redis", "failover drill", now=time.time(), duration=3600, author="t")
    marks = AlertMarks(state, MARKED_SPECS)
    plain = _snapshot(result("redis", Status.CRIT), result("api.health"))
    assert marks.apply(plain) == plain  # nothing read yet: nothing marked
    marks.read()
    marked = marks.apply(plain)
    redis = marked.mark("redis")
    assert redis is not None and redis.silence is not None
    assert redis.silence.reason == "failover drill"
    assert marked.mark("api.health") is None
    assert marked.results == plain.results  # the results themselves are never edited


def test_alert_marks_without_a_state_file_mark_nothing(tmp_path: Path) -> None:
    marks = AlertMarks(tmp_path / "missing.db", [])
    marks.read()
    assert not (tmp_path / "missing.db").exists()  # reading never creates the state
    plain = _snapshot(result("redis", Status.CRIT))
    assert marks.apply(plain) == plain


async def test_alert_marks_are_re_read_while_watching(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    marks = AlertMarks(state, [])
    watching = asyncio.create_task(marks.watch(every=0.01))
    try:
        with open_store(state, report=print) as store:
            store.add_silence("redis", "drill", now=time.time(), duration=3600, author="t")
        deadline = time.monotonic() + 5
        while not marks.view.silences and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)  # the watcher reads in a thread: poll it with a deadline
        assert [s.matcher for s in marks.view.silences] == ["redis"]
    finally:
        watching.cancel()


def test_starting_the_collector_policy_twice_still_gives_back_the_original() -> None:
    before = gc.get_threshold()
    policy = CollectorPolicy(young=54_321)
    try:
        policy.start()
        policy.start()  # textual runs a parent's on_mount and its subclass's
    finally:
        policy.stop()
    assert gc.get_threshold() == before


def _row(key: str, status: Status, search: str) -> Row:
    return Row(key, (), status, search)


ROWS = [
    _row("booking", Status.CRIT, "booking core"),
    _row("billing", Status.OK, "billing core"),
    _row("redis", Status.WARN, "redis cache"),
]


def test_the_filter_keeps_rows_matching_every_word_and_failing_only() -> None:
    assert [r.key for r in visible(ROWS, "", failing_only=False)] == [
        "booking",
        "billing",
        "redis",
    ]
    assert [r.key for r in visible(ROWS, "Core", failing_only=False)] == ["booking", "billing"]
    assert [r.key for r in visible(ROWS, "core bill", failing_only=False)] == ["billing"]
    assert [r.key for r in visible(ROWS, "", failing_only=True)] == ["booking", "redis"]
    assert [r.key for r in visible(ROWS, "core", failing_only=True)] == ["booking"]


def test_panel_titles_count_only_when_the_filter_hides_rows() -> None:
    assert counted_title("Services", 3, 11) == "Services (3/11)"
    assert counted_title("Services", 11, 11) == "Services"
    assert incidents_title(0) == "Incidents: none"
    assert incidents_title(2) == "Incidents (2)"


def test_modes_carry_the_user_switches_and_no_sources_when_probing() -> None:
    shown = modes(paused=True, engine_error="boom", query="redis", failing_only=True)
    assert (shown.paused, shown.engine_error, shown.query, shown.failing_only) == (
        True,
        "boom",
        "redis",
        True,
    )
    assert shown.sources is None and shown.source_count == 0 and not shown.cut_off


SCREEN_REGISTRY = Registry.from_data(
    {
        "version": 1,
        "platform": "p",
        "datastores": {"redis": {"kind": "redis", "url": "redis://127.0.0.1:1/0"}},
    }
)


def _screen(tmp_path: Path) -> tuple[PlatformState, AlertMarks, ScreenState]:
    state = PlatformState(SCREEN_REGISTRY, MARKED_SPECS)
    alerts = AlertMarks(tmp_path / "state.db", MARKED_SPECS)
    return state, alerts, ScreenState(state, alerts, specs_by_component(MARKED_SPECS))


def test_the_snapshot_is_kept_until_new_results_or_new_marks(tmp_path: Path) -> None:
    state, alerts, screen = _screen(tmp_path)
    now = datetime.now(UTC)
    first = screen.view(now).snapshot
    assert screen.view(now).snapshot is first  # the clock alone does not re-snapshot
    state.apply_all([result("redis", Status.CRIT)])
    screen.results_changed()
    second = screen.view(now).snapshot
    assert second is not first and [r.id for r in second.results] == ["redis"]
    with open_store(tmp_path / "state.db", report=print) as store:
        store.add_silence("redis", "drill", now=time.time(), duration=3600, author="t")
    alerts.read()
    marked = screen.view(now).snapshot  # a new read re-marks the same results
    redis = marked.mark("redis")
    assert marked is not second and redis is not None and redis.silence is not None


def test_the_banner_is_rebuilt_only_for_a_new_snapshot_or_pending_count(tmp_path: Path) -> None:
    state, _, screen = _screen(tmp_path)
    now = datetime.now(UTC)
    view = screen.view(now)
    assert screen.banner_due(view) == 2  # the first time: nothing has answered
    assert screen.banner_due(screen.view(now)) is None  # same snapshot, same pending
    state.apply_all([result("redis", Status.CRIT)])
    screen.results_changed()
    assert screen.banner_due(screen.view(now)) == 1
    assert screen.banner_due(screen.view(now)) is None
