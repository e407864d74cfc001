"""HTTP liveness and readiness probe: one GET, judged by status code, body and certificate.

The harness owns the deadline (connect + TLS + request + body all fall under it), so this
module only makes the call. What it guarantees on top:

- the call goes through the process's one HTTP client (:mod:`opsdash.httpclient`): the body
  is read up to ``max_body`` decoded bytes and the rest never read; redirects are followed one
  hop at a time up to ``max_redirects``, their bodies unread;
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

import contextlib
import functools
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from opsdash.errors import verify_reason
from opsdash.figures import HttpFigures
from opsdash.httpclient import Answer, RedirectError
from opsdash.offload import parse_off_loop
from opsdash.probe_plan import Planned, bind, join_url
from opsdash.probes import health_bodies, tls
from opsdash.records import dataclass, field
from opsdash.redact import redact_url
from opsdash.registry.model import Registry, RemainingThresholds, Service
from opsdash.resources import Resources
from opsdash.results import ErrorType, Observation, ProbeFailure
from opsdash.status import Status, worst
from opsdash.transport import parse_url

if TYPE_CHECKING:
    import ssl

BODY_EXCERPT = 300
"""Characters of an unrecognised body kept in ``details.body``."""
EXCERPT_LINES = 8
EXCERPT_CHARS = 800
"""What is kept of the body of an answer that was not ok (``details.excerpt``)."""
_JSON_CONTROL = r"\\u00([01][0-9a-fA-F]|7[fF])"
"""A control character as JSON writes it: turned back into the character, for the harness
to escape the one way every face shows it (``\\x1b``). A pattern, compiled (and cached by
:mod:`re`) on the first failing answer that needs it, not at start-up."""
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
    answer = await get(resources, target)
    certificate = _certificate(answer)
    if certificate is None and len(answer.body) <= _KEPT_BODY:
        return _kept_verdict(
            answer.status_code,
            answer.reason,
            answer.header("content-type"),
            answer.body,
            answer.truncated,
            answer.redirects,
        )
    judged = _as_judged(answer, certificate)
    # A large body (max_body raised) may take milliseconds to parse: off the loop then.
    return await parse_off_loop(len(judged.body), _judge, judged, target.cert_expiry)


async def get(resources: Resources, target: HttpTarget) -> Answer:
    """GET ``target`` through the one HTTP client (redirects followed there, their bodies
    unread; the body capped on its decoded size), failures worded for a summary: for this
    probe and for the custom HTTP checks, which judge the answer by their own conditions."""
    client = resources.http(verify=target.verify)
    try:
        return await client.get(target.url, headers=target.headers, max_body=target.max_body)
    except RedirectError as exc:
        raise ProbeFailure(ErrorType.PROTOCOL, str(exc)) from None
    except Exception as exc:  # the transport's errors (or an injected one's), TLS among them
        ssl_error = tls.find_ssl_error(exc)
        if ssl_error is not None:
            raise await _tls_failure(target.url, ssl_error) from exc
        raise


def _as_judged(answer: Answer, certificate: tls.Certificate | None) -> _Answer:
    """The answer, as this probe judges it."""
    return _Answer(
        status_code=answer.status_code,
        reason=answer.reason,
        content_type=answer.header("content-type"),
        body=answer.body,
        truncated=answer.truncated,
        redirects=answer.redirects,
        certificate=certificate,
    )


def _certificate(answer: Answer) -> tls.Certificate | None:
    if answer.url.scheme != "https" or answer.network_stream is None:
        return None
    ssl_object = answer.network_stream.get_extra_info("ssl_object")
    return None if ssl_object is None else tls.from_ssl_object(ssl_object)


async def _tls_failure(url: str, error: ssl.SSLError) -> ProbeFailure:
    """A TLS failure worded with its reason and, when verification failed, the certificate."""
    import ssl  # loaded already: error is one of its exceptions

    reason = verify_reason(error)
    figures = HttpFigures(tls_error=reason)
    message = f"TLS error: {reason}"
    if isinstance(error, ssl.SSLCertVerificationError):
        parsed = parse_url(url)
        certificate = await tls.fetch_unverified(parsed.host, parsed.port)
        if certificate is not None:
            message += f" (issuer {certificate.issuer}; subject {certificate.subject})"
            figures = replace(figures, certificate=certificate.figures())
    return ProbeFailure(ErrorType.TLS, message, figures)


_KEPT_BODY = 512


@functools.lru_cache(maxsize=1024)
def _kept_verdict(
    status_code: int,
    reason: str,
    content_type: str | None,
    body: bytes,
    truncated: bool,
    redirects: int,
) -> Observation:
    """The verdict on a small answer without a certificate, kept by everything it is judged
    on: a platform's services answer the same few bodies round after round
    (``{"status":"ok"}``), and parsing one is most of a verdict's cost. Never stale (a
    certificate, judged against the clock, never comes here). Keyed by the plain values, not
    an :class:`_Answer`: hashing and comparing a tuple of them runs in C."""
    answer = _Answer(status_code, reason, content_type, body, truncated, redirects, None)
    return _judge(answer, cert_expiry=None)


def _judge(answer: _Answer, cert_expiry: RemainingThresholds | None) -> Observation:
    """The verdict on an answer: status code, then the body, then the certificate."""
    headline = f"{answer.status_code} {answer.reason}".strip()
    parsed = health_bodies.parse(answer.status_code, answer.content_type, answer.body)
    dependencies = parsed.dependencies if parsed is not None else {}
    messages = {n: d.message for n, d in dependencies.items() if d.message}
    figures = HttpFigures(
        http_status=answer.status_code,
        redirects=answer.redirects or None,
        format=parsed.format if parsed is not None else None,
        dependencies={n: d.status for n, d in dependencies.items()} or None,
        dependency_messages=messages or None,
        body=excerpt(answer.body) if parsed is None and answer.body else None,
        body_truncated=True if answer.truncated else None,
        certificate=answer.certificate.figures() if answer.certificate is not None else None,
    )

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

    if answer.certificate is not None and cert_expiry is not None:
        left = answer.certificate.seconds_left()
        cert_status = cert_expiry.judge(left)
        if cert_status.failing:
            status = worst((status, cert_status))
            days = left / 86400.0
            summary += (
                f"; certificate expired {-days:.1f} days ago"
                if days < 0
                else f"; certificate expires in {days:.1f} days"
            )
    if status.failing and answer.body:
        figures = replace(figures, excerpt=excerpt_lines(answer.body))
    return Observation(status, summary, figures)


def excerpt_lines(body: bytes) -> tuple[str, ...]:
    """The first :data:`EXCERPT_LINES` lines of a body, :data:`EXCERPT_CHARS` at most (the
    harness escapes what a terminal would obey, as in every figure)."""
    text = body[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
    if text.lstrip().startswith(("{", "[")):
        # a JSON body, indented: its first lines then say something, and a character the
        # server escaped (\u001b) is shown as what it is, escaped by the harness like any other
        with contextlib.suppress(ValueError, RecursionError):
            text = re.sub(
                _JSON_CONTROL,
                lambda m: chr(int(m.group(1), 16)),
                json.dumps(json.loads(body), indent=2, ensure_ascii=False),
            )
    lines: list[str] = []
    left = EXCERPT_CHARS
    for line in text.strip("\r\n").splitlines()[:EXCERPT_LINES]:
        line = line.rstrip()
        if len(line) > left:
            lines.append(line[: max(left - 1, 0)] + "…")
            break
        lines.append(line)
        left -= len(line)
    return tuple(lines)


def _describe_failures(parsed: health_bodies.HealthBody) -> str:
    failing = parsed.failing()
    if not failing:
        return f"body says {_WORDS.get(parsed.status, str(parsed.status))}"
    named = [f"{name} {_WORDS[dep.status]}" for name, dep in failing[:_NAMED_FAILURES]]
    if len(failing) > _NAMED_FAILURES:
        named.append(f"and {len(failing) - _NAMED_FAILURES} more")
    return ", ".join(named)


def excerpt(body: bytes) -> str:
    text = " ".join(body.decode("utf-8", errors="replace").split())
    return text if len(text) <= BODY_EXCERPT else text[: BODY_EXCERPT - 1] + "…"
