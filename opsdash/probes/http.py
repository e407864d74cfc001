"""HTTP liveness and readiness probe: one GET, judged by status code, body and certificate.

The harness owns the deadline (connect + TLS + request + body all fall under it), so this
module only makes the call. What it guarantees on top:

- the body is read up to ``max_body`` bytes and the rest is never read: the response is closed
  (its connection dropped) instead of drained;
- redirects are followed here, one hop at a time, up to the client's ``max_redirects``, so that
  a redirect's own body is never read either (httpx reads it whole when it follows redirects);
- a recognised health body (:mod:`opsdash.probes.health_bodies`) gives the verdict of a 2xx and
  names the failing dependencies of any answer;
- for ``https://``, the certificate's expiry is judged against the registry's ``cert_expiry``,
  and a failed verification is reported with its reason, the issuer and the subject.

Summaries, for an on-call reader: ``200 OK``, ``200 OK: cache degraded``,
``503 Service Unavailable: redis down``, ``TLS error: certificate expired (issuer ..., subject
...)``, ``too many redirects (more than 5)``. Connection failures are raised and worded by
:func:`opsdash.errors.classify`.
"""

from __future__ import annotations

import ssl
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from opsdash.errors import verify_reason
from opsdash.probe_plan import Planned, bind, join_url
from opsdash.probes import health_bodies, tls
from opsdash.redact import redact_url
from opsdash.registry.model import Registry, RemainingThresholds, Service
from opsdash.resources import Resources
from opsdash.results import ErrorType, Observation, ProbeFailure
from opsdash.status import Status, worst
from opsdash.transport import LeanTransport, PreparedGet, prepare_get

BODY_EXCERPT = 300
"""Characters of an unrecognised body kept in ``details.body``."""
_NAMED_FAILURES = 3
"""Failing dependencies named in a summary before "and N more"."""
_WORDS = {Status.CRIT: "down", Status.WARN: "degraded", Status.UNKNOWN: "unknown"}


@dataclass(frozen=True, slots=True)
class HttpTarget:
    """Where and how to probe one HTTP endpoint."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    verify: bool = True
    max_body: int = 64 * 1024
    cert_expiry: RemainingThresholds = field(default_factory=RemainingThresholds)


@dataclass(frozen=True, slots=True)
class _Answer:
    """The final response of a probe, read as far as the probe reads."""

    status_code: int
    reason: str
    content_type: str | None
    body: bytes
    truncated: bool
    redirects: int
    certificate: tls.Certificate | None


def plan(name: str, service: Service, registry: Registry) -> Iterator[Planned]:
    """A service's ``health`` and ``ready`` checks (each unless set to ``false``)."""
    cert_expiry = service.cert_expiry or registry.defaults.cert_expiry
    for check, path in (("health", service.health), ("ready", service.ready)):
        if path is False:
            continue
        url = join_url(service.url, path)
        target = HttpTarget(
            url=url,
            headers=dict(service.headers),
            verify=service.tls_verify,
            max_body=registry.defaults.max_body,
            cert_expiry=cert_expiry,
        )
        yield Planned(check, "http", redact_url(url), bind(probe_http, target))


async def probe_http(resources: Resources, target: HttpTarget) -> Observation:
    """GET the endpoint and judge status code, body and certificate."""
    client = resources.http(verify=target.verify)
    transport = resources.lean_transport(verify=target.verify)
    if transport is None:
        return judge(await _fetch(client, target), target)
    answer = await _fetch_direct(resources, transport, target)
    if isinstance(answer, httpx.URL):  # a redirect: follow it from where it points
        answer = await _fetch(client, target, start=answer)
    return judge(answer, target)


