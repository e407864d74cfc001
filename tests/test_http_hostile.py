"""Every HTTP reader against hostile loopback servers (issue 11, classes 1, 2 and 7).

One case per class, run through every consumer of the one HTTP client (health probe, DLQ
``http-json``, worker metrics ``http-json``, the RabbitMQ management API, webhook
notifications): a gzip bomb costs at most the cap of decoded bytes, a redirect's endless body
is never read, an endless ``100 Continue`` stream fails at once without delaying the round,
a large legal metrics page is parsed off the event loop, and credentials in a URL are sent as
Basic auth and shown to nobody.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import time
import tracemalloc
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from opsdash.alerting.notify import DeliveryError, deliver, make_client
from opsdash.engine import run_round
from opsdash.harness import run_probe
from opsdash.plan import CheckSpec, build_plan
from opsdash.registry.model import Registry, WebhookTarget
from opsdash.resources import Resources
from opsdash.results import CheckResult, ErrorType
from opsdash.status import Status
from tests import adversarial

GOOD = b'{"status":"ok","d":3,"messages":3,"r":1,"p":10}'
BOMB_SIZE = 64 * 1024 * 1024
"""Decoded bytes of the gzip bomb (compressed: about 64 KiB)."""


@functools.cache
def bomb() -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)  # gzip
    zeros = b" " * (1024 * 1024)
    parts = [compressor.compress(b'{"status":"ok","pad":"')]
    parts += [compressor.compress(zeros) for _ in range(BOMB_SIZE // len(zeros))]
    parts.append(compressor.flush())
    return b"".join(parts)


# --- the readers, each run the way its command runs it -------------------------------------


def _registry(**sections: Any) -> Registry:
    return Registry.from_data({"version": 1, "platform": "test", **sections})


def _spec(registry: Registry, check_id: str) -> CheckSpec:
    return next(spec for spec in build_plan(registry) if spec.id == check_id)


def _health(url: str) -> CheckSpec:
    service = {"url": url, "health": "/start", "ready": False}
    return _spec(_registry(services={"svc": service}), "svc.health")


def _dlq(url: str) -> CheckSpec:
    dlq = {"source": "http-json", "url": f"{url}/start", "path": "d"}
    return _spec(_registry(workers={"w": {"dlq": dlq}}), "w.dlq")


def _rabbitmq(url: str) -> CheckSpec:
    dlq = {"source": "rabbitmq", "management_url": f"{url}/start", "queue": "q"}
    return _spec(_registry(workers={"w": {"dlq": dlq}}), "w.dlq")


def _metrics(url: str) -> CheckSpec:
    metrics = {"source": "http-json", "url": f"{url}/start", "retries": "r", "processed": "p"}
    worker = {"max_attempts": 5, "metrics": metrics}
    return _spec(_registry(workers={"w": worker}), "w.retries")


SPECS: dict[str, Callable[[str], CheckSpec]] = {
    "health": _health,
    "dlq-http-json": _dlq,
    "rabbitmq": _rabbitmq,
    "metrics-http-json": _metrics,
}


async def _run(spec: CheckSpec) -> CheckResult:
    async with Resources() as resources:
        result = await run_probe(spec, resources)
    return spec.derive(result, []) if spec.derive is not None else result


async def _notify(url: str) -> str:
    """Deliver one notification to ``url``: ``delivered`` or the delivery error."""
    target = WebhookTarget(type="webhook", url=f"{url}/start", retries=0, timeout=3.0)
    async with make_client() as client:
        try:
            await deliver(client, target, {"kind": "firing", "summary": "x"})
        except DeliveryError as exc:
            return str(exc)
    return "delivered"


READERS = [*SPECS, "notification"]


async def _read(reader: str, url: str) -> Any:
    if reader == "notification":
        return await _notify(url)
    return await _run(SPECS[reader](url))


def _good_answer(reader: str, outcome: Any) -> bool:
    """The reader got to the good answer (the one served at ``/final``)."""
    if reader == "notification":
        # Deliveries follow no redirect; one attempt per call (later ones are later runs').
        return outcome == "answered 302 Found"
    assert isinstance(outcome, CheckResult)
    # Judged from the good answer's figures (3 dead letters; 1 retry in 10), not an error.
    return outcome.error is None and outcome.status is not Status.UNKNOWN


# --- hostile servers -------------------------------------------------------------------


async def _bomb_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Any) -> None:
    while True:
        head = await adversarial.read_head(reader)
        s.requests.append(head)
        body = bomb()
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        writer.write(adversarial.response_bytes(200, "OK", body, headers))
        s.bytes_sent += len(body)
        await writer.drain()


async def _endless_redirect(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Any
) -> None:
    while True:
        head = await adversarial.read_head(reader)
        s.requests.append(head)
        if b" /final" in head.split(b"\r\n", 1)[0]:
            writer.write(adversarial.response_bytes(200, "OK", GOOD))
            await writer.drain()
            continue
        writer.write(
            b"HTTP/1.1 302 Found\r\nLocation: /final\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
        while True:  # until the client hangs up
            writer.write(chunk)
            s.bytes_sent += len(chunk)
            await writer.drain()


async def _endless_continue(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Any
) -> None:
    s.requests.append(await adversarial.read_head(reader))
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" * 256
    while True:
        writer.write(interim)
        s.bytes_sent += len(interim)
        await writer.drain()


# --- class 1: one bounded reader ------------------------------------------------------------


@pytest.mark.parametrize("reader", READERS)
async def test_a_gzip_bomb_costs_the_cap_not_its_inflated_size(reader: str) -> None:
    bomb()  # built before measuring
    async with adversarial.serve(_bomb_server) as server:
        tracemalloc.start()
        try:
            outcome = await _read(reader, server.url)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    # The caps are 64 KiB (and 4 MiB for metrics pages); inflating the bomb is 64 MiB.
    assert peak < 16 * 1024 * 1024, f"{peak / 2**20:.0f} MiB held while reading"
    if reader == "health":
        assert outcome.status is Status.OK and outcome.details["body_truncated"] is True
    elif reader == "notification":
        assert outcome == "delivered"
    else:
        assert outcome.status is Status.UNKNOWN
        assert "larger than" in outcome.summary


@pytest.mark.parametrize("reader", READERS)
async def test_a_redirect_s_endless_body_is_never_read(reader: str) -> None:
    async with adversarial.serve(_endless_redirect) as server:
        outcome = await _read(reader, server.url)
        await adversarial.wait_for(server.closed.is_set)
    assert _good_answer(reader, outcome), outcome
    # The client hung up on the redirect at once: a few socket buffers, not gigabytes.
    assert server.bytes_sent < 16 * 1024 * 1024


# --- class 2: nothing starves the event loop ------------------------------------------------


async def test_an_endless_100_continue_fails_at_once_and_delays_no_other_probe() -> None:
    async with (
        adversarial.serve(_endless_continue) as hostile,
        adversarial.serve(adversarial.fixed(200, "OK", GOOD)) as healthy,
    ):
        registry = _registry(
            defaults={"timeout": "5s", "latency": {"warn": "10s", "crit": "20s"}},
            services={
                "hostile": {"url": hostile.url, "ready": False},
                **{f"ok{i}": {"url": healthy.url, "ready": False} for i in range(4)},
            },
        )
        async with Resources() as resources:
            round_ = await run_round(build_plan(registry), resources, concurrency=8)
    results = {result.component: result for result in round_.results}
    bad = results.pop("hostile")
    assert bad.status is Status.CRIT
    assert bad.error is not None and bad.error.type is ErrorType.PROTOCOL
    assert "interim" in bad.summary
    # It failed on the spot rather than at the 5 s deadline, and delayed nobody.
    assert bad.latency_ms is not None and bad.latency_ms < 2500
    assert all(r.status is Status.OK for r in results.values())
    assert all(r.latency_ms is not None and r.latency_ms < 2500 for r in results.values())


def _big_metrics_page() -> bytes:
    """A legal 4 MiB Prometheus page: the worker's three counters among many other series."""
    lines = [
        "# TYPE worker_retries_total counter",
        'worker_retries_total{worker="w"} 5',
        'worker_failures_total{worker="w"} 1',
        'worker_processed_total{worker="w"} 500',
    ]
    row = 0
    size = sum(len(line) + 1 for line in lines)
    while size < 4 * 1024 * 1024 - 200:
        line = f'http_requests_total{{path="/api/v1/item/{row}",code="200"}} {row}'
        lines.append(line)
        size += len(line) + 1
        row += 1
    return ("\n".join(lines) + "\n").encode()


