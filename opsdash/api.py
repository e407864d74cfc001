"""``opsdash serve``'s read-only API: one prober, many viewers.

- ``GET /api/v1/check``: the ``opsdash.check/v1`` document of the latest results (the schema of
  ``check --json``; ``started_at`` is the oldest result's time, ``duration_ms`` is null: there
  is no round). 503 with an error document while no check has run yet.
- ``GET /api/v1/events``: server-sent events. On connect, one ``result`` event per check (its
  latest result), then one per result as it arrives; a comment line every
  :data:`KEEPALIVE_EVERY` seconds so that a client notices a dead server. Each event's data is
  a check object of the document plus the result's ``started_at`` and ``figures`` (the
  type name of its details).

Optional bearer token (``serve --token-file``): every ``/api/`` request must carry
``Authorization: Bearer <token>``; ``/metrics`` and ``/healthz`` stay open (Prometheus and
orchestrators read them).

Cost: with no viewer attached, a result costs one flag. With viewers, each result is encoded
once and the same bytes are queued for every viewer; each viewer has one writer that sends
whatever piled up in one write, so a burst of results costs one system call per viewer. A
viewer that stops reading is dropped once :data:`MAX_PENDING` bytes wait for it (it reconnects
and gets a fresh replay): a slow dashboard never makes serve buffer without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import Mapping
from typing import Any

from opsdash.document import check_document, dumps, error_document
from opsdash.figures import type_name
from opsdash.formats import iso
from opsdash.records import dataclass
from opsdash.result_json import check_object
from opsdash.results import CheckResult
from opsdash.state import PlatformState

CHECK_PATH = "/api/v1/check"
EVENTS_PATH = "/api/v1/events"
KEEPALIVE_EVERY = 5.0
"""Seconds between two keep-alive comments on an idle event stream."""
RECONNECT_MS = 2000
"""The ``retry:`` hint sent to event-stream clients (browsers honour it)."""
MAX_PENDING = 8 * 1024 * 1024
"""Bytes queued for one viewer before it is dropped as too slow."""
WRITE_DEADLINE = 30.0
"""Seconds a viewer may take to accept one write before it is dropped."""


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP response to write."""

    status: str
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def result_object(result: CheckResult) -> dict[str, Any]:
    """One event's data: the document's check object plus when the result was taken and the
    type of its figures (so that a viewer reads ``details`` back into typed figures)."""
    return {
        **check_object(result),
        "started_at": iso(result.started_at),
        "figures": type_name(result.figures),
    }


def result_event(result: CheckResult) -> bytes:
    """One server-sent event carrying ``result``."""
    return b"event: result\ndata: " + dumps(result_object(result)).encode("utf-8") + b"\n\n"


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if there is one."""
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


def _json(status: str, document: dict[str, Any]) -> Response:
    return Response(status, "application/json", dumps(document).encode("utf-8"))


class _Viewer:
    """What is waiting to be sent to one event-stream client."""

    __slots__ = ("chunks", "dropped", "pending", "wake", "writer")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.chunks: list[bytes] = []
        self.pending = 0
        self.dropped = False
        self.wake = asyncio.Event()

    def push(self, chunk: bytes) -> None:
        if self.dropped:
            return
        self.pending += len(chunk)
        if self.pending > MAX_PENDING:
            self.dropped = True  # too slow: its writer closes the connection
            self.chunks.clear()
        else:
            self.chunks.append(chunk)
        self.wake.set()

    def end(self) -> None:
        """The server stops: its writer returns at once, even from a blocked write."""
        self.dropped = True
        self.wake.set()
        self.writer.transport.abort()

    def take(self) -> bytes:
        chunk = b"".join(self.chunks)
        self.chunks.clear()
        self.pending = 0
        self.wake.clear()
        return chunk


class Api:
    """The API routes over the exporter's state; :meth:`publish` is fed every new result."""

    def __init__(self, state: PlatformState, *, token: str | None = None) -> None:
        self.state = state
        self._token = token.encode("utf-8") if token else None
        self._viewers: set[_Viewer] = set()
        self._document: bytes | None = None

    @property
    def viewers(self) -> int:
        """Event-stream clients attached now."""
        return len(self._viewers)

    def publish(self, result: CheckResult) -> None:
        """A check's new latest result (as the state judged it): to every viewer."""
        self._document = None
        if not self._viewers:
            return
        event = result_event(result)
        for viewer in self._viewers:
            viewer.push(event)

    def close(self) -> None:
        """End every event stream (serve is stopping); their clients reconnect elsewhere."""
        for viewer in list(self._viewers):
            viewer.end()

    def authorized(self, headers: Mapping[str, str]) -> bool:
        """Whether the request may read the API (always, without a token)."""
        if self._token is None:
            return True
        given = bearer_token(headers)
        return given is not None and hmac.compare_digest(given.encode("utf-8"), self._token)

    def respond(self, method: str, path: str, headers: Mapping[str, str]) -> Response | None:
        """The answer to an ``/api/`` request; None for the event stream (see :meth:`stream`)."""
        if method not in ("GET", "HEAD"):
            return Response(
                "405 Method Not Allowed",
                "text/plain",
                b"the API is read-only: GET\n",
                (("Allow", "GET, HEAD"),),
            )
        if not self.authorized(headers):
            return Response(
                "401 Unauthorized",
                "text/plain",
                b"a bearer token is required\n",
                (("WWW-Authenticate", 'Bearer realm="opsdash"'),),
            )
        if path == CHECK_PATH:
            return self.check()
        if path == EVENTS_PATH:
            return None
        return Response("404 Not Found", "text/plain", b"not found\n")

    def check(self) -> Response:
        """``GET /api/v1/check``."""
        results = self.state.results()
        if not results:
            message = "opsdash serve has no result yet: its first checks are still running"
            return _json(
                "503 Service Unavailable",
                error_document(message, platform=self.state.registry.platform),
            )
        if self._document is None:
            oldest = min(result.started_at for result in results)
            snapshot = self.state.snapshot(started_at=oldest)
            self._document = dumps(check_document(snapshot)).encode("utf-8")
        return Response("200 OK", "application/json", self._document)

    async def stream(self, writer: asyncio.StreamWriter, *, head_only: bool = False) -> None:
        """``GET /api/v1/events``: replay the latest results, then stream new ones until the
        client goes away, stops reading, or the server stops (:meth:`close`)."""
        head = (
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: text/event-stream; charset=utf-8\r\n"
            "Cache-Control: no-store\r\n"
            "X-Accel-Buffering: no\r\n"  # a reverse proxy must not hold events back
            "Connection: close\r\n\r\n"
        ).encode("latin-1")
        if head_only:
            writer.write(head)
            await writer.drain()
            return
        viewer = _Viewer(writer)
        replay = [result_event(result) for result in self.state.results()]
        self._viewers.add(viewer)
        try:
            writer.write(head + f"retry: {RECONNECT_MS}\n\n".encode() + b"".join(replay))
            await asyncio.wait_for(writer.drain(), WRITE_DEADLINE)
            while not writer.is_closing():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(viewer.wake.wait(), KEEPALIVE_EVERY)
                if viewer.dropped:
                    return
                chunk = viewer.take() or b": keep-alive\n\n"
                writer.write(chunk)
                await asyncio.wait_for(writer.drain(), WRITE_DEADLINE)
        except (TimeoutError, ConnectionError):
            return  # a viewer that went away or stopped reading costs only its connection
        finally:
            self._viewers.discard(viewer)
