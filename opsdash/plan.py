"""From a registry to the list of checks to run: ids, targets, deadlines and the probe calls.

This is the name -> probe table of opsdash. Each registry entry becomes one or more
:class:`CheckSpec`; the probe itself is a bound coroutine function that takes the shared
:class:`~opsdash.resources.Resources` and returns an :class:`~opsdash.results.Observation`.
Probe modules are imported lazily so that a registry without, say, MongoDB never loads pymongo.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from opsdash.redact import Redactor, header_secrets, redact_url, url_secrets
from opsdash.registry.model import (
    CheckOptions,
    LatencyThresholds,
    MongoDatastore,
    PostgresDatastore,
    RedisDatastore,
    Registry,
    Service,
    Worker,
)
from opsdash.results import CheckResult, Observation

if TYPE_CHECKING:
    from opsdash.resources import Resources

ProbeCall = Callable[["Resources"], Awaitable[Observation]]
Derive = Callable[[CheckResult, Sequence[CheckResult]], CheckResult]
"""Re-judges a fresh result with the check's earlier results (oldest first): rates, growth."""
ComponentType = Literal["service", "worker", "datastore"]


@dataclass(frozen=True, slots=True)
class Planned:
    """What a probe module contributes for one check of a registry entry."""

    check: str | None
    """The part after the dot in the id; ``None`` for a datastore's main check (id = name)."""
    kind: str
    target: str
    probe: ProbeCall
    judge_latency: bool = True
    """Whether the registry's latency thresholds apply (not to a queue count, say)."""
    derive: Derive | None = None
    """For checks whose verdict needs history (DLQ growth, retry rates)."""


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """One check, ready to run."""

    id: str
    component: str
    component_type: ComponentType
    check: str
    kind: str
    target: str
    """Where the probe goes, with passwords masked: safe to show."""
    probe: ProbeCall = field(repr=False, compare=False)
    timeout: float = 3.0
    interval: float = 10.0
    latency: LatencyThresholds | None = None
    tags: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    redact: Redactor = field(default_factory=Redactor, repr=False, compare=False)
    derive: Derive | None = field(default=None, repr=False, compare=False)


def join_url(base: str, path: str) -> str:
    """``base`` + ``path`` with exactly one slash between them; a full URL ``path`` wins."""
    if "://" in path:
        return path
    return base.rstrip("/") + "/" + path.lstrip("/")


def _service_checks(name: str, service: Service, registry: Registry) -> Iterator[Planned]:
    from opsdash.probes.http import HttpTarget, probe_http

    cert_expiry = service.cert_expiry or registry.defaults.cert_expiry
    for check, path in (("health", service.health), ("ready", service.ready)):
        if path is False:
            continue
        url = join_url(service.url, path)
        target = HttpTarget(
            url=url,
            headers=dict(service.headers),
            verify=service.tls_verify,
            max_body=registry.defaults.max_body,
            cert_expiry=cert_expiry,
        )
        yield Planned(check, "http", redact_url(url), bind(probe_http, target))


def _datastore_checks(
    name: str, datastore: PostgresDatastore | RedisDatastore | MongoDatastore, registry: Registry
) -> Iterator[Planned]:
    if isinstance(datastore, PostgresDatastore):
        from opsdash.probes import postgres

        yield from postgres.plan(name, datastore, registry)
    elif isinstance(datastore, RedisDatastore):
        from opsdash.probes import redis

        yield from redis.plan(name, datastore, registry)
    else:
        from opsdash.probes import mongo

        yield from mongo.plan(name, datastore, registry)


def _worker_checks(name: str, worker: Worker, registry: Registry) -> Iterator[Planned]:
    if worker.dlq is not None:
        from opsdash.probes import dlq

        yield dlq.plan(name, worker, worker.dlq, registry)
    if worker.metrics is not None:
        from opsdash.probes import worker_metrics

        yield worker_metrics.plan(name, worker, worker.metrics, registry)


def bind(probe: Callable[..., Awaitable[Observation]], *args: object) -> ProbeCall:
    """``probe`` with its arguments after the shared resources bound: a ``Planned.probe``."""

    async def call(resources: Resources) -> Observation:
        return await probe(resources, *args)

    call.__qualname__ = f"{probe.__qualname__}(bound)"
    return call


def entry_secrets(entry: object) -> list[str]:
    """Every secret an entry holds: URL/DSN passwords, header values, RabbitMQ passwords."""
    # One pass with a stack, not nested generators: a thousand-service registry is planned
    # for every `opsdash check`.
    secrets: list[str] = []
    stack = [entry]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if "://" in value:
                secrets += url_secrets(value)
            continue
        if value is None or isinstance(value, int | float):
            continue
        headers = getattr(value, "headers", None)
        if isinstance(headers, dict):
            secrets += header_secrets(headers)
        password = getattr(value, "password", None)
        if isinstance(password, str) and password:
            secrets.append(password)
        fields = getattr(type(value), "model_fields", None)
        if fields is not None:
            stack += (getattr(value, key) for key in fields)
        elif isinstance(value, dict):
            stack += value.values()
        elif isinstance(value, list | tuple):
            stack += value
    return secrets


def build_plan(registry: Registry, *, timeout: float | None = None) -> list[CheckSpec]:
    """Every check of the registry, in registry order: datastores, services, workers."""
    # A probe's messages may quote its own entry's secrets or those of a datastore it reads
    # through; each check gets a redactor for exactly those (cheap: a handful of strings).
    datastore_secrets = [
        secret for datastore in registry.datastores.values() for secret in entry_secrets(datastore)
    ]
    specs: list[CheckSpec] = []
    sources: list[tuple[str, ComponentType, CheckOptions, Iterable[Planned]]] = [
        *(
            (n, "datastore", d, _datastore_checks(n, d, registry))
            for n, d in registry.datastores.items()
        ),
        *((n, "service", s, _service_checks(n, s, registry)) for n, s in registry.services.items()),
        *((n, "worker", w, _worker_checks(n, w, registry)) for n, w in registry.workers.items()),
    ]
    defaults = registry.defaults
    for name, component_type, entry, planned in sources:
        depends_on: tuple[str, ...] = getattr(entry, "depends_on", ())
        redactor = Redactor.of([*entry_secrets(entry), *datastore_secrets])
        for item in planned:
            specs.append(
                CheckSpec(
                    id=name if item.check is None else f"{name}.{item.check}",
                    component=name,
                    component_type=component_type,
                    check=item.check or item.kind,
                    kind=item.kind,
                    target=item.target,  # planners mask URL passwords by position
                    probe=item.probe,
                    timeout=timeout or entry.timeout or defaults.timeout,
                    interval=entry.interval or defaults.interval,
                    latency=(entry.latency or defaults.latency) if item.judge_latency else None,
                    tags=entry.tags,
                    depends_on=depends_on,
                    redact=redactor,
                    derive=item.derive,
                )
            )
    return specs


def select(
    specs: Sequence[CheckSpec], *, only: Sequence[str] = (), tags: Sequence[str] = ()
) -> list[CheckSpec]:
    """The specs whose id or component matches any ``only`` glob and that carry every tag."""

    def wanted(spec: CheckSpec) -> bool:
        if only and not any(
            fnmatch.fnmatchcase(spec.id, pattern) or fnmatch.fnmatchcase(spec.component, pattern)
            for pattern in only
        ):
            return False
        return all(tag in spec.tags for tag in tags)

    return [spec for spec in specs if wanted(spec)]
