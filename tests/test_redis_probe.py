"""Redis check against real redis-server instances started by the tests (``tests/servers.py``)."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, replace
from typing import Any

import pytest
import trustme
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from opsdash.engine import Scheduler
from opsdash.errors import classify
from opsdash.harness import run_probe
from opsdash.plan import CheckSpec, build_plan
from opsdash.probes.redis import judge_info
from opsdash.registry.model import RedisDatastore, Registry
from opsdash.resources import Resources
from opsdash.results import CheckResult, ErrorType, ProbeError
from opsdash.status import Status
from tests.servers import RedisServer


def spec_for(url: str, *, timeout: str = "2s", **extra: Any) -> CheckSpec:
    """The planned check of one datastore named ``redis``."""
    registry = Registry.from_data(
        {
            "version": 1,
            "platform": "test",
            "defaults": {"timeout": timeout},
            "datastores": {"redis": {"kind": "redis", "url": url, **extra}},
        }
    )
    (spec,) = build_plan(registry)
    return spec


def shown(result: CheckResult) -> str:
    """Everything of a result a user could see, as one text."""
    return json.dumps(asdict(result), default=str)


@pytest.fixture
async def resources() -> AsyncIterator[Resources]:
    async with Resources() as shared:
        yield shared


async def opsdash_clients(url: str) -> int:
    """Connections named ``opsdash`` on the server at ``url``."""
    async with Redis.from_url(url) as admin:
        clients = await admin.client_list()
    return sum(1 for client in clients if client.get("name") == "opsdash")


async def test_master_summary_and_details(redis_server: RedisServer, resources: Resources) -> None:
    result = await run_probe(spec_for(redis_server.url), resources)

    assert result.status is Status.OK, result.summary
    assert result.summary.startswith("Redis 7.") or result.summary.startswith("Redis ")
    assert " master; " in result.summary
    assert f"; {result.details['clients_connected']} clients; memory " in result.summary
    assert result.details["role"] == "master"
    assert result.details["memory_max"] is None  # no maxmemory: nothing to judge
    assert result.details["memory_pct"] is None
    assert result.details["evicted_keys"] == 0
    assert result.details["rejected_connections"] == 0
    assert isinstance(result.details["clients_blocked"], int)


async def test_memory_against_maxmemory(
    redis_factory: Callable[..., RedisServer], resources: Resources
) -> None:
    server = redis_factory()
    async with Redis.from_url(server.url) as admin:
        await admin.config_set("maxmemory", "50mb")
    spec = spec_for(server.url, memory={"warn": "1%", "crit": "90%"})

    result = await run_probe(spec, resources)

    assert result.status is Status.WARN
    assert result.details["memory_max"] == 50 * 1024 * 1024
    assert 1 <= result.details["memory_pct"] < 90
    assert f"of 50.0 MiB ({result.details['memory_pct']:g}%)" in result.summary


async def test_outage_turns_crit_then_recovers_without_leaking(
    redis_server: RedisServer, resources: Resources
) -> None:
    spec = spec_for(redis_server.url)
    assert (await run_probe(spec, resources)).status is Status.OK

    with redis_server.outage():
        down = await run_probe(spec, resources)
        assert down.status is Status.CRIT
        assert down.error is not None and down.error.type is ErrorType.REFUSED
        assert down.summary == "connection refused"
        assert down.latency_ms is not None and down.latency_ms < 1000

    results = [await run_probe(spec, resources) for _ in range(5)]
    assert [r.status for r in results] == [Status.OK] * 5
    assert await opsdash_clients(redis_server.url) == 1


async def test_password_in_url_wrong_or_missing_is_auth_and_never_shown(
    redis_factory: Callable[..., RedisServer],
) -> None:
    server = redis_factory(password="Sekret-Pass-99")
    base = f"127.0.0.1:{server.port}/0"
    outcomes: dict[str, CheckResult] = {}
    for label, url in (
        ("right", server.url),
        ("wrong", f"redis://:Wrong-Pass-11@{base}"),
        ("missing", f"redis://{base}"),
    ):
        async with Resources() as resources:
            outcomes[label] = await run_probe(spec_for(url), resources)

    assert outcomes["right"].status is Status.OK
    assert outcomes["right"].target == f"redis://:***@{base}"
    for label in ("wrong", "missing"):
        result = outcomes[label]
        assert result.status is Status.CRIT, label
        assert result.error is not None and result.error.type is ErrorType.AUTH, label
        assert result.summary == "authentication failed"
    everything = " ".join(shown(result) for result in outcomes.values())
    assert "Sekret-Pass-99" not in everything
    assert "Wrong-Pass-11" not in everything


async def test_rediss_to_an_untrusted_certificate_is_a_tls_error(resources: Resources) -> None:
    # A TLS listener whose certificate comes from a CA the client does not trust.
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0, ssl=context)
    async with server:
        port = server.sockets[0].getsockname()[1]
        result = await run_probe(spec_for(f"rediss://127.0.0.1:{port}/0"), resources)

    assert result.status is Status.CRIT
    assert result.error is not None and result.error.type is ErrorType.TLS
    assert result.summary.startswith("TLS error: ")  # then the reason, in plain words


async def test_server_that_never_answers_costs_the_deadline(resources: Resources) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        spec = spec_for(f"redis://127.0.0.1:{silent.getsockname()[1]}/0", timeout="300ms")

        loop = asyncio.get_running_loop()
        start = loop.time()
        result = await run_probe(spec, resources)
        elapsed = loop.time() - start

    assert result.error is not None and result.error.type is ErrorType.TIMEOUT
    assert result.summary == "no answer within 300ms"
    assert elapsed < 0.6


def test_replica_with_link_down_warns() -> None:
    datastore = RedisDatastore(kind="redis", url="redis://h:6379")
    info = {
        "redis_version": "7.2.4",
        "role": "slave",
        "master_link_status": "down",
        "master_link_down_since_seconds": 75,
        "connected_clients": 4,
        "blocked_clients": 1,
        "used_memory": 3 * 1024 * 1024,
        "maxmemory": 4 * 1024 * 1024,
        "evicted_keys": 12,
        "rejected_connections": 3,
    }

    observation = judge_info(datastore, 0.3, info)

    # link down: warn; memory 75% < 80%: ok
    assert observation.status is Status.WARN
    assert observation.summary == (
        "Redis 7.2.4 replica (link down); 4 clients; memory 3.0 MiB of 4.0 MiB (75%)"
    )
    assert observation.details["master_link_down_since_seconds"] == 75
    assert observation.details["evicted_keys"] == 12


async def test_watch_mode_goes_crit_and_back_to_ok_on_its_own(
    redis_factory: Callable[..., RedisServer],
) -> None:
    server = redis_factory()  # its own instance: this test stops it from a thread
    spec = replace(spec_for(server.url, timeout="500ms"), interval=0.05)
    results: asyncio.Queue[CheckResult] = asyncio.Queue()

    async def wait_for(status: Status) -> CheckResult:
        async with asyncio.timeout(10):
            while (result := await results.get()).status is not status:
                pass
        return result

    async with Resources() as resources:
        scheduler = Scheduler([spec], resources, results.put_nowait)
        scheduler.start()
        try:
            await wait_for(Status.OK)
            await asyncio.to_thread(server.stop)
            down = await wait_for(Status.CRIT)
            await asyncio.to_thread(server.start)
            await wait_for(Status.OK)
        finally:
            await scheduler.stop()
        assert down.summary == "connection refused"
        assert await opsdash_clients(server.url) == 1


def test_redis_dns_failure_and_read_timeout_get_plain_reasons() -> None:
    lookup = RedisConnectionError(
        "Error -2 connecting to db.example:6379. Name or service not known."
    )

    assert classify(lookup) == ProbeError(ErrorType.DNS, "DNS lookup failed")
    assert classify(RedisTimeoutError("Timeout reading from socket")).type is ErrorType.TIMEOUT


async def test_a_hung_server_times_out_then_recovers(
    redis_factory: Callable[..., RedisServer], resources: Resources
) -> None:
    server = redis_factory()
    spec = spec_for(server.url, timeout="300ms")
    assert (await run_probe(spec, resources)).status is Status.OK

    with server.frozen():
        hung = await run_probe(spec, resources)

    assert hung.error is not None and hung.error.type is ErrorType.TIMEOUT
    assert hung.summary == "no answer within 300ms"
    # The connection cut mid-command is dropped, not reused with a stale reply in it.
    after = [await run_probe(spec, resources) for _ in range(3)]
    assert [r.status for r in after] == [Status.OK] * 3
    assert await opsdash_clients(server.url) == 1


async def test_the_driver_s_name_and_version_are_worked_out_once_not_per_connection(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py builds the ``CLIENT SETINFO`` identity of each new connection, reading its own
    version from the package metadata (~1.3 ms of the loop): opsdash works it out once."""
    import redis.utils

    from opsdash.probes import clients

    lookups = 0
    real = redis.utils.get_lib_version

    def counted() -> str:
        nonlocal lookups
        lookups += 1
        return real()

    monkeypatch.setattr(redis.utils, "get_lib_version", counted)
    clients._redis_identity.cache_clear()
    try:
        datastore = RedisDatastore(kind="redis", url=redis_server.url)
        async with Resources() as shared:
            client = await clients.redis_client(shared, "redis", datastore)
            # Concurrent commands: the pool opens a connection for each.
            assert await asyncio.gather(*(client.ping() for _ in range(4))) == [True] * 4
            assert lookups == 1
            # (The admin client counting them is redis-py's own: its lookup comes after.)
            assert await opsdash_clients(redis_server.url) >= 4  # CLIENT SETNAME still sent
    finally:
        clients._redis_identity.cache_clear()
