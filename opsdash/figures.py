"""Typed figures: what a probe measured, one frozen dataclass per kind of observation.

A :class:`~opsdash.results.CheckResult` carries one of these (or ``None`` when there was
nothing to measure). Every face reads their fields; the JSON ``details`` object of
``opsdash.check/v1`` is built from them by :func:`details_json` alone, so a renamed field is a
mypy error in the faces and a schema failure in the contract test, never a silent blank.

Field names *are* the ``details`` keys. Two markers keep the v1 shape exactly as it was:

- ``metadata=OMIT_NONE``: the key is left out while the value is ``None`` (keys that were
  only ever written when they applied, such as ``redirects`` or ``tls_error``);
- ``metadata=FLAT``: a nested dataclass whose fields are merged into the parent object (the
  certificate's ``cert_*`` keys of an HTTP check, the source-specific keys of a DLQ).

Adding a kind: subclass :class:`Figures` here with a ``schema_name``, add it to
:data:`FIGURE_TYPES`, describe it under ``$defs/details`` in ``schemas/check-v1.json`` and add
a sample to ``tests/test_figures_contract.py``. Fields hold plain values only: ``str``,
numbers, ``bool``, ``None``, :class:`~opsdash.status.Status`, ``datetime``, tuples,
``Mapping[str, ...]`` and nested frozen dataclasses; :func:`details_json` and
:func:`figures_from_json` handle exactly those.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from opsdash.records import dataclass, field, field_values
from opsdash.status import Status

OMIT_NONE: Mapping[str, bool] = {"omit_none": True}
"""Field metadata: leave the key out of ``details`` while the value is ``None``."""
FLAT: Mapping[str, bool] = {"flat": True, "omit_none": True}
"""Field metadata: merge the nested dataclass's keys into the parent (nothing when ``None``)."""


@dataclass(frozen=True, slots=True)
class Figures:
    """Base of every kind of figures; ``schema_name`` names its ``$defs/details`` entry."""

    schema_name: ClassVar[str] = ""


# --- HTTP ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CertificateFigures:
    """The server certificate of an ``https://`` answer."""

    cert_days_left: float
    cert_expires_at: datetime
    cert_subject: str
    cert_issuer: str

    def seconds_left(self, at: datetime) -> float:
        """Seconds from ``at`` until ``notAfter`` (negative once expired)."""
        return (self.cert_expires_at - at).total_seconds()


@dataclass(frozen=True, slots=True)
class HttpFigures(Figures):
    """A liveness or readiness answer (``kind: http``)."""

    schema_name: ClassVar[str] = "http"
    http_status: int | None = field(default=None, metadata=OMIT_NONE)
    """``None`` when the TLS handshake failed: there was no answer."""
    redirects: int | None = field(default=None, metadata=OMIT_NONE)
    format: str | None = field(default=None, metadata=OMIT_NONE)
    """The recognised health-body format (``spring-boot``, ``ietf``...)."""
    dependencies: Mapping[str, Status] | None = field(default=None, metadata=OMIT_NONE)
    """Each dependency's status as the body reports it."""
    dependency_messages: Mapping[str, str] | None = field(default=None, metadata=OMIT_NONE)
    body: str | None = field(default=None, metadata=OMIT_NONE)
    """An excerpt of an unrecognised body (capped, whitespace folded)."""
    body_truncated: bool | None = field(default=None, metadata=OMIT_NONE)
    excerpt: tuple[str, ...] | None = field(default=None, metadata=OMIT_NONE)
    """The first lines of the body of an answer that was not ok (any format), one string a
    line (so that each stays one escaped line): the detail screen's response excerpt."""
    tls_error: str | None = field(default=None, metadata=OMIT_NONE)
    certificate: CertificateFigures | None = field(default=None, metadata=FLAT)

    def failing_dependencies(self) -> list[str]:
        """The dependencies the body reports not ok, in its order."""
        if not self.dependencies:
            return []
        return [name for name, status in self.dependencies.items() if status is not Status.OK]


