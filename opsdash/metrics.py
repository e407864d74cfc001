"""The Prometheus metric families of opsdash, shared by ``check --format prometheus``
(:mod:`opsdash.render.prometheus`) and the exporter (``opsdash serve``).

Below both faces, so that neither imports the other and both expose the same series.

Built with prometheus_client so that names, escaping and ``# HELP``/``# TYPE`` lines are
right; the output suits node_exporter's textfile collector. Metrics (all labelled by ``check``
and, where it applies, ``component``):

======================================  ==========================================================
``opsdash_check_status``                0 ok, 1 warn, 2 crit, 3 unknown (the exit-code scale)
``opsdash_check_latency_seconds``       the probe's latency
``opsdash_check_error``                 1, labelled by error ``type``, when the probe got no answer
``opsdash_component_status``            a component's worst check, same scale
``opsdash_dlq_depth``                   messages in a worker's dead-letter queue
``opsdash_dlq_growth_per_minute``       its growth, when history allows a rate
``opsdash_worker_rate_per_minute``      retries/failures/processed per minute (``figure`` label)
``opsdash_worker_retry_ratio_percent``  retries / processed
``opsdash_tls_cert_expiry_seconds``     seconds until notAfter (``https://`` and ``tls:`` checks)
``opsdash_check_info``                  1 per check, with ``component``, ``kind`` and ``tags``
``opsdash_incident_status``             per open incident (``cause``, ``kind``), same scale
``opsdash_incident_affected``           its failing components by ``type``
``opsdash_incident_check``              1 per check an open incident explains
``opsdash_checks``                      how many checks have each ``status``
``opsdash_round_duration_seconds``      the round's wall time
``opsdash_last_run_timestamp_seconds``  when the round started (alert on staleness with it)
======================================  ==========================================================
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, cast

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from opsdash.figures import DlqFigures, HttpFigures, TlsFigures, WorkerFigures
from opsdash.incidents import AFFECTED_TYPES, Incident
from opsdash.records import dataclass
from opsdash.results import CheckResult
from opsdash.state import Component, Snapshot

STATUS_HELP = "Check status: 0 ok, 1 warn, 2 crit, 3 unknown (Nagios exit-code scale)."


@dataclass(frozen=True, slots=True)
class FamilySpec:
    """One gauge family of per-check series: its name, help text and label names."""

    name: str
    documentation: str
    labels: tuple[str, ...]

    def header(self) -> str:
        """Its ``# HELP`` and ``# TYPE`` lines, as ``generate_latest`` writes them."""
        return family_header(self.name, self.documentation, "gauge")


CHECK_FAMILIES = (
    FamilySpec("opsdash_check_status", STATUS_HELP, ("check", "component", "kind")),
    FamilySpec(
        "opsdash_check_latency_seconds", "The probe's latency.", ("check", "component", "kind")
    ),
    FamilySpec(
        "opsdash_check_error",
        "1 when the last probe got no answer to judge, labelled by why.",
        ("check", "component", "type"),
    ),
    FamilySpec("opsdash_dlq_depth", "Messages in the dead-letter queue.", ("check", "component")),
    FamilySpec(
        "opsdash_dlq_growth_per_minute",
        "Growth of the dead-letter queue per minute.",
        ("check", "component"),
    ),
    FamilySpec(
        "opsdash_worker_rate_per_minute",
        "A worker's retries, failures, processed jobs... per minute.",
        ("check", "component", "figure"),
    ),
    FamilySpec(
        "opsdash_worker_retry_ratio_percent",
        "A worker's retries as a percentage of processed jobs.",
        ("check", "component"),
    ),
    FamilySpec(
        "opsdash_tls_cert_expiry_seconds",
        "Seconds from the check's run until the server certificate's notAfter.",
        ("check",),
    ),
)
"""The per-check families, in the order every exposition lists them."""
_STATUS, _LATENCY, _ERROR, _DEPTH, _GROWTH, _RATES, _RATIO, _EXPIRY = range(len(CHECK_FAMILIES))

Sample = tuple[int, list[str], float]
"""A series of one result: the index of its family in :data:`CHECK_FAMILIES`, its label
values (in the family's label order) and its value."""


