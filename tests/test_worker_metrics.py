"""Worker retry metrics: a real ``prometheus_client`` registry served over loopback HTTP, a real
Redis hash, a JSON endpoint; counter resets, missing series and garbage each give a clear
status, never an exception."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.openmetrics.exposition import (
    CONTENT_TYPE_LATEST as OPENMETRICS_TYPE,
)
from prometheus_client.openmetrics.exposition import (
    generate_latest as generate_openmetrics,
)
from redis.asyncio import Redis

from opsdash.figures import WorkerFigures
from opsdash.harness import run_probe
from opsdash.plan import CheckSpec, build_plan
from opsdash.probes.promtext import Selector
from opsdash.registry.model import Registry
from opsdash.resources import Resources
from opsdash.results import CheckResult, ErrorType
from opsdash.status import Status
from tests.loopback import Platform
from tests.servers import RedisServer


@dataclass
class Worker:
    """A worker process's metrics, as prom-client / prometheus_client would expose them."""

    registry: CollectorRegistry
    retries: Counter
    failures: Counter
    processed: Counter
    start: Gauge


def new_worker(started: float = 1_700_000_000.0) -> Worker:
    registry = CollectorRegistry()
    labels = ["worker", "queue"]
    worker = Worker(
        registry,
        Counter("worker_retries", "Job retries", labels, registry=registry),
        Counter("worker_failures", "Final failures", labels, registry=registry),
        Counter("worker_processed", "Jobs processed", labels, registry=registry),
        Gauge("process_start_time_seconds", "Start time", registry=registry),
    )
    worker.start.set(started)
    return worker


@dataclass
class Exporter:
    """A loopback HTTP server serving whatever ``current`` says."""

    url: str
    current: Callable[[], tuple[str, bytes]]


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    state = Exporter("", lambda: ("text/plain", b""))
    platform = Platform()

    def metrics() -> tuple[int, str, bytes]:
        content_type, body = state.current()
        return 200, content_type, body

    state.url = platform.add({"/metrics": metrics}) + "/metrics"
    yield state
    platform.close()


def serve(exporter: Exporter, worker: Worker, *, openmetrics: bool = False) -> None:
    if openmetrics:
        exporter.current = lambda: (OPENMETRICS_TYPE, generate_openmetrics(worker.registry))
    else:
        exporter.current = lambda: ("text/plain; version=0.0.4", generate_latest(worker.registry))


def make_registry(
    metrics: Mapping[str, Any],
    *,
    dlq: bool = True,
    datastores: Mapping[str, Any] | None = None,
) -> Registry:
    worker: dict[str, Any] = {"max_attempts": 5, "metrics": dict(metrics)}
    if dlq:
        worker["dlq"] = {"source": "http-json", "url": "http://127.0.0.1:9/", "path": "d"}
    return Registry.from_data(
        {
            "version": 1,
            "platform": "test",
            "datastores": dict(datastores or {}),
            "workers": {"allocation-worker": worker},
        }
    )


def prometheus(url: str, worker: str = "allocation-worker", **extra: Any) -> dict[str, Any]:
    return {
        "source": "prometheus",
        "url": url,
        "retries": f'worker_retries_total{{worker="{worker}"}}',
        "failures": f'worker_failures_total{{worker="{worker}"}}',
        "processed": f'worker_processed_total{{worker="{worker}"}}',
        "retry_ratio": {"warn": "5%", "crit": "20%"},
        **extra,
    }


def retries_spec(registry: Registry) -> CheckSpec:
    return next(s for s in build_plan(registry) if s.id == "allocation-worker.retries")


async def scrape(spec: CheckSpec) -> CheckResult:
    async with Resources() as resources:
        return await run_probe(spec, resources)


def one_shot(spec: CheckSpec, result: CheckResult) -> CheckResult:
    assert spec.derive is not None
    return spec.derive(result, [])


