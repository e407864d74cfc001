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

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from opsdash.figures import DlqFigures, HttpFigures, TlsFigures, WorkerFigures
from opsdash.incidents import AFFECTED_TYPES, Incident
from opsdash.results import CheckResult
from opsdash.state import Component, Snapshot

STATUS_HELP = "Check status: 0 ok, 1 warn, 2 crit, 3 unknown (Nagios exit-code scale)."
_CHECK_LABELS = ["check", "component", "kind"]


def check_families(results: Sequence[CheckResult]) -> list[Metric]:
    """The per-check families of these results."""
    status = GaugeMetricFamily("opsdash_check_status", STATUS_HELP, labels=_CHECK_LABELS)
    latency = GaugeMetricFamily(
        "opsdash_check_latency_seconds", "The probe's latency.", labels=_CHECK_LABELS
    )
    error = GaugeMetricFamily(
        "opsdash_check_error",
        "1 when the last probe got no answer to judge, labelled by why.",
        labels=["check", "component", "type"],
    )
    depth = GaugeMetricFamily(
        "opsdash_dlq_depth", "Messages in the dead-letter queue.", labels=["check", "component"]
    )
    growth = GaugeMetricFamily(
        "opsdash_dlq_growth_per_minute",
        "Growth of the dead-letter queue per minute.",
        labels=["check", "component"],
    )
    rates = GaugeMetricFamily(
        "opsdash_worker_rate_per_minute",
        "A worker's retries, failures, processed jobs... per minute.",
        labels=["check", "component", "figure"],
    )
    ratio = GaugeMetricFamily(
        "opsdash_worker_retry_ratio_percent",
        "A worker's retries as a percentage of processed jobs.",
        labels=["check", "component"],
    )
    expiry = GaugeMetricFamily(
        "opsdash_tls_cert_expiry_seconds",
        "Seconds from the check's run until the server certificate's notAfter.",
        labels=["check"],
    )
    for result in results:
        labels = [result.id, result.component, result.kind]
        status.add_metric(labels, float(result.status.exit_code))
        if result.latency_ms is not None:
            latency.add_metric(labels, result.latency_ms / 1000.0)
        if result.error is not None:
            error.add_metric([result.id, result.component, result.error.type.value], 1.0)
        _figures(result, depth, growth, rates, ratio, expiry)
    return [status, latency, error, depth, growth, rates, ratio, expiry]


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


def _figures(
    result: CheckResult,
    depth: GaugeMetricFamily,
    growth: GaugeMetricFamily,
    rates: GaugeMetricFamily,
    ratio: GaugeMetricFamily,
    expiry: GaugeMetricFamily,
) -> None:
    """The figures Prometheus users ask for, read from the result's typed figures."""
    where = [result.id, result.component]
    figures = result.figures
    if isinstance(figures, DlqFigures):
        if figures.depth is not None:
            depth.add_metric(where, float(figures.depth))
        if figures.growth_per_min is not None:
            growth.add_metric(where, figures.growth_per_min)
    elif isinstance(figures, WorkerFigures):
        for name, value in figures.rates().items():
            if value is not None:
                rates.add_metric([*where, name], value)
        if figures.retry_ratio_pct is not None:
            ratio.add_metric(where, figures.retry_ratio_pct)
    elif isinstance(figures, HttpFigures | TlsFigures) and figures.certificate is not None:
        expiry.add_metric([result.id], figures.certificate.seconds_left(result.started_at))


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
