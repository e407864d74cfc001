"""``opsdash serve``: a Prometheus exporter. Checks run on their intervals (the engine's
:class:`~opsdash.engine.Scheduler`); ``/metrics`` exposes the latest results.

The HTTP side is a few lines of asyncio on the same event loop as the probes: two routes do
not need a web framework, and one loop means no thread ever reads state while it changes.
Each result's series are written out in the text format when it arrives (one string per family
for its check, replacing the last); the exposition joins them with the families read from the
whole state (components, incidents, error counters) in the background, at most once a second
after new results, so a scrape answers at once and shows results at most a second old. What
grows with time is bounded: results per check (the state's ring buffer) and error counters
(checks x error types).

``--shard i/n`` keeps the checks whose ``crc32(id) % n == i - 1``: deterministic across hosts
and restarts, and a check moves only when ``n`` changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import urllib.parse
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from opsdash.api import Api, Response
from opsdash.collector import CollectorPolicy
from opsdash.engine import Scheduler
from opsdash.incidents import find_incidents
from opsdash.metrics import (
    CHECK_FAMILIES,
    Heads,
    check_lines,
    component_family,
    exposition,
    family_header,
    go_float,
    incident_families,
    info_family,
    sample_head,
)
from opsdash.plan import CheckSpec
from opsdash.registry.model import Registry
from opsdash.resources import Resources, pool_for, run_async
from opsdash.results import CheckResult
from opsdash.state import PlatformState, components

MAX_REQUEST_HEAD = 16 * 1024
REQUEST_DEADLINE = 10.0
MAX_POST_BODY = 4096
"""Bytes of a POST body read (and ignored); more is refused."""
RENDER_EVERY = 1.0
"""Seconds between two renderings of ``/metrics`` while results keep arriving."""


def parse_listen(text: str) -> tuple[str, int]:
    """``127.0.0.1:9108`` -> ("127.0.0.1", 9108); ``[::1]:9108`` for IPv6."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:9108; found {text!r}")
    return host.strip("[]"), int(port)


def parse_shard(text: str) -> tuple[int, int]:
    """``2/3`` -> (2, 3): shard 2 of 3, counted from 1."""
    index, sep, count = text.partition("/")
    if not sep or not index.isdigit() or not count.isdigit():
        raise ValueError(f"expected I/N such as 1/3; found {text!r}")
    i, n = int(index), int(count)
    if n < 1 or not 1 <= i <= n:
        raise ValueError(f"expected 1 <= I <= N; found {text!r}")
    return i, n


def shard_of(check_id: str, count: int) -> int:
    """The shard (counted from 1) of ``count`` that runs ``check_id``."""
    return zlib.crc32(check_id.encode("utf-8")) % count + 1


def shard_specs(specs: Sequence[CheckSpec], index: int, count: int) -> list[CheckSpec]:
    """The specs shard ``index`` of ``count`` runs."""
    return [spec for spec in specs if shard_of(spec.id, count) == index]