def earlier(result: CheckResult, seconds: float) -> CheckResult:
    """``result`` as if scraped ``seconds`` before it was (tests cannot wait minutes)."""
    assert isinstance(result.figures, WorkerFigures)
    at = result.figures.sampled_at - seconds
    return replace(result, figures=replace(result.figures, sampled_at=at))


# --- prometheus -------------------------------------------------------------------------


async def test_one_shot_ratio_from_counters_as_scraped(exporter: Exporter) -> None:
    worker = new_worker()
    worker.processed.labels("allocation-worker", "alloc").inc(400)
    worker.retries.labels("allocation-worker", "alloc").inc(30)
    worker.failures.labels("allocation-worker", "alloc").inc(2)
    worker.retries.labels("purchase-worker", "purchase").inc(999)  # another worker's series
    serve(exporter, worker)
    spec = retries_spec(make_registry(prometheus(exporter.url)))
    result = one_shot(spec, await scrape(spec))
    assert result.details["retries_total"] == 30
    assert result.details["processed_total"] == 400
    assert result.details["failures_total"] == 2
    assert result.details["retry_ratio_pct"] == pytest.approx(7.5)
    assert result.details["ratio_basis"] == "since start"
    assert result.details["max_attempts"] == 5
    assert result.details["dlq"] == "allocation-worker.dlq"
    assert result.status is Status.WARN
    assert result.summary == (
        "retry ratio 7.5% since start (30 retries / 400 processed); rates not known yet; "
        "up to 5 attempts"
    )


async def test_several_matching_series_are_summed(exporter: Exporter) -> None:
    worker = new_worker()
    for queue, count in (("alloc", 3), ("alloc-bulk", 4)):
        worker.retries.labels("allocation-worker", queue).inc(count)
        worker.processed.labels("allocation-worker", queue).inc(100)
    serve(exporter, worker)
    spec = retries_spec(make_registry(prometheus(exporter.url)))
    result = one_shot(spec, await scrape(spec))
    assert result.details["retries_total"] == 7
    assert result.details["processed_total"] == 200
    assert result.status is Status.OK


async def test_openmetrics_names_are_found_with_or_without_total(exporter: Exporter) -> None:
    worker = new_worker()
    worker.retries.labels("allocation-worker", "alloc").inc(5)
    worker.processed.labels("allocation-worker", "alloc").inc(1000)
    serve(exporter, worker, openmetrics=True)
    metrics = prometheus(exporter.url)
    metrics["retries"] = 'worker_retries{worker="allocation-worker"}'  # OpenMetrics family name
    spec = retries_spec(make_registry(metrics))
    result = one_shot(spec, await scrape(spec))
    assert result.details["retries_total"] == 5  # not 5 + the _created timestamp
    assert result.details["processed_total"] == 1000
    assert result.details["started_at"] == 1_700_000_000.0


async def test_rates_and_ratio_over_the_window(exporter: Exporter) -> None:
    worker = new_worker()
    series = ("allocation-worker", "alloc")
    worker.processed.labels(*series).inc(1000)
    worker.retries.labels(*series).inc(10)
    serve(exporter, worker)
    spec = retries_spec(make_registry(prometheus(exporter.url)))
    assert spec.derive is not None
    first = await scrape(spec)
    worker.processed.labels(*series).inc(120)
    worker.retries.labels(*series).inc(30)
    worker.failures.labels(*series).inc(2)
    second = await scrape(spec)
    result = spec.derive(second, [earlier(first, 120)])
    assert result.details["retries_per_min"] == pytest.approx(15, rel=0.01)
    assert result.details["failures_per_min"] == pytest.approx(1, rel=0.01)
    assert result.details["retry_ratio_pct"] == pytest.approx(25)
    assert result.details["ratio_basis"] == "window"
    assert result.status is Status.CRIT
    assert result.summary.startswith("retries 15/min, failures 1/min; retry ratio 25% over 2m")


