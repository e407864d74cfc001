"""Root causes: grouping failing checks under what broke them.

Rules (DESIGN.md, issue 3), applied in this order so that each failing dependant lands in one
incident only:

1. A datastore whose own check is crit is the cause; the failing services and workers that
   depend on it (``depends_on``, when they answered: a 503, a climbing retry rate), or whose
   readiness body names it failing, are affected: "redis unreachable; 6 services not ready,
   1 worker failing".
2. A datastore that opsdash reaches fine while two or more dependants report it failing: the
   fault is between them and it (network, credentials, pool exhaustion).
3. Any other failing datastore check (slow, nearly full, missing indexes) is its own incident.
4. A service or worker that fails otherwise is its own incident: its dependencies are fine, or it
   does not answer at all (then it is down itself, whatever else is down).

A service whose liveness ``/health`` fails while a datastore is down is flagged: an orchestrator
would restart it for another system's fault (the cascading-restart anti-pattern).

An :class:`Incident` states its cause, kind, status and the components it affects split by type
(:class:`Affected`); its one-line summary is generated from those same numbers by
:func:`summarise`, the only place incident wording is made. Every face (``check`` text and JSON,
the dashboard, alert notifications, the exporter) reads these fields, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING

from opsdash.figures import HttpFigures
from opsdash.records import dataclass, field
from opsdash.registry.model import Registry
from opsdash.results import CheckResult
from opsdash.status import Status, worst

if TYPE_CHECKING:
    from opsdash.plan import CheckSpec
    from opsdash.probe_plan import ComponentType

# How health bodies name datastores, by the registry kind they mean.
_KIND_ALIASES = {
    "postgres": ("postgres", "postgresql", "pg", "database", "db", "sql", "npgsql"),
    "redis": ("redis", "cache"),
    "mongo": ("mongo", "mongodb", "mongoose"),
}


class IncidentKind(StrEnum):
    """Which rule found the incident (the ``kind`` key of the JSON, unchanged since v1)."""

    DATASTORE_DOWN = "datastore-down"
    """A datastore opsdash cannot reach, and the dependants that fail with it."""
    UNREACHABLE_FROM_DEPENDANTS = "unreachable-from-dependants"
    """A datastore that answers opsdash while two or more dependants report it failing."""
    DATASTORE = "datastore"
    """A datastore check failing on its own (slow, nearly full, missing indexes)."""
    COMPONENT = "component"
    """A service or worker failing on its own."""

    def __str__(self) -> str:
        return self.value


AFFECTED_TYPES: tuple[ComponentType, ...] = ("service", "worker", "datastore")
"""The ``type`` label values of ``opsdash_incident_affected``, in display order."""


@dataclass(frozen=True, slots=True)
class Affected:
    """The failing components an incident explains, split by type (registry order)."""

    services: tuple[str, ...] = ()
    workers: tuple[str, ...] = ()
    datastores: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """Every affected component: exactly the set the summary counts (JSON ``affected``)."""
        return (*self.services, *self.workers, *self.datastores)

    def of_type(self, component_type: ComponentType) -> tuple[str, ...]:
        """The affected components of one type."""
        if component_type == "service":
            return self.services
        if component_type == "worker":
            return self.workers
        return self.datastores

    def count(self, component_type: ComponentType) -> int:
        """How many affected components are of ``component_type``."""
        return len(self.of_type(component_type))

    def __len__(self) -> int:
        return len(self.names)

    def __bool__(self) -> bool:
        return bool(self.names)

    @classmethod
    def split(cls, registry: Registry, names: Iterable[str]) -> Affected:
        """``names`` sorted into their types (order kept within each)."""
        by_type: dict[str, list[str]] = {t: [] for t in AFFECTED_TYPES}
        for name in names:
            by_type[registry.component_type(name)].append(name)
        return cls(tuple(by_type["service"]), tuple(by_type["worker"]), tuple(by_type["datastore"]))


@dataclass(frozen=True, slots=True)
class Incident:
    """One root cause and the failing components it explains."""

    cause: str
    cause_type: ComponentType
    kind: IncidentKind
    status: Status
    affected: Affected
    checks: tuple[str, ...] = ()
    """The failing checks this incident explains (the cause's and the affected ones')."""
    notes: tuple[str, ...] = field(default=())
    detail: str = ""
    """The cause's own words, for the kinds whose summary quotes them (``datastore``,
    ``component``): "health, ready: connection refused"."""

    @property
    def summary(self) -> str:
        """One line, from the same numbers as :attr:`affected` (see :func:`summarise`)."""
        return summarise(self)


# Words for one affected component of each type, as the datastore-down summary counts them.
_FAILING_WORDS = {"service": "not ready", "worker": "failing", "datastore": "failing"}


def plural(count: int, word: str) -> str:
    """``1 service``, ``6 services``."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def counted(affected: Affected, *, words: Mapping[str, str] | None = None) -> str:
    """ "6 services not ready, 1 worker failing" (``words``), or "2 services and 1 worker"."""
    parts = [
        plural(affected.count(t), t) + (f" {words[t]}" if words else "")
        for t in AFFECTED_TYPES
        if affected.count(t)
    ]
    if words:
        return ", ".join(parts)
    return " and ".join(parts) if len(parts) <= 2 else ", ".join(parts[:-1]) + f" and {parts[-1]}"


