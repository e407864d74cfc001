"""Incidents from real probe results: a real Redis, loopback services whose readiness depends
on reaching it, and the engine's own rounds."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator

import pytest

from opsdash.engine import run_round
from opsdash.incidents import Incident
from opsdash.plan import build_plan
from opsdash.registry.model import Registry
from opsdash.resources import Resources
from opsdash.state import PlatformState
from tests.loopback import Answer, Platform
from tests.servers import RedisServer


def _reaches(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _ready(redis_port: int) -> Callable[[], Answer]:
    """A NestJS-terminus readiness endpoint that pings its Redis on every request."""

    def answer() -> Answer:
        if _reaches(redis_port):
            body = {"status": "ok", "info": {"redis": {"status": "up"}}, "error": {}}
            return 200, "application/json", json.dumps(body).encode()
        down = {"redis": {"status": "down", "message": "connect ECONNREFUSED"}}
        body = {"status": "error", "info": {}, "error": down, "details": down}
        return 503, "application/json", json.dumps(body).encode()

    return answer


def _liveness_tied_to(redis_port: int) -> Callable[[], Answer]:
    """A /health that wrongly fails with its Redis (the cascading-restart anti-pattern)."""

    def answer() -> Answer:
        ok = _reaches(redis_port)
        return (200 if ok else 503), "text/plain", b"Healthy" if ok else b"Unhealthy"

    return answer


OK_HEALTH: Answer = (200, "application/json", b'{"status":"ok"}')


@pytest.fixture
def platform() -> Iterator[Platform]:
    running = Platform()
    yield running
    running.close()


def _registry(redis: RedisServer, services: dict[str, str]) -> Registry:
    return Registry.from_data(
        {
            "version": 1,
            "platform": "live",
            "defaults": {"timeout": "2s", "latency": {"warn": "2s", "crit": "5s"}},
            "datastores": {"redis": {"kind": "redis", "url": redis.url}},
            "services": {
                name: {"url": url, "depends_on": ["redis"]} for name, url in services.items()
            },
        }
    )


async def _incidents(registry: Registry) -> list[Incident]:
    specs = build_plan(registry)
    async with Resources() as resources:
        round_ = await run_round(specs, resources)
    state = PlatformState(registry, specs)
    state.apply_all(round_.results)
    return list(state.snapshot().incidents)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


async def test_a_redis_outage_is_one_incident_with_its_dependants(
    platform: Platform, redis_factory: Callable[..., RedisServer]
) -> None:
    redis = redis_factory()
    port = redis.port
    services = {
        "booking-service": platform.add({"/health": OK_HEALTH, "/ready": _ready(port)}),
        "chat-service": platform.add({"/health": _liveness_tied_to(port), "/ready": _ready(port)}),
        "course-service": platform.add({"/health": OK_HEALTH, "/ready": _ready(port)}),
    }
    registry = _registry(redis, services)
    assert await _incidents(registry) == []

    redis.stop()
    incidents = await _incidents(registry)

    assert len(incidents) == 1
    (incident,) = incidents
    assert (incident.cause, incident.kind) == ("redis", "datastore-down")
    assert incident.affected.names == ("booking-service", "chat-service", "course-service")
    assert incident.summary == "redis unreachable; 3 services not ready"
    cascading = [note for note in incident.notes if "cascading-restart" in note]
    assert len(cascading) == 1
    assert cascading[0].startswith("chat-service")

    redis.start()
    assert await _incidents(registry) == []


async def test_services_reporting_redis_down_while_it_answers(
    platform: Platform, redis_factory: Callable[..., RedisServer]
) -> None:
    redis = redis_factory()
    routes = {"/health": OK_HEALTH, "/ready": _ready(redis.port)}
    services = {
        name: platform.add(routes) for name in ("booking-service", "chat-service", "course-service")
    }
    registry = _registry(redis, services)
    assert await _incidents(registry) == []

    # The fault is between two services and Redis (their path to it breaks, opsdash's does not):
    # their readiness now tries a port nothing listens on.
    for name in ("booking-service", "chat-service"):
        platform.routes[_port(services[name])]["/ready"] = _ready(1)

    incidents = await _incidents(registry)

    assert len(incidents) == 1
    (incident,) = incidents
    assert (incident.cause, incident.kind) == ("redis", "unreachable-from-dependants")
    assert incident.affected.names == ("booking-service", "chat-service")
    assert "answers opsdash" in incident.summary