def check_samples(result: CheckResult) -> Iterator[Sample]:
    """The per-check series of one result: what both :func:`check_families` and the
    exporter's per-check text (:func:`check_lines`) are made of."""
    labels = [result.id, result.component, result.kind]
    yield _STATUS, labels, float(result.status.exit_code)
    if result.latency_ms is not None:
        yield _LATENCY, labels, result.latency_ms / 1000.0
    if result.error is not None:
        yield _ERROR, [result.id, result.component, result.error.type.value], 1.0
    # The figures Prometheus users ask for, read from the result's typed figures.
    figures = result.figures
    if isinstance(figures, DlqFigures):
        where = [result.id, result.component]
        if figures.depth is not None:
            yield _DEPTH, where, float(figures.depth)
        if figures.growth_per_min is not None:
            yield _GROWTH, where, figures.growth_per_min
    elif isinstance(figures, WorkerFigures):
        where = [result.id, result.component]
        for name, value in figures.rates().items():
            if value is not None:
                yield _RATES, [*where, name], value
        if figures.retry_ratio_pct is not None:
            yield _RATIO, where, figures.retry_ratio_pct
    elif isinstance(figures, HttpFigures | TlsFigures) and figures.certificate is not None:
        yield _EXPIRY, [result.id], figures.certificate.seconds_left(result.started_at)


def check_families(results: Sequence[CheckResult]) -> list[Metric]:
    """The per-check families of these results."""
    families = [
        GaugeMetricFamily(spec.name, spec.documentation, labels=list(spec.labels))
        for spec in CHECK_FAMILIES
    ]
    for result in results:
        for index, labels, value in check_samples(result):
            families[index].add_metric(labels, value)
    return list(families)


Heads = dict[tuple[Any, ...], str]
"""Sample lines up to their value, by family index and label values: a check's labels are the
same every run, so the exporter writes each head once (:func:`check_lines`)."""


def check_lines(result: CheckResult, heads: Heads | None = None) -> tuple[str, ...]:
    """One result's series in the text format, one string per family of
    :data:`CHECK_FAMILIES` (empty when it has none there): the exporter keeps these per check,
    so that rendering ``/metrics`` only joins strings. ``heads`` keeps the lines' heads (name
    and labels, escaped) for the next run of the same checks."""
    lines = [""] * len(CHECK_FAMILIES)
    for index, labels, value in check_samples(result):
        key = (index, *labels)
        head = None if heads is None else heads.get(key)
        if head is None:
            head = _CHECK_TEMPLATES[index].format(*_escaped(labels))
            if heads is not None:
                heads[key] = head
        lines[index] += head + go_float(value) + "\n"
    return tuple(lines)


# --- the text format, as prometheus_client's generate_latest writes it ---------------------


def family_header(name: str, documentation: str, kind: str) -> str:
    """The ``# HELP`` and ``# TYPE`` lines of a family (a legal name, as all of opsdash's)."""
    text = documentation.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {text}\n# TYPE {name} {kind}\n"


def sample_line(
    name: str, label_names: Sequence[str], label_values: Sequence[str], value: float
) -> str:
    """One sample line (no timestamp): labels sorted by name, values escaped, the value as
    Go prints it (``+Inf``, ``NaN``, ``1.5e+07``), byte for byte as ``generate_latest``."""
    return sample_head(name, label_names, label_values) + go_float(value) + "\n"


def sample_head(name: str, label_names: Sequence[str], label_values: Sequence[str]) -> str:
    """A :func:`sample_line` up to its value (name and labels, escaped, and the space)."""
    return _template(name, tuple(label_names)).format(*_escaped(label_values))


@functools.cache
def _template(name: str, label_names: tuple[str, ...]) -> str:
    """A sample line up to its value, ``str.format`` fields for the label values in the order
    given (written in name order)."""
    if not label_names:
        return name.replace("{", "{{").replace("}", "}}") + " "
    order = sorted(range(len(label_names)), key=label_names.__getitem__)
    labels = ",".join(f'{label_names[index]}="{{{index}}}"' for index in order)
    return f"{name}{{{{{labels}}}}} "


def _escaped(values: Sequence[str]) -> Sequence[str]:
    """Label values with backslash, newline and double quote escaped (most have none)."""
    joined = "".join(values)
    if "\\" in joined or "\n" in joined or '"' in joined:
        return [_escape(value) for value in values]
    return values


_go_float = cast(Callable[[float], str], floatToGoString)
"""prometheus_client's own float formatting (it ships no annotations)."""


def go_float(value: float) -> str:
    """A sample's value as Go prints it, as :data:`_go_float` writes it: a float whose ``repr``
    has its point within its first seven characters (statuses, latencies, depths) is that
    ``repr``; the rest (integers, infinities, NaN, exponents, large values) is left to
    prometheus_client's own function."""
    text = repr(value)
    if type(value) is float and 0 <= text.find(".") <= 6:
        return text
    return _go_float(value)