def summarise(incident: Incident) -> str:
    """The one-line summary of an incident: the only place its wording is made.

    "redis unreachable; 6 services not ready, 1 worker failing" counts exactly
    ``incident.affected``; every face prints this line."""
    cause = incident.cause
    if incident.kind is IncidentKind.DATASTORE_DOWN:
        if not incident.affected:
            return f"{cause} unreachable"
        return f"{cause} unreachable; {counted(incident.affected, words=_FAILING_WORDS)}"
    if incident.kind is IncidentKind.UNREACHABLE_FROM_DEPENDANTS:
        return (
            f"{cause} answers opsdash, but {counted(incident.affected)} report it failing: "
            "the fault is between them (network, credentials, pool exhaustion)"
        )
    return f"{cause}: {incident.detail}"


def reported_failing(registry: Registry, result: CheckResult) -> set[str]:
    """The registry datastores a readiness body reports failing."""
    figures = result.figures
    if not isinstance(figures, HttpFigures) or not figures.dependencies:
        return set()
    failing: set[str] = set()
    for reported, status in figures.dependencies.items():
        if status in (Status.OK, Status.UNKNOWN):
            continue
        name = datastore_named(registry, str(reported))
        if name is not None:
            failing.add(name)
    return failing


def datastore_named(registry: Registry, reported: str) -> str | None:
    """The datastore a health body means by ``reported`` (its name, or a kind alias when the
    registry has exactly one datastore of that kind)."""
    key = reported.lower()
    if key in registry.datastores:
        return key
    for kind, aliases in _KIND_ALIASES.items():
        if any(key == alias or key.startswith(alias) for alias in aliases):
            matches = [n for n, d in registry.datastores.items() if d.kind == kind]
            if len(matches) == 1:
                return matches[0]
    return None


