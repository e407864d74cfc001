"""Delivering notifications: a JSON webhook, a Slack-compatible webhook, or apprise URLs.

Each delivery is bounded: ``timeout`` per attempt and ``retries`` more attempts with a short
backoff inside the run; what still fails stays in the outbox for the next run. Target URLs
carry tokens (a Slack webhook's path *is* its secret), so a failure is described by the target's
name and the kind of error, never by its URL or a library's message that may quote it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from opsdash.errors import classify
from opsdash.httpclient import HttpClient, HttpxWire
from opsdash.redact import Redactor, header_secrets, url_secrets
from opsdash.registry.model import AlertTarget, AppriseTarget, SlackTarget, WebhookTarget
from opsdash.resources import USER_AGENT
from opsdash.safetext import printable
from opsdash.transport import LeanTransport, Request, Response, Wire

_BACKOFF_BASE = 0.25
_BACKOFF_CAP = 2.0
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


async def _once(client: HttpClient, target: AlertTarget, payload: Mapping[str, Any]) -> None:
    if isinstance(target, WebhookTarget):
        await _post(client, target.url, payload, headers=target.headers, timeout=target.timeout)
    elif isinstance(target, SlackTarget):
        body = {"text": f"*{title(payload)}*\n{text(payload)}"}
        await _post(client, target.url, body, headers={}, timeout=target.timeout)
    else:
        await _apprise(target, payload)


async def deliver(client: HttpClient, target: AlertTarget, payload: Mapping[str, Any]) -> None:
    """Send ``payload`` to ``target``, retrying ``retries`` times; raise :class:`DeliveryError`
    (with a message free of URLs and tokens) when every attempt failed."""
    attempts = 1 + (0 if isinstance(target, AppriseTarget) else target.retries)
    redact = _secrets(target)
    reason = "not attempted"
    for attempt in range(attempts):
        if attempt:
            await asyncio.sleep(min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** (attempt - 1)))
        try:
            await _once(client, target, payload)
            return
        except DeliveryError as exc:
            reason = str(exc)
        except TimeoutError:
            reason = "no answer within the timeout"
        except Exception as exc:  # a network error or a library's surprise: retry, then report
            error = classify(exc)
            reason = f"{error.type}: {error.message}"
    noun = "attempt" if attempts == 1 else "attempts"
    # The reason may quote the target's reason phrase: the server's text, shown on stderr.
    raise DeliveryError(printable(redact(f"{reason} ({attempts} {noun})")))


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
