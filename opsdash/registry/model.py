"""The registry's typed, immutable model (``services.yaml``, version 1; DESIGN.md).

Every model forbids unknown keys: a typo must not silently disable a check. Thresholds share
one rule: a figure at or above ``warn`` is warn, at or above ``crit`` is crit.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

# pydantic scans every installed distribution's entry points for plugins on the first model
# (~11 ms of each command's start-up); the registry model uses none.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr

from opsdash.registry.addresses import check_port, mongo_database
from opsdash.registry.units import Duration, Interval, Percent, Rate, Size, Timeout
from opsdash.status import Status

Loc = tuple[str | int, ...]
"""A key path into the registry, as pydantic reports it: ``("services", "x", "url")``."""

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
"""Component names: they become check ids (``<name>.<check>``), so no dots."""
_NAME = re.compile(NAME_PATTERN)

Address = Annotated[str, AfterValidator(check_port)]
"""A URL or DSN whose ports (if written) are in 1-65535."""


class Model(BaseModel):
    """Base of every registry model: immutable, strict about keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Thresholds(Model):
    """``{warn, crit}``: a figure at or above ``warn`` warns, at or above ``crit`` is crit."""

    warn: float | None = None
    crit: float | None = None

    def judge(self, value: float | None) -> Status:
        """The status of ``value`` against these thresholds (``None`` is ok: nothing to judge)."""
        if value is None:
            return Status.OK
        if self.crit is not None and value >= self.crit:
            return Status.CRIT
        if self.warn is not None and value >= self.warn:
            return Status.WARN
        return Status.OK


class LatencyThresholds(Thresholds):
    """Latency limits in seconds (``500ms``, ``2s``)."""

    warn: Duration | None = None
    crit: Duration | None = None


class DurationThresholds(Thresholds):
    """Limits on an age or a lag, in seconds."""

    warn: Duration | None = None
    crit: Duration | None = None


class PercentThresholds(Thresholds):
    """Limits on a percentage (``80%``)."""

    warn: Percent | None = None
    crit: Percent | None = None


class CountThresholds(Thresholds):
    """Limits on a count (queue depth, transactions)."""

    warn: float | None = None
    crit: float | None = None


class RateThresholds(Thresholds):
    """Limits on a rate, per minute (``1/min``)."""

    warn: Rate | None = None
    crit: Rate | None = None


class RemainingThresholds(Model):
    """Limits on time left (certificate expiry): *under* ``warn`` warns, under ``crit`` is crit."""

    warn: Duration = 14 * 86400.0
    crit: Duration = 3 * 86400.0

    def judge(self, remaining_seconds: float | None) -> Status:
        """The status of the time left."""
        if remaining_seconds is None:
            return Status.OK
        if remaining_seconds < self.crit:
            return Status.CRIT
        if remaining_seconds < self.warn:
            return Status.WARN
        return Status.OK


class FlappingPolicy(Model):
    """A check that changes state more than ``changes`` times in its last ``window`` runs flaps."""

    changes: int = Field(default=4, ge=1)
    window: int = Field(default=10, ge=2)


class Defaults(Model):
    """Values every check inherits unless its own entry overrides them."""

    interval: Interval = 10.0
    timeout: Timeout = 3.0
    latency: LatencyThresholds = LatencyThresholds(warn=0.5, crit=2.0)
    failure_threshold: int = Field(default=2, ge=1)
    success_threshold: int = Field(default=1, ge=1)
    cert_expiry: RemainingThresholds = RemainingThresholds()
    max_body: Size = 64 * 1024
    concurrency: int = Field(default=64, ge=1)
    flapping: FlappingPolicy = FlappingPolicy()


class CheckOptions(Model):
    """Per-entry overrides shared by services, datastores and workers."""

    tags: tuple[str, ...] = ()
    timeout: Timeout | None = None
    interval: Interval | None = None
    latency: LatencyThresholds | None = None


# --- datastores -------------------------------------------------------------------------


class SqlProbe(Thresholds):
    """A ``.sql`` probe from ``checks/``: a query returning one number, judged by thresholds."""

    file: str
    warn: float | None = None
    crit: float | None = None


class LongTransactions(Thresholds):
    """Transactions open longer than ``age`` are counted and judged by ``warn``/``crit``."""

    age: Duration = 300.0
    warn: float | None = 1
    crit: float | None = None


class PostgresDatastore(CheckOptions):
    """A PostgreSQL server checked with asyncpg."""

    kind: Literal["postgres"]
    dsn: Address
    connections: PercentThresholds = PercentThresholds(warn=80, crit=95)
    replication_lag: DurationThresholds = DurationThresholds(warn=30, crit=300)
    long_transactions: LongTransactions = LongTransactions()
    expect_indexes: dict[str, tuple[str, ...]] = {}
    missing_index: Literal["warn", "crit"] = "warn"
    sql_checks: dict[str, SqlProbe] = {}


class RedisDatastore(CheckOptions):
    """A Redis server checked with redis.asyncio."""

    kind: Literal["redis"]
    url: Address
    memory: PercentThresholds = PercentThresholds(warn=80, crit=95)