async def test_restarted_worker_counts_from_zero_not_negative(exporter: Exporter) -> None:
    before = new_worker(started=1_700_000_000)
    before.processed.labels("allocation-worker", "alloc").inc(50_000)
    before.retries.labels("allocation-worker", "alloc").inc(4_000)
    serve(exporter, before)
    spec = retries_spec(make_registry(prometheus(exporter.url)))
    assert spec.derive is not None
    first = await scrape(spec)
    after = new_worker(started=1_700_000_500)  # the process restarted: counters from zero
    after.processed.labels("allocation-worker", "alloc").inc(60)
    after.retries.labels("allocation-worker", "alloc").inc(1)
    serve(exporter, after)
    second = await scrape(spec)
    result = spec.derive(second, [earlier(first, 60)])
    assert result.details["retries_per_min"] == pytest.approx(1, rel=0.01)
    assert result.details["retry_ratio_pct"] == pytest.approx(100 / 60, rel=0.01)
    assert result.status is Status.OK


async def test_restart_hidden_by_a_higher_value_is_seen_by_the_start_time(
    exporter: Exporter,
) -> None:
    before = new_worker(started=1_700_000_000)
    before.retries.labels("allocation-worker", "alloc").inc(5)
    before.processed.labels("allocation-worker", "alloc").inc(100)
    serve(exporter, before)
    spec = retries_spec(make_registry(prometheus(exporter.url)))
    assert spec.derive is not None
    first = await scrape(spec)
    after = new_worker(started=1_700_009_000)
    after.retries.labels("allocation-worker", "alloc").inc(8)
    after.processed.labels("allocation-worker", "alloc").inc(400)
    serve(exporter, after)
    result = spec.derive(await scrape(spec), [earlier(first, 60)])
    assert result.details["retries_per_min"] == pytest.approx(8, rel=0.01)  # not 3
    assert result.details["retry_ratio_pct"] == pytest.approx(2)


async def test_retrying_with_nothing_processed_is_crit(exporter: Exporter) -> None:
    worker = new_worker()
    worker.processed.labels("allocation-worker", "alloc").inc(500)
    serve(exporter, worker)
    spec = retries_spec(make_registry(prometheus(exporter.url)))
    assert spec.derive is not None
    first = await scrape(spec)
    worker.retries.labels("allocation-worker", "alloc").inc(12)  # postgres is down
    result = spec.derive(await scrape(spec), [earlier(first, 60)])
    assert result.status is Status.CRIT
    assert "retrying with nothing processed over 1m" in result.summary


async def test_declared_counter_without_series_yet_counts_as_zero(exporter: Exporter) -> None:
    worker = new_worker()  # a fresh worker: counters declared, nothing counted yet
    serve(exporter, worker)
    spec = retries_spec(make_registry(prometheus(exporter.url)))
    result = one_shot(spec, await scrape(spec))
    assert result.status is Status.OK
    assert result.details["retries_total"] == 0
    assert result.details["retry_ratio_pct"] is None
    assert result.summary.startswith("no jobs processed yet; rates not known yet")


async def test_missing_series_is_unknown_and_names_it(exporter: Exporter) -> None:
    worker = new_worker()
    worker.processed.labels("allocation-worker", "alloc").inc(10)
    serve(exporter, worker)
    metrics = prometheus(exporter.url, dead_letters='worker_dead_letters_total{worker="x"}')
    spec = retries_spec(make_registry(metrics))
    result = one_shot(spec, await scrape(spec))
    assert result.status is Status.UNKNOWN
    assert result.summary == 'series not found: worker_dead_letters_total{worker="x"}'
    assert result.error is None
    assert result.details["processed_total"] == 10


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>502 Bad Gateway</body></html>",
        b'worker_retries_total{worker="allocation-worker" 3\n',
        b"\x00\xff\xfe garbage \x00",
    ],
)
async def test_garbage_text_is_unknown_never_an_exception(exporter: Exporter, body: bytes) -> None:
    exporter.current = lambda: ("text/plain", body)
    spec = retries_spec(make_registry(prometheus(exporter.url)))
    result = one_shot(spec, await scrape(spec))
    assert result.status is Status.UNKNOWN
    assert result.summary.startswith("not a Prometheus metrics page")
    assert result.error is None


