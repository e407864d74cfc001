"""The demo platform: eleven services, four workers and all three datastores on loopback.

``async with DemoPlatform() as demo:`` starts every listener on a free 127.0.0.1 port — the
services, the workers, a stand-in Redis, a stand-in MongoDB secondary and a real throwaway
PostgreSQL (:mod:`opsdash.demo.postgres`; without binaries the demo runs without it and
``demo.postgres_note`` says why) — and a driver task that plays the story
(:mod:`opsdash.demo.story`); ``demo.registry`` is a registry pointing at them, ready for
``build_plan``. Pass ``clock`` to control the story time in tests and call
:meth:`DemoPlatform.sync` to apply the current scene.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import replace
from types import TracebackType
from typing import Any, Self

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from opsdash.demo import bodies
from opsdash.demo.mongo import FakeMongo
from opsdash.demo.postgres import (
    EXPECT_INDEXES,
    DemoPostgres,
    prepare_postgres,
    start_postgres,
    start_prepared,
)
from opsdash.demo.resp import FakeRedis
from opsdash.demo.server import HttpServer, Response
from opsdash.demo.story import (
    PROCESSED_PER_S,
    SERVICES,
    WORKERS,
    DemoService,
    DemoWorker,
    Scene,
    scene_at,
)
from opsdash.plan import CheckSpec
from opsdash.registry.model import Registry
from opsdash.resources import Resources
from opsdash.results import Observation
from opsdash.status import Status

Clock = Callable[[], float]
SYNC_EVERY = 0.25
STARTING = "the demo's PostgreSQL is still starting"
"""What a PostgreSQL check says while the server starts in the background."""
_NOT_FOUND = Response(404, b'{"error":"not found"}')
# How the services' readiness bodies name the datastores of the registry.
_POSTGRES_NAMES = frozenset({"database", "db", "postgres", "npgsql"})


class _WorkerMetrics:
    """One worker's Prometheus counters, advanced by the story's rates on each scrape."""

    def __init__(self, worker: DemoWorker) -> None:
        self.worker = worker
        self.registry = CollectorRegistry()
        labels = ["worker"]
        self.processed = Counter(
            "worker_processed", "Jobs processed", labels, registry=self.registry
        ).labels(worker.name)
        self.retries = Counter(
            "worker_retries", "Job attempts retried", labels, registry=self.registry
        ).labels(worker.name)
        self.failures = Counter(
            "worker_failures", "Jobs failed for good", labels, registry=self.registry
        ).labels(worker.name)
        self._last: float | None = None
        # the worker has been up a while: a one-shot check already sees a retry ratio
        self.processed.inc(3000)
        self.retries.inc(24)

    def advance(self, now: float, scene: Scene) -> None:
        """Add what the worker did since the last scrape at the scene's rates."""
        if self._last is not None:
            elapsed = min(max(now - self._last, 0.0), 30.0)
            self.processed.inc(PROCESSED_PER_S * elapsed)
            self.retries.inc(scene.retries_per_s[self.worker.name] * elapsed)
            self.failures.inc(scene.failures_per_s[self.worker.name] * elapsed)
        self._last = now