class MongoDatastore(CheckOptions):
    """A MongoDB server or replica set checked with pymongo's AsyncMongoClient."""

    kind: Literal["mongo"]
    uri: Address
    replication_lag: DurationThresholds = DurationThresholds(warn=30, crit=300)


Datastore = Annotated[
    PostgresDatastore | RedisDatastore | MongoDatastore, Field(discriminator="kind")
]


# --- services ---------------------------------------------------------------------------


class Service(CheckOptions):
    """An HTTP service with a liveness and a readiness endpoint."""

    url: Address
    health: str | Literal[False] = "/health"
    ready: str | Literal[False] = "/ready"
    depends_on: tuple[str, ...] = ()
    headers: dict[str, str] = {}
    tls_verify: bool = True
    cert_expiry: RemainingThresholds | None = None


# --- workers ----------------------------------------------------------------------------


class DlqBase(Model):
    """Thresholds shared by every dead-letter source."""

    depth: CountThresholds = CountThresholds(warn=1, crit=100)
    growth: RateThresholds = RateThresholds()


class RedisKeyDlq(DlqBase):
    """A DLQ kept in one Redis key: a list (LLEN), a sorted set (ZCARD) or a stream (XLEN)."""

    source: Literal["redis-list", "redis-zset", "redis-stream"]
    datastore: str
    key: str
    score_time: Literal["s", "ms"] | None = None
    """redis-zset only: the score is when the letter died, in s or ms (Sidekiq's dead set
    is scored in seconds); gives the oldest dead letter's age."""


class BullmqDlq(DlqBase):
    """A BullMQ queue whose failed set is the DLQ; every state's count is reported."""

    source: Literal["bullmq"]
    datastore: str
    queue: str
    prefix: str = "bull"


class RabbitmqDlq(DlqBase):
    """A RabbitMQ queue read through the management HTTP API."""

    source: Literal["rabbitmq"]
    management_url: Address
    queue: str
    vhost: str = "/"
    username: str = "guest"
    password: str = "guest"


class SqlDlq(DlqBase):
    """A query returning one integer through a registry PostgreSQL datastore."""

    source: Literal["sql"]
    datastore: str
    query: str


class MongoDlq(DlqBase):
    """A collection count (with an optional filter) through a registry MongoDB datastore."""

    source: Literal["mongo"]
    datastore: str
    collection: str
    database: str | None = None
    filter: dict[str, Any] = {}


class HttpJsonDlq(DlqBase):
    """A URL answering JSON and a dotted path to the depth in it."""

    source: Literal["http-json"]
    url: Address
    path: str
    headers: dict[str, str] = {}


Dlq = Annotated[
    RedisKeyDlq | BullmqDlq | RabbitmqDlq | SqlDlq | MongoDlq | HttpJsonDlq,
    Field(discriminator="source"),
]


class MetricsBase(Model):
    """Which figures to read, and the thresholds on what is derived from them."""

    retries: str | None = None
    failures: str | None = None
    processed: str | None = None
    dead_letters: str | None = None
    retry_ratio: PercentThresholds = PercentThresholds(warn=5, crit=20)
    retry_rate: RateThresholds = RateThresholds()
    failure_rate: RateThresholds = RateThresholds()


class PrometheusMetrics(MetricsBase):
    """A worker's ``/metrics``; figures are series selectors such as ``name{label="v"}``."""

    source: Literal["prometheus"]
    url: Address
    headers: dict[str, str] = {}


class RedisHashMetrics(MetricsBase):
    """Counters kept as fields of one Redis hash; figures are field names."""

    source: Literal["redis-hash"]
    datastore: str
    key: str


class HttpJsonMetrics(MetricsBase):
    """A URL answering JSON; figures are dotted paths into it."""

    source: Literal["http-json"]
    url: Address
    headers: dict[str, str] = {}


Metrics = Annotated[
    PrometheusMetrics | RedisHashMetrics | HttpJsonMetrics, Field(discriminator="source")
]


class Worker(CheckOptions):
    """A queue worker: retries with backoff, maybe a dead-letter queue."""

    max_attempts: int | None = Field(default=None, ge=1)
    depends_on: tuple[str, ...] = ()
    dlq: Dlq | None = None
    metrics: Metrics | None = None


# --- alerts -----------------------------------------------------------------------------


class WebhookTarget(Model):
    """A generic JSON webhook."""

    type: Literal["webhook"]
    url: Address
    headers: dict[str, str] = {}
    timeout: Timeout = 5.0
    retries: int = Field(default=2, ge=0, le=10)


class SlackTarget(Model):
    """A Slack-compatible incoming webhook."""

    type: Literal["slack"]
    url: Address
    timeout: Timeout = 5.0
    retries: int = Field(default=2, ge=0, le=10)


class AppriseTarget(Model):
    """Any service apprise knows by URL (PagerDuty, Teams, email, Telegram...)."""

    type: Literal["apprise"]
    urls: tuple[str, ...]


AlertTarget = Annotated[WebhookTarget | SlackTarget | AppriseTarget, Field(discriminator="type")]


