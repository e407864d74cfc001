"""A fixed platform for TUI tests: a registry, its checks and scripted rounds of results.

No probe runs: the specs' probes are never called (``live=False``) and results carry fixed
times, so screenshots are byte-for-byte stable under a frozen clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from opsdash.figures import (
    DlqFigures,
    Figures,
    HttpFigures,
    PostgresFigures,
    RedisFigures,
    WorkerFigures,
)
from opsdash.plan import CheckSpec, ComponentType
from opsdash.registry.model import Registry
from opsdash.results import CheckResult, ErrorType, Observation, ProbeError
from opsdash.status import Status
from opsdash.tui.app import DashboardApp

T0 = datetime(2026, 1, 25, 10, 0, 0, tzinfo=UTC)
ROUNDS = 6
INTERVAL = 10.0
NOW = T0 + timedelta(seconds=ROUNDS * INTERVAL - 5)

SERVICES = {
    "booking-service": ["postgres", "redis"],
    "student-service": ["postgres", "redis"],
    "course-service": ["postgres"],
    "payment-service": ["postgres"],
    "chat-service": ["mongo", "redis"],
}
WORKERS = {"allocation-worker": 5, "purchase-worker": 3, "cache-worker": 3}

REGISTRY = Registry.from_data(
    {
        "version": 1,
        "platform": "learning-platform",
        "datastores": {
            "postgres": {"kind": "postgres", "dsn": "postgresql://postgres@127.0.0.1:5432/p"},
            "redis": {"kind": "redis", "url": "redis://127.0.0.1:6379/0"},
        },
        "services": {
            name: {"url": f"http://127.0.0.1:{3001 + i}", "depends_on": deps, "tags": ["core"]}
            for i, (name, deps) in enumerate(SERVICES.items())
            if "mongo" not in deps
        }
        | {"chat-service": {"url": "http://127.0.0.1:3010", "depends_on": ["redis"]}},
        "workers": {
            name: {"max_attempts": attempts, "depends_on": ["redis"]}
            | (
                {}
                if name == "cache-worker"  # no DLQ, by design (as on the platform)
                else {"dlq": {"source": "redis-list", "datastore": "redis", "key": f"dlq:{name}"}}
            )
            for name, attempts in WORKERS.items()
        },
    }
)


async def _never(resources: Any) -> Observation:
    raise AssertionError("fixed-data dashboards run no probe")


def _spec(
    component: str, kind_of: ComponentType, check: str | None, kind: str, target: str
) -> CheckSpec:
    return CheckSpec(
        id=component if check is None else f"{component}.{check}",
        component=component,
        component_type=kind_of,
        check=check or kind,
        kind=kind,
        target=target,
        probe=_never,
        interval=INTERVAL,
        depends_on=tuple(getattr(REGISTRY.services.get(component), "depends_on", ()))
        or tuple(getattr(REGISTRY.workers.get(component), "depends_on", ())),
        tags=tuple(getattr(REGISTRY.services.get(component), "tags", ())),
    )


def specs() -> list[CheckSpec]:
    """The checks of :data:`REGISTRY`, in registry order."""
    out = [
        _spec("postgres", "datastore", None, "postgres", "postgresql://postgres@127.0.0.1:5432/p"),
        _spec(
            "postgres", "datastore", "indexes", "postgres", "postgresql://postgres@127.0.0.1:5432/p"
        ),
        _spec("redis", "datastore", None, "redis", "redis://127.0.0.1:6379/0"),
    ]
    for name, service in REGISTRY.services.items():
        for check in ("health", "ready"):
            out.append(_spec(name, "service", check, "http", f"{service.url}/{check}"))
    for name in WORKERS:
        if name != "cache-worker":
            out.append(
                _spec(name, "worker", "dlq", "redis-list", f"redis://127.0.0.1:6379/0 dlq:{name}")
            )
        out.append(_spec(name, "worker", "retries", "prometheus", "http://127.0.0.1:9464/metrics"))
    return out


def _result(
    spec: CheckSpec,
    at: datetime,
    status: Status,
    summary: str,
    latency: float,
    figures: Figures | None = None,
    error: ProbeError | None = None,
) -> CheckResult:
    return CheckResult(
        id=spec.id,
        component=spec.component,
        check=spec.check,
        kind=spec.kind,
        status=status,
        summary=summary,
        latency_ms=latency,
        target=spec.target,
        figures=figures,
        error=error,
        started_at=at,
    )


def round_results(index: int, *, incident: bool) -> Iterator[CheckResult]:
    """Round ``index`` (0-based): all healthy, or with redis down from round 3 when
    ``incident``: dependants unready, a DLQ filling, one service slow."""
    at = T0 + timedelta(seconds=index * INTERVAL)
    down = incident and index >= 3
    for n, spec in enumerate(specs()):
        latency = 4.0 + (n * 7 + index * 3) % 11
        if spec.id == "postgres":
            yield _result(
                spec,
                at,
                Status.OK,
                "PostgreSQL 16.4 primary, 12% connections",
                latency,
                PostgresFigures(
                    version="16.4",
                    role="primary",
                    ping_ms=0.5,
                    connections_used=12,
                    connections_max=100,
                    connections_pct=12.0,
                    long_transactions=0,
                    long_transaction_age_s=300.0,
                    replication_lag_s=0.0,
                ),
            )
        elif spec.id == "postgres.indexes":
            yield _result(spec, at, Status.OK, "7 of 7 expected indexes valid", latency)
        elif spec.id == "redis":
            if down:
                yield _result(
                    spec,
                    at,
                    Status.CRIT,
                    "connection refused",
                    0.4,
                    None,
                    ProbeError(ErrorType.REFUSED, "connection refused"),
                )
            else:
                yield _result(
                    spec,
                    at,
                    Status.OK,
                    "Redis 7.2.4 master, memory 41%",
                    latency,
                    RedisFigures(
                        version="7.2.4",
                        role="master",
                        ping_ms=0.3,
                        clients_connected=12,
                        clients_blocked=0,
                        memory_used=41 * 1024 * 1024,
                        memory_max=100 * 1024 * 1024,
                        memory_pct=41.0,
                        maxmemory_policy="noeviction",
                        evicted_keys=0,
                        rejected_connections=0,
                    ),
                )
        elif spec.check == "ready":
            deps = {d: Status.OK for d in SERVICES[spec.component]}
            slow = incident and spec.component == "course-service" and index >= 4
            if down and "redis" in deps:
                deps["redis"] = Status.CRIT
                yield _result(
                    spec,
                    at,
                    Status.CRIT,
                    "503 Service Unavailable: redis down",
                    latency,
                    HttpFigures(
                        http_status=503,
                        dependencies=deps,
                        format="nestjs",
                        body='{"status":"error","error":{"redis":{"status":"down"}}}',
                    ),
                )
            elif slow:
                yield _result(
                    spec,
                    at,
                    Status.WARN,
                    "200 OK; slow: 812 ms",
                    812.0 + index,
                    HttpFigures(http_status=200, dependencies=deps, format="spring"),
                )
            else:
                yield _result(
                    spec,
                    at,
                    Status.OK,
                    "200 OK",
                    latency,
                    HttpFigures(http_status=200, dependencies=deps, format="nestjs"),
                )
        elif spec.check == "health":
            yield _result(spec, at, Status.OK, "200 OK", latency, HttpFigures(http_status=200))
        elif spec.check == "dlq":
            depth = (
                (index - 2) * 40
                if incident and spec.component == "purchase-worker" and index > 2
                else 0
            )
            status = Status.CRIT if depth >= 100 else Status.WARN if depth >= 1 else Status.OK
            yield _result(
                spec,
                at,
                status,
                f"depth {depth}" + (", growing 240/min" if depth else ""),
                latency,
                DlqFigures(
                    "redis-list", depth, at.timestamp(), growth_per_min=240.0 if depth else 0.0
                ),
            )
        else:
            retries = 120.0 if down else 2.0
            ratio = retries / 300.0
            status = Status.CRIT if ratio >= 0.2 else Status.OK
            yield _result(
                spec,
                at,
                status,
                f"retry ratio {ratio * 100:.1f}%",
                latency,
                WorkerFigures(
                    source="prometheus",
                    max_attempts=WORKERS[spec.component],
                    dlq=f"{spec.component}.dlq",
                    sampled_at=at.timestamp(),
                    retries_per_min=retries,
                    failures_per_min=6.0 if down else 0.0,
                    retry_ratio_pct=ratio * 100,
                    ratio_basis="window",
                ),
            )


def build(*, incident: bool, rounds: int = ROUNDS) -> DashboardApp:
    """The dashboard after ``rounds`` fixed rounds, its clock frozen at :data:`NOW`."""

    class FixedDashboard(DashboardApp):
        def on_mount(self) -> None:
            super().on_mount()
            for index in range(rounds):
                self.ingest(round_results(index, incident=incident))

    return FixedDashboard(REGISTRY, specs(), live=False, clock=lambda: NOW)
