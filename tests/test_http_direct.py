"""The one HTTP path over its two wires: the production one (LeanTransport) and an injected
httpx transport (how respx/MockTransport tests run), over real loopback sockets, judge alike;
and the round's start order, which lets a service's second check reuse its first one's
connection."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from opsdash.engine import run_round, spread
from opsdash.harness import run_probe
from opsdash.httpclient import HttpClient
from opsdash.plan import build_plan
from opsdash.registry.model import Registry
from opsdash.resources import Resources
from opsdash.results import CheckResult, ErrorType, Observation
from opsdash.status import Status
from opsdash.transport import LeanTransport
from tests import adversarial
from tests.helpers import spec


def _registry(urls: dict[str, str], **service: Any) -> Registry:
    return Registry.from_data(
        {
            "version": 1,
            "platform": "test",
            "services": {name: {"url": url, **service} for name, url in urls.items()},
        }
    )


async def _health(url: str, transport: httpx.AsyncBaseTransport | None, **service: Any) -> Any:
    (health, _) = build_plan(_registry({"svc": url}, **service))
    async with Resources(http_transport=transport) as resources:
        # The same client runs over either wire.
        assert isinstance(resources.http().wire, LeanTransport) == (transport is None)
        return await run_probe(health, resources)


def _same(direct: CheckResult, client: CheckResult) -> None:
    assert (direct.status, direct.summary, direct.details) == (
        client.status,
        client.summary,
        client.details,
    )


async def test_direct_and_client_paths_judge_a_compressed_failing_body_alike() -> None:
    body = json.dumps({"status": "DOWN", "components": {"db": {"status": "DOWN"}}}).encode()
    headers = {"Content-Type": "application/vnd.spring-boot.actuator.v3+json"}
    headers["Content-Encoding"] = "gzip"  # sent although identity was asked for
    handler = adversarial.fixed(503, "Service Unavailable", gzip.compress(body), headers)
    async with adversarial.serve(handler) as server:
        direct = await _health(server.url, None, headers={"X-Team": "payments"})
        client = await _health(server.url, httpx.AsyncHTTPTransport(), headers={"X-Team": "x"})
    assert direct.status is Status.CRIT and "db down" in direct.summary
    _same(direct, client)
    # The same request on the wire, default and per-service headers included.
    first, second = server.requests
    assert b"x-team: payments" in first.lower() and b"accept-encoding: identity" in first.lower()
    assert first.replace(b"payments", b"x") == second


async def test_direct_and_client_paths_cap_a_large_body_alike() -> None:
    body = b"<html>" + b"x" * 200_000 + b"</html>"
    handler = adversarial.fixed(200, "OK", body, {"Content-Type": "text/html"})
    async with adversarial.serve(handler) as server:
        direct = await _health(server.url, None)
        client = await _health(server.url, httpx.AsyncHTTPTransport())
    assert direct.status is Status.OK and direct.details["body_truncated"] is True
    _same(direct, client)


async def test_a_header_with_a_line_break_is_refused_not_sent() -> None:
    handler = adversarial.fixed(200, "OK", b"{}")
    async with adversarial.serve(handler) as server:
        result = await _health(server.url, None, headers={"X-Token": "abc\r\nX-Admin: yes"})
    assert result.status is Status.CRIT and result.error is not None
    assert result.error.type is ErrorType.PROTOCOL
    assert server.requests == []


async def test_a_service_s_ready_reuses_the_connection_its_health_opened() -> None:
    handler = adversarial.fixed(200, "OK", b'{"status":"UP"}', {"Content-Type": "application/json"})
    async with (
        adversarial.serve(handler) as one,
        adversarial.serve(handler) as two,
        adversarial.serve(handler) as three,
    ):
        specs = build_plan(_registry({"a": one.url, "b": two.url, "c": three.url}))
        async with Resources() as resources:
            round_ = await run_round(specs, resources, concurrency=2)
    assert [r.status for r in round_.results] == [Status.OK] * 6
    assert [r.id for r in round_.results] == [s.id for s in specs]
    assert [(len(s.requests), s.connections) for s in (one, two, three)] == [(2, 1)] * 3


def test_a_components_checks_start_a_block_apart() -> None:
    async def probe(_: Resources) -> Observation:
        return Observation(Status.OK, "ok")

    ids = ["a.health", "a.ready", "b.health", "c.health", "c.ready", "c.extra", "d.health"]
    specs = [spec(check_id, probe) for check_id in ids]
    order = [ids[index] for index in spread(specs, concurrency=1)]
    # Blocks of two components: (a, b) then (c, d); each block's first checks, then seconds...
    assert order == [
        "a.health",
        "b.health",
        "a.ready",
        "c.health",
        "d.health",
        "c.ready",
        "c.extra",
    ]


class _Recorder(BaseHTTPRequestHandler):
    """Answers from a class-level route table and records each request's path and headers."""

    routes: dict[str, tuple[int, dict[str, str]]] = {}
    seen: list[tuple[str, str | None]] = []

    def do_GET(self) -> None:
        type(self).seen.append((self.path, self.headers.get("Authorization")))
        status, headers = type(self).routes.get(self.path, (200, {}))
        body = b'{"status":"ok"}'
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _recording_server(routes: dict[str, tuple[int, dict[str, str]]]) -> ThreadingHTTPServer:
    handler = type("Recorder", (_Recorder,), {"routes": routes, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def test_a_redirect_is_requested_once_and_credentials_stay_with_their_origin() -> None:
    other = _recording_server({})
    other_url = f"http://127.0.0.1:{other.server_address[1]}"
    first = _recording_server(
        {
            "/health": (302, {"Location": "/moved"}),
            "/moved": (307, {"Location": f"{other_url}/elsewhere"}),
        }
    )
    try:
        url = f"http://127.0.0.1:{first.server_address[1]}"
        result = await _health(url, None, headers={"Authorization": "Bearer t0ken-abc"})
    finally:
        for server in (first, other):
            server.shutdown()
            server.server_close()
    assert result.status is Status.OK
    assert result.details["redirects"] == 2
    first_seen = first.RequestHandlerClass.seen  # type: ignore[attr-defined]
    other_seen = other.RequestHandlerClass.seen  # type: ignore[attr-defined]
    assert first_seen == [("/health", "Bearer t0ken-abc"), ("/moved", "Bearer t0ken-abc")]
    assert other_seen == [("/elsewhere", None)]


async def _two_chunks(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Any) -> None:
    s.requests.append(await adversarial.read_head(reader))
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n")
    await writer.drain()
    writer.write(b"4\r\nefgh\r\n0\r\n\r\n")
    await writer.drain()


async def test_a_body_cut_exactly_at_the_cap_is_flagged_and_an_exact_one_is_whole() -> None:
    async with adversarial.serve(_two_chunks) as chunked:
        fetched = await HttpClient(LeanTransport()).get(f"{chunked.url}/health", max_body=4)
    assert (fetched.body, fetched.truncated) == (b"abcd", True)

    exact = adversarial.fixed(200, "OK", b"abcd", {"Content-Type": "text/plain"})
    async with adversarial.serve(exact) as server:
        client = HttpClient(LeanTransport())
        url = f"{server.url}/health"
        first = await client.get(url, max_body=4)
        second = await client.get(url, max_body=4)
    assert (first.body, first.truncated, second.body) == (b"abcd", False, b"abcd")
    assert server.connections == 1  # whole, so its connection was kept for the next request


async def test_a_redirect_to_another_scheme_is_the_servers_fault() -> None:
    handler = adversarial.fixed(302, "Found", b"", {"Location": "ftp://files/report"})
    async with adversarial.serve(handler) as server:
        result = await _health(server.url, None)
    assert result.status is Status.CRIT
    assert result.error is not None
    assert result.error.type is ErrorType.PROTOCOL
    assert "ftp://files/report" in result.summary


def test_the_quick_url_parse_agrees_with_the_full_one() -> None:
    # Most registry URLs take a one-regex parse; whatever it accepts must come out exactly as
    # urlsplit's full parse has it (host case, ports, default ports, targets, errors).
    import itertools

    from opsdash.transport import _parse_any_url, parse_url

    hosts = ["127.0.0.1", "Svc.Test", "a-b.c", "localhost", "x", "[::1]", "bücher.de", "u:p@h"]
    ports = ["", ":80", ":443", ":8080", ":0", ":08080", ":65535", ":65536", ":99999", ":"]
    paths = ["", "/", "/health", "/a/b:c", "/x;y=1", "/~u/.", "/a//b", "/%20", "/a b", "/é"]
    paths += ["/?q=1", "/#f", "/a@b", "?x", "#y", "/a\nb", " "]

    def parsed(parse: Any, url: str) -> object:
        try:
            return parse(url)
        except Exception as exc:  # the same error, worded the same
            return (type(exc), str(exc))

    for scheme, host, port, path in itertools.product(
        ["http", "https", "HTTP", "ftp"], hosts, ports, paths
    ):
        url = f"{scheme}://{host}{port}{path}"
        assert parsed(parse_url, url) == parsed(_parse_any_url, url), url
