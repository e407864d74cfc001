"""Reading ``opsdash serve``'s API instead of probing: ``check --from`` and ``ui --from``.

``--from URL`` names a serve (``http://host:9108``); several merge, one per shard. Two ways in:

- :func:`read_sources`: ``GET /api/v1/check`` of every source at once, merged into one
  ``opsdash.check/v1`` document (checks side by side; a component or an incident that several
  shards report is one, at its worst status). Any source that fails fails the read: a partial
  platform must not pass for the whole one.
- :class:`RemoteFeed`: follows ``GET /api/v1/events`` of every source, hands each result to a
  sink, reports each source's connection state, and reconnects by itself (backing off up to
  :data:`RECONNECT_MAX` seconds) when a source goes away.

A bearer token (``--token-file``) is sent as ``Authorization: Bearer <token>``, never shown.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

import httpx

from opsdash.document import SCHEMA, incident_object
from opsdash.errors import classify
from opsdash.figures import figures_from_json
from opsdash.incidents import AFFECTED_TYPES, Affected, Incident, IncidentKind
from opsdash.records import dataclass
from opsdash.redact import redact_url
from opsdash.results import CheckResult, ErrorType, ProbeError
from opsdash.safetext import printable
from opsdash.state import Component, Snapshot
from opsdash.status import Status, worst

CHECK_PATH = "/api/v1/check"
EVENTS_PATH = "/api/v1/events"
TIMEOUT = 10.0
"""Seconds for one ``GET /api/v1/check`` (connect + answer)."""
IDLE_TIMEOUT = 15.0
"""An event stream silent this long (serve sends a keep-alive every 5s) is dead."""
RECONNECT_MIN = 0.5
RECONNECT_MAX = 10.0
MAX_DOCUMENT = 256 * 1024 * 1024
"""Bytes of one source's document at most (2,000 checks are about 1 MB)."""
MAX_EVENT = 4 * 1024 * 1024
"""Bytes of one event's line at most."""
_STATUS_ORDER = {status: index for index, status in enumerate(Status)}


class SourceError(Exception):
    """A source could not be read: unreachable, refused the token, or not an opsdash serve."""

    def __init__(self, url: str, error_type: ErrorType, reason: str) -> None:
        self.url = redact_url(url)
        self.error_type = error_type
        self.reason = _reason(reason)
        super().__init__(f"{self.url}: {self.reason}")


