"""HTTP probes over real loopback sockets, against well- and ill-behaved servers.

Every probe runs the whole path a user's check takes: a Registry, ``build_plan``, and
``run_probe`` (deadline, error mapping, redaction) over the production transport.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trustme

from opsdash.harness import run_probe
from opsdash.httpclient import HttpClient
from opsdash.plan import build_plan
from opsdash.registry.model import Registry
from opsdash.resources import Resources
from opsdash.results import CheckResult, ErrorType
from opsdash.status import Status
from opsdash.transport import LeanTransport, make_ssl_context
from tests import adversarial
from tests.servers import refused_port


def _spec(url: str, *, timeout: str = "3s", **service: Any) -> Any:
    registry = Registry.from_data(
        {
            "version": 1,
            "platform": "test",
            "defaults": {"timeout": timeout, "latency": {"warn": "10s", "crit": "20s"}},
            "services": {"svc": {"url": url, "health": "/health", "ready": False, **service}},
        }
    )
    (spec,) = build_plan(registry)
    return spec


async def check(url: str, resources: Resources | None = None, **options: Any) -> CheckResult:
    """Run ``svc.health`` against ``url`` the way ``opsdash check`` does."""
    spec = _spec(url, **options)
    if resources is not None:
        return await run_probe(spec, resources)
    async with Resources() as own:
        return await run_probe(spec, own)


# --- answers to judge ---------------------------------------------------------------------


async def test_ok_answer_over_a_real_socket() -> None:
    body = json.dumps({"status": "UP", "components": {"db": {"status": "UP"}}}).encode()
    handler = adversarial.fixed(200, "OK", body, {"Content-Type": "application/json"})
    async with adversarial.serve(handler) as server:
        result = await check(server.url)
    assert result.status is Status.OK
    assert result.summary == "200 OK"
    assert result.details["format"] == "spring-boot"
    assert result.details["dependencies"] == {"db": "ok"}
    assert result.error is None
    assert server.requests[0].startswith(b"GET /health HTTP/1.1\r\n")


async def test_readiness_503_names_the_failing_dependency() -> None:
    body = json.dumps(
        {
            "status": "error",
            "info": {"database": {"status": "up"}},
            "error": {"redis": {"status": "down", "message": "Could not connect"}},
            "details": {
                "database": {"status": "up"},
                "redis": {"status": "down", "message": "Could not connect"},
            },
        }
    ).encode()
    handler = adversarial.fixed(503, "Service Unavailable", body)
    async with adversarial.serve(handler) as server:
        result = await check(server.url)
    assert result.status is Status.CRIT
    assert result.summary == "503 Service Unavailable: redis down"
    assert result.details["dependencies"] == {"database": "ok", "redis": "crit"}
    assert result.error is None  # an answer was judged: not a connection error


async def test_invalid_json_with_200_is_ok_and_the_body_kept_as_text() -> None:
    handler = adversarial.fixed(
        200, "OK", b'{"status": "ok", oops', {"Content-Type": "application/json"}
    )
    async with adversarial.serve(handler) as server:
        result = await check(server.url)
    assert result.status is Status.OK
    assert result.summary == "200 OK"
    assert result.details["body"] == '{"status": "ok", oops'
    assert "format" not in result.details


async def test_html_500_page_is_crit_with_its_reason() -> None:
    page = (
        b"<html><head><title>Oops</title></head><body>" + b"<p>stack</p>" * 200 + b"</body></html>"
    )
    handler = adversarial.fixed(500, "Internal Server Error", page, {"Content-Type": "text/html"})
    async with adversarial.serve(handler) as server:
        result = await check(server.url)
    assert result.status is Status.CRIT
    assert result.summary == "500 Internal Server Error"
    assert result.details["body"].startswith("<html><head><title>Oops</title>")
    assert len(result.details["body"]) <= 300


async def test_keep_alive_connection_is_reused_between_probes() -> None:
    async with adversarial.serve(adversarial.fixed(200, "OK", b"ok")) as server, Resources() as res:
        first = await check(server.url, res)
        second = await check(server.url, res)
    assert (first.status, second.status) == (Status.OK, Status.OK)
    assert server.connections == 1
    assert len(server.requests) == 2


# --- servers that misbehave -----------------------------------------------------------------


async def test_server_that_never_answers_costs_exactly_the_deadline() -> None:
    async with adversarial.silent() as server:
        result = await check(server.url, timeout="500ms")
        # The connection is dropped, not leaked: the server sees the client go.
        await adversarial.wait_for(server.closed.is_set)
    assert result.status is Status.CRIT
    assert result.error is not None and result.error.type is ErrorType.TIMEOUT
    assert result.summary == "no answer within 500ms"
    assert result.latency_ms is not None and 490 <= result.latency_ms < 800


async def test_dripping_server_is_cut_at_the_deadline() -> None:
    async with adversarial.drip() as server:
        result = await check(server.url, timeout="1500ms")
        await adversarial.wait_for(server.closed.is_set)
    assert result.error is not None and result.error.type is ErrorType.TIMEOUT
    assert result.summary == "no answer within 1.5s"
    assert result.latency_ms is not None and 1490 <= result.latency_ms < 1900
    assert 1 <= server.bytes_sent <= 5  # a write or two after the hang-up, not the ~170 bytes


async def test_gigabyte_body_is_cut_at_max_body_quickly() -> None:
    async with adversarial.gigabyte() as server:
        start = time.perf_counter()
        result = await check(server.url, timeout="10s")
        elapsed = time.perf_counter() - start
        await adversarial.wait_for(server.closed.is_set)
    assert result.status is Status.OK
    assert result.details["body_truncated"] is True
    assert result.details["body"].startswith("xxxx")
    assert elapsed < 2.0
    # The client read a bounded prefix and hung up: the rest was never sent.
    assert server.bytes_sent < 64 * 1024 * 1024


async def test_redirect_loop_is_reported_as_such() -> None:
    async with adversarial.redirect_loop() as server:
        result = await check(server.url)
    assert result.status is Status.CRIT
    assert result.error is not None and result.error.type is ErrorType.PROTOCOL
    assert result.summary.startswith("redirect loop")
    assert len(server.requests) <= 6


async def test_redirect_is_followed_to_the_answer() -> None:
    async with adversarial.serve(adversarial.fixed(200, "OK", b"ok")) as target:
        moved = adversarial.fixed(301, "Moved Permanently", b"", {"Location": target.url + "/x"})
        async with adversarial.serve(moved) as server:
            result = await check(server.url)
    assert result.status is Status.OK
    assert result.details["redirects"] == 1
    assert target.requests[0].startswith(b"GET /x HTTP/1.1")


async def test_reset_connection() -> None:
    async with adversarial.reset() as server:
        result = await check(server.url)
    assert result.status is Status.CRIT
    assert result.error is not None and result.error.type is ErrorType.RESET
    assert result.summary == "connection reset by peer"


async def test_closed_port_is_refused() -> None:
    result = await check(f"http://127.0.0.1:{refused_port()}")
    assert result.status is Status.CRIT
    assert result.error is not None and result.error.type is ErrorType.REFUSED
    assert result.summary == "connection refused"
    assert result.latency_ms is not None and result.latency_ms < 500


async def test_header_secret_never_reaches_the_result_even_when_echoed() -> None:
    async with adversarial.serve(adversarial.echo()) as server:
        result = await check(server.url, headers={"Authorization": "Bearer s3cret-t0ken"})
    # The server did get the header...
    assert b"Bearer s3cret-t0ken" in server.requests[0]
    # ...and nothing the user sees carries it.
    assert result.status is Status.CRIT
    assert result.summary == "401 Unauthorized"
    assert "s3cret-t0ken" not in json.dumps(result.details)
    assert "s3cret-t0ken" not in result.summary
    assert "Authorization: ***" in result.details["body"]


# --- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA(organization_name="opsdash test CA")


def _server_context(ca: trustme.CA, *names: str, **validity: dt.datetime) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names, common_name=names[0], **validity).configure_cert(context)
    return context


@pytest.fixture
async def trusting(ca: trustme.CA) -> AsyncIterator[Resources]:
    """Resources whose HTTP client trusts the test CA."""
    client_context = make_ssl_context(True)
    ca.configure_trust(client_context)
    async with Resources(http_transport=LeanTransport(verify=client_context)) as resources:
        yield resources


def _tls(context: ssl.SSLContext) -> Any:
    return adversarial.serve(adversarial.fixed(200, "OK", b'{"status":"pass"}'), tls=context)


async def test_untrusted_certificate_names_reason_issuer_and_subject(ca: trustme.CA) -> None:
    async with _tls(_server_context(ca, "localhost", "127.0.0.1")) as server:
        result = await check(server.url)
    assert result.status is Status.CRIT
    assert result.error is not None and result.error.type is ErrorType.TLS
    assert result.summary.startswith("TLS error: unknown issuer")
    assert "(issuer " in result.summary and "O=opsdash test CA;" in result.summary
    assert "subject CN=localhost" in result.summary
    assert result.details["cert_subject"].startswith("CN=localhost")


async def test_tls_verify_false_accepts_it_and_still_reports_expiry(ca: trustme.CA) -> None:
    async with _tls(_server_context(ca, "localhost", "127.0.0.1")) as server:
        result = await check(server.url, tls_verify=False)
    assert result.status is Status.OK
    assert result.details["cert_days_left"] > 14
    assert "opsdash test CA" in result.details["cert_issuer"]


async def test_trusted_certificate_is_ok_with_days_left(
    ca: trustme.CA, trusting: Resources
) -> None:
    async with _tls(_server_context(ca, "localhost", "127.0.0.1")) as server:
        result = await check(server.url, trusting)
    assert result.status is Status.OK, result.summary
    assert result.summary == "200 OK"
    assert result.details["format"] == "ietf"
    assert result.details["cert_days_left"] > 14
    assert result.details["cert_subject"].startswith("CN=localhost")


@pytest.mark.parametrize(
    ("days", "status"), [(10, Status.WARN), (2, Status.CRIT)], ids=["10d-warn", "2d-crit"]
)
async def test_certificate_close_to_expiry(
    ca: trustme.CA, trusting: Resources, days: int, status: Status
) -> None:
    now = dt.datetime.now(dt.UTC)
    context = _server_context(
        ca,
        "localhost",
        "127.0.0.1",
        not_before=now - dt.timedelta(days=30),
        not_after=now + dt.timedelta(days=days),
    )
    async with _tls(context) as server:
        result = await check(server.url, trusting)
    assert result.status is status
    assert result.summary == f"200 OK; certificate expires in {days - 0.1:.1f} days" or (
        result.summary == f"200 OK; certificate expires in {days:.1f} days"
    )
    assert days - 1 < result.details["cert_days_left"] <= days


async def test_expired_certificate(ca: trustme.CA, trusting: Resources) -> None:
    now = dt.datetime.now(dt.UTC)
    context = _server_context(
        ca,
        "localhost",
        "127.0.0.1",
        not_before=now - dt.timedelta(days=30),
        not_after=now - dt.timedelta(days=1),
    )
    async with _tls(context) as server:
        result = await check(server.url, trusting)
    assert result.error is not None and result.error.type is ErrorType.TLS
    assert result.summary.startswith("TLS error: certificate expired")
    assert result.details["cert_days_left"] < 0


async def test_hostname_mismatch(ca: trustme.CA, trusting: Resources) -> None:
    async with _tls(_server_context(ca, "other.example")) as server:
        result = await check(server.url, trusting)
    assert result.error is not None and result.error.type is ErrorType.TLS
    assert result.summary.startswith("TLS error: IP address mismatch") or result.summary.startswith(
        "TLS error: hostname mismatch"
    )
    assert "subject CN=other.example" in result.summary


async def _bad_request(reader: Any, writer: Any, server: adversarial.Server) -> None:
    await reader.read(1024)  # a TLS ClientHello, to a plain HTTP server
    writer.write(adversarial.response_bytes(400, "Bad Request", b"plain HTTP here"))
    await writer.drain()


async def test_plain_http_spoken_to_a_tls_port_is_a_tls_error() -> None:
    async with adversarial.serve(_bad_request) as server:
        result = await check(server.url.replace("http://", "https://"))
    assert result.error is not None and result.error.type is ErrorType.TLS
    assert result.summary.startswith("TLS error: ")


def test_transport_is_the_production_one() -> None:
    client = Resources().http()
    assert isinstance(client, HttpClient)
    assert isinstance(client.wire, LeanTransport)
