"""What ``opsdash validate`` and ``opsdash schema`` print: a resolved registry in a few
lines (passwords masked) and the registry's JSON Schema for editors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opsdash.redact import redact_url
from opsdash.registry.model import (
    CheckOptions,
    Datastore,
    Defaults,
    Dlq,
    HttpJsonDlq,
    HttpJsonMetrics,
    Metrics,
    MongoDatastore,
    MongoDlq,
    PostgresDatastore,
    PrometheusMetrics,
    RabbitmqDlq,
    RedisDatastore,
    RedisHashMetrics,
    RedisKeyDlq,
    Registry,
    Service,
    SqlDlq,
    Worker,
)
from opsdash.registry.schema import json_schema
from opsdash.registry.units import format_duration

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def registry_json_schema() -> dict[str, Any]:
    """The JSON Schema of ``services.yaml`` (before ``${VAR}`` interpolation), for editors'
    YAML validation (``# yaml-language-server: $schema=...``)."""
    schema = json_schema(Registry)
    return {
        "$schema": SCHEMA_DIALECT,
        **schema,
        "title": "opsdash registry (services.yaml, version 1)",
        "description": (
            "The services, workers and datastores opsdash watches. Names are unique across "
            "sections; durations are written 500ms, 3s, 1m; any string may use ${VAR} or "
            "${VAR:-default}."
        ),
    }


def describe(registry: Registry) -> str:
    """A short, human summary of a resolved registry; every URL has its password masked."""
    lines = [
        f"platform {registry.platform} (registry version {registry.version})",
        _counts(registry),
        "defaults: " + _defaults(registry.defaults),
    ]
    defaults = registry.defaults
    sections: list[tuple[str, list[list[str]]]] = [
        ("datastores", [_datastore(n, d, defaults) for n, d in registry.datastores.items()]),
        ("services", [_service(n, s, defaults) for n, s in registry.services.items()]),
        ("workers", [_worker(n, w, defaults) for n, w in registry.workers.items()]),
    ]
    for title, rows in sections:
        if rows:
            lines.append(f"{title}:")
            lines.extend("  " + line for line in _columns(rows))
    if registry.alerts.targets:
        targets = ", ".join(f"{n} ({t.type})" for n, t in registry.alerts.targets.items())
        lines.append(f"alert targets: {targets}; {len(registry.alerts.routes)} route(s)")
    return "\n".join(lines)


SUPERUSERS = frozenset({"postgres"})
"""Role names taken for a PostgreSQL superuser without asking the server (``validate`` runs
no probe): the bootstrap superuser every ``initdb`` creates."""


def warnings(registry: Registry) -> list[str]:
    """What ``validate`` warns about without refusing the registry: a PostgreSQL DSN that
    connects as a superuser. ``.sql`` probes and ``sql`` DLQ queries run in read-only
    transactions, but a superuser can still read any file the server can (``pg_read_file``):
    opsdash should connect as a role with ``pg_monitor`` and no more."""
    found = []
    for name, datastore in registry.datastores.items():
        if isinstance(datastore, PostgresDatastore):
            user = dsn_user(datastore.dsn)
            if user in SUPERUSERS:
                found.append(
                    f"datastores.{name}.dsn: connects as the superuser {user!r}; use a "
                    "read-only role with pg_monitor (README: PostgreSQL role)"
                )
    return found


def dsn_user(dsn: str) -> str | None:
    """The role a PostgreSQL DSN names: a URL's user, or ``user=`` of a key/value DSN."""
    from urllib.parse import unquote, urlsplit

    if "://" in dsn:
        try:
            user = urlsplit(dsn).username
        except ValueError:
            return None
        return None if user is None else unquote(user)
    for part in dsn.split():
        key, _, value = part.partition("=")
        if key.strip() == "user":
            return value.strip("'\"") or None
    return None


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def _counts(registry: Registry) -> str:
    return ", ".join(
        (
            _plural(len(registry.datastores), "datastore"),
            _plural(len(registry.services), "service"),
            _plural(len(registry.workers), "worker"),
        )
    )


def _defaults(defaults: Defaults) -> str:
    latency = defaults.latency
    return (
        f"interval {format_duration(defaults.interval)}"
        f", timeout {format_duration(defaults.timeout)}"
        f", latency {_thresholds(latency.warn, latency.crit)}"
        f", failures before alerting {defaults.failure_threshold}"
    )


def _thresholds(warn: float | None, crit: float | None) -> str:
    parts = []
    if warn is not None:
        parts.append(f"warn {format_duration(warn)}")
    if crit is not None:
        parts.append(f"crit {format_duration(crit)}")
    return " / ".join(parts) or "none"


def _timing(entry: CheckOptions, defaults: Defaults) -> str:
    """The effective timeout, marked when the entry overrides the default."""
    if entry.timeout is None:
        return f"timeout {format_duration(defaults.timeout)}"
    return f"timeout {format_duration(entry.timeout)} (own)"


def _depends(depends_on: Sequence[str]) -> str:
    return f"depends on {', '.join(depends_on)}" if depends_on else ""


def _datastore(name: str, datastore: Datastore, defaults: Defaults) -> list[str]:
    extra = ""
    if isinstance(datastore, PostgresDatastore):
        target = datastore.dsn
        indexes = sum(len(names) for names in datastore.expect_indexes.values())
        extra = _plural(indexes, "expected index", "expected indexes") if indexes else ""
    elif isinstance(datastore, RedisDatastore):
        target = datastore.url
    elif isinstance(datastore, MongoDatastore):
        target = datastore.uri
    return [
        name,
        datastore.kind,
        redact_url(target),
        _timing(datastore, defaults),
        extra,
        _custom(datastore),
    ]


def _service(name: str, service: Service, defaults: Defaults) -> list[str]:
    endpoints = " ".join(
        f"{label} {'off' if path is False else path}"
        for label, path in (("health", service.health), ("ready", service.ready))
    )
    return [
        name,
        redact_url(service.url),
        endpoints,
        _timing(service, defaults),
        _depends(service.depends_on),
        _custom(service),
    ]


def _dlq(dlq: Dlq | None) -> str:
    if dlq is None:
        return "no dlq"
    if isinstance(dlq, RabbitmqDlq):
        where = f"{redact_url(dlq.management_url)} vhost {dlq.vhost} queue {dlq.queue}"
    elif isinstance(dlq, HttpJsonDlq):
        where = f"{redact_url(dlq.url)} path {dlq.path}"
    elif isinstance(dlq, SqlDlq):
        where = f"{dlq.datastore} query"
    elif isinstance(dlq, MongoDlq):
        where = f"{dlq.datastore} collection {dlq.collection}"
    elif isinstance(dlq, RedisKeyDlq):
        where = f"{dlq.datastore} key {dlq.key}"
    else:
        where = f"{dlq.datastore} queue {dlq.prefix}:{dlq.queue}"
    return f"dlq {dlq.source} {where}"


def _metrics(metrics: Metrics | None) -> str:
    if metrics is None:
        return "no metrics"
    if isinstance(metrics, PrometheusMetrics | HttpJsonMetrics):
        return f"metrics {metrics.source} {redact_url(metrics.url)}"
    assert isinstance(metrics, RedisHashMetrics)
    return f"metrics {metrics.source} {metrics.datastore} key {metrics.key}"


def _worker(name: str, worker: Worker, defaults: Defaults) -> list[str]:
    attempts = f"max attempts {worker.max_attempts}" if worker.max_attempts else ""
    return [
        name,
        attempts,
        _dlq(worker.dlq),
        _metrics(worker.metrics),
        _timing(worker, defaults),
        _depends(worker.depends_on),
        _custom(worker),
    ]


def _custom(entry: CheckOptions) -> str:
    """``checks: disk (plugin), nightly (heartbeat)``; empty without custom checks."""
    checks = entry.custom_checks
    if not checks:
        return ""
    return "checks: " + ", ".join(f"{name} ({spec.kind})" for name, spec in checks.items())


def _columns(rows: list[list[str]]) -> list[str]:
    """Rows as left-aligned columns (empty cells keep their column, trailing space dropped)."""
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(max(map(len, rows)))]
    return ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