def _reason(text: str, limit: int = 300) -> str:
    """A source's words made safe for a terminal (:func:`opsdash.safetext.printable`), capped:
    an error page must not flood the header."""
    cleaned = printable(text)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def source_url(text: str) -> str:
    """The base URL of a serve (``http://host:9108``), from what the user typed; ValueError
    when it is not an http(s) URL. A trailing API path is accepted and dropped."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected a serve URL such as http://127.0.0.1:9108; found {text!r}")
    base = text.strip().rstrip("/")
    for path in (CHECK_PATH, EVENTS_PATH):
        base = base.removesuffix(path)
    return base


def _headers(token: str | None, accept: str) -> dict[str, str]:
    headers = {"Accept": accept, "User-Agent": "opsdash"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _answer_error(url: str, response: httpx.Response, body: bytes) -> SourceError:
    """Why a non-200 answer is not a document."""
    if response.status_code == 401:
        return SourceError(
            url, ErrorType.AUTH, "401 Unauthorized: this serve needs a token (--token-file)"
        )
    reason = f"{response.status_code} {response.reason_phrase}"
    try:  # serve explains a 503 (no result yet) in an error document
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = None
    return SourceError(url, ErrorType.PROTOCOL, f"{reason}: {message}" if message else reason)


def _failure(url: str, exc: BaseException) -> SourceError:
    error: ProbeError = classify(exc)
    return SourceError(url, error.type, error.message)


async def fetch_document(client: httpx.AsyncClient, url: str, token: str | None) -> dict[str, Any]:
    """The ``opsdash.check/v1`` document of one source."""
    try:
        async with asyncio.timeout(TIMEOUT):
            async with client.stream(
                "GET", url + CHECK_PATH, headers=_headers(token, "application/json")
            ) as response:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT:
                        raise SourceError(url, ErrorType.PROTOCOL, "answer too large")
    except SourceError:
        raise
    except Exception as exc:  # transport failures, the deadline: classified like a probe's
        raise _failure(url, exc) from None
    if response.status_code != 200:
        raise _answer_error(url, response, bytes(body))
    try:
        document = json.loads(body)
    except ValueError:
        raise SourceError(url, ErrorType.PROTOCOL, "the answer is not JSON") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise SourceError(url, ErrorType.PROTOCOL, f"not an {SCHEMA} document")
    return document


async def read_sources(urls: Sequence[str], token: str | None) -> dict[str, Any]:
    """Every source's document at once, merged; :class:`SourceError` (naming every failed
    source) if any fails."""
    async with httpx.AsyncClient(follow_redirects=False) as client:
        outcomes = await asyncio.gather(
            *(fetch_document(client, url, token) for url in urls), return_exceptions=True
        )
    failed = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    for outcome in failed:
        if not isinstance(outcome, SourceError):
            raise outcome
    if failed:
        first = failed[0]
        assert isinstance(first, SourceError)
        if len(failed) > 1:
            others = "; ".join(str(error) for error in failed[1:])
            raise SourceError(first.url, first.error_type, f"{first.reason}; also {others}")
        raise first
    return merge_documents([outcome for outcome in outcomes if isinstance(outcome, dict)])


def _worst_value(values: Iterable[str]) -> str:
    return worst(Status(value) for value in values).value


def incident_from(data: Mapping[str, Any]) -> Incident:
    """An incident back from its document object (its summary is made again from it)."""
    cause = str(data["cause"])
    kind = IncidentKind(data.get("kind") or IncidentKind.COMPONENT.value)
    by_type = data.get("affected_by_type") or {}
    if by_type:
        affected = Affected(
            tuple(by_type.get("service", ())),
            tuple(by_type.get("worker", ())),
            tuple(by_type.get("datastore", ())),
        )
    else:  # an older serve: the names without their types
        affected = Affected(services=tuple(data["affected"]))
    summary = str(data["summary"])
    detail = summary.removeprefix(f"{cause}: ") if summary.startswith(f"{cause}: ") else summary
    cause_type = data.get("cause_type")
    return Incident(
        cause=cause,
        cause_type=cause_type if cause_type in AFFECTED_TYPES else "datastore",
        kind=kind,
        status=Status(data["status"]),
        affected=affected,
        checks=tuple(data.get("checks") or ()),
        notes=tuple(data.get("notes") or ()),
        detail=detail,
    )


def _merge_incident(into: Incident, other: Incident) -> Incident:
    """One root cause two shards report: what both explain, at the worse status; the kind of
    the shard that sees the cause itself (datastore-down)."""
    first = (
        into.kind is IncidentKind.DATASTORE_DOWN or other.kind is not IncidentKind.DATASTORE_DOWN
    )
    lead = into if first else other
    return replace(
        lead,
        status=worst([into.status, other.status]),
        affected=Affected(
            *(
                tuple(_union(into.affected.of_type(t), other.affected.of_type(t)))
                for t in AFFECTED_TYPES
            )
        ),
        checks=tuple(_union(into.checks, other.checks)),
        notes=tuple(_union(into.notes, other.notes)),
    )


def merge_documents(documents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Several shards' documents as one: checks side by side (a check two sources report is
    kept once, the later source's), counts and status recomputed, a component or an incident
    several shards report merged at its worst, ``started_at`` the oldest."""
    checks: dict[str, dict[str, Any]] = {}
    components: dict[str, dict[str, Any]] = {}
    incidents: dict[str, Incident] = {}
    for document in documents:
        for check in document["checks"]:
            checks[check["id"]] = check
        for component in document["components"]:
            into = components.setdefault(component["name"], {**component, "checks": []})
            into["status"] = _worst_value([into["status"], component["status"]])
            into["checks"] = _union(into["checks"], component["checks"])
        for data in document["incidents"]:
            incident = incident_from(data)
            known = incidents.get(incident.cause)
            incidents[incident.cause] = (
                incident if known is None else _merge_incident(known, incident)
            )
    counts = {status.value: 0 for status in Status}
    for check in checks.values():
        counts[check["status"]] += 1
    first = documents[0] if documents else {}
    ordered = sorted(incidents.values(), key=lambda i: -_STATUS_ORDER[i.status])
    return {
        "schema": SCHEMA,
        "platform": first.get("platform"),
        "status": _worst_value(check["status"] for check in checks.values()),
        "started_at": min((d["started_at"] for d in documents), default=None),
        "duration_ms": None,
        "counts": counts,
        "checks": list(checks.values()),
        "components": list(components.values()),
        "incidents": [incident_object(incident) for incident in ordered],
        "error": None,
    }


def _union(first: Iterable[str], second: Iterable[str]) -> list[str]:
    return list(dict.fromkeys([*first, *second]))


# --- the event stream ---------------------------------------------------------------------


