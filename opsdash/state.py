"""What opsdash knows now: the latest result per check, a bounded history, state changes,
component roll-ups and incidents. Every output (TUI, renderers, alerting, exporter) reads a
:class:`Snapshot` of it.

:class:`PlatformState` is fed results one at a time (:meth:`PlatformState.apply`), from a round
or from the watch-mode scheduler. It runs each check's ``derive`` step (rates, growth) with that
check's history, so a one-shot ``check`` and the dashboard judge a figure the same way.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from opsdash.incidents import Incident, find_incidents
from opsdash.marks import CheckMark, SilenceMark
from opsdash.plan import CheckSpec
from opsdash.probe_plan import ComponentType
from opsdash.records import dataclass, field
from opsdash.registry.model import Registry
from opsdash.results import CheckResult
from opsdash.status import Status, worst

HISTORY_SIZE = 120
"""Results kept per check: 20 minutes at the default 10 s interval."""
EVENTS_SIZE = 500


@dataclass(frozen=True, slots=True)
class Event:
    """A check changed status (or ran for the first time)."""

    at: datetime
    check_id: str
    previous: Status | None
    current: Status
    summary: str


@dataclass(frozen=True, slots=True)
class Component:
    """A service, worker or datastore: the worst of its checks."""

    name: str
    type: ComponentType
    status: Status
    checks: tuple[str, ...]
    tags: tuple[str, ...] = ()
    """The registry entry's tags (every check of a component shares them)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An immutable view of the state, for renderers: pure functions of this."""

    platform: str
    started_at: datetime
    duration_ms: float | None
    results: tuple[CheckResult, ...]
    components: tuple[Component, ...]
    incidents: tuple[Incident, ...]
    since: Mapping[str, datetime] = field(default_factory=dict)
    marks: Mapping[str, CheckMark] = field(default_factory=dict)
    """Silences and flapping by check id (see :class:`opsdash.alerting.AlertView`)."""
    incident_silences: Mapping[str, SilenceMark] = field(default_factory=dict)
    """By incident cause: a silence on the cause holds back the whole incident."""

    def with_marks(
        self, marks: Mapping[str, CheckMark], incident_silences: Mapping[str, SilenceMark]
    ) -> Snapshot:
        """A copy with ``opsdash alert``'s marks."""
        return replace(self, marks=marks, incident_silences=incident_silences)

    def mark(self, check_id: str) -> CheckMark | None:
        """The marks of one check, if it has any."""
        return self.marks.get(check_id)

    @property
    def status(self) -> Status:
        """The platform's status: the worst of every check."""
        return worst(result.status for result in self.results)

    @property
    def counts(self) -> dict[str, int]:
        """How many checks have each status (every status present, zero included)."""
        counts = {status.value: 0 for status in Status}
        for result in self.results:
            counts[result.status.value] += 1
        return counts


class PlatformState:
    """The latest result and bounded history of every check."""

    def __init__(
        self,
        registry: Registry,
        specs: Sequence[CheckSpec],
        *,
        history_size: int = HISTORY_SIZE,
    ) -> None:
        self.registry = registry
        self._specs = {spec.id: spec for spec in specs}
        self._spec_order = tuple(specs)  # read on every refresh: built once
        self._order = [spec.id for spec in specs]
        self._history_size = history_size
        self._history: dict[str, deque[CheckResult]] = {
            spec.id: deque(maxlen=history_size) for spec in specs
        }
        self._since: dict[str, datetime] = {}
        self.events: deque[Event] = deque(maxlen=EVENTS_SIZE)
        self.last_update: datetime | None = None

    @property
    def specs(self) -> Sequence[CheckSpec]:
        """The checks this state tracks, in registry order."""
        return self._spec_order

    def spec(self, check_id: str) -> CheckSpec | None:
        """The check ``check_id``, if this state tracks it."""
        return self._specs.get(check_id)

    def apply(self, result: CheckResult) -> Event | None:
        """Record ``result`` (after its check's derive step); the event if its status changed."""
        spec = self._specs.get(result.id)
        history = self._history.get(result.id)
        if history is None:  # a check outside the plan (a test feeding results): keep it too
            history = self._history[result.id] = deque(maxlen=self._history_size)
        if spec is not None and spec.derive is not None:
            result = spec.derive(result, history)  # read-only: nothing appends meanwhile
        previous = history[-1] if history else None
        history.append(result)
        self.last_update = result.started_at
        if previous is not None and previous.status is result.status:
            return None
        self._since[result.id] = result.started_at
        event = Event(
            result.started_at,
            result.id,
            None if previous is None else previous.status,
            result.status,
            result.summary,
        )
        self.events.appendleft(event)
        return event

    def apply_all(self, results: Iterable[CheckResult]) -> list[Event]:
        """Apply several results; the events they caused."""
        return [event for result in results if (event := self.apply(result)) is not None]

    def latest(self, check_id: str) -> CheckResult | None:
        """The newest result of a check, if it ran."""
        history = self._history.get(check_id)
        return history[-1] if history else None

    def history(self, check_id: str) -> Sequence[CheckResult]:
        """A check's kept results, oldest first."""
        return tuple(self._history.get(check_id, ()))

    def since(self, check_id: str) -> datetime | None:
        """When the check's current status began (as far as this process saw)."""
        return self._since.get(check_id)

    def results(self) -> list[CheckResult]:
        """The latest result of every check that ran, in registry order."""
        return [r for check_id in self._order if (r := self.latest(check_id)) is not None]

    def snapshot(
        self, *, started_at: datetime | None = None, duration_ms: float | None = None
    ) -> Snapshot:
        """An immutable view for renderers."""
        results = self.results()
        return Snapshot(
            platform=self.registry.platform,
            started_at=started_at or self.last_update or datetime.now(UTC),
            duration_ms=duration_ms,
            results=tuple(results),
            components=tuple(components(self.registry, self.specs, results)),
            incidents=tuple(find_incidents(self.registry, self.specs, results)),
            since=dict(self._since),
        )


def snapshot_of(
    registry: Registry,
    specs: Sequence[CheckSpec],
    results: Iterable[CheckResult],
    *,
    earlier: Iterable[CheckResult] = (),
    started_at: datetime | None = None,
    duration_ms: float | None = None,
) -> Snapshot:
    """The snapshot of one round's ``results``; ``earlier`` results (the previous run's, kept
    by ``opsdash alert``) are applied first, so that derive steps see them."""
    state = PlatformState(registry, specs)
    state.apply_all(earlier)
    state.apply_all(results)
    return state.snapshot(started_at=started_at, duration_ms=duration_ms)


def components(
    registry: Registry, specs: Sequence[CheckSpec], results: Sequence[CheckResult]
) -> list[Component]:
    """Each component's status: the worst of its checks' latest results (registry order)."""
    by_component: dict[str, list[str]] = {}
    types: dict[str, ComponentType] = {}
    tags: dict[str, tuple[str, ...]] = {}
    for spec in specs:
        by_component.setdefault(spec.component, []).append(spec.id)
        types[spec.component] = spec.component_type
        tags.setdefault(spec.component, spec.tags)
    status_of = {result.id: result.status for result in results}
    return [
        Component(
            name,
            types[name],
            worst(status_of[i] for i in check_ids if i in status_of),
            tuple(check_ids),
            tags[name],
        )
        for name, check_ids in by_component.items()
    ]
