"""Delivering notifications: a JSON webhook, a Slack-compatible webhook, or apprise URLs.

Each delivery is bounded: one attempt per run, within the target's ``timeout``; a failed one
stays in the outbox and is tried again by a later run after a backoff (:func:`retry_delay`),
``retries`` more times at most (:func:`max_attempts`), then given up and reported. Each
notification carries an idempotency key (``Idempotency-Key`` header and ``idempotency_key`` in
the payload, the same on every attempt): a webhook that took a notification but answered after
the timeout can recognise the repeat. Target URLs
carry tokens (a Slack webhook's path *is* its secret), so a failure is described by the target's
name and the kind of error, never by its URL or a library's message that may quote it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from typing import Any

from opsdash.errors import classify
from opsdash.httpclient import HttpClient, HttpxWire
from opsdash.redact import Redactor, header_secrets, url_secrets
from opsdash.registry.model import AlertTarget, AppriseTarget, SlackTarget, WebhookTarget
from opsdash.resources import USER_AGENT
from opsdash.safetext import printable
from opsdash.transport import LeanTransport, Request, Response, Wire

_BACKOFF_BASE = 60.0
_BACKOFF_CAP = 15 * 60.0
IDEMPOTENCY_HEADER = "Idempotency-Key"
_ANSWER_CAP = 64 * 1024
"""Bytes of a target's answer read (nothing in it is judged but the status)."""


class DeliveryError(Exception):
    """A target did not accept a notification; the message is safe to show."""


def title(payload: Mapping[str, Any]) -> str:
    """One line: ``[FIRING crit] redis unreachable; 6 services not ready, 1 worker failing``."""
    kind = str(payload.get("kind", ""))
    status = str(payload.get("status", ""))
    label = {
        "firing": f"FIRING {status}",
        "reminder": f"STILL FIRING {status}",
        "resolved": "RESOLVED",
    }.get(kind, kind.upper())
    flapping = " (flapping)" if payload.get("flapping") else ""
    return f"[{label}] {payload.get('summary', '')}{flapping}"


def text(payload: Mapping[str, Any]) -> str:
    """The body for chat and apprise targets: the incident, then one line per check."""
    lines = [f"{payload.get('platform', '')} · since {payload.get('since', '')}"]
    affected = payload.get("affected") or []
    if affected:
        lines.append("affected: " + ", ".join(str(name) for name in affected))
    for check in payload.get("checks") or []:
        flap = " (flapping)" if check.get("flapping") else ""
        flap += " (silenced)" if check.get("silenced") else ""
        lines.append(f"• {check.get('id')}: {check.get('status')}{flap} {check.get('summary')}")
    lines += [f"note: {note}" for note in payload.get("notes") or []]
    return "\n".join(lines)


def _secrets(target: AlertTarget) -> Redactor:
    urls = target.urls if isinstance(target, AppriseTarget) else (target.url,)
    secrets = [*urls]
    for url in urls:
        secrets += url_secrets(url)
    if isinstance(target, WebhookTarget):
        secrets += header_secrets(target.headers)
    return Redactor.of(secrets)


async def _post(
    client: HttpClient,
    url: str,
    body: Mapping[str, Any],
    *,
    headers: Mapping[str, str],
    timeout: float,
) -> None:
    async with asyncio.timeout(timeout):
        answer = await client.post(url, json=body, headers=headers, max_body=_ANSWER_CAP)
    if not answer.is_success:
        raise DeliveryError(f"answered {answer.status_code} {answer.reason}".strip())


async def _apprise(target: AppriseTarget, payload: Mapping[str, Any]) -> None:
    # apprise costs ~90 ms to import: only runs that notify through it pay for it.
    import apprise

    notifier = apprise.Apprise()
    for url in target.urls:
        if not notifier.add(url):
            raise DeliveryError("apprise does not recognise one of the URLs")
    notify_type = {
        "resolved": apprise.NotifyType.SUCCESS,
        "firing": apprise.NotifyType.FAILURE,
        "reminder": apprise.NotifyType.WARNING,
    }.get(str(payload.get("kind")), apprise.NotifyType.INFO)
    sent = await notifier.async_notify(
        body=text(payload), title=title(payload), notify_type=notify_type
    )
    if not sent:
        raise DeliveryError("apprise could not deliver to every URL")