def _escape(text: str) -> str:
    if "\\" in text or "\n" in text or '"' in text:
        return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return text


_CHECK_TEMPLATES = tuple(_template(family.name, family.labels) for family in CHECK_FAMILIES)


def component_family(components: Iterable[Component]) -> GaugeMetricFamily:
    """Each component's status (the worst of its checks), for ``check`` and ``serve`` alike."""
    family = GaugeMetricFamily(
        "opsdash_component_status",
        "A component's status (its worst check): 0 ok, 1 warn, 2 crit, 3 unknown.",
        labels=["component", "type"],
    )
    for component in components:
        family.add_metric([component.name, component.type], float(component.status.exit_code))
    return family


def incident_families(incidents: Iterable[Incident]) -> list[Metric]:
    """The open incidents: one status series per incident (gone once it resolves), the count
    of what it affects by type, and which checks it explains (for joins and inhibition)."""
    status = GaugeMetricFamily(
        "opsdash_incident_status",
        "An open incident's status: 0 ok, 1 warn, 2 crit, 3 unknown.",
        labels=["cause", "kind"],
    )
    affected = GaugeMetricFamily(
        "opsdash_incident_affected",
        "How many failing components of each type an open incident explains.",
        labels=["cause", "type"],
    )
    explains = GaugeMetricFamily(
        "opsdash_incident_check",
        "1 for each check an open incident explains (join on check for its cause).",
        labels=["cause", "check"],
    )
    for incident in incidents:
        status.add_metric([incident.cause, incident.kind.value], float(incident.status.exit_code))
        for component_type in AFFECTED_TYPES:
            count = incident.affected.count(component_type)
            if count:
                affected.add_metric([incident.cause, component_type], float(count))
        for check_id in incident.checks:
            explains.add_metric([incident.cause, check_id], 1.0)
    return [status, affected, explains]


InfoRow = tuple[str, str, str, Sequence[str]]
"""check id, component, kind, tags."""


def info_family(rows: Iterable[InfoRow]) -> GaugeMetricFamily:
    """``opsdash_check_info``: 1 per check, with its tags (comma-joined, sorted) for joins."""
    family = GaugeMetricFamily(
        "opsdash_check_info",
        "1 for every check; its component, kind and tags (comma-joined, sorted) for joins.",
        labels=["check", "component", "kind", "tags"],
    )
    for check_id, component, kind, tags in rows:
        family.add_metric([check_id, component, kind, ",".join(sorted(tags))], 1.0)
    return family


def snapshot_info(snapshot: Snapshot) -> list[InfoRow]:
    """The info rows of the checks that ran in ``snapshot``."""
    tags = {check_id: c.tags for c in snapshot.components for check_id in c.checks}
    return [(r.id, r.component, r.kind, tags.get(r.id, ())) for r in snapshot.results]


def snapshot_families(snapshot: Snapshot) -> list[Metric]:
    """Every family of a one-shot snapshot, round figures included."""
    families = check_families(snapshot.results)
    families.append(info_family(snapshot_info(snapshot)))
    if snapshot.components:
        families.append(component_family(snapshot.components))
    families += incident_families(snapshot.incidents)
    counts = GaugeMetricFamily("opsdash_checks", "Checks by status.", labels=["status"])
    for name, count in snapshot.counts.items():
        counts.add_metric([name], float(count))
    families.append(counts)
    if snapshot.duration_ms is not None:
        families.append(
            GaugeMetricFamily(
                "opsdash_round_duration_seconds",
                "Wall time of the round.",
                value=snapshot.duration_ms / 1000.0,
            )
        )
    families.append(
        GaugeMetricFamily(
            "opsdash_last_run_timestamp_seconds",
            "When the round started (seconds since the epoch).",
            value=snapshot.started_at.timestamp(),
        )
    )
    return families


class FamiliesCollector:
    """A prometheus_client collector that yields whatever ``source()`` returns at scrape time."""

    def __init__(self, source: Any) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        """Called by prometheus_client on every scrape."""
        families: Iterable[Metric] = self._source()
        yield from families


def exposition(families: Sequence[Metric]) -> str:
    """``families`` in the Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FamiliesCollector(lambda: families))
    text: bytes = generate_latest(registry)
    return text.decode("utf-8")
