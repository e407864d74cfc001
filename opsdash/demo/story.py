"""The demo's script: what the platform looks like at each second of a looping story.

Pure functions of the story time (seconds into the cycle), so that tests can ask for any
moment. One cycle (80 s):

====== ===================================================================================
 time   what happens
====== ===================================================================================
 0-10   all is well
 10-30  redis is down: six services answer /ready 503 naming it; notification-service's
        liveness checks redis too (the anti-pattern the incident flags); workers retry more
 20-60  purchase-worker's DLQ fills (to 140, past crit 100) from 20 to 45, drained by 60
 30-46  PostgreSQL connections near saturation: the services reconnect in a storm after
        the outage and leak idle connections (15 of 17 usable: over the 80% warning)
 36-56  a rollback of migration 019 drops idx_sessions_trainer_status: the index audit finds
        it missing, until the migration is re-run
 50-68  course-service turns slow (800 ms per answer: over the 500 ms warning)
 56-76  the MongoDB secondary lags behind its primary (up to 90 s: over the 30 s warning)
 76-80  all is well again
====== ===================================================================================
"""

from __future__ import annotations

from opsdash.records import dataclass, field

CYCLE = 80.0
REDIS_OUTAGE = (10.0, 30.0)
DLQ_FILL = (20.0, 45.0)
DLQ_DRAINED = 60.0
DLQ_PEAK = 140
ALLOCATION_DLQ = (15.0, 40.0)
SLOW = (50.0, 68.0)
SLOW_DELAY = 0.8
SLOW_SERVICE = "course-service"
PG_SATURATION = (30.0, 46.0)
PG_LEAKED_CONNECTIONS = 12
INDEX_DROPPED = (36.0, 56.0)
MONGO_LAG = (56.0, 76.0)
MONGO_LAG_PEAK = 90.0

PROCESSED_PER_S = 5.0
BASE_RETRIES_PER_S = 0.04


@dataclass(frozen=True, slots=True)
class DemoService:
    """One demo service: its health body format and the dependencies its readiness checks."""

    name: str
    format: str
    dependencies: tuple[str, ...]
    liveness_checks_dependencies: bool = False
    """The anti-pattern: /health fails with a dependency (an orchestrator restarts it)."""

    @property
    def uses_redis(self) -> bool:
        """Whether its readiness goes down with redis."""
        return "redis" in self.dependencies


SERVICES: tuple[DemoService, ...] = (
    DemoService("booking-service", "nestjs", ("database", "redis")),
    DemoService("student-service", "godaddy", ("database", "redis")),
    DemoService("course-service", "spring", ("db",)),
    DemoService("admin-service", "ietf", ("postgres",)),
    DemoService("trainer-service", "microprofile", ("database",)),
    DemoService("student-auth-service", "aspnet", ("npgsql", "redis")),
    DemoService("trainer-auth-service", "plain", ("postgres", "redis")),
    DemoService("notification-service", "nestjs", ("mongodb", "redis"), True),
    DemoService("analytics-service", "aspnet-text", ("mongodb",)),
    DemoService("chat-service", "ietf", ("mongodb", "redis")),
    DemoService("payment-service", "spring", ("db",)),
)


@dataclass(frozen=True, slots=True)
class DemoWorker:
    """One demo worker: retries per the platform document, a DLQ or none by design."""

    name: str
    max_attempts: int
    has_dlq: bool = True
    uses_redis: bool = True


WORKERS: tuple[DemoWorker, ...] = (
    DemoWorker("allocation-worker", 5),
    DemoWorker("purchase-worker", 3, uses_redis=False),
    DemoWorker("session-worker", 3),
    DemoWorker("cache-worker", 3, has_dlq=False),
)


@dataclass(frozen=True, slots=True)
class Scene:
    """The platform at one moment of the story."""

    t: float
    redis_up: bool
    slow: dict[str, float] = field(default_factory=dict)
    """Service name -> seconds each answer takes."""
    dlq_depth: dict[str, int] = field(default_factory=dict)
    retries_per_s: dict[str, float] = field(default_factory=dict)
    failures_per_s: dict[str, float] = field(default_factory=dict)
    pg_extra_connections: int = 0
    """Idle connections leaked into PostgreSQL."""
    pg_index_dropped: bool = False
    """Whether the rollback has dropped the migration-019 index."""
    mongo_lag_s: float = 0.0
    """How far the MongoDB secondary is behind its primary."""


def _within(t: float, span: tuple[float, float]) -> bool:
    return span[0] <= t < span[1]


def _purchase_dlq(t: float) -> int:
    start, full = DLQ_FILL
    if t < start or t >= DLQ_DRAINED:
        return 0
    if t < full:
        return round(DLQ_PEAK * (t - start) / (full - start))
    return round(DLQ_PEAK * (DLQ_DRAINED - t) / (DLQ_DRAINED - full))


def _mongo_lag(t: float) -> float:
    """Up to the peak over the first half of the episode, caught up again by its end."""
    start, end = MONGO_LAG
    if not start <= t < end:
        return 0.0
    middle = (start + end) / 2
    share = (t - start) / (middle - start) if t < middle else (end - t) / (end - middle)
    return round(MONGO_LAG_PEAK * share, 1)


def scene_at(t: float) -> Scene:
    """The scene ``t`` seconds into a cycle (any ``t``: it wraps)."""
    t = t % CYCLE
    redis_up = not _within(t, REDIS_OUTAGE)
    retries: dict[str, float] = {}
    failures: dict[str, float] = {}
    for worker in WORKERS:
        outage = worker.uses_redis and not redis_up
        retries[worker.name] = 2.0 if outage else BASE_RETRIES_PER_S
        failures[worker.name] = 0.3 if outage and worker.has_dlq else 0.0
    # purchase-worker's payment provider rejects jobs while its DLQ fills
    if _within(t, DLQ_FILL):
        retries["purchase-worker"] = 1.5
        failures["purchase-worker"] = DLQ_PEAK / (DLQ_FILL[1] - DLQ_FILL[0])
    return Scene(
        t=t,
        redis_up=redis_up,
        slow={SLOW_SERVICE: SLOW_DELAY} if _within(t, SLOW) else {},
        dlq_depth={
            "allocation-worker": 2 if _within(t, ALLOCATION_DLQ) else 0,
            "purchase-worker": _purchase_dlq(t),
            "session-worker": 0,
        },
        retries_per_s=retries,
        failures_per_s=failures,
        pg_extra_connections=PG_LEAKED_CONNECTIONS if _within(t, PG_SATURATION) else 0,
        pg_index_dropped=_within(t, INDEX_DROPPED),
        mongo_lag_s=_mongo_lag(t),
    )