@dataclass(frozen=True, slots=True)
class Evidence:
    """One round's results, indexed the way the rules ask about them.

    Built once so that every rule reads the same facts: which checks belong to which component,
    what each one depends on, which datastores are down, and what each failing service or worker
    says about the datastores it uses."""

    by_id: Mapping[str, CheckResult]
    checks_of: Mapping[str, Sequence[CheckResult]]
    depends_on: Mapping[str, tuple[str, ...]]
    dependants: tuple[str, ...]
    """Failing services and workers (spec order): the candidates the rules place."""
    reports: Mapping[str, frozenset[str]]
    """For each dependant, the datastores its readiness bodies report failing."""
    down: tuple[str, ...]
    """Datastores whose own check is crit (registry order)."""

    @classmethod
    def gather(
        cls, registry: Registry, specs: Sequence[CheckSpec], results: Sequence[CheckResult]
    ) -> Evidence:
        """Index ``results`` by component through ``specs``."""
        by_id = {result.id: result for result in results}
        checks_of: dict[str, list[CheckResult]] = {}
        depends_on: dict[str, tuple[str, ...]] = {}
        for spec in specs:
            depends_on[spec.component] = spec.depends_on
            if spec.id in by_id:
                checks_of.setdefault(spec.component, []).append(by_id[spec.id])
        dependants = tuple(
            name
            for name, checks in checks_of.items()
            if registry.component_type(name) != "datastore"
            and any(r.status.failing for r in checks)
        )
        reports = {
            name: frozenset().union(*(reported_failing(registry, r) for r in checks_of[name]))
            for name in dependants
        }
        down = tuple(
            name
            for name in registry.datastores
            if (main := by_id.get(name)) is not None and main.status is Status.CRIT
        )
        return cls(by_id, checks_of, depends_on, dependants, reports, down)

    def failing_checks(self, component: str) -> list[CheckResult]:
        """The failing checks of ``component`` (spec order)."""
        return [r for r in self.checks_of.get(component, ()) if r.status.failing]

    def answered(self, component: str) -> bool:
        """Whether some failing check of ``component`` got an answer to judge (a 503, a climbing
        retry rate), rather than no connection at all: only an answer ties it to a datastore."""
        return any(r.error is None for r in self.failing_checks(component))


Rule = Callable[[Registry, Evidence, frozenset[str]], list[Incident]]
"""One rule: the incidents it finds among the dependants not yet ``placed`` by earlier rules."""


def find_incidents(
    registry: Registry, specs: Sequence[CheckSpec], results: Sequence[CheckResult]
) -> list[Incident]:
    """The incidents that explain the failing ``results``, worst first.

    The rules run in :data:`RULES` order, each seeing the dependants the earlier ones placed, so
    that a failing dependant lands in one incident only."""
    evidence = Evidence.gather(registry, specs, results)
    incidents: list[Incident] = []
    for rule in RULES:
        placed = frozenset(name for incident in incidents for name in incident.affected.names)
        incidents.extend(rule(registry, evidence, placed))
    incidents.sort(key=lambda incident: -incident.status.severity)
    return incidents


def datastores_down(
    registry: Registry, evidence: Evidence, placed: frozenset[str]
) -> list[Incident]:
    """Rule 1: a datastore opsdash cannot reach is the cause of its failing dependants.

    Dependants count when their readiness body names it, or when they depend on it and answered
    (a 503, a climbing retry rate); one that does not answer at all is down itself (rule 4).
    Down datastores are taken in registry order, and the first one to claim a dependant keeps
    it, so that one outage is not counted twice."""
    taken = set(placed)
    incidents = []
    for datastore in evidence.down:
        affected = [
            name
            for name in evidence.dependants
            if name not in taken
            and (
                datastore in evidence.reports[name]
                or (datastore in evidence.depends_on.get(name, ()) and evidence.answered(name))
            )
        ]
        taken.update(affected)
        main = evidence.by_id[datastore]
        incidents.append(
            Incident(
                cause=datastore,
                cause_type="datastore",
                kind=IncidentKind.DATASTORE_DOWN,
                status=Status.CRIT,
                affected=Affected.split(registry, affected),
                checks=_ids([main], *(evidence.failing_checks(n) for n in affected)),
                notes=(main.summary, *cascade_notes(evidence, affected, datastore)),
                detail=main.summary,
            )
        )
    return incidents


def unreachable_from_dependants(
    registry: Registry, evidence: Evidence, placed: frozenset[str]
) -> list[Incident]:
    """Rule 2: a datastore that answers opsdash while two or more dependants report it failing.

    opsdash reaching it fine means the datastore itself is up; the fault is between the
    dependants and it (network, credentials, pool exhaustion). One reporter alone is more likely
    that dependant's own fault, so it is left to rule 4."""
    taken = set(placed)
    incidents = []
    for datastore in registry.datastores:
        if datastore in evidence.down or evidence.by_id.get(datastore) is None:
            continue
        reporters = [
            n for n in evidence.dependants if n not in taken and datastore in evidence.reports[n]
        ]
        if len(reporters) < 2:
            continue
        taken.update(reporters)
        incidents.append(
            Incident(
                cause=datastore,
                cause_type="datastore",
                kind=IncidentKind.UNREACHABLE_FROM_DEPENDANTS,
                status=worst(r.status for n in reporters for r in evidence.failing_checks(n)),
                affected=Affected.split(registry, reporters),
                checks=_ids(*(evidence.failing_checks(n) for n in reporters)),
            )
        )
    return incidents


