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
``opsdash_checks``                      how many checks have each ``status``
``opsdash_round_duration_seconds``      the round's wall time
``opsdash_last_run_timestamp_seconds``  when the round started (alert on staleness with it)
======================================  ==========================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from opsdash.results import CheckResult
from opsdash.state import Component, Snapshot

STATUS_HELP = "Check status: 0 ok, 1 warn, 2 crit, 3 unknown (Nagios exit-code scale)."
_CHECK_LABELS = ["check", "component", "kind"]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


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
    for result in results:
        labels = [result.id, result.component, result.kind]
        status.add_metric(labels, float(result.status.exit_code))
        if result.latency_ms is not None:
            latency.add_metric(labels, result.latency_ms / 1000.0)
        if result.error is not None:
            error.add_metric([result.id, result.component, result.error.type.value], 1.0)
        _figures(result, result.details, depth, growth, rates, ratio)
    return [status, latency, error, depth, growth, rates, ratio]


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
    details: Mapping[str, Any],
    depth: GaugeMetricFamily,
    growth: GaugeMetricFamily,
    rates: GaugeMetricFamily,
    ratio: GaugeMetricFamily,
) -> None:
    """The DLQ and worker figures a result's details carry (issue 4's ``details`` keys)."""
    where = [result.id, result.component]
    if result.kind == "dlq" or result.check == "dlq":
        if (value := _number(details.get("depth"))) is not None:
            depth.add_metric(where, value)
        if (value := _number(details.get("growth_per_min"))) is not None:
            growth.add_metric(where, value)
        return
    for key, raw in details.items():
        if key.endswith("_per_min") and (value := _number(raw)) is not None:
            rates.add_metric([*where, key.removesuffix("_per_min")], value)
    if (value := _number(details.get("retry_ratio_pct"))) is not None:
        ratio.add_metric(where, value)


def snapshot_families(snapshot: Snapshot) -> list[Metric]:
    """Every family of a one-shot snapshot, round figures included."""
    families = check_families(snapshot.results)
    if snapshot.components:
        families.append(component_family(snapshot.components))
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
