"""The registry's typed, immutable model (``services.yaml``, version 1; DESIGN.md).

Every model forbids unknown keys: a typo must not silently disable a check. Thresholds share
one rule: a figure at or above ``warn`` is warn, at or above ``crit`` is crit.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from opsdash.registry.addresses import check_port, mongo_database
from opsdash.registry.schema import After, Alias, Bounds, Chosen, Schema, Tagged, validator
from opsdash.registry.schema import Loc as Loc  # re-exported: key paths across opsdash
from opsdash.registry.schema import Model as Model
from opsdash.registry.targets import (
    check_hostname,
    check_regex,
    normalise_answer,
    parse_host_port,
    parse_json_path,
    parse_status_range,
    url_host,
)
from opsdash.registry.units import Duration, Interval, Percent, Rate, Size, Timeout
from opsdash.status import Status

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
"""Component names: they become check ids (``<name>.<check>``), so no dots."""
_NAME = re.compile(NAME_PATTERN)
_ENV_VAR = r"^[A-Za-z_][A-Za-z0-9_]*$"  # as text: compiled by re on first use (plugins only)

Address = Annotated[str, After(check_port)]
"""A URL or DSN whose ports (if written) are in 1-65535."""


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

    changes: Annotated[int, Bounds(ge=1)] = 4
    window: Annotated[int, Bounds(ge=2)] = 10


class Defaults(Model):
    """Values every check inherits unless its own entry overrides them."""

    interval: Interval = 10.0
    timeout: Timeout = 3.0
    latency: LatencyThresholds = LatencyThresholds(warn=0.5, crit=2.0)
    failure_threshold: Annotated[int, Bounds(ge=1)] = 2
    success_threshold: Annotated[int, Bounds(ge=1)] = 1
    cert_expiry: RemainingThresholds = RemainingThresholds()
    max_body: Size = 64 * 1024
    concurrency: Annotated[int, Bounds(ge=1)] = 64
    flapping: FlappingPolicy = FlappingPolicy()


# --- custom checks (``checks: {NAME: {...}}`` on any component) ---------------------------


class CustomCheckBase(Model):
    """What every custom check takes besides its kind: the usual timeout, interval and tags
    (added to its component's), and optional latency thresholds (not judged without them)."""

    tags: tuple[str, ...] = ()
    timeout: Timeout | None = None
    interval: Interval | None = None
    latency: LatencyThresholds | None = None

    @property
    def kind(self) -> str:
        """The check's kind: the name of the key that chose it (``plugin``, ``tcp``...)."""
        return next(name for name in CUSTOM_KINDS if name in type(self).field_names)


HostPort = Annotated[str, After(lambda value: parse_host_port(value) and value)]
"""``HOST:PORT`` (``[v6]:PORT`` for IPv6), the host a DNS name or an IP address."""
NameServer = Annotated[str, After(lambda value: parse_host_port(value, default_port=53) and value)]
"""``HOST[:PORT]``, port 53 by default."""
HostName = Annotated[str, After(check_hostname)]
"""A DNS name or an IP address."""


class PluginCheck(CustomCheckBase):
    """An executable following the Nagios plugin convention, run without a shell."""

    plugin: str
    args: tuple[str, ...] = ()
    env: dict[str, str] = {}

    @validator("plugin")
    @staticmethod
    def _plugin_path(value: str) -> str:
        if not value.strip() or "\x00" in value:
            raise ValueError(f"expected the path of an executable; found {value!r}")
        return value

    @validator("env")
    @staticmethod
    def _env_names(value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not re.match(_ENV_VAR, name):
                raise ValueError(f"expected environment variable names; found {name!r}")
        return value


class TcpCheck(CustomCheckBase):
    """A TCP connect (its time is the figure); optionally ``send`` bytes and ``expect`` some."""

    tcp: HostPort
    send: str | None = None
    expect: str | None = None

    @validator("expect")
    @staticmethod
    def _expect(value: str | None) -> str | None:
        if value == "":
            raise ValueError("expected the bytes the answer must contain; found an empty string")
        return value


class DnsCheck(CustomCheckBase):
    """A DNS lookup of ``dns`` for ``type`` records, which must include every ``expect``."""

    dns: HostName
    type: Literal["A", "AAAA", "CNAME"] = "A"
    expect: tuple[str, ...] = ()
    server: NameServer | None = None
    """``HOST[:PORT]`` of the name server to ask; default: the system's resolver."""

    @validator("expect", siblings=True)
    @staticmethod
    def _expect_matches_type(value: tuple[str, ...], known: dict[str, Any]) -> tuple[str, ...]:
        record_type = known.get("type", "A")  # absent when ``type`` itself is wrong
        return tuple(normalise_answer(record_type, answer) for answer in value)


class TlsCheck(CustomCheckBase):
    """The certificate any TLS endpoint presents: expiry and issuer, verified by default."""

    tls: HostPort
    server_name: HostName | None = None
    """The name sent (SNI) and verified; default: the host of ``tls``."""
    verify: bool = True
    starttls: Literal["postgres"] | None = None
    """A server that upgrades a plain connection: PostgreSQL's SSLRequest."""
    cert_expiry: RemainingThresholds | None = None


class JsonComparison(Model):
    """A condition on one JSON value: comparisons, a regex, or whether it exists."""

    eq: str | int | float | bool | None = None
    ne: str | int | float | bool | None = None
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    matches: str | None = None
    exists: bool | None = None

    @validator("matches")
    @staticmethod
    def _regex(value: str | None) -> str | None:
        return None if value is None else check_regex(value)

    def _check_whole(self) -> None:
        given = [name for name in self.field_names if name in self.fields_set]
        if not given:
            operators = ", ".join(self.field_names)
            raise ValueError(f"expected at least one of {operators}")
        if self.exists is False and len(given) > 1:
            raise ValueError("can never match: exists: false with a condition on the value")
        low = max((v for v in (self.gt, self.ge) if v is not None), default=None)
        high = min((v for v in (self.lt, self.le) if v is not None), default=None)
        if low is not None and high is not None:
            open_end = (self.gt is not None and self.gt == low) or (
                self.lt is not None and self.lt == high
            )
            if low > high or (low == high and open_end):
                raise ValueError(f"can never match: no number is {self.bounds()}")
        if "eq" in self.fields_set and "ne" in self.fields_set and self.eq == self.ne:
            raise ValueError(f"can never match: eq and ne are both {self.eq!r}")

    def bounds(self) -> str:
        """The numeric bounds in words: ``> 3 and <= 10``."""
        parts = [
            f"{symbol} {value:g}"
            for symbol, value in ((">", self.gt), (">=", self.ge), ("<", self.lt), ("<=", self.le))
            if value is not None
        ]
        return " and ".join(parts)


JsonValue = str | int | float | bool | None
JsonCondition = Annotated[
    JsonComparison | JsonValue,
    Chosen(
        lambda v: JsonComparison if isinstance(v, dict | JsonComparison) else JsonValue,
        members=(JsonComparison, JsonValue),
    ),
]
"""A value the path must hold, or a comparison such as ``{gt: 3}``."""
JsonPathKey = Annotated[str, After(lambda path: parse_json_path(path) and path)]


_STATUS_ONE = {
    "anyOf": [
        {"type": "integer", "minimum": 100, "maximum": 599},
        {"type": "string", "pattern": r"^([1-5]xx|\d{3}(\s*-\s*\d{3})?)$"},
    ]
}
_STATUS_SCHEMA = {
    "anyOf": [*_STATUS_ONE["anyOf"], {"type": "array", "items": _STATUS_ONE, "minItems": 1}],
    "description": "status codes or ranges: 200, 2xx, 200-299, or a list of them",
}


class HttpExpect(Model):
    """Conditions on an answer; every failed one is named in the summary."""

    status: Annotated[tuple[str, ...] | None, Schema(_STATUS_SCHEMA)] = None
    """Codes or ranges: ``200``, ``2xx``, ``200-299``; default any 2xx."""
    json_: Annotated[dict[JsonPathKey, JsonCondition], Alias("json")] = {}
    body: str | None = None
    """A regex the body must match (searched, not anchored)."""
    headers: dict[str, str] = {}
    """Header name -> a regex its value must match."""
    latency: Duration | None = None
    """The answer must come within this."""

    @validator("status", before=True)
    @staticmethod
    def _status(value: Any) -> Any:
        items = value if isinstance(value, list | tuple) else [value]
        if not items:
            raise ValueError("can never match: an empty list of status codes")
        codes = [parse_status_range(item) for item in items]
        return tuple(text for text, _, _ in codes)

    @validator("body")
    @staticmethod
    def _body(value: str | None) -> str | None:
        return None if value is None else check_regex(value)

    @validator("headers")
    @staticmethod
    def _headers(value: dict[str, str]) -> dict[str, str]:
        for pattern in value.values():
            check_regex(pattern)
        return value

    def status_ranges(self) -> list[tuple[int, int]]:
        """``status`` as inclusive ranges of codes."""
        return [parse_status_range(text)[1:] for text in self.status or ("2xx",)]


class HttpCheck(CustomCheckBase):
    """A GET of ``http`` (a path on the service's ``url``, or a full URL), judged by
    ``expect`` conditions."""

    http: str
    headers: dict[str, str] = {}
    tls_verify: bool = True
    expect: HttpExpect = HttpExpect()

    @validator("http")
    @staticmethod
    def _url(value: str) -> str:
        if "://" in value:
            scheme = value.split("://", 1)[0].lower()
            if scheme not in ("http", "https"):
                raise ValueError(f"expected an http:// or https:// URL; found {value!r}")
            check_hostname(url_host(value))
        elif not value.startswith("/"):
            raise ValueError(f"expected a path such as /status or a full URL; found {value!r}")
        return value


class HeartbeatSpec(Model):
    """A dead man's switch: the last beat must be younger than ``max_age``."""

    max_age: Duration
    token: str | None = None
    """What ``POST /heartbeat/NAME`` must carry (``Authorization: Bearer ...``); without a
    token, beats come only from ``opsdash heartbeat``."""

    @validator("max_age")
    @staticmethod
    def _positive(value: float) -> float:
        if value <= 0:
            raise ValueError("expected a duration longer than zero")
        return value

    @validator("token")
    @staticmethod
    def _token(value: str | None) -> str | None:
        if value == "":  # ``${VAR:-}`` left unset: no token, beats from the CLI only
            return None
        if value is not None and len(value) < 16:
            raise ValueError("expected a token of at least 16 characters")
        return value


class HeartbeatCheck(CustomCheckBase):
    """Crit when the last heartbeat (``opsdash heartbeat``, ``POST /heartbeat/NAME``) is older
    than ``max_age``; a beat reporting warn or crit gives that status."""

    heartbeat: HeartbeatSpec


CUSTOM_KINDS = ("plugin", "tcp", "dns", "tls", "http", "heartbeat")
"""The key that names a custom check's kind (exactly one per check)."""


def _custom_kind(value: Any) -> type[CustomCheckBase] | None:
    if isinstance(value, dict):
        return next((_CUSTOM_MODELS[kind] for kind in CUSTOM_KINDS if kind in value), None)
    if isinstance(value, CustomCheckBase):
        return type(value)
    return None


_CUSTOM_MODELS: dict[str, type[CustomCheckBase]] = {
    "plugin": PluginCheck,
    "tcp": TcpCheck,
    "dns": DnsCheck,
    "tls": TlsCheck,
    "http": HttpCheck,
    "heartbeat": HeartbeatCheck,
}

CustomCheck = Annotated[
    PluginCheck | TcpCheck | DnsCheck | TlsCheck | HttpCheck | HeartbeatCheck,
    Chosen(
        _custom_kind,
        expected="a mapping with one of the keys plugin, tcp, dns, tls, http or heartbeat",
    ),
]


class CheckOptions(Model):
    """Per-entry overrides shared by services, datastores and workers."""

    tags: tuple[str, ...] = ()
    timeout: Timeout | None = None
    interval: Interval | None = None
    latency: LatencyThresholds | None = None

    # ``checks`` (custom checks) is declared last by each entry model, so that its own keys
    # come first where a message lists the keys an entry accepts.
    @property
    def custom_checks(self) -> dict[str, CustomCheck]:
        """The entry's ``checks:`` (custom checks), by name."""
        checks: dict[str, CustomCheck] = getattr(self, "checks", {})
        return checks


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
    connections: PercentThresholds = PercentThresholds(warn=80.0, crit=95.0)
    replication_lag: DurationThresholds = DurationThresholds(warn=30.0, crit=300.0)
    long_transactions: LongTransactions = LongTransactions()
    expect_indexes: dict[str, tuple[str, ...]] = {}
    missing_index: Literal["warn", "crit"] = "warn"
    sql_checks: dict[str, SqlProbe] = {}
    checks: dict[str, CustomCheck] = {}


class RedisDatastore(CheckOptions):
    """A Redis server checked with redis.asyncio."""

    kind: Literal["redis"]
    url: Address
    memory: PercentThresholds = PercentThresholds(warn=80.0, crit=95.0)
    checks: dict[str, CustomCheck] = {}


class MongoDatastore(CheckOptions):
    """A MongoDB server or replica set checked with pymongo's AsyncMongoClient."""

    kind: Literal["mongo"]
    uri: Address
    replication_lag: DurationThresholds = DurationThresholds(warn=30.0, crit=300.0)
    checks: dict[str, CustomCheck] = {}


Datastore = Annotated[PostgresDatastore | RedisDatastore | MongoDatastore, Tagged("kind")]


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
    checks: dict[str, CustomCheck] = {}


# --- workers ----------------------------------------------------------------------------


class DlqBase(Model):
    """Thresholds shared by every dead-letter source."""

    depth: CountThresholds = CountThresholds(warn=1.0, crit=100.0)
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
    Tagged("source"),
]


class MetricsBase(Model):
    """Which figures to read, and the thresholds on what is derived from them."""

    retries: str | None = None
    failures: str | None = None
    processed: str | None = None
    dead_letters: str | None = None
    retry_ratio: PercentThresholds = PercentThresholds(warn=5.0, crit=20.0)
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


Metrics = Annotated[PrometheusMetrics | RedisHashMetrics | HttpJsonMetrics, Tagged("source")]


class Worker(CheckOptions):
    """A queue worker: retries with backoff, maybe a dead-letter queue."""

    max_attempts: Annotated[int, Bounds(ge=1)] | None = None
    depends_on: tuple[str, ...] = ()
    dlq: Dlq | None = None
    metrics: Metrics | None = None
    checks: dict[str, CustomCheck] = {}


# --- alerts -----------------------------------------------------------------------------


class WebhookTarget(Model):
    """A generic JSON webhook."""

    type: Literal["webhook"]
    url: Address
    headers: dict[str, str] = {}
    timeout: Timeout = 5.0
    retries: Annotated[int, Bounds(ge=0, le=10)] = 5
    """Attempts after the first, one per run, backing off (next run, then 1, 2, 4, 8 min)."""


class SlackTarget(Model):
    """A Slack-compatible incoming webhook."""

    type: Literal["slack"]
    url: Address
    timeout: Timeout = 5.0
    retries: Annotated[int, Bounds(ge=0, le=10)] = 5
    """Attempts after the first, one per run, backing off (next run, then 1, 2, 4, 8 min)."""


class AppriseTarget(Model):
    """Any service apprise knows by URL (PagerDuty, Teams, email, Telegram...)."""

    type: Literal["apprise"]
    urls: tuple[str, ...]


AlertTarget = Annotated[WebhookTarget | SlackTarget | AppriseTarget, Tagged("type")]


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
    _base_dir: Path | None = None

    @property
    def base_dir(self) -> Path:
        """The directory relative paths in the registry are resolved against."""
        return self._base_dir if self._base_dir is not None else Path.cwd()

    def located_at(self, base_dir: Path) -> Registry:
        """This registry, with relative paths resolved against ``base_dir``."""
        object.__setattr__(self, "_base_dir", base_dir)  # set once, by whoever built it
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
        problems.extend(self._custom_check_problems())
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

    def _custom_check_problems(self) -> list[tuple[Loc, str]]:
        """Custom check names that cannot be ids or clash with a built-in check, and HTTP
        paths on a component without a ``url`` to join them to."""
        problems: list[tuple[Loc, str]] = []
        for section in ("datastores", "services", "workers"):
            for name, entry in getattr(self, section).items():
                builtin = _builtin_checks(entry)
                for check, spec in entry.custom_checks.items():
                    loc: Loc = (section, name, "checks", check)
                    if not _NAME.match(check):
                        problems.append(
                            (loc, f"expected a name matching {NAME_PATTERN}; found {check!r}")
                        )
                    elif check in builtin:
                        problems.append(
                            (loc, f"the name is already used by the built-in check {name}.{check}")
                        )
                    if (
                        isinstance(spec, HttpCheck)
                        and "://" not in spec.http
                        and not isinstance(entry, Service)
                    ):
                        message = f"expected a full URL, not a path; found {spec.http!r}"
                        problems.append(((*loc, "http"), message))
        return problems

    def component_type(self, name: str) -> Literal["service", "worker", "datastore"]:
        """Which section ``name`` comes from."""
        if name in self.services:
            return "service"
        if name in self.workers:
            return "worker"
        return "datastore"


def _builtin_checks(entry: CheckOptions) -> set[str]:
    """The check names (after the dot) a component has without custom checks."""
    if isinstance(entry, Service):
        return {"health", "ready"}
    if isinstance(entry, Worker):
        return {"dlq", "retries"}
    if isinstance(entry, PostgresDatastore):
        return {"indexes", *entry.sql_checks}
    return set()


_DATASTORE_KIND_OF_SOURCE = {
    "redis-list": "redis",
    "redis-zset": "redis",
    "redis-stream": "redis",
    "bullmq": "redis",
    "redis-hash": "redis",
    "sql": "postgres",
    "mongo": "mongo",
}