# --- datastores ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PostgresFigures(Figures):
    """A PostgreSQL server (the ``<name>`` check of ``kind: postgres``)."""

    schema_name: ClassVar[str] = "postgres"
    version: str
    role: str
    """``primary`` or ``replica``."""
    ping_ms: float
    connections_used: int
    connections_max: int
    connections_pct: float
    long_transactions: int
    long_transaction_age_s: float
    replication_lag_s: float | None = None


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One expected index, as the catalogue has it."""

    table: str
    index: str
    present: bool
    valid: bool
    scans: int | None


@dataclass(frozen=True, slots=True)
class PostgresIndexFigures(Figures):
    """The expected indexes of a PostgreSQL datastore (``<name>.indexes``)."""

    schema_name: ClassVar[str] = "postgres-indexes"
    indexes: tuple[IndexEntry, ...]
    missing: tuple[str, ...]
    invalid: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SqlValueFigures(Figures):
    """The one number a ``.sql`` probe returned."""

    schema_name: ClassVar[str] = "sql-value"
    value: float


@dataclass(frozen=True, slots=True)
class ReplicaLink:
    """A Redis replica's link to its master."""

    master_link_status: str | None
    master_last_io_seconds_ago: int | None
    master_link_down_since_seconds: int | None


@dataclass(frozen=True, slots=True)
class RedisFigures(Figures):
    """A Redis server (``kind: redis``), from ``INFO``."""

    schema_name: ClassVar[str] = "redis"
    version: str
    role: str
    """``master`` or ``replica``."""
    ping_ms: float
    clients_connected: int | None
    clients_blocked: int | None
    memory_used: int | None
    memory_max: int | None
    memory_pct: float | None
    maxmemory_policy: str | None
    evicted_keys: int | None
    rejected_connections: int | None
    replica: ReplicaLink | None = field(default=None, metadata=FLAT)


@dataclass(frozen=True, slots=True)
class MongoMember:
    """One replica-set member, from ``replSetGetStatus``."""

    name: str | None
    state: str | None
    healthy: bool
    self: bool
    lag_s: float | None
    ping_ms: float | None


@dataclass(frozen=True, slots=True)
class MongoFigures(Figures):
    """A MongoDB server (``kind: mongo``)."""

    schema_name: ClassVar[str] = "mongo"
    version: str | None
    role: str
    set_name: str | None
    ping_ms: float
    connections_current: int | None
    connections_available: int | None
    replication_lag_s: float | None = None
    members: tuple[MongoMember, ...] | None = None
    unreadable: tuple[str, ...] | None = field(default=None, metadata=OMIT_NONE)
    """Commands the role may not run (``serverStatus`` without ``clusterMonitor``)."""


# --- workers -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamGroup:
    """A consumer group of a Redis stream DLQ."""

    pending: int
    consumers: Mapping[str, int]
    lag: int | None


@dataclass(frozen=True, slots=True)
class BullmqFigures:
    """What a BullMQ queue adds to its DLQ depth (the failed count)."""

    counts: Mapping[str, int]
    paused: bool
    queue: str


@dataclass(frozen=True, slots=True)
class RabbitmqFigures:
    """What RabbitMQ's management API adds to a queue's depth."""

    messages_ready: int | None
    messages_unacknowledged: int | None
    consumers: int | None
    state: str | None
    publish_rate: float | None
    deliver_rate: float | None


@dataclass(frozen=True, slots=True)
class DlqFigures(Figures):
    """A worker's dead-letter queue (``<worker>.dlq``)."""

    schema_name: ClassVar[str] = "dlq"
    source: str
    depth: int | None
    """``None`` when the source could not be read to a count (the check is unknown)."""
    sampled_at: float
    """When the depth was read (seconds since the epoch): the time axis of growth."""
    oldest_age_s: float | None = None
    growth_per_min: float | None = None
    """Known once history allows a rate (never in a one-shot ``check``)."""
    eta_crit_s: float | None = None
    window_s: float | None = None
    notes: tuple[str, ...] = ()
    groups: Mapping[str, StreamGroup] | None = field(default=None, metadata=OMIT_NONE)
    bullmq: BullmqFigures | None = field(default=None, metadata=FLAT)
    rabbitmq: RabbitmqFigures | None = field(default=None, metadata=FLAT)


WORKER_COUNTERS = ("retries", "failures", "processed", "dead_letters")
"""The counters a worker may expose, in the order they are shown."""


