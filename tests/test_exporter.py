"""``opsdash serve``: /metrics parsed back with prometheus_client, /healthz, sharding, and a
clean stop on SIGTERM, against real loopback services."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from opsdash.collector import GC_YOUNG
from opsdash.exporter import Exporter, parse_listen, parse_shard, shard_of, shard_specs
from opsdash.plan import build_plan
from opsdash.registry.model import Registry
from opsdash.resources import Resources
from tests.servers import free_port, refused_port, wait_until
from tests.test_alert import FlipService
from tests.test_alert_processes import ROOT, opsdash


@pytest.fixture
def service() -> Iterator[FlipService]:
    server = FlipService()
    yield server
    server.close()


def registry_for(service: FlipService, refused_port: int) -> Registry:
    return Registry.from_data(
        {
            "version": 1,
            "platform": "p",
            "defaults": {"interval": "100ms", "timeout": "1s"},
            "services": {
                "good": {"url": service.url, "ready": False},
                "gone": {"url": f"http://127.0.0.1:{refused_port}", "ready": False},
            },
        }
    )


REFUSED = ("opsdash_probe_errors_total", (("check", "gone.health"), ("type", "refused")))


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_expose_status_latency_and_error_counters(service: FlipService) -> None:
    registry = registry_for(service, refused_port())
    specs = build_plan(registry)
    async with Resources() as resources:
        exporter = Exporter(registry, specs, resources)
        port = await exporter.start("127.0.0.1", 0)
        try:
            deadline = asyncio.get_running_loop().time() + 10
            while min(exporter.live.runs.get(s.id, 0) for s in specs) < 3:
                assert asyncio.get_running_loop().time() < deadline, "checks did not run"
                await asyncio.sleep(0.02)
            async with httpx.AsyncClient() as client:
                # /metrics is re-rendered in the background, at most a second behind the runs.
                while True:
                    metrics = await client.get(f"http://127.0.0.1:{port}/metrics")
                    if _samples(metrics.text).get(REFUSED, 0) >= 3:
                        break
                    assert asyncio.get_running_loop().time() < deadline, metrics.text
                    await asyncio.sleep(0.05)
                health = await client.get(f"http://127.0.0.1:{port}/healthz")
                missing = await client.get(f"http://127.0.0.1:{port}/nope")
                head = await client.head(f"http://127.0.0.1:{port}/metrics")
        finally:
            await exporter.stop()
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain; version=")
    got = _samples(metrics.text)
    good = (("check", "good.health"), ("component", "good"), ("kind", "http"))
    gone = (("check", "gone.health"), ("component", "gone"), ("kind", "http"))
    assert got[("opsdash_check_status", good)] == 0
    assert got[("opsdash_check_status", gone)] == 2
    assert got[("opsdash_check_latency_seconds", good)] > 0
    assert got[REFUSED] >= 3
    assert got[("opsdash_check_last_run_timestamp_seconds", (("check", "good.health"),))] > 0
    assert got[("opsdash_exporter_checks", ())] == 2
    assert got[("opsdash_component_status", (("component", "gone"), ("type", "service")))] == 2
    assert health.status_code == 200 and health.text == "ok\n"
    assert missing.status_code == 404
    assert head.status_code == 200 and head.content == b""


async def test_the_exporter_tunes_the_collector_while_it_runs(service: FlipService) -> None:
    # serve lives for days: the young threshold is raised while it runs (a round's results
    # and futures die before a scan), what lives as long as it does is frozen at start and
    # again once every check has reported, and stop gives back what was there.
    before = gc.get_threshold()
    registry = registry_for(service, refused_port())
    specs = build_plan(registry)
    async with Resources() as resources:
        exporter = Exporter(registry, specs, resources)
        assert gc.get_threshold() == before  # nothing changes before start
        await exporter.start("127.0.0.1", 0)
        try:
            assert gc.get_threshold() == (GC_YOUNG, *before[1:])
            frozen = gc.get_freeze_count()
            assert frozen > 0
            deadline = asyncio.get_running_loop().time() + 10
            while not all(exporter.live.runs.get(s.id) for s in specs):
                assert asyncio.get_running_loop().time() < deadline, "checks did not run"
                await asyncio.sleep(0.02)
            assert exporter._collector.is_settled
        finally:
            await exporter.stop()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_shards_split_checks_deterministically() -> None:
    ids = [f"svc{i}.health" for i in range(300)]
    shards = [[i for i in ids if shard_of(i, 3) == n] for n in (1, 2, 3)]
    assert sorted(i for shard in shards for i in shard) == sorted(ids)  # each in exactly one
    assert all(60 < len(shard) < 140 for shard in shards)  # and roughly even
    assert shard_of("booking-service.ready", 4) == shard_of("booking-service.ready", 4)
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/3", "4/3", "x", "1/0"):
        with pytest.raises(ValueError, match="expected"):
            parse_shard(bad)
    assert parse_listen("127.0.0.1:9108") == ("127.0.0.1", 9108)
    assert parse_listen("[::1]:9108") == ("::1", 9108)


def test_shard_specs_keeps_only_its_checks(service: FlipService) -> None:
    specs = build_plan(registry_for(service, refused_port()))
    one, two = shard_specs(specs, 1, 2), shard_specs(specs, 2, 2)
    assert {s.id for s in one} | {s.id for s in two} == {s.id for s in specs}
    assert not {s.id for s in one} & {s.id for s in two}


def _answers(process: subprocess.Popen[str], port: int) -> bool:
    """Whether ``opsdash serve`` on ``port`` answers /healthz (its early death fails the test)."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        assert process.poll() is None, process.communicate()
        return False


