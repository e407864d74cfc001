"""TCP, TLS, DNS and HTTP custom checks over real loopback sockets: a TCP echo server, a TLS
server with a throwaway CA (trustme), a tiny UDP DNS server, and HTTP servers answering what
the conditions judge. Every run goes through a registry, ``build_plan`` and ``run_probe``."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme

from opsdash.harness import run_probe
from opsdash.plan import build_plan
from opsdash.probes import dns
from opsdash.registry.model import Registry
from opsdash.resources import Resources
from opsdash.results import CheckResult, ErrorType
from opsdash.status import Status
from tests import adversarial
from tests.servers import refused_port


async def run(
    check: dict[str, Any], *, service: dict[str, Any] | None = None, timeout: str = "3s"
) -> CheckResult:
    """Run the one custom check ``c`` of a service (its health/ready checks switched off)."""
    entry = {"url": "http://127.0.0.1:1", "health": False, "ready": False, **(service or {})}
    registry = Registry.from_data(
        {
            "version": 1,
            "platform": "test",
            "defaults": {"timeout": timeout},
            "services": {"svc": {**entry, "checks": {"c": check}}},
        }
    )
    (spec,) = build_plan(registry)
    async with Resources() as resources:
        return await run_probe(spec, resources)


# --- tcp ----------------------------------------------------------------------------------


@asynccontextmanager
async def tcp_server(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any],
) -> AsyncIterator[int]:
    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def _redis_like(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    if await reader.readline() == b"PING\r\n":
        writer.write(b"+PONG\r\n")
        await writer.drain()


async def test_tcp_connect_reports_the_connect_time() -> None:
    async with tcp_server(_redis_like) as port:
        result = await run({"tcp": f"127.0.0.1:{port}"})
    assert result.status is Status.OK
    assert result.summary.startswith("connected in ")
    assert result.details["connect_ms"] >= 0
    assert (result.kind, result.target) == ("tcp", f"tcp://127.0.0.1:{port}")


async def test_tcp_send_and_expect() -> None:
    async with tcp_server(_redis_like) as port:
        result = await run({"tcp": f"127.0.0.1:{port}", "send": "PING\r\n", "expect": "PONG"})
    assert (result.status, result.details["answer"]) == (Status.OK, "+PONG")
    assert result.summary.endswith("; answer as expected")


async def test_tcp_unexpected_answer_is_crit_and_quoted_safely() -> None:
    async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"-ERR \x1b[31mwrong\r\n")
        await writer.drain()

    async with tcp_server(banner) as port:
        result = await run({"tcp": f"127.0.0.1:{port}", "expect": "PONG"})
    assert result.status is Status.CRIT
    assert result.summary == "expected 'PONG' in the answer; got '-ERR ·[31mwrong'"
    assert "\x1b" not in result.summary


async def test_tcp_refused_and_silent_servers() -> None:
    refused = await run({"tcp": f"127.0.0.1:{refused_port()}"})
    assert (refused.status, refused.error and refused.error.type) == (
        Status.CRIT,
        ErrorType.REFUSED,
    )

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers

    async with tcp_server(silent) as port:
        result = await run({"tcp": f"127.0.0.1:{port}", "expect": "x"}, timeout="500ms")
    assert result.status is Status.CRIT
    assert result.error is not None and result.error.type is ErrorType.TIMEOUT


# --- tls ----------------------------------------------------------------------------------


@pytest.fixture
def ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> trustme.CA:
    """A throwaway CA the probes trust (SSL_CERT_FILE, as a site with its own CA would)."""
    authority = trustme.CA(organization_name="opsdash custom CA")
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    return authority


def _server_context(ca: trustme.CA, **validity: dt.datetime) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1", common_name="localhost", **validity).configure_cert(
        context
    )
    return context


@asynccontextmanager
async def tls_server(context: ssl.SSLContext) -> AsyncIterator[int]:
    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=context)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def test_tls_reports_expiry_and_issuer(ca: trustme.CA) -> None:
    async with tls_server(_server_context(ca)) as port:
        result = await run({"tls": f"127.0.0.1:{port}"})
    assert result.status is Status.OK, result.summary
    assert "opsdash custom CA" in result.details["cert_issuer"]
    assert result.details["cert_days_left"] > 30
    assert result.summary.startswith("certificate expires in ")
    assert "(issuer " in result.summary


async def test_tls_expiry_is_exported_to_prometheus(ca: trustme.CA) -> None:
    from opsdash.metrics import check_families, exposition

    async with tls_server(_server_context(ca)) as port:
        result = await run({"tls": f"127.0.0.1:{port}"})
    text = exposition(check_families([result]))
    [line] = [x for x in text.splitlines() if x.startswith("opsdash_tls_cert_expiry_seconds{")]
    assert 'check="svc.c"' in line
    assert float(line.rsplit(" ", 1)[1]) > 30 * 86400


async def test_tls_expiring_soon_warns_with_the_check_limits(ca: trustme.CA) -> None:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=10)
    async with tls_server(_server_context(ca, not_after=soon)) as port:
        result = await run(
            {"tls": f"127.0.0.1:{port}", "cert_expiry": {"warn": "30d", "crit": "3d"}}
        )
    assert result.status is Status.WARN
    assert 9 <= result.details["cert_days_left"] <= 10
    assert result.summary.startswith("certificate expires in ")


async def test_tls_untrusted_names_reason_and_issuer(tmp_path: Path) -> None:
    stranger = trustme.CA(organization_name="stranger CA")
    async with tls_server(_server_context(stranger)) as port:
        result = await run({"tls": f"127.0.0.1:{port}"})
    assert result.status is Status.CRIT
    assert result.error is not None and result.error.type is ErrorType.TLS
    assert result.summary.startswith("TLS error: unknown issuer (issuer ")
    assert "stranger CA" in result.summary


async def test_tls_without_verification_still_reads_the_certificate() -> None:
    stranger = trustme.CA(organization_name="stranger CA")
    async with tls_server(_server_context(stranger)) as port:
        result = await run({"tls": f"127.0.0.1:{port}", "verify": False})
    assert result.status is Status.OK
    assert "stranger CA" in result.details["cert_issuer"]


async def test_tls_on_a_plain_port_is_a_tls_error() -> None:
    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()

    async with tcp_server(plain) as port:
        result = await run({"tls": f"127.0.0.1:{port}"})
    assert result.status is Status.CRIT
    assert result.error is not None and result.error.type is ErrorType.TLS


# --- dns ----------------------------------------------------------------------------------


def _answer(query: bytes, records: dict[tuple[str, int], list[bytes]], rcode: int = 0) -> bytes:
    """A reply to ``query`` from ``records`` ((name, type) -> rdata list), name compressed."""
    query_id = struct.unpack_from("!H", query)[0]
    labels, offset = [], 12
    while query[offset]:
        length = query[offset]
        labels.append(query[offset + 1 : offset + 1 + length].decode())
        offset += 1 + length
    qtype = struct.unpack_from("!H", query, offset + 1)[0]
    question = query[12 : offset + 5]
    found = records.get((".".join(labels), qtype), [])
    header = struct.pack("!HHHHHH", query_id, 0x8180 | rcode, 1, len(found), 0, 0)
    answers = b"".join(
        b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, 60, len(rdata)) + rdata for rdata in found
    )
    return header + question + answers


def _name(text: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in text.split(".")) + b"\x00"


@asynccontextmanager
async def dns_server(
    records: dict[tuple[str, int], list[bytes]], rcode: int = 0
) -> AsyncIterator[int]:
    class Protocol(asyncio.DatagramProtocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.transport.sendto(_answer(data, records, rcode), addr)

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Protocol, local_addr=("127.0.0.1", 0))
    try:
        yield transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


RECORDS = {
    ("api.test", 1): [socket.inet_aton("10.0.0.5"), socket.inet_aton("10.0.0.6")],
    ("api.test", 28): [socket.inet_pton(socket.AF_INET6, "2001:db8::5")],
    ("www.test", 5): [_name("edge.cdn.test")],
}


async def test_dns_a_records_from_a_given_server() -> None:
    async with dns_server(RECORDS) as port:
        result = await run(
            {"dns": "api.test", "server": f"127.0.0.1:{port}", "expect": ["10.0.0.5"]}
        )
    assert (result.status, result.summary) == (Status.OK, "A 10.0.0.5, 10.0.0.6")
    assert result.details["server"] == f"127.0.0.1:{port}"


async def test_dns_aaaa_and_cname() -> None:
    async with dns_server(RECORDS) as port:
        server = f"127.0.0.1:{port}"
        aaaa = await run(
            {"dns": "api.test", "type": "AAAA", "server": server, "expect": ["2001:DB8:0::5"]}
        )
        cname = await run(
            {"dns": "www.test", "type": "CNAME", "server": server, "expect": ["Edge.CDN.test."]}
        )
    assert (aaaa.status, aaaa.summary) == (Status.OK, "AAAA 2001:db8::5")
    assert (cname.status, cname.summary) == (Status.OK, "CNAME edge.cdn.test")


async def test_dns_missing_expected_address_is_crit_and_named() -> None:
    async with dns_server(RECORDS) as port:
        result = await run(
            {"dns": "api.test", "server": f"127.0.0.1:{port}", "expect": ["10.0.0.9"]}
        )
    assert result.status is Status.CRIT
    assert result.summary == "10.0.0.9 not in the answer (got 10.0.0.5, 10.0.0.6)"
    assert result.details["missing"] == ["10.0.0.9"]


async def test_dns_nxdomain_and_servfail() -> None:
    async with dns_server({}, rcode=3) as port:
        nx = await run({"dns": "gone.test", "server": f"127.0.0.1:{port}"})
    async with dns_server({}, rcode=2) as port:
        servfail = await run({"dns": "x.test", "server": f"127.0.0.1:{port}"})
    assert (nx.status, nx.summary) == (Status.CRIT, "no A record")
    assert servfail.status is Status.CRIT
    assert servfail.error is not None and servfail.error.type is ErrorType.DNS
    assert servfail.summary == "the name server answered SERVFAIL"


async def test_dns_silent_server_costs_the_deadline_only() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        result = await run({"dns": "x.test", "server": f"127.0.0.1:{port}"}, timeout="300ms")
    assert result.error is not None and result.error.type is ErrorType.TIMEOUT


async def test_dns_system_resolver_for_localhost() -> None:
    result = await run({"dns": "localhost", "expect": ["127.0.0.1"]})
    assert result.status is Status.OK, result.summary
    assert result.details["server"] is None


async def test_dns_cname_without_a_server_asks_the_resolv_conf_nameserver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with dns_server(RECORDS) as port:
        resolv = tmp_path / "resolv.conf"
        resolv.write_text("# test\nnameserver 127.0.0.1\n")
        monkeypatch.setattr(dns, "RESOLV_CONF", resolv)
        monkeypatch.setattr(dns, "_system_nameserver", lambda: ("127.0.0.1", port))
        result = await run({"dns": "www.test", "type": "CNAME"})
    assert (result.status, result.summary) == (Status.OK, "CNAME edge.cdn.test")


def test_a_malformed_reply_is_a_protocol_error() -> None:
    from opsdash.results import ProbeFailure

    query = dns.encode_query(7, "x.test", "A")
    reply = bytearray(_answer(query, {("x.test", 1): [b"\x01\x02\x03\x04"]}))
    reply[2] |= 0x80
    with pytest.raises(ProbeFailure) as caught:
        dns.decode_answers(bytes(reply[:-6]), 7, "A")
    assert caught.value.error_type is ErrorType.PROTOCOL


# --- http expect --------------------------------------------------------------------------


def _json_server(
    body: dict[str, Any] | bytes, status: int = 200, headers: dict[str, str] | None = None
) -> Any:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    reason = {200: "OK", 503: "Service Unavailable"}.get(status, "Other")
    return adversarial.serve(
        adversarial.fixed(
            status, reason, payload, {"Content-Type": "application/json", **(headers or {})}
        )
    )


async def test_http_conditions_that_hold() -> None:
    body = {"status": "UP", "queue": {"depth": 2}, "nodes": [{"name": "a"}], "ok": True}
    async with _json_server(body, headers={"X-Version": "1.4.2"}) as server:
        result = await run(
            {
                "http": "/status",
                "expect": {
                    "status": ["2xx"],
                    "json": {
                        "$.status": "UP",
                        "$.queue.depth": {"lt": 10},
                        "$.nodes[0].name": {"matches": "^a$"},
                        "$.ok": True,
                        "$.missing": {"exists": False},
                    },
                    "body": '"status"',
                    "headers": {"X-Version": r"^1\."},
                    "latency": "10s",
                },
            },
            service={"url": server.url},
        )
    assert (result.status, result.summary) == (Status.OK, "200 OK")
    assert result.details["failed"] == []
    assert server.requests[0].startswith(b"GET /status HTTP/1.1\r\n")


async def test_every_failed_condition_is_named() -> None:
    body = {"status": "DOWN", "queue": {"depth": 250}, "ok": 1}
    async with _json_server(body, status=503) as server:
        result = await run(
            {
                "http": f"{server.url}/status",
                "expect": {
                    "status": [200, "204-206"],
                    "json": {
                        "$.status": "UP",
                        "$.queue.depth": {"le": 100},
                        "$.ok": True,
                        "$.version": {"exists": True},
                    },
                    "body": "healthy",
                    "headers": {"X-Version": ".", "Content-Type": "^text/"},
                },
            }
        )
    assert result.status is Status.CRIT
    assert result.details["failed"] == [
        "status 503, expected 200 or 204-206",
        "$.status is DOWN, expected UP",
        "$.queue.depth is 250, expected <= 100",
        "$.ok is 1, expected true",
        "$.version is missing, expected it to exist",
        "body does not match /healthy/",
        "header X-Version missing, expected /./",
        "header Content-Type is application/json, expected /^text//",
    ]
    assert result.summary.startswith(
        "503 Service Unavailable: status 503, expected 200 or 204-206; "
        "$.status is DOWN, expected UP; "
    )
    assert result.summary.endswith("and 3 more")
    assert result.error is None


async def test_a_body_that_is_not_json() -> None:
    async with _json_server(b"<html>oops</html>") as server:
        result = await run({"http": server.url, "expect": {"json": {"$.status": "UP"}}})
    assert (result.status, result.summary) == (Status.CRIT, "200 OK: body is not JSON")
    assert result.details["body"] == "<html>oops</html>"


async def test_a_slow_answer_fails_the_latency_condition() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Any) -> None:
        await adversarial.read_head(reader)
        await asyncio.sleep(0.2)  # the server's behaviour under test, not synchronisation
        writer.write(adversarial.response_bytes(200, "OK", b"{}"))
        await writer.drain()

    async with adversarial.serve(slow) as server:
        result = await run({"http": server.url, "expect": {"latency": "50ms"}})
    assert result.status is Status.CRIT
    assert result.summary.startswith("200 OK: latency ")
    assert result.summary.endswith(" ms, expected under 50ms")


async def test_refused_is_a_probe_error_not_a_condition() -> None:
    result = await run({"http": f"http://127.0.0.1:{refused_port()}/"})
    assert result.status is Status.CRIT
    assert result.error is not None and result.error.type is ErrorType.REFUSED


async def test_a_gigabyte_body_is_capped_and_the_json_condition_says_so() -> None:
    async with adversarial.gigabyte() as server:
        result = await run({"http": server.url, "expect": {"json": {"$.a": 1}}})
    assert result.status is Status.CRIT
    assert "cannot judge its JSON" in result.summary
    assert result.details["body_truncated"] is True