async def test_a_large_metrics_page_is_parsed_off_the_event_loop() -> None:
    page = _big_metrics_page()
    handler = adversarial.fixed(200, "OK", page, {"Content-Type": "text/plain; version=0.0.4"})
    async with adversarial.serve(handler) as server:
        metrics = {
            "source": "prometheus",
            "url": server.url,
            "retries": 'worker_retries_total{worker="w"}',
            "failures": 'worker_failures_total{worker="w"}',
            "processed": 'worker_processed_total{worker="w"}',
        }
        spec = _spec(_registry(workers={"w": {"max_attempts": 5, "metrics": metrics}}), "w.retries")
        gaps: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            # How late the loop runs a 10 ms timer while the page is read and parsed.
            while not done.is_set():
                before = time.perf_counter()
                await asyncio.sleep(0.01)
                gaps.append(time.perf_counter() - before - 0.01)

        tick = asyncio.create_task(ticker())
        try:
            result = await _run(spec)
        finally:
            done.set()
            await tick
    # 5 retries in 500 processed (1%): the worker's figures were found among the 60,000 series.
    assert result.status is Status.OK, result.summary
    # In one piece on the loop, this parse held it for seconds (1.8 s measured).
    assert max(gaps) < 0.5, f"the loop stalled {max(gaps):.2f} s"