class LiveState:
    """What the exporter knows: the platform state plus run and error counters, and the text
    of ``/metrics`` kept per check."""

    def __init__(self, registry: Registry, specs: Sequence[CheckSpec]) -> None:
        self.registry = registry
        self.specs = list(specs)
        self.state = PlatformState(registry, specs)
        self.runs: dict[str, int] = {}
        self.errors: dict[tuple[str, str], int] = {}
        self.started = time.time()
        # Per check (in the order checks first reported): its series in the text format, one
        # string per family of CHECK_FAMILIES, and its last-run sample.
        self._lines: dict[str, tuple[str, ...]] = {}
        self._last_run: dict[str, str] = {}
        self._heads: Heads = {}  # each series' name and labels, written once
        self._last_run_heads: dict[str, str] = {}
        self._components: str | None = None
        self._info = exposition(
            [info_family((s.id, s.component, s.kind, s.tags) for s in self.specs)]
        )

    def record(self, result: CheckResult) -> None:
        """The scheduler's sink: keep one more result.

        The check's series are written out here, once per run, so that rendering ``/metrics``
        only joins strings: it stays cheap with thousands of checks."""
        changed = self.state.apply(result) is not None
        latest = self.state.latest(result.id)
        if latest is not None:
            self._lines[result.id] = check_lines(latest, self._heads)
            head = self._last_run_heads.get(result.id)
            if head is None:
                head = self._last_run_heads[result.id] = sample_head(
                    _LAST_RUN, ("check",), (result.id,)
                )
            self._last_run[result.id] = head + go_float(latest.started_at.timestamp()) + "\n"
        if changed:
            self._components = None
        self.runs[result.id] = self.runs.get(result.id, 0) + 1
        if result.error is not None:
            key = (result.id, result.error.type.value)
            self.errors[key] = self.errors.get(key, 0) + 1

    def _component_text(self) -> str:
        # Recomputed only after a status change: most runs change nothing.
        if self._components is None:
            results = self.state.results()
            self._components = exposition(
                [component_family(components(self.registry, self.specs, results))]
            )
        return self._components

    def render(self) -> bytes:
        """``/metrics`` now, in the Prometheus text format (the same bytes prometheus_client's
        ``generate_latest`` writes for these families)."""
        parts: list[str] = []
        if self._lines:
            per_check = self._lines.values()
            for index, family in enumerate(CHECK_FAMILIES):
                parts.append(family.header())
                parts += (lines[index] for lines in per_check)
        parts += (self._info, self._component_text())
        # Incidents read every latest result: built at render time (at most once a second),
        # never per result.
        results = self.state.results()
        others: list[Metric] = incident_families(find_incidents(self.registry, self.specs, results))
        errors = CounterMetricFamily(
            "opsdash_probe_errors",
            "Probe runs that got no answer to judge, by error class.",
            labels=["check", "type"],
        )
        for (check_id, error_type), count in self.errors.items():
            errors.add_metric([check_id, error_type], float(count))
        others.append(errors)
        parts.append(exposition(others))
        # The state knows when each check last ran: its checks in registry order.
        parts.append(family_header(_LAST_RUN, _LAST_RUN_HELP, "gauge"))
        last_run = self._last_run
        parts += (last_run[spec.id] for spec in self.specs if spec.id in last_run)
        checks = GaugeMetricFamily(
            "opsdash_exporter_checks", "Checks this exporter (shard) runs.", value=len(self.specs)
        )
        started = GaugeMetricFamily(
            "opsdash_exporter_start_timestamp_seconds",
            "When the exporter started.",
            value=self.started,
        )
        parts.append(exposition([checks, started]))
        return "".join(parts).encode("utf-8")


_LAST_RUN = "opsdash_check_last_run_timestamp_seconds"
_LAST_RUN_HELP = "When the check last ran (seconds since the epoch)."


def request_headers(head: bytes) -> dict[str, str]:
    """A request head's header fields, names in lower case (the last of a repeated name)."""
    fields: dict[str, str] = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip().lower()] = value.strip()
    return fields