def parse_result(data: Mapping[str, Any]) -> CheckResult:
    """A result from one event's data (a check object plus ``started_at``); ValueError if it
    is not one."""
    try:
        error = data["error"]
        started = _time(str(data["started_at"]))
        latency = data["latency_ms"]
        return CheckResult(
            id=str(data["id"]),
            component=str(data["component"]),
            check=str(data["check"]),
            kind=str(data["kind"]),
            status=Status(data["status"]),
            summary=str(data["summary"]),
            latency_ms=None if latency is None else float(latency),
            target=str(data["target"]),
            figures=figures_from_json(data.get("figures"), data["details"]),
            error=None
            if error is None
            else ProbeError(ErrorType(error["type"]), str(error["message"])),
            started_at=started,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a result event: {exc}") from None


async def events(
    client: httpx.AsyncClient, url: str, token: str | None, *, connected: Callable[[], None]
) -> AsyncIterator[CheckResult]:
    """The results one source streams; returns when the stream ends, raises
    :class:`SourceError` when it cannot be read. ``connected`` is called once the source
    answered with an event stream."""
    timeout = httpx.Timeout(TIMEOUT, read=IDLE_TIMEOUT)
    try:
        async with client.stream(
            "GET",
            url + EVENTS_PATH,
            headers=_headers(token, "text/event-stream"),
            timeout=timeout,
        ) as response:
            if response.status_code != 200:
                raise _answer_error(url, response, await response.aread())
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                raise SourceError(url, ErrorType.PROTOCOL, "not an event stream")
            connected()
            kind = "message"
            async for line in response.aiter_lines():
                if len(line) > MAX_EVENT:
                    raise SourceError(url, ErrorType.PROTOCOL, "event too large")
                if not line:
                    kind = "message"
                elif line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:") and kind == "result":
                    try:
                        yield parse_result(json.loads(line[5:]))
                    except ValueError as exc:
                        raise SourceError(url, ErrorType.PROTOCOL, str(exc)) from None
    except SourceError:
        raise
    except Exception as exc:  # transport failures and timeouts: classified like a probe's
        raise _failure(url, exc) from None
    raise SourceError(url, ErrorType.RESET, "the event stream ended")


@dataclass(frozen=True, slots=True)
class SourceState:
    """One source's connection, as the dashboard shows it."""

    url: str
    connected: bool
    reason: str | None
    """Why it is not connected (None while connected, or before the first attempt ends)."""
    since: datetime


Sink = Callable[[CheckResult, str], None]
"""Called with each result and the URL of the source it came from (as :class:`SourceState`
shows it: password masked)."""
StateSink = Callable[[SourceState], None]


class RemoteFeed:
    """Follows every source's event stream until cancelled, reconnecting by itself."""

    def __init__(self, urls: Sequence[str], token: str | None = None) -> None:
        self.urls = list(urls)
        self.token = token

    async def run(self, sink: Sink, on_state: StateSink) -> None:
        """Feed ``sink`` and ``on_state`` until cancelled."""
        limits = httpx.Limits(max_connections=len(self.urls) + 1)
        client = httpx.AsyncClient(limits=limits, follow_redirects=False)
        async with client, asyncio.TaskGroup() as group:
            for url in self.urls:
                group.create_task(self._follow(client, url, sink, on_state))

    async def _follow(
        self, client: httpx.AsyncClient, url: str, sink: Sink, on_state: StateSink
    ) -> None:
        delay = RECONNECT_MIN
        shown = redact_url(url)
        while True:

            def up() -> None:
                nonlocal delay
                delay = RECONNECT_MIN
                on_state(SourceState(shown, True, None, datetime.now(UTC)))

            reason = "the event stream ended"
            try:
                async for result in events(client, url, self.token, connected=up):
                    sink(result, shown)
            except SourceError as exc:
                reason = exc.reason
            on_state(SourceState(shown, False, reason, datetime.now(UTC)))
            await asyncio.sleep(delay)  # back off: a source that is down is not hammered
            delay = min(RECONNECT_MAX, delay * 2)


# --- a merged document as a snapshot (for the text, JUnit and Prometheus renderers) ---------


def document_snapshot(document: Mapping[str, Any], *, only: Sequence[str] = ()) -> Snapshot:
    """The snapshot a merged document describes, keeping only the checks whose id or component
    matches an ``only`` glob (all without); components and incidents follow the checks kept."""
    started = _time(document["started_at"])
    results = [
        parse_result({"started_at": document["started_at"], **check})
        for check in document["checks"]
        if not only
        or any(fnmatchcase(check["id"], p) or fnmatchcase(check["component"], p) for p in only)
    ]
    kept = {result.id for result in results}
    status_of = {result.id: result.status for result in results}
    components = [
        Component(
            c["name"],
            c["type"],
            worst(status_of[i] for i in c["checks"] if i in kept),
            tuple(i for i in c["checks"] if i in kept),
        )
        for c in document["components"]
        if any(i in kept for i in c["checks"])
    ]
    incidents = [
        incident_from(data)
        for data in document["incidents"]
        if not only or not data.get("checks") or any(c in kept for c in data["checks"])
    ]
    return Snapshot(
        platform=str(document.get("platform") or ""),
        started_at=started,
        duration_ms=None,
        results=tuple(results),
        components=tuple(components),
        incidents=tuple(incidents),
    )


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