async def _fetch_direct(
    resources: Resources, transport: LeanTransport, target: HttpTarget
) -> _Answer | httpx.URL:
    """The first hop straight through the production transport, the request serialised once
    per process: httpx's request and response objects cost more CPU than the rest of a probe.
    For a redirect (its body unread), the URL it points to: the caller follows it through the
    client, which words the next request as httpx does (headers dropped across origins...)."""

    headers_key = tuple(target.headers.items())

    def merge_headers() -> httpx.Headers:
        # As AsyncClient.build_request merges them (the client's cookie jar aside: a probe
        # carries no cookies from one round to the next).
        merged = httpx.Headers(resources.http(verify=target.verify).headers)
        merged.update(target.headers)
        return merged

    def prepare() -> PreparedGet:
        headers = resources.memo(("http-headers", target.verify, headers_key), merge_headers)
        return prepare_get(httpx.URL(target.url), headers)

    prepared = resources.memo(("http-get", target.verify, target.url, headers_key), prepare)
    try:
        fetched = await transport.fetch(prepared, target.max_body)
    except (httpx.TransportError, ssl.SSLError) as exc:
        ssl_error = tls.find_ssl_error(exc)
        if ssl_error is not None:
            raise await _tls_failure(prepared.url, ssl_error) from exc
        raise
    if fetched.redirect:
        location = prepared.url.join(fetched.header(b"location") or "")
        if location.scheme not in ("http", "https"):  # the server's fault, not the registry's
            shown = redact_url(str(location))
            raise ProbeFailure(ErrorType.PROTOCOL, f"redirect to an unsupported URL: {shown}")
        return location
    body, truncated = _decoded(
        fetched.body, fetched.truncated, fetched.header(b"content-encoding"), target.max_body
    )
    certificate = None
    if prepared.origin[0] == b"https":
        certificate = tls.from_ssl_object(fetched.network_stream.get_extra_info("ssl_object"))
    return _Answer(
        status_code=fetched.status_code,
        reason=fetched.reason,
        content_type=fetched.header(b"content-type"),
        body=body,
        truncated=truncated,
        redirects=0,
        certificate=certificate,
    )


async def _fetch(
    client: httpx.AsyncClient, target: HttpTarget, *, start: httpx.URL | None = None
) -> _Answer:
    """GET ``target`` through the client, following redirects one hop at a time. ``start``: the
    first hop was already made (directly) and redirected there."""
    first = httpx.URL(target.url)
    visited = {first}
    redirects = 0
    headers = target.headers
    if start is not None:
        redirects = 1
        if start in visited:
            raise ProbeFailure(ErrorType.PROTOCOL, "redirect loop (after 1 redirects)")
        visited.add(start)
        if (start.scheme, start.host, start.port) != (first.scheme, first.host, first.port):
            # As httpx does across origins: credentials stay with the origin they were for.
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    request = client.build_request("GET", start or first, headers=headers or None)
    while True:
        try:
            response = await client.send(request, stream=True, follow_redirects=False)
        except (httpx.TransportError, ssl.SSLError) as exc:
            ssl_error = tls.find_ssl_error(exc)
            if ssl_error is not None:
                raise await _tls_failure(request.url, ssl_error) from exc
            raise
        try:
            next_request = response.next_request
            if next_request is not None:
                redirects += 1
                if next_request.url in visited:
                    raise ProbeFailure(
                        ErrorType.PROTOCOL, f"redirect loop (after {redirects} redirects)"
                    )
                if redirects > client.max_redirects:
                    raise ProbeFailure(
                        ErrorType.PROTOCOL, f"too many redirects (more than {client.max_redirects})"
                    )
                visited.add(next_request.url)
                request = next_request
                continue
            body, truncated = await _read_capped(response, target.max_body)
            return _Answer(
                status_code=response.status_code,
                reason=response.reason_phrase,
                content_type=response.headers.get("content-type"),
                body=body,
                truncated=truncated,
                redirects=redirects,
                certificate=_certificate(response),
            )
        finally:
            # Closing an unfinished response drops its connection: the rest is never read.
            await response.aclose()