async def test_metrics_endpoint_down_is_crit(exporter: Exporter) -> None:
    url = exporter.url.replace("/metrics", "/nothing-here")
    spec = retries_spec(make_registry(prometheus(url)))
    result = one_shot(spec, await scrape(spec))
    assert result.status is Status.UNKNOWN
    assert result.error is not None and result.error.type is ErrorType.CONFIG
    assert result.summary == "404 Not Found: no metrics page at this URL"


async def test_bad_selector_is_a_config_problem() -> None:
    spec = retries_spec(
        make_registry(prometheus("http://127.0.0.1:9/metrics", retries="worker_retries{worker=}"))
    )
    result = one_shot(spec, await scrape(spec))
    assert result.status is Status.UNKNOWN
    assert result.error is not None and result.error.type is ErrorType.CONFIG
    assert result.summary.startswith("bad selector: retries:")


async def test_worker_without_dlq_is_shown_as_by_design(exporter: Exporter) -> None:
    worker = new_worker()
    worker.processed.labels("cache-worker", "cache").inc(10)
    serve(exporter, worker)
    registry = make_registry(prometheus(exporter.url, worker="cache-worker"), dlq=False)
    assert [s.id for s in build_plan(registry)] == ["allocation-worker.retries"]
    spec = retries_spec(registry)
    result = one_shot(spec, await scrape(spec))
    assert result.details["dlq"] == "none (by design)"
    assert result.summary.endswith("up to 5 attempts; no DLQ (by design)")


# --- selectors --------------------------------------------------------------------------


def test_selector_parsing_and_matching() -> None:
    selector = Selector.parse(r'jobs_total{queue=~"alloc.*", env!="test", note="a\"b"}')
    assert selector.name == "jobs_total"
    assert [(m.label, m.op) for m in selector.matchers] == [
        ("queue", "=~"), ("env", "!="), ("note", "=")
    ]  # fmt: skip
    assert selector.matchers[2].value == 'a"b'
    assert selector.matchers[0].matches({"queue": "alloc-bulk"})
    assert not selector.matchers[1].matches({"env": "test"})
    assert Selector.parse("up").matchers == ()
    for bad in ("", '{a="b"}', 'x{a="b"', "x{a=b}", 'x{a="b"} junk', 'x{a=~"("}'):
        with pytest.raises(ValueError):
            Selector.parse(bad)


# --- redis-hash and http-json -----------------------------------------------------------


async def test_redis_hash_counters(redis_server: RedisServer) -> None:
    key = f"worker:stats:{uuid.uuid4().hex[:8]}"
    async with Redis.from_url(redis_server.url) as client:
        await client.hset(key, mapping={"retries": 5, "processed": 100, "failed": 1})
    metrics = {"source": "redis-hash", "datastore": "redis", "key": key,
               "retries": "retries", "processed": "processed", "failures": "failed"}  # fmt: skip
    datastores = {"redis": {"kind": "redis", "url": redis_server.url}}
    spec = retries_spec(make_registry(metrics, datastores=datastores))
    result = one_shot(spec, await scrape(spec))
    assert result.details["retry_ratio_pct"] == pytest.approx(5)
    assert result.details["failures_total"] == 1
    assert result.status is Status.WARN  # 5% is the default warn threshold
    assert result.target.endswith(f"HMGET {key}")

    gone = {**metrics, "key": f"{key}:absent"}
    result = one_shot(spec, await scrape(retries_spec(make_registry(gone, datastores=datastores))))
    assert result.status is Status.UNKNOWN
    assert result.summary == f"fields of hash {key}:absent not found: retries, failed, processed"