class Exporter:
    """The scheduler, the state and the HTTP server, started and stopped together."""

    def __init__(
        self,
        registry: Registry,
        specs: Sequence[CheckSpec],
        resources: Resources,
        *,
        concurrency: int | None = None,
        token: str | None = None,
        state_path: Path | None = None,
    ) -> None:
        self.live = LiveState(registry, specs)
        self.api = Api(self.live.state, token=token)
        self.registry = registry
        self.state_path = state_path
        """Where ``POST /heartbeat/ID`` records beats; ``None``: the route is off."""
        self.scheduler = Scheduler(
            specs,
            resources,
            self._record,
            concurrency=concurrency or registry.defaults.concurrency,
        )
        self._server: asyncio.Server | None = None
        # Open client connections and their handlers, closed by stop(): a handler still
        # waiting when the loop ends is cancelled, and Python 3.11's stream callback then
        # prints one CancelledError traceback per connection.
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        # /metrics is rendered in the background, at most once a second and only after new
        # results, so that a scrape answers at once however many checks there are (rendering
        # 1,000 checks takes tens of ms: paid once a second, not by every scrape).
        self._exposition: bytes | None = None
        self._stale = asyncio.Event()
        self._renderer: asyncio.Task[None] | None = None
        # The process's collector while the exporter runs: the plan, the tasks and the
        # connections live as long as it does (frozen at start and once every check has
        # reported), and a round's short-lived objects mostly die before a young collection.
        self._collector = CollectorPolicy()
        self._unreported: set[str] | None = {spec.id for spec in self.live.specs}

    def _record(self, result: CheckResult) -> None:
        self.live.record(result)
        if self._unreported is not None:
            self._unreported.discard(result.id)
            if not self._unreported:
                self._unreported = None
                self._collector.settled()  # every check has run once
        self._stale.set()
        latest = self.live.state.latest(result.id)  # as the state judged it (rates derived)
        if latest is not None:
            self.api.publish(latest)

    def exposition(self) -> bytes:
        """The latest rendering of ``/metrics`` (made now if there is none yet)."""
        if self._exposition is None:
            self._exposition = self.live.render()
        return self._exposition

    async def _render_loop(self) -> None:
        while True:
            await self._stale.wait()
            self._stale.clear()
            self._exposition = self.live.render()
            await asyncio.sleep(RENDER_EVERY)

    async def start(self, host: str, port: int) -> int:
        """Start the checks and listen; the port actually bound (for ``port=0``)."""
        self._server = await asyncio.start_server(self._client, host, port, limit=MAX_REQUEST_HEAD)
        self._collector.start()
        self.scheduler.start()
        self._renderer = asyncio.create_task(self._render_loop(), name="opsdash:metrics")
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening, then stop the checks (in-flight probes are cancelled)."""
        # The API's event streams never end by themselves: wake them to end now (the
        # connections are closed below, with every other).
        self.api.close()
        started = self._server is not None
        if self._server is not None:
            self._server.close()
            await self._close_connections()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), REQUEST_DEADLINE)
            self._server = None
        if self._renderer is not None:
            self._renderer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renderer
            self._renderer = None
        await self.scheduler.stop()
        if started:
            self._collector.stop()

    async def _close_connections(self) -> None:
        """End every open client connection: its handler sees the connection drop and returns
        as for any client that went away (no cancellation, so no traceback)."""
        handlers = list(self._connections)
        for writer in self._connections.values():
            writer.transport.abort()
        if handlers:
            await asyncio.wait(handlers, timeout=REQUEST_DEADLINE)

    def respond(
        self, method: str, path: str, headers: dict[str, str] | None = None
    ) -> Response | None:
        """The answer to one request; None for the API's event stream (:meth:`Api.stream`)."""
        if path.startswith("/api/"):
            return self.api.respond(method, path, headers or {})
        if method not in ("GET", "HEAD"):
            return Response(
                "405 Method Not Allowed",
                "text/plain",
                b"only GET and HEAD (and POST /heartbeat/ID)\n",
            )
        if path == "/metrics":
            return Response("200 OK", CONTENT_TYPE_LATEST, self.exposition())
        if path == "/healthz":
            return Response("200 OK", "text/plain", b"ok\n")
        if path == "/":
            body = b"opsdash exporter: /metrics, /healthz, /api/v1/check, /api/v1/events\n"
            return Response("200 OK", "text/plain", body)
        return Response("404 Not Found", "text/plain", b"not found\n")

    async def _post(
        self, target: str, head: bytes, reader: asyncio.StreamReader
    ) -> Response | None:
        """``POST /heartbeat/ID``: a job reports in (:mod:`opsdash.heartbeats`); any other
        POST gets what :meth:`respond` says of it (405)."""
        path, _, query = target.partition("?")
        headers = request_headers(head)
        if not path.startswith("/heartbeat/") or self.state_path is None:
            return self.respond("POST", path, headers)
        length = headers.get("content-length", "0")
        if not length.isdigit() or int(length) > MAX_POST_BODY:
            return Response("413 Content Too Large", "text/plain", b"the body is too large\n")
        await reader.readexactly(int(length))  # ignored: status and message are in the query
        return await heartbeat_response(
            self.registry,
            self.state_path,
            name=urllib.parse.unquote(path.removeprefix("/heartbeat/")),
            query=urllib.parse.parse_qs(query),
            authorization=headers.get("authorization"),
        )

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections[task] = writer
        try:
            async with asyncio.timeout(REQUEST_DEADLINE):
                head = await reader.readuntil(b"\r\n\r\n")
                method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
                if method == "POST":
                    response: Response | None = await self._post(target, head, reader)
                else:
                    response = self.respond(method, target.split("?", 1)[0], request_headers(head))
                if response is not None:
                    body = b"" if method == "HEAD" else response.body
                    extra = "".join(f"{name}: {value}\r\n" for name, value in response.headers)
                    writer.write(
                        (
                            f"HTTP/1.1 {response.status}\r\n"
                            f"Content-Type: {response.content_type}\r\n"
                            f"Content-Length: {len(response.body)}\r\n"
                            f"{extra}Connection: close\r\n\r\n"
                        ).encode("latin-1")
                        + body
                    )
                    await writer.drain()
            if response is None:  # the event stream: long-lived, outside the request deadline
                await self.api.stream(writer, head_only=method == "HEAD")
        except (TimeoutError, ConnectionError, ValueError, asyncio.IncompleteReadError):
            pass  # a client that hangs, drops or sends garbage costs only its own connection
        except asyncio.LimitOverrunError:
            with contextlib.suppress(ConnectionError):
                writer.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n")
        except asyncio.CancelledError:
            # Only at the loop's end (stop() closes connections first): nothing awaits this
            # task, and Python 3.11 would print the cancellation as an error.
            writer.transport.abort()
        finally:
            if task is not None:
                self._connections.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def heartbeat_response(
    registry: Registry,
    state_path: Path,
    *,
    name: str,
    query: dict[str, list[str]],
    authorization: str | None,
) -> Response:
    """Record a heartbeat for ``name`` if the token matches; the answer to send."""
    from opsdash.alertstate.store import StateFileError
    from opsdash.heartbeats import HeartbeatError, find, record, reported_status, token_matches

    def plain(status: str, text: str) -> Response:
        return Response(status, "text/plain; charset=utf-8", (text + "\n").encode())

    try:
        definition = find(registry, name)
    except HeartbeatError:
        return plain("404 Not Found", "no such heartbeat check")
    if not token_matches(definition, authorization):
        # Same answer for a missing, wrong or unconfigured token: nothing to probe for.
        return plain("403 Forbidden", "a valid heartbeat token is required")
    try:
        status = reported_status(query.get("status", [""])[-1])
    except HeartbeatError as exc:
        return plain("400 Bad Request", str(exc))
    message = query.get("message", [""])[-1]
    try:
        beat = await asyncio.to_thread(
            record, state_path, definition, status=status, message=message, source="http"
        )
    except StateFileError:
        return plain("503 Service Unavailable", "the alerting state cannot be written")
    return plain("200 OK", f"recorded a heartbeat for {beat.check_id} ({beat.status})")