# --- class 7: credentials in a service URL --------------------------------------------------


async def test_credentials_in_a_service_url_are_sent_as_basic_auth_and_never_shown() -> None:
    async with adversarial.serve(adversarial.echo(503, "Service Unavailable")) as server:
        url = server.url.replace("http://", "http://ops:s3cr3t-pw@")
        result = await _run(_health(url))
    (head,) = server.requests
    expected = base64.b64encode(b"ops:s3cr3t-pw").decode()
    assert f"Authorization: Basic {expected}".encode() in head
    assert head.startswith(b"GET /start HTTP/1.1\r\n")  # the request line carries none
    # The server echoed the request: neither the password nor its Basic form reaches output.
    shown = json.dumps(
        {"summary": result.summary, "target": result.target, "details": result.details}
    )
    assert result.status is Status.CRIT
    assert "s3cr3t-pw" not in shown and expected not in shown
    assert "Authorization: Basic ***" in result.details["body"]


def test_cutting_a_large_page_to_its_selectors_lines_selects_the_same_figures() -> None:
    from opsdash.probes.promtext import START_TIME_SERIES, Selector, parse
    from opsdash.probes.worker_metrics import _lines_of

    page = _big_metrics_page() + b"process_start_time_seconds 1.7e9\n"
    selectors = [
        Selector.parse('worker_retries_total{worker="w"}'),
        Selector.parse("worker_processed"),
        Selector.parse('http_requests_total{path="/api/v1/item/7"}'),
    ]
    names = tuple(sorted({START_TIME_SERIES, *(n for s in selectors for n in s.names())}))
    whole, cut = parse(page.decode()), parse(_lines_of(page, names))
    assert [cut.select(s) for s in selectors] == [whole.select(s) for s in selectors]
    assert [cut.select(s) for s in selectors] == [5.0, 500.0, 7.0]
    assert cut.value(START_TIME_SERIES) == whole.value(START_TIME_SERIES) == 1.7e9


def test_a_page_s_cut_keeps_its_selectors_lines_and_comments_in_page_order() -> None:
    from opsdash.probes.worker_metrics import _lines_of

    page = (
        b"jobs_total 1\n"  # the very first line
        b"# TYPE other gauge\n"
        b"other 2\n"
        b"jobs_total_extra 3\n"  # starts with a wanted name: kept, the parser sorts it out
        b"#no space comment\n"
        b"  jobs_total 9\n"  # not at the line's start
        b"caf\xc3\xa9 4\n"
        b"jobs 5\r\n"
        b"jobs_total 6"  # no final line break
    )
    assert _lines_of(page, ("jobs", "jobs_total")) == (
        "jobs_total 1\n# TYPE other gauge\njobs_total_extra 3\n#no space comment\n"
        "jobs 5\r\njobs_total 6\n"
    )
    assert _lines_of(page, ("café",)) == "# TYPE other gauge\n#no space comment\ncafé 4\n"
    assert _lines_of(b"", ("jobs",)) == "\n"