async def test_http_json_counters_and_garbage(exporter: Exporter) -> None:
    document = {"stats": {"retries": 2, "processed": 400, "failed": "0"}}
    exporter.current = lambda: ("application/json", json.dumps(document).encode())
    metrics = {"source": "http-json", "url": exporter.url, "retries": "stats.retries",
               "processed": "stats.processed", "failures": "stats.failed"}  # fmt: skip
    spec = retries_spec(make_registry(metrics))
    result = one_shot(spec, await scrape(spec))
    assert result.details["retry_ratio_pct"] == pytest.approx(0.5)
    assert result.details["failures_total"] == 0
    assert result.status is Status.OK

    document["stats"]["retries"] = "many"
    result = one_shot(spec, await scrape(spec))
    assert result.status is Status.UNKNOWN
    assert result.summary == "stats.retries is 'many', not a number"

    exporter.current = lambda: ("application/json", b'{"other": 1}')
    result = one_shot(spec, await scrape(spec))
    assert result.status is Status.UNKNOWN
    assert result.summary.startswith("JSON paths not found: stats.retries")


def test_a_metric_named_created_is_a_figure_not_a_timestamp() -> None:
    from opsdash.probes.promtext import parse

    exposition = parse("# TYPE jobs_created gauge\njobs_created 7\n")

    assert exposition.select(Selector.parse("jobs_created")) == 7.0


# --- hostile pages (issue 11, class 8) ----------------------------------------------------


@pytest.fixture
def page() -> Iterator[Callable[[str], str]]:
    """A loopback ``/metrics`` answering a page the test writes by hand."""
    platform = Platform()
    text: dict[str, bytes] = {}

    def serve_text(body: str) -> str:
        text["body"] = body.encode()
        if "url" not in text:
            route = lambda: (200, "text/plain; version=0.0.4", text["body"])  # noqa: E731
            text["url"] = platform.add({"/metrics": route}).encode()
        return text["url"].decode() + "/metrics"

    yield serve_text
    platform.close()


PAGE = """# TYPE worker_retries_total counter
worker_retries_total{{worker="allocation-worker",queue="a"}} {a}
{extra}# TYPE worker_processed_total counter
worker_processed_total{{worker="allocation-worker"}} 1000
# TYPE worker_failures_total counter
worker_failures_total{{worker="allocation-worker"}} 0
"""


async def test_a_series_written_twice_is_unknown_and_says_why(page: Any) -> None:
    duplicated = 'worker_retries_total{worker="allocation-worker",queue="a"} 400\n'
    spec = retries_spec(make_registry(prometheus(page(PAGE.format(a=400, extra=duplicated)))))
    result = await scrape(spec)
    assert result.status is Status.UNKNOWN
    assert "appears more than once" in result.summary
    assert 'worker_retries_total{queue="a",worker="allocation-worker"}' in result.summary


async def test_a_negative_counter_is_unknown_and_says_why(page: Any) -> None:
    spec = retries_spec(make_registry(prometheus(page(PAGE.format(a=-5, extra="")))))
    result = await scrape(spec)
    assert result.status is Status.UNKNOWN
    assert result.summary == (
        'a counter cannot be negative: worker_retries_total{worker="allocation-worker"} is -5'
    )


async def test_a_vanished_series_is_not_read_as_a_reset(page: Any) -> None:
    queue_b = 'worker_retries_total{worker="allocation-worker",queue="b"} 9899940\n'
    url = page(PAGE.format(a=60, extra=queue_b))
    spec = retries_spec(make_registry(prometheus(url, retry_ratio={"warn": "50%"})))
    assert spec.derive is not None
    first = await scrape(spec)
    page(PAGE.format(a=100, extra=""))  # queue b's series is gone; queue a counted 40 more
    second = await scrape(spec)
    result = spec.derive(second, [earlier(first, 60)])
    assert result.details["retries_per_min"] == pytest.approx(40, rel=0.05)
    assert result.summary.startswith("retries 40/min")
