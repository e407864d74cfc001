"""The state stage: history, since, events, derive steps and roll-ups."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from opsdash.figures import SqlValueFigures
from opsdash.plan import build_plan
from opsdash.registry.model import Registry
from opsdash.results import CheckResult
from opsdash.state import PlatformState
from opsdash.status import Status
from tests.helpers import result

REGISTRY = Registry.from_data(
    {
        "version": 1,
        "platform": "test",
        "services": {"api": {"url": "http://127.0.0.1:1"}, "web": {"url": "http://127.0.0.1:2"}},
    }
)
T0 = datetime(2026, 1, 25, 10, 0, tzinfo=UTC)


def test_since_and_events_follow_status_changes_only() -> None:
    state = PlatformState(REGISTRY, build_plan(REGISTRY))
    first = state.apply(result("api.health", at=T0))
    again = state.apply(result("api.health", at=T0 + timedelta(seconds=10)))
    down = state.apply(result("api.health", Status.CRIT, "refused", at=T0 + timedelta(seconds=20)))

    assert first is not None and first.previous is None
    assert again is None
    assert down is not None and (down.previous, down.current) == (Status.OK, Status.CRIT)
    assert state.since("api.health") == T0 + timedelta(seconds=20)
    assert [event.current for event in state.events] == [Status.CRIT, Status.OK]  # newest first
    assert len(state.history("api.health")) == 3


def test_history_is_bounded() -> None:
    state = PlatformState(REGISTRY, build_plan(REGISTRY), history_size=5)
    for i in range(12):
        state.apply(result("api.health", at=T0 + timedelta(seconds=i)))
    kept = state.history("api.health")
    assert len(kept) == 5 and kept[-1].started_at == T0 + timedelta(seconds=11)


def test_derive_sees_the_earlier_results_of_its_check() -> None:
    seen: list[int] = []

    def derive(current: CheckResult, history: Sequence[CheckResult]) -> CheckResult:
        seen.append(len(history))
        return current.with_figures(SqlValueFigures(len(history) + 1))

    specs = [replace(s, derive=derive) if s.id == "api.ready" else s for s in build_plan(REGISTRY)]
    state = PlatformState(REGISTRY, specs)
    for i in range(3):
        state.apply(result("api.ready", at=T0 + timedelta(seconds=i)))
    latest = state.latest("api.ready")
    assert seen == [0, 1, 2]
    assert latest is not None and latest.figures == SqlValueFigures(3)


def test_snapshot_rolls_up_components_and_counts() -> None:
    state = PlatformState(REGISTRY, build_plan(REGISTRY))
    state.apply_all(
        [
            result("api.health"),
            result("api.ready", Status.WARN, "degraded"),
            result("web.health"),
            result("web.ready"),
        ]
    )
    snapshot = state.snapshot()
    assert {c.name: c.status for c in snapshot.components} == {"api": Status.WARN, "web": Status.OK}
    assert snapshot.counts == {"ok": 3, "warn": 1, "crit": 0, "unknown": 0}
    assert snapshot.status is Status.WARN