def failing_datastores(
    registry: Registry, evidence: Evidence, placed: frozenset[str]
) -> list[Incident]:
    """Rule 3: any other failing datastore check (slow, nearly full, missing indexes).

    The datastore still answers, so nothing is blamed on it: it is its own incident, quoting its
    checks' own words, and affects no other component."""
    incidents = []
    for datastore in registry.datastores:
        if datastore in evidence.down:
            continue
        failing = evidence.failing_checks(datastore)
        if failing:
            incidents.append(
                Incident(
                    cause=datastore,
                    cause_type="datastore",
                    kind=IncidentKind.DATASTORE,
                    status=worst(r.status for r in failing),
                    affected=Affected(),
                    checks=_ids(failing),
                    detail="; ".join(_unique(r.summary for r in failing)),
                )
            )
    return incidents


def failing_on_their_own(
    registry: Registry, evidence: Evidence, placed: frozenset[str]
) -> list[Incident]:
    """Rule 4: a service or worker no datastore explains is its own incident.

    Either its dependencies are fine (then the summary says so, pointing at the component
    itself) or it does not answer at all: then it is down itself, whatever else is down."""
    incidents = []
    for name in evidence.dependants:
        if name in placed:
            continue
        failing = evidence.failing_checks(name)
        fine = dependencies_fine(evidence, name)
        incidents.append(
            Incident(
                cause=name,
                cause_type=registry.component_type(name),
                kind=IncidentKind.COMPONENT,
                status=worst(r.status for r in failing),
                affected=Affected.split(registry, [name]),
                checks=_ids(failing),
                detail=component_detail(failing) + (" (its dependencies are fine)" if fine else ""),
            )
        )
    return incidents


RULES: tuple[Rule, ...] = (
    datastores_down,
    unreachable_from_dependants,
    failing_datastores,
    failing_on_their_own,
)
"""The rules, in the order that decides which incident a failing dependant lands in."""


def dependencies_fine(evidence: Evidence, component: str) -> bool:
    """Whether ``component`` declares dependencies and none of their own checks fails: the
    summary then says so, because the usual first suspect is cleared."""
    dependencies = evidence.depends_on.get(component, ())
    return bool(dependencies) and not any(
        (main := evidence.by_id.get(d)) is not None and main.status.failing for d in dependencies
    )


def component_detail(failing: Sequence[CheckResult]) -> str:
    """The failing checks of one component in its own words, each reason said once:
    "health, ready: connection refused" rather than the same words twice."""
    summaries = _unique(r.summary for r in failing)
    if len(summaries) == 1:
        return ", ".join(r.check for r in failing) + f": {summaries[0]}"
    return "; ".join(f"{r.check}: {r.summary}" for r in failing)


def cascade_notes(evidence: Evidence, affected: Sequence[str], datastore: str) -> list[str]:
    """Flags for the cascading-restart anti-pattern among ``datastore``'s dependants.

    A service whose liveness ``/health`` fails because a datastore is down would be restarted
    by an orchestrator for another system's fault. Only a /health that answers with a failure is
    tied to the datastore; one that does not answer at all says nothing about it."""
    notes = []
    for name in affected:
        for result in evidence.checks_of.get(name, ()):
            if result.check == "health" and result.status.failing and result.error is None:
                notes.append(
                    f"{name}'s liveness /health fails with {datastore}: an orchestrator would "
                    "restart it for another system's fault (cascading-restart anti-pattern)"
                )
    return notes


def _unique(texts: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(texts))


def _ids(*groups: Sequence[CheckResult]) -> tuple[str, ...]:
    return tuple(result.id for group in groups for result in group)
