"""The harness: deadline, timing, error mapping, redaction and latency thresholds."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time

import pytest

from opsdash.figures import HttpFigures, SqlValueFigures
from opsdash.harness import run_probe
from opsdash.registry.model import LatencyThresholds
from opsdash.resources import Resources
from opsdash.results import ErrorType, Observation, ProbeFailure
from opsdash.status import Status
from tests.helpers import spec


async def _ok(_: Resources) -> Observation:
    return Observation(Status.OK, "fine", SqlValueFigures(42.0))


async def test_an_answer_becomes_a_timed_result() -> None:
    async with Resources() as resources:
        result = await run_probe(spec("api.health", _ok), resources)
    assert (result.status, result.summary, result.error) == (Status.OK, "fine", None)
    assert result.figures == SqlValueFigures(42.0)
    assert result.latency_ms is not None and result.latency_ms >= 0


async def test_a_hanging_probe_costs_its_deadline_and_no_more() -> None:
    async def hang(_: Resources) -> Observation:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async with Resources() as resources:
        start = time.perf_counter()
        result = await run_probe(spec("api.ready", hang, timeout=0.2), resources)
        elapsed = time.perf_counter() - start
    assert result.status is Status.CRIT
    assert result.error is not None and result.error.type is ErrorType.TIMEOUT
    assert result.summary == "no answer within 200ms"
    assert 0.2 <= elapsed < 0.5
    assert result.latency_ms is not None and result.latency_ms >= 200


@pytest.mark.parametrize(
    ("exception", "error_type", "summary"),
    [
        (
            ConnectionRefusedError(111, "Connection refused"),
            ErrorType.REFUSED,
            "connection refused",
        ),
        (socket.gaierror(-2, "Name or service not known"), ErrorType.DNS, "DNS lookup failed"),
        (ConnectionResetError(104, "reset"), ErrorType.RESET, "connection reset by peer"),
        (RuntimeError("boom"), ErrorType.INTERNAL, "RuntimeError: boom"),
    ],
)
async def test_exceptions_map_to_plain_errors(
    exception: Exception, error_type: ErrorType, summary: str
) -> None:
    async def fail(_: Resources) -> Observation:
        raise exception

    async with Resources() as resources:
        result = await run_probe(spec("api.health", fail), resources)
    assert result.status is Status.CRIT
    assert result.error is not None
    assert (result.error.type, result.summary) == (error_type, summary)


async def test_the_cause_chain_is_searched_for_the_telling_error() -> None:
    async def fail(_: Resources) -> Observation:
        try:
            raise ssl.SSLCertVerificationError(1, "certificate verify failed")
        except ssl.SSLError as exc:
            raise RuntimeError("transport failed") from exc

    async with Resources() as resources:
        result = await run_probe(spec("api.health", fail), resources)
    assert result.error is not None and result.error.type is ErrorType.TLS


async def test_a_config_failure_is_unknown_not_crit() -> None:
    async def misconfigured(_: Resources) -> Observation:
        raise ProbeFailure(ErrorType.CONFIG, "no such table", HttpFigures(tls_error="x"))

    async with Resources() as resources:
        result = await run_probe(spec("db.custom", misconfigured), resources)
    assert result.status is Status.UNKNOWN
    assert result.figures == HttpFigures(tls_error="x")


async def test_secrets_never_reach_summary_error_or_details() -> None:
    async def leaky(_: Resources) -> Observation:
        raise ProbeFailure(
            ErrorType.AUTH,
            "password authentication failed for s3cr3t-pw",
            HttpFigures(tls_error="x:s3cr3t-pw"),
        )

    async def leaky_answer(_: Resources) -> Observation:
        figures = HttpFigures(dependency_messages={"db": "s3cr3t-pw"}, body="is s3cr3t-pw")
        return Observation(Status.WARN, "token s3cr3t-pw echoed", figures)

    async with Resources() as resources:
        failed = await run_probe(spec("db", leaky, secrets=("s3cr3t-pw",)), resources)
        answered = await run_probe(spec("db", leaky_answer, secrets=("s3cr3t-pw",)), resources)
    for result in (failed, answered):
        assert "s3cr3t-pw" not in repr(result)
    assert failed.summary == "password authentication failed for ***"
    assert answered.details == {"dependency_messages": {"db": "***"}, "body": "is ***"}
    assert failed.details == {"tls_error": "x:***"}


async def test_latency_thresholds_raise_the_status() -> None:
    async def slow(_: Resources) -> Observation:
        await asyncio.sleep(0.06)  # the thing measured, not synchronisation
        return Observation(Status.OK, "200 OK")

    async with Resources() as resources:
        warned = await run_probe(
            spec("api.health", slow, latency=LatencyThresholds(warn=0.05, crit=1.0)), resources
        )
        critical = await run_probe(
            spec("api.health", slow, latency=LatencyThresholds(warn=0.01, crit=0.05)), resources
        )
    assert warned.status is Status.WARN and warned.summary.startswith("200 OK; slow: ")
    assert critical.status is Status.CRIT