@dataclass(frozen=True, slots=True)
class WorkerFigures(Figures):
    """A worker's retry metrics (``<worker>.retries``)."""

    schema_name: ClassVar[str] = "worker"
    source: str
    max_attempts: int | None
    dlq: str
    """The DLQ check id, or ``none (by design)``."""
    sampled_at: float
    retries_total: float | None = None
    failures_total: float | None = None
    processed_total: float | None = None
    dead_letters_total: float | None = None
    started_at: float | None = None
    """The worker's start time, when the source tells (a restart marker)."""
    missing: tuple[str, ...] | None = field(default=None, metadata=OMIT_NONE)
    """Configured figures the source does not have (the check is unknown)."""
    retries_per_min: float | None = None
    failures_per_min: float | None = None
    processed_per_min: float | None = None
    dead_letters_per_min: float | None = None
    retry_ratio_pct: float | None = None
    ratio_basis: str | None = None
    """``since start`` (one sample) or ``window``; ``None`` when nothing was judged."""
    window_s: float | None = None
    series: Mapping[str, Mapping[str, float]] | None = field(default=None, metadata=OMIT_NONE)
    """``prometheus`` only: each counter's matching series by ``name{labels}``, so that rates
    are taken per series and summed, as Prometheus' ``sum(rate())`` (a series that vanishes is
    not a reset)."""

    def total(self, counter: str) -> float | None:
        """The scraped value of one of :data:`WORKER_COUNTERS`."""
        value: float | None = getattr(self, f"{counter}_total")
        return value

    def rates(self) -> dict[str, float | None]:
        """Each counter's rate per minute (``None`` until history allows one)."""
        return {name: getattr(self, f"{name}_per_min") for name in WORKER_COUNTERS}

    @property
    def judged(self) -> bool:
        """True when the scrape had every configured figure (a point for rates)."""
        return self.ratio_basis is not None and self.missing is None


# --- custom checks (``checks:`` on any component) -----------------------------------------


@dataclass(frozen=True, slots=True)
class PerfDatum:
    """One performance figure a Nagios plugin printed after ``|``:
    ``'label'=value[unit];[warn];[crit];[min];[max]``. ``warn`` and ``crit`` are Nagios range
    strings (``10``, ``10:``, ``~:10``, ``@10:20``) as the plugin wrote them."""

    label: str
    value: float | None
    """``None`` when the plugin printed ``U`` (the value could not be determined)."""
    unit: str = ""
    warn: str | None = None
    crit: str | None = None
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True, slots=True)
class PluginFigures(Figures):
    """A Nagios plugin's run (``kind: plugin``): exit code, perfdata, long output."""

    schema_name: ClassVar[str] = "plugin"
    plugin: str
    exit_code: int | None
    perfdata: tuple[PerfDatum, ...] = ()
    long_output: tuple[str, ...] = ()
    """The lines after the first (perfdata removed): kept for the detail screen."""
    stderr: tuple[str, ...] = ()
    """What it wrote on stderr (capped), line by line."""


@dataclass(frozen=True, slots=True)
class TcpFigures(Figures):
    """A TCP connect (``kind: tcp``), and what came back after ``send``."""

    schema_name: ClassVar[str] = "tcp"
    connect_ms: float
    answer: str | None = None
    """An excerpt of what was read while waiting for ``expect``."""


@dataclass(frozen=True, slots=True)
class DnsFigures(Figures):
    """A DNS lookup (``kind: dns``): what was asked, of whom, and what came back."""

    schema_name: ClassVar[str] = "dns"
    record_type: str
    answers: tuple[str, ...]
    server: str | None = None
    """The name server asked; ``None`` for the system resolver."""
    missing: tuple[str, ...] = ()
    """Expected answers that were not in the reply."""


@dataclass(frozen=True, slots=True)
class TlsFigures(Figures):
    """The certificate a TLS endpoint presented (``kind: tls``; same keys as an HTTPS
    check's), or why the handshake failed."""

    schema_name: ClassVar[str] = "tls"
    certificate: CertificateFigures | None = field(default=None, metadata=FLAT)
    tls_version: str | None = field(default=None, metadata=OMIT_NONE)
    tls_error: str | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True, slots=True)
class HttpExpectFigures(Figures):
    """An HTTP answer judged by a custom check's ``expect:`` conditions."""

    schema_name: ClassVar[str] = "http_expect"
    http_status: int
    failed: tuple[str, ...] = ()
    """Each failed condition in words: ``$.status is DOWN, expected UP``."""
    body: str | None = None
    """An excerpt of the body, when a body or JSON condition failed."""
    body_truncated: bool = False


@dataclass(frozen=True, slots=True)
class HeartbeatFigures(Figures):
    """The last heartbeat a job sent (``kind: heartbeat``), and how old it may be."""

    schema_name: ClassVar[str] = "heartbeat"
    max_age_s: float
    last_beat_at: datetime | None = None
    age_s: float | None = None
    reported_status: Status | None = None
    message: str | None = None
    source: str | None = None
    """Where the beat came from: ``cli`` (opsdash heartbeat) or ``http`` (POST /heartbeat)."""