class AlertRoute(Model):
    """Which notifications go to which targets: by tag and by status (empty means all)."""

    targets: tuple[str, ...]
    tags: tuple[str, ...] = ()
    status: tuple[Literal["warn", "crit", "unknown"], ...] = ("crit",)


class Alerts(Model):
    """The ``alerts:`` section: where notifications go and how often they repeat."""

    repeat_interval: Duration = 4 * 3600.0
    history_retention: Duration = 7 * 86400.0
    targets: dict[str, AlertTarget] = {}
    routes: tuple[AlertRoute, ...] = ()

    def reference_problems(self) -> list[tuple[Loc, str]]:
        """Routes that name undefined targets, as ``(key path, message)`` pairs."""
        problems: list[tuple[Loc, str]] = []
        known = ", ".join(sorted(self.targets)) or "none"
        for index, route in enumerate(self.routes):
            for position, target in enumerate(route.targets):
                if target not in self.targets:
                    problems.append(
                        (
                            ("alerts", "routes", index, "targets", position),
                            f"expected the name of a target ({known}); found {target!r}",
                        )
                    )
        return problems


# --- the registry -----------------------------------------------------------------------


class Registry(Model):
    """The whole platform as the registry describes it."""

    version: Literal[1]
    platform: str
    defaults: Defaults = Defaults()
    datastores: dict[str, Datastore] = {}
    services: dict[str, Service] = {}
    workers: dict[str, Worker] = {}
    alerts: Alerts = Alerts()

    # Where relative paths in the registry (``.sql`` probes) are resolved: the registry file's
    # directory, set by the loader; the working directory for a registry built in code.
    _base_dir: Path | None = PrivateAttr(default=None)

    @property
    def base_dir(self) -> Path:
        """The directory relative paths in the registry are resolved against."""
        return self._base_dir if self._base_dir is not None else Path.cwd()

    def located_at(self, base_dir: Path) -> Registry:
        """This registry, with relative paths resolved against ``base_dir``."""
        self._base_dir = base_dir
        return self

    def reference_problems(self) -> list[tuple[Loc, str]]:
        """What a schema cannot see: names reused across sections, ``depends_on`` and
        ``datastore`` keys that name no (fitting) datastore. ``(key path, message)`` pairs,
        so that the loader can point at the line."""
        problems: list[tuple[Loc, str]] = []
        seen: dict[str, str] = {}
        for section in ("datastores", "services", "workers"):
            for name in getattr(self, section):
                if not _NAME.match(name):
                    message = f"expected a name matching {NAME_PATTERN}; found {name!r}"
                    problems.append(((section, name), message))
                if name in seen:
                    problems.append(((section, name), f"the name is already used in {seen[name]}"))
                seen.setdefault(name, section)
        datastores = ", ".join(sorted(self.datastores)) or "none"
        for section in ("services", "workers"):
            for name, entry in getattr(self, section).items():
                for position, dependency in enumerate(entry.depends_on):
                    if dependency not in self.datastores:
                        problems.append(
                            (
                                (section, name, "depends_on", position),
                                f"expected a datastore ({datastores}); found {dependency!r}",
                            )
                        )
        for name, worker in self.workers.items():
            for part in ("dlq", "metrics"):
                source = getattr(worker, part)
                wanted = _DATASTORE_KIND_OF_SOURCE.get(getattr(source, "source", ""))
                if source is None or wanted is None:
                    continue
                datastore = self.datastores.get(source.datastore)
                if datastore is None or datastore.kind != wanted:
                    problems.append(
                        (
                            ("workers", name, part, "datastore"),
                            f"expected a {wanted} datastore; found {source.datastore!r}",
                        )
                    )
        problems.extend(self._mongo_dlq_problems())
        problems.extend(self.alerts.reference_problems())
        return problems

    def _mongo_dlq_problems(self) -> list[tuple[Loc, str]]:
        """A mongo DLQ must know its database: its own ``database`` or the URI's path
        (otherwise it is ``unknown`` at every run, found only at 3 a.m.)."""
        problems: list[tuple[Loc, str]] = []
        for name, worker in self.workers.items():
            dlq = worker.dlq
            if not isinstance(dlq, MongoDlq) or dlq.database:
                continue
            datastore = self.datastores.get(dlq.datastore)
            if isinstance(datastore, MongoDatastore) and mongo_database(datastore.uri) is None:
                message = (
                    f"expected a database: set dlq.database, or name one in datastore "
                    f"{dlq.datastore!r}'s URI (mongodb://host/DATABASE)"
                )
                problems.append((("workers", name, "dlq"), message))
        return problems

    def component_type(self, name: str) -> Literal["service", "worker", "datastore"]:
        """Which section ``name`` comes from."""
        if name in self.services:
            return "service"
        if name in self.workers:
            return "worker"
        return "datastore"


_DATASTORE_KIND_OF_SOURCE = {
    "redis-list": "redis",
    "redis-zset": "redis",
    "redis-stream": "redis",
    "bullmq": "redis",
    "redis-hash": "redis",
    "sql": "postgres",
    "mongo": "mongo",
}
