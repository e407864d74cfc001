"""DLQ depth from a real RabbitMQ through its management HTTP API (127.0.0.1:15672).

The queue is declared, fed and drained through the management API itself (no AMQP client
needed). RabbitMQ refreshes queue figures on its statistics interval (5 s by default), so the
tests poll the check until it shows the expected depth, within a deadline.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from opsdash.harness import run_probe
from opsdash.plan import build_plan
from opsdash.registry.model import Registry
from opsdash.resources import Resources
from opsdash.results import CheckResult, ErrorType
from opsdash.status import Status
from tests.loopback import Platform
from tests.servers import unavailable

MANAGEMENT = "http://127.0.0.1:15672"
AUTH = ("guest", "guest")
STATS_DEADLINE = 20.0  # a few statistics intervals

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def management() -> str:
    """The management API, or a skip (a failure under OPSDASH_REQUIRE_SERVERS=1)."""
    try:
        response = httpx.get(f"{MANAGEMENT}/api/overview", auth=AUTH, timeout=5)
    except httpx.HTTPError as exc:
        unavailable(
            f"RabbitMQ management API not reachable on {MANAGEMENT} ({exc}); "
            "run `rabbitmq-plugins enable rabbitmq_management`"
        )
    if response.status_code != 200:
        unavailable(f"RabbitMQ management API answered {response.status_code} to guest")
    return MANAGEMENT


@pytest.fixture
async def api(management: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=management, auth=AUTH, timeout=10) as client:
        yield client


async def declare(api: httpx.AsyncClient, vhost: str, queue: str) -> None:
    path = f"/api/queues/{quote(vhost, safe='')}/{quote(queue, safe='')}"
    response = await api.put(path, json={"durable": False, "auto_delete": False})
    assert response.status_code in (201, 204), response.text


async def publish(api: httpx.AsyncClient, vhost: str, queue: str, count: int) -> None:
    path = f"/api/exchanges/{quote(vhost, safe='')}/amq.default/publish"
    an_hour_ago = int(time.time()) - 3600
    for i in range(count):
        body = {
            "properties": {"timestamp": an_hour_ago, "delivery_mode": 1},
            "routing_key": queue,
            "payload": json.dumps({"job": i}),
            "payload_encoding": "string",
        }
        response = await api.post(path, json=body)
        assert response.json() == {"routed": True}


async def consume(api: httpx.AsyncClient, vhost: str, queue: str, count: int) -> None:
    path = f"/api/queues/{quote(vhost, safe='')}/{quote(queue, safe='')}/get"
    body = {"count": count, "ackmode": "ack_requeue_false", "encoding": "auto"}
    response = await api.post(path, json=body)
    assert len(response.json()) == count


def registry(queue: str, *, vhost: str = "/", password: str = "guest") -> Registry:
    dlq = {
        "source": "rabbitmq",
        "management_url": MANAGEMENT,
        "vhost": vhost,
        "queue": queue,
        "username": "guest",
        "password": password,
        "depth": {"warn": 1, "crit": 10},
    }
    return Registry.from_data({"version": 1, "platform": "test", "workers": {"w": {"dlq": dlq}}})


async def check(reg: Registry) -> CheckResult:
    spec = next(spec for spec in build_plan(reg) if spec.id == "w.dlq")
    async with Resources() as resources:
        result = await run_probe(spec, resources)
    assert spec.derive is not None
    return spec.derive(result, [])


@pytest.fixture
def fake_management() -> Iterator[Callable[[dict[str, Any]], str]]:
    """A loopback management API answering one queue object, for what a real RabbitMQ does
    only at unpredictable moments (a queue before its first statistics emission)."""
    platform = Platform()

    def serve(queue: dict[str, Any]) -> str:
        body = json.dumps(queue).encode()
        return platform.add({"/api/queues/%2F/q": (200, "application/json", body)})

    yield serve
    platform.close()


def fake_registry(base: str) -> Registry:
    dlq = {"source": "rabbitmq", "management_url": base, "queue": "q",
           "depth": {"warn": 1, "crit": 10}}  # fmt: skip
    return Registry.from_data({"version": 1, "platform": "test", "workers": {"w": {"dlq": dlq}}})


async def check_until(reg: Registry, done: Callable[[CheckResult], bool]) -> CheckResult:
    """Run the check until ``done`` holds (RabbitMQ's statistics lag), within a deadline."""
    deadline = time.monotonic() + STATS_DEADLINE
    while True:
        result = await check(reg)
        if done(result) or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.25)


