"""The HTTP probe's verdicts, with respx standing in for the network (edge cases, every
status mapping, failures as httpx raises them). Loopback tests cover the real sockets."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from opsdash.harness import run_probe
from opsdash.plan import build_plan
from opsdash.registry.model import Registry
from opsdash.resources import Resources
from opsdash.results import CheckResult, ErrorType
from opsdash.status import Status
from tests.servers import refused_port

URL = "http://svc.test:8080"


async def probe(router: respx.MockRouter, *, url: str = URL, **service: Any) -> CheckResult:
    registry = Registry.from_data(
        {
            "version": 1,
            "platform": "test",
            "defaults": {"max_body": "1KiB"},
            "services": {"svc": {"url": url, "health": "/health", "ready": False, **service}},
        }
    )
    (spec,) = build_plan(registry)
    async with Resources(http_transport=httpx.MockTransport(router.async_handler)) as resources:
        return await run_probe(spec, resources)


def answer(response: httpx.Response) -> respx.MockRouter:
    router = respx.MockRouter(assert_all_called=False)
    router.get(URL + "/health").mock(return_value=response)
    return router


def failing(make: Callable[[], BaseException], url: str = URL) -> respx.MockRouter:
    def raise_it(request: httpx.Request) -> httpx.Response:
        raise make()

    router = respx.MockRouter(assert_all_called=False)
    router.get(url + "/health").mock(side_effect=raise_it)
    return router


@pytest.mark.parametrize(
    ("code", "status", "summary"),
    [
        (200, Status.OK, "200 OK"),
        (204, Status.OK, "204 No Content"),
        (301, Status.CRIT, "301 Moved Permanently"),  # no Location: nothing to follow
        (404, Status.CRIT, "404 Not Found"),
        (429, Status.CRIT, "429 Too Many Requests"),
        (500, Status.CRIT, "500 Internal Server Error"),
        (503, Status.CRIT, "503 Service Unavailable"),
    ],
)
async def test_status_code_mapping(code: int, status: Status, summary: str) -> None:
    result = await probe(answer(httpx.Response(code)))
    assert (result.status, result.summary) == (status, summary)
    assert result.details["http_status"] == code
    assert result.error is None


@pytest.mark.parametrize(
    ("code", "body", "status", "summary"),
    [
        (200, {"status": "UP"}, Status.OK, "200 OK"),
        (200, {"status": "UNKNOWN"}, Status.OK, "200 OK"),
        (
            200,
            {"status": "degraded", "checks": {"cache": "warn", "db": "ok"}},
            Status.WARN,
            "200 OK: cache degraded",
        ),
        (200, {"status": "fail"}, Status.CRIT, "200 OK: body says down"),
        (
            503,
            {"status": "error", "checks": {"redis": "down", "postgres": "ok"}},
            Status.CRIT,
            "503 Service Unavailable: redis down",
        ),
        (
            503,
            {
                "status": "DOWN",
                "components": {
                    "a": {"status": "DOWN"},
                    "b": {"status": "DOWN"},
                    "c": {"status": "DOWN"},
                    "d": {"status": "OUT_OF_SERVICE"},
                    "e": {"status": "UP"},
                },
            },
            Status.CRIT,
            "503 Service Unavailable: a down, b down, c down, and 1 more",
        ),
    ],
)
async def test_body_verdicts(code: int, body: object, status: Status, summary: str) -> None:
    result = await probe(answer(httpx.Response(code, json=body)))
    assert (result.status, result.summary) == (status, summary)


async def test_dependencies_and_messages_in_details() -> None:
    body = {
        "status": "error",
        "info": {"database": {"status": "up"}},
        "error": {"redis": {"status": "down", "message": "Could not connect"}},
        "details": {
            "database": {"status": "up"},
            "redis": {"status": "down", "message": "Could not connect"},
        },
    }
    result = await probe(answer(httpx.Response(503, json=body)))
    assert result.details["format"] == "nestjs-terminus"
    assert result.details["dependencies"] == {"database": "ok", "redis": "crit"}
    assert result.details["dependency_messages"] == {"redis": "Could not connect"}


async def test_text_body_degraded_is_warn() -> None:
    result = await probe(answer(httpx.Response(200, text="Degraded")))
    assert (result.status, result.summary) == (Status.WARN, "200 OK: body says degraded")
    assert result.details["format"] == "aspnet"


async def test_body_is_capped_at_max_body() -> None:
    result = await probe(answer(httpx.Response(200, content=b"a" * 10_000)))
    assert result.status is Status.OK
    assert result.details["body_truncated"] is True
    assert len(result.details["body"]) <= 300


async def test_unsolicited_gzip_is_inflated_within_the_cap() -> None:
    import gzip

    bomb = gzip.compress(b'{"status":"down"}' + b" " * 5_000_000)
    response = httpx.Response(200, content=bomb, headers={"Content-Encoding": "gzip"})
    result = await probe(answer(response))
    assert result.details["body_truncated"] is True


async def test_service_headers_are_sent() -> None:
    router = respx.MockRouter(assert_all_called=True)
    route = router.get(URL + "/health", headers={"X-Api-Key": "k3y-value"}).mock(
        return_value=httpx.Response(200)
    )
    result = await probe(router, headers={"X-Api-Key": "k3y-value"})
    assert result.status is Status.OK
    assert route.calls.last.request.headers["accept-encoding"] == "identity"


async def test_redirects_are_followed_up_to_the_limit() -> None:
    router = respx.MockRouter(assert_all_called=False)
    for hop in range(10):
        router.get(f"{URL}/r{hop}").mock(
            return_value=httpx.Response(302, headers={"Location": f"/r{hop + 1}"})
        )
    router.get(URL + "/health").mock(return_value=httpx.Response(302, headers={"Location": "/r0"}))
    result = await probe(router)
    assert result.status is Status.CRIT
    assert result.error is not None and result.error.type is ErrorType.PROTOCOL
    assert result.summary == "too many redirects (more than 5)"


async def test_short_redirect_chain_is_fine() -> None:
    router = respx.MockRouter(assert_all_called=True)
    router.get(URL + "/health").mock(return_value=httpx.Response(307, headers={"Location": "/h2"}))
    router.get(URL + "/h2").mock(return_value=httpx.Response(200, json={"status": "ok"}))
    result = await probe(router)
    assert (result.status, result.details["redirects"]) == (Status.OK, 1)


def _connect_error(cause: BaseException) -> Callable[[], BaseException]:
    def make() -> BaseException:
        error = httpx.ConnectError(str(cause))
        error.__cause__ = cause
        return error

    return make


def _verify_error(code: int, message: str) -> BaseException:
    error = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    error.verify_code = code
    error.verify_message = message
    return error


@pytest.mark.parametrize(
    ("make", "error_type", "summary"),
    [
        (
            _connect_error(ConnectionRefusedError(111, "Connection refused")),
            ErrorType.REFUSED,
            "connection refused",
        ),
        (
            _connect_error(socket.gaierror(-2, "Name or service not known")),
            ErrorType.DNS,
            "DNS lookup failed",
        ),
        (lambda: httpx.ReadError("reset"), ErrorType.INTERNAL, None),
        (
            _connect_error(ConnectionResetError(104, "Connection reset by peer")),
            ErrorType.RESET,
            "connection reset by peer",
        ),
        (lambda: httpx.RemoteProtocolError("illegal status line"), ErrorType.PROTOCOL, None),
    ],
    ids=["refused", "dns", "read-error", "reset", "protocol"],
)
async def test_failures_each_have_their_own_summary(
    make: Callable[[], BaseException], error_type: ErrorType, summary: str | None
) -> None:
    result = await probe(failing(make))
    assert result.status is Status.CRIT
    assert result.error is not None
    if error_type is not ErrorType.INTERNAL:
        assert result.error.type is error_type
    if summary is not None:
        assert result.summary == summary


@pytest.mark.parametrize(
    ("code", "message", "reason"),
    [
        (10, "certificate has expired", "certificate expired"),
        (18, "self-signed certificate", "self-signed certificate"),
        (20, "unable to get local issuer certificate", "unknown issuer"),
        (62, "Hostname mismatch, certificate is not valid for 'svc.test'.", "hostname mismatch"),
    ],
)
async def test_tls_verification_reasons(code: int, message: str, reason: str) -> None:
    # Over respx no server exists to read the certificate from: the reason alone is given.
    url = f"https://127.0.0.1:{refused_port()}"
    result = await probe(failing(lambda: _verify_error(code, message), url), url=url)
    assert result.error is not None and result.error.type is ErrorType.TLS
    assert result.summary.startswith(f"TLS error: {reason}")
    assert result.details["tls_error"] == reason


async def test_secret_header_echoed_in_an_error_body_is_masked() -> None:
    router = respx.MockRouter(assert_all_called=False)

    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            403,
            json={
                "status": "error",
                "checks": {
                    "auth": {"status": "down", "message": f"bad {request.headers['authorization']}"}
                },
            },
        )

    router.get(URL + "/health").mock(side_effect=echo)
    result = await probe(router, headers={"Authorization": "Bearer s3cret"})
    text = json.dumps({"summary": result.summary, "details": result.details})
    assert result.status is Status.CRIT
    assert "s3cret" not in text
    assert result.details["dependency_messages"]["auth"] == "bad ***"


async def test_url_password_never_shown() -> None:
    router = respx.MockRouter(assert_all_called=False)
    router.get("http://svc.test:8080/health").mock(return_value=httpx.Response(500))
    result = await probe(router, url="http://admin:hunter22@svc.test:8080")
    assert "hunter22" not in result.target
    assert result.summary == "500 Internal Server Error"


async def test_a_body_that_was_not_ok_keeps_its_first_lines_as_the_excerpt() -> None:
    lines = [f"line {n}: \x1b[31mstack frame\x1b[0m" for n in range(30)]
    result = await probe(answer(httpx.Response(500, text="\n".join(lines))))
    excerpt = result.details["excerpt"]
    assert excerpt[0] == "line 0: \\x1b[31mstack frame\\x1b[0m"  # escaped, never obeyed
    assert len(excerpt) == 8
    recognised = {"status": "error", "error": {"redis": {"status": "down"}}}
    failed = await probe(answer(httpx.Response(503, json=recognised)))
    assert failed.details["format"] and '"redis"' in "\n".join(
        failed.details["excerpt"]
    )  # recognised too
    fine = await probe(answer(httpx.Response(200, json={"status": "ok"})))
    assert "excerpt" not in fine.details  # only a body that was not ok is kept


async def test_secret_echoed_in_an_error_body_is_masked_in_the_excerpt() -> None:
    router = respx.MockRouter(assert_all_called=False)

    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, text=f"denied: {request.headers['authorization']}")

    router.get(URL + "/health").mock(side_effect=echo)
    result = await probe(router, headers={"Authorization": "Bearer s3cret"})
    assert "s3cret" not in json.dumps(result.details)
    assert result.details["excerpt"][0].startswith("denied: ")


async def test_a_verdict_follows_every_change_of_the_answer() -> None:
    # Verdicts on small answers are kept by the whole answer: the same body with another
    # status code, type or content is judged anew, never read back from an earlier round.
    seen = []
    for code, body, kind in [
        (200, b'{"status":"ok"}', "application/json"),
        (503, b'{"status":"ok"}', "application/json"),
        (200, b'{"status":"down"}', "application/json"),
        (200, b'{"status":"ok"}', "application/json"),
        (200, b'{"status":"ok"}', "text/plain"),
    ]:
        router = answer(httpx.Response(code, content=body, headers={"Content-Type": kind}))
        result = await probe(router)
        seen.append((result.status, result.summary, result.details.get("format")))
    assert seen == [
        (Status.OK, "200 OK", "plain"),
        (Status.CRIT, "503 Service Unavailable: body says ok", "godaddy-terminus"),
        (Status.CRIT, "200 OK: body says down", "plain"),
        (Status.OK, "200 OK", "plain"),
        (Status.OK, "200 OK", "plain"),
    ]
