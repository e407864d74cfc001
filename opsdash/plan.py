"""From a registry to the list of checks to run: ids, targets, deadlines and the probe calls.

This is the name -> planner table of opsdash (:data:`PLANNERS`). Each registry entry becomes
one or more :class:`CheckSpec`; the probe itself is a bound coroutine function that takes the shared
:class:`~opsdash.resources.Resources` and returns an :class:`~opsdash.results.Observation`.
Probe modules are imported lazily so that a registry without, say, MongoDB never loads pymongo.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator, Sequence

from opsdash.probe_plan import ComponentType, Derive, Planned, Planner, ProbeCall
from opsdash.records import dataclass, field, field_values
from opsdash.redact import Redactor, header_secrets, url_secrets
from opsdash.registry.model import CheckOptions, LatencyThresholds, Registry
from opsdash.status import Status


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
    failure_status: Status = Status.CRIT
    """The status of a run that got no answer to judge (unknown for Nagios plugins)."""
    heavy_start: bool = False
    """Starting the probe costs the loop milliseconds (a datastore driver's connection
    set-up): rounds start it after the light checks (:func:`opsdash.engine.start_order`)."""


def _http() -> Planner:
    from opsdash.probes import http

    return http.plan


def _postgres() -> Planner:
    from opsdash.probes import postgres

    return postgres.plan


def _redis() -> Planner:
    from opsdash.probes import redis

    return redis.plan


def _mongo() -> Planner:
    from opsdash.probes import mongo

    return mongo.plan


def _dlq() -> Planner:
    from opsdash.probes import dlq

    return dlq.plan


def _worker_metrics() -> Planner:
    from opsdash.probes import worker_metrics

    return worker_metrics.plan


def _custom() -> Planner:
    from opsdash.probes import custom

    return custom.plan


PLANNERS: dict[str, Callable[[], Planner]] = {
    "http": _http,
    "postgres": _postgres,
    "redis": _redis,
    "mongo": _mongo,
    "dlq": _dlq,
    "worker_metrics": _worker_metrics,
    "custom": _custom,
}
"""Probe kind -> its planner (see :data:`opsdash.probe_plan.Planner`). Each entry imports its
probe module on first use, so that a registry without, say, MongoDB never loads pymongo. A new
probe kind adds its module's ``plan`` here and its name to :data:`COMPONENT_PLANNERS`."""

COMPONENT_PLANNERS: dict[ComponentType, tuple[str, ...]] = {
    "datastore": ("custom",),  # first planned by the planner named after its ``kind``
    "service": ("http", "custom"),
    "worker": ("dlq", "worker_metrics", "custom"),
}
"""The planners every entry of a component type goes through, in the order its checks are
listed."""


def planners_of(component_type: ComponentType, entry: CheckOptions) -> Iterator[Planner]:
    """The planners of one entry: its datastore kind's, then its component type's."""
    kind = getattr(entry, "kind", None)
    if component_type == "datastore" and isinstance(kind, str):
        yield PLANNERS[kind]()
    for name in COMPONENT_PLANNERS[component_type]:
        yield PLANNERS[name]()


def _entry_checks(
    name: str, component_type: ComponentType, entry: CheckOptions, registry: Registry
) -> Iterator[Planned]:
    for planner in planners_of(component_type, entry):
        yield from planner(name, entry, registry)


def entry_secrets(entry: object, seen: dict[int, list[str]] | None = None) -> list[str]:
    """Every secret an entry holds: URL/DSN passwords, header values, RabbitMQ passwords,
    heartbeat tokens and the values of a plugin's ``env``.

    ``seen`` (kept across the entries of one plan) remembers what nested models gave: the
    registry's defaults (thresholds...) are shared by every entry and walked once."""
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
        if value is None or isinstance(value, _NO_SECRETS):
            continue
        fields = _fields_of(type(value))
        if fields is not None:
            if seen is not None and value is not entry:
                known = seen.get(id(value))
                if known is None:
                    known = seen[id(value)] = entry_secrets(value, seen)
                secrets += known
                continue
            stack += fields(value)
            secrets += _own_secrets(value)
        elif isinstance(value, dict):
            stack += value.values()
        elif isinstance(value, list | tuple):
            stack += value
    return secrets


_NO_SECRETS = (int, float)  # bool is an int


_FIELD_VALUES: dict[type, Callable[[object], tuple[object, ...]] | None] = {}
"""Per class: how to read a registry model's field values (``None``: not a model)."""


def _fields_of(cls: type) -> Callable[[object], tuple[object, ...]] | None:
    """A registry model's field values as one tuple (``None`` for anything else)."""
    if cls not in _FIELD_VALUES:
        names: tuple[str, ...] | None = getattr(cls, "field_names", None)
        _FIELD_VALUES[cls] = None if names is None else field_values(names)
    return _FIELD_VALUES[cls]


def _own_secrets(value: object) -> list[str]:
    """The secrets a model holds in fields of their own kind: header values, a password or
    token, a plugin's environment (where its secrets go)."""
    found: list[str] = []
    headers = getattr(value, "headers", None)
    if isinstance(headers, dict):
        found += header_secrets(headers)
    for secret_field in ("password", "token"):
        secret = getattr(value, secret_field, None)
        if isinstance(secret, str) and secret:
            found.append(secret)
    env = getattr(value, "env", None)
    if isinstance(env, dict):
        found += (item for item in env.values() if isinstance(item, str))
    return found


def build_plan(registry: Registry, *, timeout: float | None = None) -> list[CheckSpec]:
    """Every check of the registry, in registry order: datastores, services, workers."""
    # A probe's messages may quote its own entry's secrets or those of a datastore it reads
    # through; each check gets a redactor for exactly those (cheap: a handful of strings).
    seen: dict[int, list[str]] = {}
    datastore_secrets = [
        secret
        for datastore in registry.datastores.values()
        for secret in entry_secrets(datastore, seen)
    ]
    specs: list[CheckSpec] = []
    sources: list[tuple[str, ComponentType, CheckOptions]] = [
        *((n, "datastore", d) for n, d in registry.datastores.items()),
        *((n, "service", s) for n, s in registry.services.items()),
        *((n, "worker", w) for n, w in registry.workers.items()),
    ]
    defaults = registry.defaults
    for name, component_type, entry in sources:
        depends_on: tuple[str, ...] = getattr(entry, "depends_on", ())
        redactor = Redactor.of([*entry_secrets(entry, seen), *datastore_secrets])
        for item in _entry_checks(name, component_type, entry, registry):
            specs.append(
                CheckSpec(
                    id=name if item.check is None else f"{name}.{item.check}",
                    component=name,
                    component_type=component_type,
                    check=item.check or item.kind,
                    kind=item.kind,
                    target=item.target,  # planners mask URL passwords by position
                    probe=item.probe,
                    timeout=timeout or item.timeout or entry.timeout or defaults.timeout,
                    interval=item.interval or entry.interval or defaults.interval,
                    latency=item.latency
                    or ((entry.latency or defaults.latency) if item.judge_latency else None),
                    tags=_merged(entry.tags, item.tags),
                    depends_on=depends_on,
                    redact=redactor,
                    derive=item.derive,
                    failure_status=item.failure_status,
                    heavy_start=item.heavy_start,
                )
            )
    return specs


def _merged(tags: tuple[str, ...], extra: tuple[str, ...]) -> tuple[str, ...]:
    return tags if not extra else tuple(dict.fromkeys((*tags, *extra)))


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