async def serve(
    registry: Registry,
    specs: Sequence[CheckSpec],
    *,
    host: str,
    port: int,
    stop: asyncio.Event,
    announce: Callable[[str], None] = print,
    token: str | None = None,
    state_path: Path | None = None,
) -> None:
    """Run the exporter until ``stop`` is set (``state_path``: the alerting state heartbeat
    checks read and ``POST /heartbeat/ID`` writes)."""
    concurrency = registry.defaults.concurrency
    keepalive = pool_for(len(specs), concurrency=concurrency)
    async with Resources(
        concurrency=concurrency, keepalive=keepalive, state_path=state_path
    ) as resources:
        exporter = Exporter(registry, specs, resources, token=token, state_path=state_path)
        bound = await exporter.start(host, port)
        announce(f"opsdash serve: {len(specs)} checks; metrics on http://{host}:{bound}/metrics")
        try:
            await stop.wait()
        finally:
            await exporter.stop()
    announce("opsdash serve: stopped")


def serve_forever(
    registry: Registry,
    specs: Sequence[CheckSpec],
    *,
    host: str,
    port: int,
    announce: Callable[[str], None] = print,
    token: str | None = None,
    state_path: Path | None = None,
) -> None:
    """Run the exporter until SIGTERM or SIGINT, then shut down cleanly."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await serve(
            registry,
            specs,
            host=host,
            port=port,
            stop=stop,
            announce=announce,
            token=token,
            state_path=state_path,
        )

    run_async(main())