async def _read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body (decompressed if the server compressed it anyway),
    and whether there was more."""
    try:
        # A response built in memory (a mocked transport) is read and decoded already.
        content = response.content
    except httpx.ResponseNotRead:
        pass
    else:
        return content[:limit], len(content) > limit
    chunks: list[bytes] = []
    size = 0
    truncated = False
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            # exactly ``limit`` bytes are the whole body only if the server said so
            truncated = size > limit or response.headers.get("content-length") != str(size)
            break
    return _decoded(b"".join(chunks), truncated, response.headers.get("content-encoding"), limit)


def _decoded(body: bytes, truncated: bool, encoding: str | None, limit: int) -> tuple[bytes, bool]:
    """``body`` as read (capped), inflated when the server compressed it anyway (we ask for
    identity), to at most ``limit`` bytes; and whether there was more."""
    if encoding is not None and encoding.strip().lower() in ("gzip", "deflate"):
        try:
            inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header
            inflated = inflater.decompress(body, limit)
            return inflated, truncated or bool(inflater.unconsumed_tail)
        except zlib.error:
            return body[:limit], truncated
    return body[:limit], truncated


def _certificate(response: httpx.Response) -> tls.Certificate | None:
    if response.url.scheme != "https":
        return None
    stream = response.extensions.get("network_stream")
    if stream is None:  # a mocked transport
        return None
    return tls.from_ssl_object(stream.get_extra_info("ssl_object"))


async def _tls_failure(url: httpx.URL, error: ssl.SSLError) -> ProbeFailure:
    """A TLS failure worded with its reason and, when verification failed, the certificate."""
    reason = verify_reason(error)
    details: dict[str, Any] = {"tls_error": reason}
    message = f"TLS error: {reason}"
    if isinstance(error, ssl.SSLCertVerificationError):
        port = url.port or 443
        certificate = await tls.fetch_unverified(url.host, port)
        if certificate is not None:
            message += f" (issuer {certificate.issuer}; subject {certificate.subject})"
            details.update(certificate.details())
    return ProbeFailure(ErrorType.TLS, message, details)


def judge(answer: _Answer, target: HttpTarget) -> Observation:
    """The verdict on an answer: status code, then the body, then the certificate."""
    headline = f"{answer.status_code} {answer.reason}".strip()
    details: dict[str, Any] = {"http_status": answer.status_code}
    if answer.redirects:
        details["redirects"] = answer.redirects
    parsed = health_bodies.parse(answer.status_code, answer.content_type, answer.body)
    if parsed is None:
        if answer.body:
            details["body"] = _excerpt(answer.body)
    else:
        details["format"] = parsed.format
        if parsed.dependencies:
            details["dependencies"] = {
                name: str(dep.status) for name, dep in parsed.dependencies.items()
            }
            messages = {n: d.message for n, d in parsed.dependencies.items() if d.message}
            if messages:
                details["dependency_messages"] = messages
    if answer.truncated:
        details["body_truncated"] = True

    if 200 <= answer.status_code < 300:
        # A body that says it is degraded or down outranks the 2xx; "unknown" does not
        # (Spring Boot answers UNKNOWN with 200 when it cannot tell).
        body_status = parsed.status if parsed is not None else Status.OK
        status: Status = body_status if body_status in (Status.WARN, Status.CRIT) else Status.OK
    else:
        status = Status.CRIT
    summary = headline
    if parsed is not None and status.failing:
        summary += ": " + _describe_failures(parsed)

    if answer.certificate is not None:
        details.update(answer.certificate.details())
        left = answer.certificate.seconds_left()
        cert_status = target.cert_expiry.judge(left)
        if cert_status.failing:
            status = worst((status, cert_status))
            days = left / 86400.0
            summary += (
                f"; certificate expired {-days:.1f} days ago"
                if days < 0
                else f"; certificate expires in {days:.1f} days"
            )
    return Observation(status, summary, details)


def _describe_failures(parsed: health_bodies.HealthBody) -> str:
    failing = parsed.failing()
    if not failing:
        return f"body says {_WORDS.get(parsed.status, str(parsed.status))}"
    named = [f"{name} {_WORDS[dep.status]}" for name, dep in failing[:_NAMED_FAILURES]]
    if len(failing) > _NAMED_FAILURES:
        named.append(f"and {len(failing) - _NAMED_FAILURES} more")
    return ", ".join(named)


def _excerpt(body: bytes) -> str:
    text = " ".join(body.decode("utf-8", errors="replace").split())
    return text if len(text) <= BODY_EXCERPT else text[: BODY_EXCERPT - 1] + "…"
