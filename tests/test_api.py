"""One prober, many viewers: serve's read-only API (GET /api/v1/check, GET /api/v1/events),
its bearer token, and the clients (``check --from``, the dashboard's feed, ``ui --from``)
against real ``serve`` instances over loopback, including a source that goes away and comes
back."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from opsdash.api import MAX_PENDING, Api, _Viewer
from opsdash.exporter import Exporter, shard_of
from opsdash.plan import build_plan
from opsdash.registry import load_registry
from opsdash.registry.model import Registry
from opsdash.remote import (
    RemoteFeed,
    SourceError,
    SourceState,
    events,
    merge_documents,
    read_sources,
    source_url,
)
from opsdash.resources import Resources
from opsdash.results import CheckResult
from opsdash.state import PlatformState
from opsdash.status import Status
from tests.helpers import result
from tests.loopback import Platform
from tests.prometheus_servers import free_ports
from tests.servers import refused_port, wait_until
from tests.test_alert_processes import ROOT, opsdash

SCHEMA = json.loads((ROOT / "opsdash" / "schemas" / "check-v1.json").read_text())
OK = (200, "application/json", b'{"status":"ok"}')
DOWN = (503, "application/json", b'{"status":"error"}')
TOKEN = "s3cret-t0ken"


@pytest.fixture
def platform() -> Iterator[Platform]:
    services = Platform()
    yield services
    services.close()


def _registry(urls: list[str]) -> Registry:
    return Registry.from_data(
        {
            "version": 1,
            "platform": "api-test",
            "defaults": {"interval": "200ms", "timeout": "1s"},
            "services": {f"svc{i}": {"url": url} for i, url in enumerate(urls)},
        }
    )


async def _until(condition: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g}s"
        await asyncio.sleep(0.02)
    return found


class Serving:
    """An in-process exporter on a loopback port (restartable on the same port)."""

    def __init__(self, registry: Registry, token: str | None = None) -> None:
        self.registry = registry
        self.specs = build_plan(registry)
        self.token = token
        self.port = 0
        self.exporter: Exporter | None = None
        self._resources: Resources | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._resources = Resources()
        await self._resources.__aenter__()
        self.exporter = Exporter(self.registry, self.specs, self._resources, token=self.token)
        self.port = await self.exporter.start("127.0.0.1", self.port)
        exporter = self.exporter
        await _until(lambda: len(exporter.live.state.results()) == len(self.specs), "results")

    async def stop(self) -> None:
        if self.exporter is not None:
            await self.exporter.stop()
            self.exporter = None
        if self._resources is not None:
            await self._resources.__aexit__(None, None, None)
            self._resources = None


@pytest.fixture
async def serving(platform: Platform) -> AsyncIterator[Serving]:
    urls = [platform.add({"/health": OK, "/ready": OK}) for _ in range(3)]
    server = Serving(_registry(urls), token=TOKEN)
    await server.start()
    yield server
    await server.stop()


def _auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- the API ------------------------------------------------------------------------------------


async def test_check_answers_the_document_of_the_latest_results(serving: Serving) -> None:
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"{serving.url}/api/v1/check", headers=_auth())
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    document = answer.json()
    jsonschema.validate(document, SCHEMA)
    assert {check["id"] for check in document["checks"]} == {spec.id for spec in serving.specs}
    assert document["status"] == "ok" and document["counts"]["ok"] == len(serving.specs)
    assert document["duration_ms"] is None  # no round: results of their own times


def test_started_at_is_the_oldest_results_time(platform: Platform) -> None:
    registry = _registry([platform.add({"/health": OK}), platform.add({"/health": OK})])
    state = PlatformState(registry, build_plan(registry))
    api = Api(state)
    state.apply(result("svc0.health", at=datetime(2026, 1, 25, 10, 0, 7, tzinfo=UTC)))
    api.publish(state.latest("svc0.health"))  # type: ignore[arg-type]
    state.apply(result("svc1.health", Status.WARN, at=datetime(2026, 1, 25, 10, 0, 3, tzinfo=UTC)))
    api.publish(state.latest("svc1.health"))  # type: ignore[arg-type]
    document = json.loads(api.check().body)
    jsonschema.validate(document, SCHEMA)
    assert document["started_at"] == "2026-01-25T10:00:03.000Z"
    assert document["status"] == "warn"
    # the cached document follows the next result
    state.apply(result("svc1.health", at=datetime(2026, 1, 25, 10, 0, 9, tzinfo=UTC)))
    api.publish(state.latest("svc1.health"))  # type: ignore[arg-type]
    document = json.loads(api.check().body)
    assert document["started_at"] == "2026-01-25T10:00:07.000Z"
    assert document["status"] == "ok"


async def test_the_api_is_read_only_and_needs_the_token(serving: Serving) -> None:
    async with httpx.AsyncClient() as client:
        check = f"{serving.url}/api/v1/check"
        missing = await client.get(check)
        wrong = await client.get(check, headers=_auth("nope"))
        basic = await client.get(check, headers={"Authorization": f"Basic {TOKEN}"})
        events_without = await client.get(f"{serving.url}/api/v1/events")
        post = await client.post(check, headers=_auth(), content=b"{}")
        delete = await client.delete(check, headers=_auth())
        unknown = await client.get(f"{serving.url}/api/v1/nope", headers=_auth())
        metrics = await client.get(f"{serving.url}/metrics")  # Prometheus: open as before
    for answer in (missing, wrong, basic, events_without):
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert TOKEN not in answer.text
    assert post.status_code == delete.status_code == 405
    assert post.headers["allow"] == "GET, HEAD"
    assert unknown.status_code == 404
    assert metrics.status_code == 200 and "opsdash_check_status" in metrics.text


def test_before_any_result_check_answers_503_with_an_error_document(platform: Platform) -> None:
    registry = _registry([platform.add({"/health": OK})])
    api = Api(PlatformState(registry, build_plan(registry)))
    answer = api.check()
    assert answer.status.startswith("503")
    document = json.loads(answer.body)
    jsonschema.validate(document, SCHEMA)
    assert "no result yet" in document["error"]["message"]


async def test_events_replay_every_check_then_stream_changes(
    serving: Serving, platform: Platform
) -> None:
    seen: list[CheckResult] = []
    connected = asyncio.Event()
    ids = {spec.id for spec in serving.specs}

    async def follow() -> None:
        async with httpx.AsyncClient() as client:
            async for result in events(client, serving.url, TOKEN, connected=connected.set):
                seen.append(result)

    task = asyncio.create_task(follow())
    try:
        await _until(lambda: {r.id for r in seen} == ids, "the replay of every check")
        assert connected.is_set()
        assert serving.exporter is not None and serving.exporter.api.viewers == 1
        port = next(iter(platform.routes))
        platform.routes[port]["/ready"] = DOWN
        broken = await _until(
            lambda: [r for r in seen if r.id == "svc0.ready" and r.status.value == "crit"],
            "the crit result streamed",
        )
        assert "503" in broken[-1].summary
        assert broken[-1].target.endswith("/ready")
        assert broken[-1].started_at.tzinfo is not None
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert serving.exporter is not None
    await _until(lambda: serving.exporter and serving.exporter.api.viewers == 0, "viewer gone")


def test_a_viewer_that_stops_reading_is_dropped_not_buffered() -> None:
    class _Transport:
        aborted = False

        def abort(self) -> None:
            self.aborted = True

    class _Writer:
        transport = _Transport()

    viewer = _Viewer(_Writer())  # type: ignore[arg-type]
    chunk = b"x" * 65536
    for _ in range(MAX_PENDING // len(chunk)):
        viewer.push(chunk)
    assert not viewer.dropped
    viewer.push(chunk)
    assert viewer.dropped and viewer.chunks == []  # its memory is given back at once


# --- the clients --------------------------------------------------------------------------------


def test_source_urls() -> None:
    assert source_url("http://h:9108/") == "http://h:9108"
    assert source_url("http://h:9108/api/v1/check") == "http://h:9108"
    assert source_url("https://h/opsdash") == "https://h/opsdash"
    for bad in ("h:9108", "ftp://h", "http://"):
        with pytest.raises(ValueError, match="expected a serve URL"):
            source_url(bad)


def _document(checks: list[tuple[str, str, str]], started: str, **extra: Any) -> dict[str, Any]:
    return {
        "schema": "opsdash.check/v1",
        "platform": "p",
        "status": "ok",
        "started_at": started,
        "duration_ms": None,
        "counts": {"ok": 0, "warn": 0, "crit": 0, "unknown": 0},
        "checks": [
            {
                "id": f"{c}.{k}",
                "component": c,
                "check": k,
                "kind": "http",
                "status": s,
                "summary": s,
                "latency_ms": 1.0,
                "target": "http://x",
                "details": {},
                "error": None,
            }
            for c, k, s in checks
        ],
        "components": extra.get("components", []),
        "incidents": extra.get("incidents", []),
        "error": None,
    }


def test_merged_shards_are_one_document() -> None:
    one = _document(
        [("redis", "", "crit"), ("a", "health", "ok")],
        "2026-01-01T10:00:05.000Z",
        components=[{"name": "a", "type": "service", "status": "ok", "checks": ["a.health"]}],
        incidents=[{"cause": "redis", "status": "crit", "affected": ["a"],
                    "summary": "redis unreachable; 1 service not ready", "kind": "datastore-down",
                    "checks": ["redis."], "notes": [], "cause_type": "datastore",
                    "affected_by_type": {"service": ["a"], "worker": [], "datastore": []},
                    "silenced": None}],
    )  # fmt: skip
    two = _document(
        [("a", "ready", "crit"), ("b", "ready", "warn")],
        "2026-01-01T10:00:01.000Z",
        components=[{"name": "a", "type": "service", "status": "crit", "checks": ["a.ready"]}],
        incidents=[{"cause": "redis", "status": "crit", "affected": ["b"], "summary": "b says",
                    "kind": "unreachable-from-dependants", "checks": ["a.ready"], "notes": [],
                    "cause_type": "datastore",
                    "affected_by_type": {"service": ["b"], "worker": [], "datastore": []},
                    "silenced": None}],
    )  # fmt: skip
    merged = merge_documents([one, two])
    jsonschema.validate(merged, SCHEMA)
    assert len(merged["checks"]) == 4
    assert merged["counts"] == {"ok": 1, "warn": 1, "crit": 2, "unknown": 0}
    assert merged["status"] == "crit"
    assert merged["started_at"] == "2026-01-01T10:00:01.000Z"  # the oldest
    assert merged["components"] == [
        {"name": "a", "type": "service", "status": "crit", "checks": ["a.health", "a.ready"]}
    ]
    [incident] = merged["incidents"]  # one root cause, whichever shards saw it
    assert incident["affected"] == ["a", "b"]
    assert incident["kind"] == "datastore-down"  # the shard that sees redis itself
    # the summary counts what the shards explain together
    assert incident["summary"] == "redis unreachable; 2 services not ready"


async def test_read_sources_names_the_source_that_failed(serving: Serving) -> None:
    gone = f"http://127.0.0.1:{refused_port()}"
    with pytest.raises(SourceError) as refused:
        await read_sources([serving.url, gone], TOKEN)
    assert refused.value.url == gone and refused.value.error_type.value == "refused"
    with pytest.raises(SourceError) as unauthorised:
        await read_sources([serving.url], None)
    assert unauthorised.value.error_type.value == "auth"
    assert "--token-file" in unauthorised.value.reason
    document = await read_sources([serving.url], TOKEN)
    assert len(document["checks"]) == len(serving.specs)


async def test_the_feed_reconnects_by_itself_when_serve_comes_back(serving: Serving) -> None:
    results: list[CheckResult] = []
    states: list[SourceState] = []
    feed = RemoteFeed([serving.url], TOKEN)
    task = asyncio.create_task(feed.run(lambda r, _source: results.append(r), states.append))
    try:
        await _until(lambda: states and states[-1].connected, "connected")
        await _until(lambda: len(results) >= len(serving.specs), "the replay")
        await serving.stop()
        down = await _until(lambda: states[-1] if not states[-1].connected else None, "noticed")
        assert down.url == serving.url and down.reason
        await serving.start()  # same port
        before = len(results)
        await _until(lambda: states[-1].connected, "reconnected", timeout=30)
        await _until(lambda: len(results) > before, "results again")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


# --- check --from against two serve processes --------------------------------------------------


def _serve(registry: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        opsdash("serve", "-r", str(registry), "--listen", f"127.0.0.1:{port}", *extra),
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return process


def _stop(process: subprocess.Popen[str]) -> str:
    process.terminate()
    try:
        _, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    return err


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        opsdash("check", *args), cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_check_from_two_shards_merges_them_and_a_broken_source_exits_3(
    platform: Platform, tmp_path: Path
) -> None:
    urls = [platform.add({"/health": OK, "/ready": OK}) for _ in range(4)]
    ports = [int(url.rsplit(":", 1)[1]) for url in urls]
    platform.routes[ports[1]]["/ready"] = DOWN
    registry = tmp_path / "services.yaml"
    registry.write_text(
        "version: 1\nplatform: from-test\ndefaults: {interval: 300ms, timeout: 1s}\nservices:\n"
        + "".join(f"  svc{i}:\n    url: {url}\n" for i, url in enumerate(urls))
    )
    ids = {spec.id for spec in build_plan(load_registry(registry))}
    assert {shard_of(i, 2) for i in ids} == {1, 2}
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    shards = free_ports(2)
    processes = [
        _serve(registry, port, "--shard", f"{n + 1}/2", "--token-file", str(token))
        for n, port in enumerate(shards)
    ]
    try:
        sources = [arg for port in shards for arg in ("--from", f"http://127.0.0.1:{port}")]

        def every_check_reported() -> bool:
            done = _check(*sources, "--token-file", str(token), "--json")
            return done.returncode != 3 and len(json.loads(done.stdout)["checks"]) == len(ids)

        wait_until(every_check_reported, timeout=60, what="both shards' results", interval=0.3)
        done = _check(*sources, "--token-file", str(token), "--json")
        assert done.returncode == 2, done.stderr
        document = json.loads(done.stdout)
        jsonschema.validate(document, SCHEMA)
        assert {check["id"] for check in document["checks"]} == ids
        assert document["counts"]["crit"] == 1
        assert [c["id"] for c in document["checks"] if c["status"] == "crit"] == ["svc1.ready"]

        text = _check(*sources, "--token-file", str(token), "--only", "svc0*")
        assert text.returncode == 0, text.stdout + text.stderr
        assert "svc0.ready" in text.stdout and "svc1" not in text.stdout

        # No token: a clear message, exit 3; with --json still one document.
        refused = _check(*sources)
        assert refused.returncode == 3
        assert "401" in refused.stderr and "--token-file" in refused.stderr
        assert TOKEN not in refused.stderr + refused.stdout
        err = _stop(processes[1])
        assert "Traceback" not in err
        broken = _check(*sources, "--token-file", str(token))
        assert broken.returncode == 3
        assert f"cannot read http://127.0.0.1:{shards[1]}: connection refused" in broken.stderr
        as_json = _check(*sources, "--token-file", str(token), "--json")
        assert as_json.returncode == 3
        one = json.loads(as_json.stdout)
        jsonschema.validate(one, SCHEMA)
        assert one["error"]["type"] == "refused" and one["checks"] == []
        usage = _check("--from", "not-a-url")
        assert usage.returncode == 3 and "expected a serve URL" in usage.stderr
        tagged = _check(*sources, "--tag", "core")
        assert tagged.returncode == 3 and "--only" in tagged.stderr
    finally:
        for process in processes:
            if process.poll() is None:
                _stop(process)


# --- ui --from ----------------------------------------------------------------------------------


async def test_the_dashboard_shows_a_source_going_away_and_reconnects(serving: Serving) -> None:
    from opsdash.tui.app import DashboardApp
    from tests.test_tui import SIZE, header, until

    app = DashboardApp(serving.registry, serving.specs, sources=[serving.url], token=TOKEN)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(app.state.results()) == len(serving.specs), "results")
        await until(pilot, lambda: "from 1/1 serve" in header(app), "connected header")
        assert app.services.row_count == 3
        await serving.stop()
        await until(pilot, lambda: "unreachable" in header(app), "the broken source", 20)
        text = header(app)
        assert serving.url in text and "stale" in text
        assert f"{len(serving.specs)} stale" in text  # every result from it is marked stale
        await pilot.press("r")  # read-only: nothing to run, and no crash
        await serving.start()
        await until(pilot, lambda: "from 1/1 serve" in header(app), "reconnected", 30)
        assert "unreachable" not in header(app)
