"""Root causes: grouping failing checks under what broke them.

Rules (DESIGN.md, issue 3), applied in this order so that each failing dependant lands in one
incident only:

1. A datastore whose own check is crit is the cause; the failing services and workers that
   depend on it (``depends_on``, when they answered: a 503, a climbing retry rate), or whose
   readiness body names it failing, are affected: "redis unreachable; 7 dependants not ready".
2. A datastore that opsdash reaches fine while two or more dependants report it failing: the
   fault is between them and it (network, credentials, pool exhaustion).
3. Any other failing datastore check (slow, nearly full, missing indexes) is its own incident.
4. A service or worker that fails otherwise is its own incident: its dependencies are fine, or it
   does not answer at all (then it is down itself, whatever else is down).

A service whose liveness ``/health`` fails while a datastore is down is flagged: an orchestrator
would restart it for another system's fault (the cascading-restart anti-pattern).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opsdash.registry.model import Registry
from opsdash.results import CheckResult
from opsdash.status import Status, worst

if TYPE_CHECKING:
    from opsdash.plan import CheckSpec

# How health bodies name datastores, by the registry kind they mean.
_KIND_ALIASES = {
    "postgres": ("postgres", "postgresql", "pg", "database", "db", "sql", "npgsql"),
    "redis": ("redis", "cache"),
    "mongo": ("mongo", "mongodb", "mongoose"),
}


@dataclass(frozen=True, slots=True)
class Incident:
    """One root cause and the failing components it explains."""

    cause: str
    status: Status
    affected: tuple[str, ...]
    summary: str
    kind: str
    """``datastore-down``, ``unreachable-from-dependants``, ``datastore``, or ``component``."""
    checks: tuple[str, ...] = ()
    """The failing checks this incident explains (the cause's and the affected ones')."""
    notes: tuple[str, ...] = field(default=())


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def reported_failing(registry: Registry, result: CheckResult) -> set[str]:
    """The registry datastores a readiness body reports failing."""
    dependencies = result.details.get("dependencies")
    if not isinstance(dependencies, Mapping):
        return set()
    failing: set[str] = set()
    for reported, status in dependencies.items():
        if str(status) in (Status.OK.value, Status.UNKNOWN.value):
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


def find_incidents(
    registry: Registry, specs: Sequence[CheckSpec], results: Sequence[CheckResult]
) -> list[Incident]:
    """The incidents that explain the failing ``results``, worst first."""
    by_id = {result.id: result for result in results}
    checks_of: dict[str, list[CheckResult]] = {}
    depends_on: dict[str, tuple[str, ...]] = {}
    for spec in specs:
        depends_on[spec.component] = spec.depends_on
        if spec.id in by_id:
            checks_of.setdefault(spec.component, []).append(by_id[spec.id])

    def failing_checks(component: str) -> list[CheckResult]:
        return [r for r in checks_of.get(component, []) if r.status.failing]

    def answered(component: str) -> bool:
        # Some failing check got an answer to judge (a 503, a climbing retry rate), rather
        # than no connection at all.
        return any(r.error is None for r in failing_checks(component))

    dependants = [
        name
        for name in checks_of
        if registry.component_type(name) != "datastore" and failing_checks(name)
    ]
    reports = {
        name: set().union(*(reported_failing(registry, r) for r in checks_of[name]))
        for name in dependants
    }
    down = [
        name
        for name in registry.datastores
        if (main := by_id.get(name)) is not None and main.status is Status.CRIT
    ]
    placed: set[str] = set()
    incidents: list[Incident] = []

    # 1. datastores down, and their failing dependants: those whose answers name it, and those
    #    that depend on it and answered (one that does not answer at all is down itself)
    for datastore in down:
        affected = [
            name
            for name in dependants
            if name not in placed
            and (
                datastore in reports[name]
                or (datastore in depends_on.get(name, ()) and answered(name))
            )
        ]
        placed.update(affected)
        main = by_id[datastore]
        summary = f"{datastore} unreachable"
        if affected:
            summary += f"; {_plural(len(affected), 'dependant')} not ready"
        notes = _cascade_notes(affected, checks_of, datastore)
        incidents.append(
            Incident(
                cause=datastore,
                status=Status.CRIT,
                affected=tuple(affected),
                summary=summary,
                kind="datastore-down",
                checks=_ids([main], *(failing_checks(n) for n in affected)),
                notes=(main.summary, *notes),
            )
        )

    # 2. datastores that answer opsdash but that two or more dependants report failing
    for datastore in registry.datastores:
        if datastore in down or by_id.get(datastore) is None:
            continue
        reporters = [n for n in dependants if n not in placed and datastore in reports[n]]
        if len(reporters) < 2:
            continue
        placed.update(reporters)
        incidents.append(
            Incident(
                cause=datastore,
                status=worst(r.status for n in reporters for r in failing_checks(n)),
                affected=tuple(reporters),
                summary=(
                    f"{datastore} answers opsdash, but {len(reporters)} dependants report it "
                    "failing: the fault is between them (network, credentials, pool exhaustion)"
                ),
                kind="unreachable-from-dependants",
                checks=_ids(*(failing_checks(n) for n in reporters)),
            )
        )

    # 3. other failing datastore checks
    for datastore in registry.datastores:
        if datastore in down:
            continue
        failing = failing_checks(datastore)
        if failing:
            incidents.append(
                Incident(
                    cause=datastore,
                    status=worst(r.status for r in failing),
                    affected=(),
                    summary=f"{datastore}: " + "; ".join(_unique(r.summary for r in failing)),
                    kind="datastore",
                    checks=_ids(failing),
                )
            )

    # 4. services and workers failing on their own
    for name in dependants:
        if name in placed:
            continue
        failing = failing_checks(name)
        dependencies = depends_on.get(name, ())
        fine = bool(dependencies) and not any(
            (main := by_id.get(d)) is not None and main.status.failing for d in dependencies
        )
        clause = "its dependencies are fine" if fine else ""
        # "health, ready: connection refused" rather than the same words twice
        summaries = _unique(r.summary for r in failing)
        detail = (
            ", ".join(r.check for r in failing) + f": {summaries[0]}"
            if len(summaries) == 1
            else "; ".join(f"{r.check}: {r.summary}" for r in failing)
        )
        incidents.append(
            Incident(
                cause=name,
                status=worst(r.status for r in failing),
                affected=(name,),
                summary=f"{name}: {detail}" + (f" ({clause})" if clause else ""),
                kind="component",
                checks=_ids(failing),
            )
        )
    incidents.sort(key=lambda incident: -incident.status.severity)
    return incidents


def _cascade_notes(
    affected: Sequence[str], checks_of: Mapping[str, Sequence[CheckResult]], datastore: str
) -> list[str]:
    notes = []
    for name in affected:
        for result in checks_of.get(name, ()):
            # Only a /health that answers with a failure is tied to the datastore; one that does
            # not answer at all says nothing about it.
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