FIGURE_TYPES: tuple[type[Figures], ...] = (
    HttpFigures,
    PostgresFigures,
    PostgresIndexFigures,
    SqlValueFigures,
    RedisFigures,
    MongoFigures,
    DlqFigures,
    WorkerFigures,
    PluginFigures,
    TcpFigures,
    DnsFigures,
    TlsFigures,
    HttpExpectFigures,
    HeartbeatFigures,
)
"""Every kind of figures (the contract test builds one of each)."""


# --- JSON ----------------------------------------------------------------------------------


def details_json(figures: Figures | None) -> dict[str, Any]:
    """The ``details`` object of a check in ``opsdash.check/v1``: the one place it is built."""
    return {} if figures is None else _object(figures)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


_LAYOUTS: dict[type, tuple[tuple[str, bool, bool, int], ...]] = {}
_CONVERT, _AS_IS, _COPY = 0, 1, 2
"""How a field's value goes into JSON: converted by :func:`_json`, as it is, or one dict copy."""
_PLAIN = {str, int, float, bool, type(None)}


def _is_plain(hint: Any) -> bool:
    """Whether values of ``hint`` go into JSON as they are (scalars, a Status, or None)."""
    if hint in _PLAIN or hint is Status:
        return True
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        return all(_is_plain(arg) for arg in typing.get_args(hint))
    return False


def _is_plain_mapping(hint: Any) -> bool:
    """Whether ``hint`` is a (optional) ``Mapping[str, plain]``: copied with one ``dict()``."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return len(args) == 1 and _is_plain_mapping(args[0])
    if typing.get_origin(hint) is not Mapping:
        return False
    key, item = typing.get_args(hint)
    return key is str and _is_plain(item)


def _layout(cls: type) -> tuple[tuple[str, bool, bool, int], ...]:
    # (name, omit_none, flat, how) per field, computed once per class: the JSON of 2,000
    # checks is built on every `check --json`, and most fields are plain numbers and strings.
    layout = _LAYOUTS.get(cls)
    if layout is None:
        hints = _hints(cls)
        layout = _LAYOUTS[cls] = tuple(
            (
                f.name,
                bool(f.metadata.get("omit_none")),
                bool(f.metadata.get("flat")),
                _AS_IS
                if _is_plain(hints[f.name])
                else _COPY
                if _is_plain_mapping(hints[f.name])
                else _CONVERT,
            )
            for f in dataclasses.fields(cls)
        )
    return layout


def _object(value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, omit_none, flat, how in _layout(type(value)):
        item = getattr(value, name)
        if item is None:
            if not omit_none:
                out[name] = None
        elif how == _AS_IS:
            out[name] = item
        elif how == _COPY:
            out[name] = dict(item)
        elif flat:
            out.update(_object(item))
        else:
            out[name] = _json(item)
    return out


def _json(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return str(value)  # a Status is a str: its plain value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, Mapping):
        return {str(key): _json(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_json(item) for item in value]
    if dataclasses.is_dataclass(value):
        return _object(value)
    return str(value)


def facts(figures: Figures | None) -> list[tuple[str, object]]:
    """The scalar fields of ``figures`` that have a value, flat-nested ones included, in
    declaration order: the lines of a detail view (collections are for the view to lay out)."""
    if figures is None:
        return []
    out: list[tuple[str, object]] = []
    _facts(figures, out)
    return out


def _facts(value: Any, out: list[tuple[str, object]]) -> None:
    for name, _omit, flat, _plain in _layout(type(value)):
        item = getattr(value, name)
        if item is None:
            continue
        if flat:
            _facts(item, out)
        elif isinstance(item, str | bool | int | float | datetime):
            out.append((name, _json(item)))


def figures_type(name: str) -> type[Figures] | None:
    """The figures class called ``name`` (as :func:`type_name` wrote it)."""
    return next((cls for cls in FIGURE_TYPES if cls.__name__ == name), None)


def type_name(figures: Figures | None) -> str | None:
    """The name :func:`figures_from_json` reads back (the class name)."""
    return None if figures is None else type(figures).__name__


def figures_from_json(name: str | None, details: Mapping[str, Any]) -> Figures | None:
    """Figures back from their ``details`` (the alert state keeps results across runs);
    ``None`` when the type is unknown or the object does not fit it."""
    cls = figures_type(name) if name else None
    if cls is None:
        return None
    try:
        parsed = _parse_object(cls, details)
    except (TypeError, ValueError, KeyError):
        return None
    return parsed if isinstance(parsed, Figures) else None


def _parse_object(cls: type, data: Mapping[str, Any]) -> Any:
    if not isinstance(data, Mapping):
        raise TypeError(f"{cls.__name__}: not an object")
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for name, _omit, flat, _plain in _layout(cls):
        hint = hints[name]
        if flat:
            nested = _inner(hint)
            first = dataclasses.fields(nested)[0].name
            values[name] = _parse_object(nested, data) if first in data else None
        elif name in data:
            values[name] = _parse(hint, data[name])
    return cls(**values)


def _inner(hint: Any) -> Any:
    """``X`` of ``X | None``."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def _parse(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return None
        return _parse(_inner(hint), value)
    if origin is tuple:
        (item, *_) = typing.get_args(hint)
        return tuple(_parse(item, v) for v in value)
    if origin is Mapping or origin is dict:
        _key, item = typing.get_args(hint)
        return {str(k): _parse(item, v) for k, v in value.items()}
    convert: Callable[[Any], Any] | None = _SCALARS.get(hint)
    if convert is not None:
        return convert(value)
    if dataclasses.is_dataclass(hint):
        return _parse_object(hint, value)  # type: ignore[arg-type]
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("not a number")
    return float(value)


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("not a number")
    return int(value)


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("not a boolean")
    return value


