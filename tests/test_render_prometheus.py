"""``check --format prometheus``: the exposition parsed back with prometheus_client."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from opsdash.figures import DlqFigures, WorkerFigures
from opsdash.plan import build_plan
from opsdash.registry.model import Registry
from opsdash.render.prometheus import render_prometheus
from opsdash.results import CheckResult, ErrorType, ProbeError
from opsdash.state import PlatformState
from opsdash.status import Status

REGISTRY = Registry.from_data(
    {
        "version": 1,
        "platform": "learning-platform",
        "datastores": {"redis": {"kind": "redis", "url": "redis://127.0.0.1:1/0"}},
        "services": {"booking": {"url": "http://127.0.0.1:1", "depends_on": ["redis"]}},
        "workers": {
            "allocation-worker": {
                "dlq": {"source": "redis-list", "datastore": "redis", "key": "dlq:allocation"},
                "metrics": {"source": "prometheus", "url": "http://127.0.0.1:1/metrics"},
            }
        },
    }
)
AT = datetime(2026, 1, 25, 10, tzinfo=UTC)


def result(
    check_id: str, component: str, check: str, kind: str, status: Status, **kw: object
) -> CheckResult:
    return CheckResult(
        check_id, component, check, kind, status, str(kw.get("summary", status)),
        kw.get("latency_ms", 10.0), "t", kw.get("figures"), kw.get("error"), AT,  # type: ignore[arg-type]
    )  # fmt: skip


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_status_latency_dlq_rates_and_round_figures() -> None:
    specs = build_plan(REGISTRY)
    state = PlatformState(REGISTRY, specs)
    state.apply_all(
        [
            result("redis", "redis", "redis", "redis", Status.CRIT, latency_ms=None,
                   error=ProbeError(ErrorType.REFUSED, "connection refused")),
            result("booking.health", "booking", "health", "http", Status.OK, latency_ms=12.0),
            result("booking.ready", "booking", "ready", "http", Status.CRIT),
            result("allocation-worker.dlq", "allocation-worker", "dlq", "dlq", Status.WARN,
                   figures=DlqFigures("redis-list", 7, 0.0, growth_per_min=1.5)),
            result("allocation-worker.retries", "allocation-worker", "retries", "worker-metrics",
                   Status.OK, figures=WorkerFigures("prometheus", 5, "allocation-worker.dlq", 0.0,
                                       retries_per_min=3.0, processed_per_min=60,
                                       failures_per_min=None, retry_ratio_pct=5.0)),
        ]
    )  # fmt: skip
    snap = state.snapshot(started_at=AT, duration_ms=250.0)
    got = samples(render_prometheus(snap))

    def labels(**kw: str) -> frozenset[tuple[str, str]]:
        return frozenset(kw.items())

    assert (
        got[("opsdash_check_status", labels(check="redis", component="redis", kind="redis"))] == 2
    )
    assert (
        got[
            (
                "opsdash_check_status",
                labels(check="allocation-worker.dlq", component="allocation-worker", kind="dlq"),
            )
        ]
        == 1
    )
    assert (
        got[
            (
                "opsdash_check_status",
                labels(check="booking.health", component="booking", kind="http"),
            )
        ]
        == 0
    )
    assert (
        got[
            (
                "opsdash_check_latency_seconds",
                labels(check="booking.health", component="booking", kind="http"),
            )
        ]
        == 0.012
    )
    assert (
        got[("opsdash_check_error", labels(check="redis", component="redis", type="refused"))] == 1
    )
    assert (
        got[
            (
                "opsdash_dlq_depth",
                labels(check="allocation-worker.dlq", component="allocation-worker"),
            )
        ]
        == 7
    )
    assert (
        got[
            (
                "opsdash_dlq_growth_per_minute",
                labels(check="allocation-worker.dlq", component="allocation-worker"),
            )
        ]
        == 1.5
    )
    rate = labels(
        check="allocation-worker.retries", component="allocation-worker", figure="retries"
    )
    assert got[("opsdash_worker_rate_per_minute", rate)] == 3.0
    assert (
        "opsdash_worker_rate_per_minute",
        labels(check="allocation-worker.retries", component="allocation-worker", figure="failures"),
    ) not in got
    assert (
        got[
            (
                "opsdash_worker_retry_ratio_percent",
                labels(check="allocation-worker.retries", component="allocation-worker"),
            )
        ]
        == 5.0
    )
    assert got[("opsdash_component_status", labels(component="booking", type="service"))] == 2
    assert got[("opsdash_checks", labels(status="crit"))] == 2
    assert got[("opsdash_round_duration_seconds", frozenset())] == 0.25
    assert got[("opsdash_last_run_timestamp_seconds", frozenset())] == AT.timestamp()


def test_label_values_are_escaped() -> None:
    registry = Registry.from_data(
        {"version": 1, "platform": "p", "services": {"a": {"url": "http://127.0.0.1:1"}}}
    )
    state = PlatformState(registry, build_plan(registry))
    state.apply(result("a.health", "a", "health", 'ht"tp\\x', Status.OK))
    got = samples(render_prometheus(state.snapshot(started_at=AT)))
    assert (
        got[
            (
                "opsdash_check_status",
                frozenset({"check": "a.health", "component": "a", "kind": 'ht"tp\\x'}.items()),
            )
        ]
        == 0
    )


def test_certificate_expiry_info_and_incident_series() -> None:
    from datetime import timedelta

    from opsdash.figures import CertificateFigures, HttpFigures, TlsFigures
    from opsdash.metrics import check_families, exposition

    cert = CertificateFigures(10.0, AT + timedelta(days=10), "CN=api", "CN=ca")
    specs = build_plan(REGISTRY)
    state = PlatformState(REGISTRY, specs)
    state.apply_all(
        [
            result("redis", "redis", "redis", "redis", Status.CRIT, latency_ms=None,
                   error=ProbeError(ErrorType.REFUSED, "connection refused")),
            result("booking.health", "booking", "health", "http", Status.OK,
                   figures=HttpFigures(http_status=200, certificate=cert)),
            result("booking.ready", "booking", "ready", "http", Status.CRIT,
                   figures=HttpFigures(http_status=503, dependencies={"redis": Status.CRIT})),
        ]
    )  # fmt: skip
    got = samples(render_prometheus(state.snapshot(started_at=AT)))
    # a custom `tls` check's certificate (not in this registry: its families alone)
    tls = result("booking.tls", "booking", "tls", "tls", Status.OK, figures=TlsFigures(cert))
    got |= samples(exposition(check_families([tls])))

    def labels(**kw: str) -> frozenset[tuple[str, str]]:
        return frozenset(kw.items())

    ten_days = 10 * 86400.0
    assert got[("opsdash_tls_cert_expiry_seconds", labels(check="booking.health"))] == ten_days
    assert got[("opsdash_tls_cert_expiry_seconds", labels(check="booking.tls"))] == ten_days
    assert ("opsdash_tls_cert_expiry_seconds", labels(check="booking.ready")) not in got
    info = labels(check="booking.ready", component="booking", kind="http", tags="")
    assert got[("opsdash_check_info", info)] == 1
    assert got[("opsdash_incident_status", labels(cause="redis", kind="datastore-down"))] == 2
    assert got[("opsdash_incident_affected", labels(cause="redis", type="service"))] == 1
    assert ("opsdash_incident_affected", labels(cause="redis", type="worker")) not in got
    assert got[("opsdash_incident_check", labels(cause="redis", check="booking.ready"))] == 1