class DemoPlatform:
    """Every demo listener, and the story that drives them."""

    def __init__(
        self,
        *,
        clock: Clock = time.monotonic,
        drive: bool = True,
        start_at: float = 0.0,
        postgres: bool = True,
        postgres_in_background: bool = False,
    ) -> None:
        """``start_at`` skips into the story (``15`` starts during the redis outage);
        ``postgres=False`` leaves the PostgreSQL server out (tests that do not need it);
        ``postgres_in_background`` starts it after the platform is up (the dashboard's first
        frame need not wait for initdb: its checks wait, see :meth:`gated`)."""
        self._clock = clock
        self._epoch = clock() - start_at
        self._drive = drive
        self._want_postgres = postgres
        self.redis = FakeRedis()
        self.mongo = FakeMongo()
        self._postgres_in_background = postgres_in_background
        self.postgres: DemoPostgres | None = None
        """The PostgreSQL server once it runs."""
        self._postgres_target: DemoPostgres | None = None
        """The PostgreSQL server the registry points at (started or starting)."""
        self._postgres_start: asyncio.Task[None] | None = None
        self.postgres_settled = asyncio.Event()
        """Set once PostgreSQL runs, or has failed to start, or is left out."""
        self.postgres_note = "" if postgres else "PostgreSQL left out"
        """Why the demo runs without PostgreSQL (empty when it has one)."""
        self.services: dict[str, HttpServer] = {
            service.name: HttpServer(self._service_handler(service)) for service in SERVICES
        }
        self._metrics = {worker.name: _WorkerMetrics(worker) for worker in WORKERS}
        self.workers: dict[str, HttpServer] = {
            worker.name: HttpServer(self._worker_handler(worker)) for worker in WORKERS
        }
        self._driver: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def story_time(self) -> float:
        """Seconds since the platform started (the story wraps every cycle)."""
        return self._clock() - self._epoch

    def scene(self) -> Scene:
        """The scene now."""
        return scene_at(self.story_time)

    async def __aenter__(self) -> Self:
        await self.redis.start()
        await self.mongo.start()
        if self._want_postgres and self._postgres_in_background:
            prepared = prepare_postgres()
            if isinstance(prepared, str):
                self.postgres_note = prepared
            else:
                self._postgres_target = prepared
                self._postgres_start = asyncio.create_task(
                    self._start_postgres(prepared), name="opsdash-demo-postgres"
                )
        elif self._want_postgres:
            started = await start_postgres()
            if isinstance(started, str):
                self.postgres_note = started
            else:
                self.postgres = self._postgres_target = started
        if self._postgres_start is None:
            self.postgres_settled.set()
        for server in (*self.services.values(), *self.workers.values()):
            await server.start()
        await self.sync()
        if self._drive:
            self._driver = asyncio.create_task(self._play(), name="opsdash-demo-story")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._driver is not None:
            self._driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._driver
        for server in (*self.services.values(), *self.workers.values()):
            await server.close()
        await self.redis.stop()
        await self.mongo.stop()
        if self._postgres_start is not None:
            self._postgres_start.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._postgres_start
        if self._postgres_target is not None:
            await self._postgres_target.close()

    async def _start_postgres(self, server: DemoPostgres) -> None:
        try:
            reason = await start_prepared(server)
            if reason:
                self.postgres_note = reason  # its checks now say "connection refused"
            else:
                self.postgres = server
                await self.sync()
        finally:
            self.postgres_settled.set()

    def gated(self, specs: list[CheckSpec]) -> list[CheckSpec]:
        """``specs`` whose PostgreSQL checks, while the server starts in the background, say
        so (unknown, for the first run or two) rather than report a false outage."""

        def hold(spec: CheckSpec) -> CheckSpec:
            probe = spec.probe

            async def held(resources: Resources) -> Observation:
                # Not waited for: the wait would count as the check's latency ("slow").
                if not self.postgres_settled.is_set():
                    return Observation(Status.UNKNOWN, STARTING)
                return await probe(resources)

            return replace(spec, probe=held)

        return [hold(spec) if spec.component == "postgres" else spec for spec in specs]

    async def sync(self) -> None:
        """Apply the current scene: Redis up or down, the MongoDB lag, PostgreSQL's leaked
        connections and the dropped index."""
        async with self._lock:
            scene = self.scene()
            if scene.redis_up:
                await self.redis.start()
            else:
                await self.redis.stop()
            self.mongo.lag_s = scene.mongo_lag_s
            if self.postgres is not None:
                await self.postgres.apply(
                    extra_connections=scene.pg_extra_connections,
                    index_dropped=scene.pg_index_dropped,
                )

    async def _play(self) -> None:
        while True:
            await asyncio.sleep(SYNC_EVERY)
            await self.sync()

    def _service_handler(self, service: DemoService) -> Callable[[str], Any]:
        async def handle(path: str) -> Response:
            scene = self.scene()
            delay = scene.slow.get(service.name)
            if delay:
                await asyncio.sleep(delay)
            deps = {name: name != "redis" or scene.redis_up for name in service.dependencies}
            route = path.split("?", 1)[0]
            if route == "/health":
                checked = deps if service.liveness_checks_dependencies else None
                return bodies.liveness(service.format, checked)
            if route == "/ready":
                return bodies.FORMATS[service.format](deps)
            return _NOT_FOUND

        return handle

    def _worker_handler(self, worker: DemoWorker) -> Callable[[str], Any]:
        async def handle(path: str) -> Response:
            scene = self.scene()
            route = path.split("?", 1)[0]
            if route == "/metrics":
                metrics = self._metrics[worker.name]
                metrics.advance(self._clock(), scene)
                return Response(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            if route == "/dlq" and worker.has_dlq:
                queue = f"dlq:{worker.name.removesuffix('-worker')}"
                body = {"queue": queue, "depth": scene.dlq_depth.get(worker.name, 0)}
                return Response(200, json.dumps(body).encode())
            return _NOT_FOUND

        return handle

    def _datastores_of(self, named: tuple[str, ...]) -> list[str]:
        """The registry datastores a service's readiness names, in the registry's words."""
        uses: list[str] = []
        if self._postgres_target is not None and _POSTGRES_NAMES & set(named):
            uses.append("postgres")
        if "redis" in named:
            uses.append("redis")
        if "mongodb" in named:
            uses.append("mongo")
        return uses

    def _datastores(self) -> dict[str, Any]:
        datastores: dict[str, Any] = {
            "redis": {"kind": "redis", "url": self.redis.url, "tags": ["demo"]},
            "mongo": {"kind": "mongo", "uri": self.mongo.uri, "tags": ["demo", "stand-in"]},
        }
        if self._postgres_target is not None:
            datastores["postgres"] = {
                "kind": "postgres",
                "dsn": self._postgres_target.dsn,
                "connections": {"warn": "80%", "crit": "95%"},
                "expect_indexes": EXPECT_INDEXES,
                "tags": ["demo"],
            }
        return datastores

    @property
    def registry(self) -> Registry:
        """A registry of the demo platform, pointing at the ports it listens on."""
        services: dict[str, Any] = {}
        for service in SERVICES:
            services[service.name] = {
                "url": self.services[service.name].url,
                "depends_on": self._datastores_of(service.dependencies),
                "tags": ["demo", service.format],
            }
        workers: dict[str, Any] = {}
        for worker in WORKERS:
            url = self.workers[worker.name].url
            selector = f'{{worker="{worker.name}"}}'
            entry: dict[str, Any] = {
                "max_attempts": worker.max_attempts,
                "depends_on": ["redis"] if worker.uses_redis else [],
                "tags": ["demo", "worker"],
                "metrics": {
                    "source": "prometheus",
                    "url": f"{url}/metrics",
                    "retries": f"worker_retries_total{selector}",
                    "failures": f"worker_failures_total{selector}",
                    "processed": f"worker_processed_total{selector}",
                },
            }
            if worker.has_dlq:
                entry["dlq"] = {
                    "source": "http-json",
                    "url": f"{url}/dlq",
                    "path": "depth",
                    "depth": {"warn": 1, "crit": 100},
                }
            workers[worker.name] = entry
        return Registry.from_data(
            {
                "version": 1,
                "platform": "demo-learning-platform",
                "defaults": {
                    "interval": "2s",
                    "timeout": "2s",
                    "latency": {"warn": "500ms", "crit": "1500ms"},
                },
                "datastores": self._datastores(),
                "services": services,
                "workers": workers,
            }
        )