def _moment(value: Any) -> datetime:
    return datetime.fromisoformat(_string(value).replace("Z", "+00:00"))


_SCALARS: dict[Any, Callable[[Any], Any]] = {
    float: _number,
    int: _integer,
    str: _string,
    bool: _boolean,
    Status: Status,
    datetime: _moment,
}


def any_string(figures: Figures, test: Callable[[str], bool]) -> bool:
    """Whether ``test`` holds for any string in ``figures`` (mapping keys included): lets a
    caller skip rebuilding figures that :func:`map_strings` would leave as they are."""
    return _any(figures, test)


def _any(value: Any, test: Callable[[str], bool]) -> bool:
    # This runs on every result (serve: per probe): strings (the leaves most visited) first,
    # then figures, then the other leaves.
    if isinstance(value, str):
        return test(value)
    fields = _STRING_FIELDS.get(type(value))
    if fields is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = _STRING_FIELDS[type(value)] = field_values(_string_fields(type(value)))
    if fields is not None:
        return any(item is not None and _any(item, test) for item in fields(value))
    if isinstance(value, _LEAVES):
        return False
    if isinstance(value, tuple):
        return any(_any(item, test) for item in value)
    if isinstance(value, Mapping):
        return any(
            (isinstance(key, str) and test(key)) or _any(item, test) for key, item in value.items()
        )
    return False


_LEAVES = (int, float, datetime, type(None))
_STRING_FIELDS: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


def _string_fields(cls: type) -> tuple[str, ...]:
    """The fields of a dataclass that may hold a string somewhere, by their annotations (the
    others hold numbers, flags, statuses, moments or nothing): all a string walk visits, once
    per result (an ok HTTP answer's figures have one such field set)."""
    try:
        hints = _hints(cls)
    except Exception:  # annotations that do not resolve: visit every field
        hints = {}
    return tuple(f.name for f in dataclasses.fields(cls) if not _stringless(hints.get(f.name, Any)))


_STRINGLESS = {int, float, bool, type(None), Status, datetime}


def _stringless(hint: Any) -> bool:
    if hint in _STRINGLESS:
        return True
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        return all(_stringless(arg) for arg in typing.get_args(hint))
    return False


def map_strings(figures: Figures, change: Callable[[str], str]) -> Figures:
    """``figures`` with ``change`` applied to every string value in it (redaction)."""
    changed = _map(figures, change)
    assert isinstance(changed, Figures)
    return changed


def _map(value: Any, change: Callable[[str], str]) -> Any:
    if isinstance(value, Status) or not isinstance(value, str | tuple | Mapping):
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            updates = {
                f.name: _map(getattr(value, f.name), change) for f in dataclasses.fields(value)
            }
            return dataclasses.replace(value, **updates)
        return value
    if isinstance(value, str):
        return change(value)
    if isinstance(value, tuple):
        return tuple(_map(item, change) for item in value)
    # Keys too: a dependency's name in a health body is the server's text as much as its value.
    return {
        change(key) if isinstance(key, str) else key: _map(item, change)
        for key, item in value.items()
    }