def idempotency_key(*parts: object) -> str:
    """A key naming one notification (the same for every attempt and target): a digest of
    what makes it unique (platform, group, kind, when it was decided)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()
    return digest[:32]


def max_attempts(target: AlertTarget) -> int:
    """Attempts before a notification to ``target`` is given up (one per run)."""
    return 1 + (APPRISE_RETRIES if isinstance(target, AppriseTarget) else target.retries)


APPRISE_RETRIES = 5
"""apprise targets have no ``retries`` key: as many as the webhook default."""


def retry_delay(attempts: int) -> float:
    """Seconds to wait after ``attempts`` failed attempts before the next: the next run at
    once after the first failure, then 1, 2, 4... minutes, at most 15."""
    if attempts <= 1:
        return 0.0
    return float(min(_BACKOFF_CAP, _BACKOFF_BASE * 2.0 ** (attempts - 2)))


def _key_headers(payload: Mapping[str, Any]) -> dict[str, str]:
    key = payload.get("idempotency_key")
    return {IDEMPOTENCY_HEADER: str(key)} if key else {}


async def _once(client: HttpClient, target: AlertTarget, payload: Mapping[str, Any]) -> None:
    if isinstance(target, WebhookTarget):
        headers = {**_key_headers(payload), **target.headers}
        await _post(client, target.url, payload, headers=headers, timeout=target.timeout)
    elif isinstance(target, SlackTarget):
        body = {"text": f"*{title(payload)}*\n{text(payload)}"}
        await _post(client, target.url, body, headers=_key_headers(payload), timeout=target.timeout)
    else:
        await _apprise(target, payload)


async def deliver(client: HttpClient, target: AlertTarget, payload: Mapping[str, Any]) -> None:
    """One attempt to send ``payload`` to ``target``; :class:`DeliveryError` (with a message
    free of URLs and tokens, control characters escaped) when it failed. Retrying is the
    caller's, one attempt per run (:func:`retry_delay`, :func:`max_attempts`)."""
    redact = _secrets(target)
    try:
        await _once(client, target, payload)
        return
    except DeliveryError as exc:
        reason = str(exc)
    except TimeoutError:
        reason = "no answer within the timeout"
    except Exception as exc:  # a network error or a library's surprise: reported, kept
        error = classify(exc)
        reason = f"{error.type}: {error.message}"
    # The reason may quote the target's reason phrase: the server's text, shown on stderr.
    raise DeliveryError(printable(redact(reason)))


def make_client() -> HttpClient:
    """The HTTP client for deliveries (deadlines are per attempt, in :func:`deliver`): the
    same bounded client as the probes', redirects not followed.

    Unlike the probes' client it honours ``HTTPS_PROXY``/``NO_PROXY``: chat and paging
    services are outside the platform, often behind a corporate proxy."""
    return HttpClient(_DeliveryWire(), headers={"User-Agent": USER_AGENT}, max_redirects=0)


class _DeliveryWire:
    """Direct connections, or httpx's transport through the proxy the environment names for
    a target (the client above, with its caps, is the same either way)."""

    def __init__(self) -> None:
        self._direct: LeanTransport | None = None
        self._proxied: dict[str, Wire] = {}

    async def send(self, request: Request) -> Response:
        return await self._wire(request).send(request)

    def _wire(self, request: Request) -> Wire:
        import urllib.request

        getproxies_environment = urllib.request.getproxies_environment
        proxy_bypass_environment = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]

        proxies = getproxies_environment()
        proxy = proxies.get(request.url.scheme) or proxies.get("all")
        if proxy and not proxy_bypass_environment(request.url.host, proxies):
            wire = self._proxied.get(proxy)
            if wire is None:
                import httpx

                transport = httpx.AsyncHTTPTransport(proxy=proxy, trust_env=False)
                wire = self._proxied[proxy] = HttpxWire(transport)
            return wire
        if self._direct is None:
            self._direct = LeanTransport(max_connections=16, max_keepalive=8)
        return self._direct

    async def aclose(self) -> None:
        wires: list[Wire] = [*self._proxied.values()]
        if self._direct is not None:
            wires.append(self._direct)
        for wire in wires:
            await wire.aclose()