def depth_is(n: int, *reported: str) -> Callable[[CheckResult], bool]:
    """The check shows depth ``n`` and RabbitMQ has reported each of the figures named (it
    leaves ``consumers`` and the message counts out until its first statistics emission)."""
    return lambda result: (
        result.details.get("depth") == n
        and all(result.details.get(name) is not None for name in reported)
    )


async def test_depth_follows_publish_and_consume(api: httpx.AsyncClient) -> None:
    queue = f"opsdash-dlq-{uuid.uuid4().hex[:8]}"
    await declare(api, "/", queue)
    try:
        await publish(api, "/", queue, 12)
        reg = registry(queue)
        result = await check_until(reg, depth_is(12, "messages_ready", "consumers"))
        assert result.details["depth"] == 12
        assert result.status is Status.CRIT
        assert result.details["messages_ready"] == 12
        assert result.details["consumers"] == 0
        # The messages carry a timestamp property: the head message is an hour old.
        assert 3500 < result.details["oldest_age_s"] < 3700
        assert result.target == f"{MANAGEMENT}/api/queues/%2F/{queue}"

        await consume(api, "/", queue, 9)
        result = await check_until(reg, depth_is(3))
        assert result.details["depth"] == 3
        assert result.status is Status.WARN
        assert result.summary.startswith("3 dead letters (warn at 1)")
    finally:
        await api.delete(f"/api/queues/%2F/{queue}")


async def test_vhost_with_a_slash_is_percent_encoded(api: httpx.AsyncClient) -> None:
    vhost = f"ops/dash {uuid.uuid4().hex[:6]}"
    encoded = quote(vhost, safe="")
    assert (await api.put(f"/api/vhosts/{encoded}")).status_code in (201, 204)
    try:
        grant = {"configure": ".*", "write": ".*", "read": ".*"}
        await api.put(f"/api/permissions/{encoded}/guest", json=grant)
        await declare(api, vhost, "dead letters")
        await publish(api, vhost, "dead letters", 2)
        result = await check_until(registry("dead letters", vhost=vhost), depth_is(2))
        assert result.details["depth"] == 2
        assert "/api/queues/ops%2Fdash%20" in result.target
        assert result.target.endswith("/dead%20letters")
    finally:
        await api.delete(f"/api/vhosts/{encoded}")


async def test_missing_queue_is_unknown_with_a_plain_reason(api: httpx.AsyncClient) -> None:
    result = await check(registry("opsdash-no-such-queue"))
    assert result.status is Status.UNKNOWN
    assert result.error is not None and result.error.type is ErrorType.CONFIG
    assert "no queue 'opsdash-no-such-queue' in vhost '/'" in result.summary


async def test_refused_credentials_are_crit_and_the_password_stays_hidden(
    api: httpx.AsyncClient,
) -> None:
    result = await check(registry("anything", password="not-the-password"))
    assert result.status is Status.CRIT
    assert result.error is not None and result.error.type is ErrorType.AUTH
    shown: Any = [result.summary, result.target, result.details, result.error.message]
    assert "not-the-password" not in json.dumps(shown)


async def test_a_queue_without_statistics_yet_says_so(
    fake_management: Callable[[dict[str, Any]], str],
) -> None:
    # Straight after a declaration RabbitMQ answers the queue without any counts.
    result = await check(fake_registry(fake_management({"name": "q", "vhost": "/"})))
    assert result.status is Status.UNKNOWN
    assert result.summary == "RabbitMQ has not reported a message count for 'q' yet"


async def test_figures_not_reported_yet_are_named_not_read_as_zero(
    fake_management: Callable[[dict[str, Any]], str],
) -> None:
    result = await check(fake_registry(fake_management({"name": "q", "messages": 3})))
    assert result.status is Status.WARN
    assert result.details["consumers"] is None
    assert "messages_ready, messages_unacknowledged, consumers not reported yet" in (result.summary)


@pytest.mark.parametrize("field", ["messages", "consumers"])
async def test_a_negative_count_is_unknown_and_says_why(
    fake_management: Callable[[dict[str, Any]], str], field: str
) -> None:
    queue = {"name": "q", "messages": 3, "consumers": 0} | {field: -5}
    result = await check(fake_registry(fake_management(queue)))
    assert result.status is Status.UNKNOWN
    assert result.summary == f"RabbitMQ's {field} is -5, not a count"