@contextlib.contextmanager
def _serving(service: FlipService, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``opsdash serve`` of one healthy service on a free port, once it answers /healthz;
    killed at the end of the block if it is still running."""
    registry = tmp_path / "services.yaml"
    registry.write_text(f"version: 1\nplatform: p\nservices:\n  good:\n    url: {service.url}\n")
    port = free_port()
    process = subprocess.Popen(
        opsdash("serve", "-r", str(registry), "--listen", f"127.0.0.1:{port}"),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_until(lambda: _answers(process, port), timeout=20, what="the exporter")
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_stops_cleanly_on_sigterm(service: FlipService, tmp_path: Path) -> None:
    with _serving(service, tmp_path) as (process, port):

        def shows_the_check() -> bool:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            return 'opsdash_check_status{check="good.ready"' in text

        wait_until(shows_the_check, timeout=10, what="the check in /metrics")
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=15)
    assert process.returncode == 0
    assert err.strip().endswith("opsdash serve: stopped")
    assert "Traceback" not in err


def test_serve_rejects_a_bad_shard(tmp_path: Path) -> None:
    registry = tmp_path / "services.yaml"
    registry.write_text("version: 1\nplatform: p\nservices:\n  a:\n    url: http://127.0.0.1:1\n")
    done = subprocess.run(
        opsdash("serve", "-r", str(registry), "--shard", "3/2"),
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 3
    assert "expected 1 <= I <= N" in done.stderr
    assert sys.executable  # the runner used the venv's interpreter


def test_serve_stops_cleanly_with_client_connections_open(
    service: FlipService, tmp_path: Path
) -> None:
    # Scrapers mid-request at shutdown (issue 11, class 10): each open connection used to print
    # one CancelledError traceback.
    clients: list[socket.socket] = []
    with _serving(service, tmp_path) as (process, port):
        try:
            for _ in range(5):
                client = socket.create_connection(("127.0.0.1", port), timeout=5)
                client.sendall(b"GET /metrics HTTP/1.1\r\n")  # a head that never ends
                clients.append(client)
            # Accepted in order: once a later request is answered, the five are being served.
            wait_until(
                lambda: _answers(process, port),
                timeout=10,
                what="the exporter after the open connections",
            )
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=15)
        finally:
            for client in clients:
                client.close()
    assert process.returncode == 0
    assert "Traceback" not in err and "CancelledError" not in err, err
    assert err.strip().endswith("opsdash serve: stopped")


def test_metrics_text_is_what_prometheus_client_writes_for_the_same_families() -> None:
    """The exporter writes each result's series when it arrives and joins the strings at
    render time: byte for byte what ``generate_latest`` makes of the same families, escapes,
    odd floats and every kind of per-check figure included."""
    from datetime import UTC, datetime, timedelta

    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

    from opsdash.exporter import LiveState
    from opsdash.figures import CertificateFigures, DlqFigures, HttpFigures, WorkerFigures
    from opsdash.incidents import find_incidents
    from opsdash.metrics import (
        check_families,
        component_family,
        exposition,
        incident_families,
        info_family,
    )
    from opsdash.results import ErrorType
    from opsdash.state import components
    from opsdash.status import Status
    from tests.helpers import result

    at = datetime(2026, 1, 25, 10, 0, tzinfo=UTC)
    cert = CertificateFigures(10.0, at + timedelta(days=10), "CN=api", "CN=ca")
    registry = Registry.from_data(
        {
            "version": 1,
            "platform": "p",
            "services": {
                'we"ird\\name': {"url": "http://127.0.0.1:1", "tags": ["b", "a"]},
                "api": {"url": "http://127.0.0.1:2", "ready": False},
            },
        }
    )
    specs = build_plan(registry)
    weird_health, weird_ready, api = (s.id for s in specs)
    worker = WorkerFigures(
        source="http://w/metrics", max_attempts=5, dlq="none (by design)", sampled_at=1.0,
        retries_per_min=12.5, processed_per_min=1e21, retry_ratio_pct=float("nan"),
    )  # fmt: skip
    feed = [
        result(weird_ready, Status.CRIT, error=ErrorType.REFUSED, at=at),
        result(api, figures=HttpFigures(http_status=200, certificate=cert), at=at),
        result(weird_health, figures=DlqFigures(source="redis", depth=7, sampled_at=1.0), at=at),
        result("job.retries", Status.WARN, figures=worker, at=at),  # outside the plan
        result(api, Status.CRIT, "ünïcode\nsummary", error=ErrorType.TIMEOUT, at=at),
        result(weird_ready, figures=DlqFigures("redis", 3, 2.0, growth_per_min=-0.5), at=at),
    ]
    live = LiveState(registry, specs)
    first_seen: dict[str, None] = {}
    for each in feed:
        live.record(each)
        first_seen[each.id] = None

    # The families as the exporter used to build them: merged per check in the order checks
    # first reported, then the registry-wide ones; rendered by prometheus_client.
    merged: dict[str, Metric] = {}
    for check_id in first_seen:
        latest = live.state.latest(check_id)
        assert latest is not None
        for family in check_families([latest]):
            into = merged.setdefault(
                family.name, Metric(family.name, family.documentation, family.type)
            )
            into.samples.extend(family.samples)
    results = live.state.results()
    errors = CounterMetricFamily(
        "opsdash_probe_errors",
        "Probe runs that got no answer to judge, by error class.",
        labels=["check", "type"],
    )
    for (check_id, error_type), count in live.errors.items():
        errors.add_metric([check_id, error_type], float(count))
    last = GaugeMetricFamily(
        "opsdash_check_last_run_timestamp_seconds",
        "When the check last ran (seconds since the epoch).",
        labels=["check"],
    )
    for each in results:
        last.add_metric([each.id], each.started_at.timestamp())
    expected = exposition(
        [
            *merged.values(),
            info_family((s.id, s.component, s.kind, s.tags) for s in specs),
            component_family(components(registry, specs, results)),
            *incident_families(find_incidents(registry, specs, results)),
            errors,
            last,
            GaugeMetricFamily("opsdash_exporter_checks", "Checks this exporter (shard) runs.",
                              value=len(specs)),
            GaugeMetricFamily("opsdash_exporter_start_timestamp_seconds",
                              "When the exporter started.", value=live.started),
        ]
    )  # fmt: skip
    text = live.render().decode("utf-8")
    assert text == expected
    assert 'check="we\\"ird\\\\name.ready"' in text
    assert "opsdash_worker_rate_per_minute" in text and "1e+21" in text and "NaN" in text


def test_go_float_is_prometheus_clients_float_formatting() -> None:
    """The exporter's own float formatting (a ``repr`` when it is already Go's) writes every
    value as prometheus_client does: statuses, latencies, timestamps, counts, extremes."""
    from prometheus_client.utils import floatToGoString

    from opsdash.metrics import go_float

    values: list[float] = [
        0.0, -0.0, 1.0, 2.0, 3.0, 0.0012, 0.1, 123456.7, 1234567.0, 12345678.9, -12345678.9,
        1764745123.456789, 1e16, 1.5e16, 1e21, 1.5e-7, 5e-324, 1.7976931348623157e308,
        float("inf"), float("-inf"), float("nan"), 7, 0, -3, 10**7, True,
    ]  # fmt: skip
    for value in values:
        assert go_float(value) == floatToGoString(value), value
