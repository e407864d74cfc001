"""Benchmark: what the datastore probes cost a round beyond their own round trips.

Run from the repository root (starts a throwaway PostgreSQL and Redis, and a mockupdb server
for MongoDB, all on loopback)::

    .venv/bin/python bench/datastores.py [--rounds 200]

Measured in the same run, with the same drivers and servers, each a median and p95 over
``--rounds`` repetitions:

- ``bare ping``: ``SELECT 1``, ``PING`` and ``ping`` concurrently on warm connections;
- ``bare same``: exactly the commands the probes send (``SELECT 1`` + the status query + the
  index query; ``PING`` + ``INFO``; ``ping`` + ``hello`` + ``serverStatus``), concurrently;
- ``round``: :func:`opsdash.engine.run_round` over the planned checks (``postgres``,
  ``postgres.indexes``, ``redis``, ``mongo``) with one shared :class:`Resources`.

``round - bare same`` is opsdash's own cost (planning the call, the harness, judging,
building results); the target is under 20 ms. Then a round against three servers that accept
connections and never answer, to show that it costs at most the deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from mockupdb import MockupDB  # noqa: E402
from pymongo import AsyncMongoClient  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from opsdash.engine import run_round  # noqa: E402
from opsdash.plan import build_plan  # noqa: E402
from opsdash.probes import postgres as pg_probe  # noqa: E402
from opsdash.registry.model import Registry  # noqa: E402
from opsdash.resources import Resources  # noqa: E402
from tests.servers import PostgresServer, RedisServer  # noqa: E402

EXPECTED = {
    "payments": ["idx_payments_student_status_created"],
    "tutoring_sessions": [
        "idx_sessions_student_status_date_time",
        "idx_sessions_trainer_date",
        "idx_sessions_trainer_status",
    ],
    "trainer_allocations": [
        "idx_allocations_student_status_course",
        "idx_allocations_trainer_status",
    ],
    "student_course_purchases": ["idx_purchases_student_created"],
}
WIRE = {"maxWireVersion": 21, "minWireVersion": 0, "isWritablePrimary": True}


def registry(pg: str, redis: str, mongo: str, timeout: str = "3s") -> Registry:
    return Registry.from_data(
        {
            "version": 1,
            "platform": "bench",
            "defaults": {"timeout": timeout},
            "datastores": {
                "postgres": {"kind": "postgres", "dsn": pg, "expect_indexes": EXPECTED},
                "redis": {"kind": "redis", "url": redis},
                "mongo": {"kind": "mongo", "uri": mongo},
            },
        }
    )


async def timed(make: Callable[[], Awaitable[Any]], rounds: int) -> list[float]:
    """Milliseconds of each of ``rounds`` awaits of ``make()``, after two warm-up runs."""
    for _ in range(2):
        await make()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        await make()
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95) - 1]


@contextmanager
def mongo_mock() -> Iterator[MockupDB]:
    server = MockupDB(auto_ismaster=WIRE)
    server.autoresponds("hello", **WIRE)
    server.autoresponds("ping")
    server.autoresponds(
        "serverStatus", version="7.0.5", connections={"current": 3, "available": 800}
    )
    server.run()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (kernel backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


async def measure(rounds: int) -> None:
    with ExitStack() as stack:
        pg = stack.enter_context(PostgresServer())
        redis_server = stack.enter_context(RedisServer())
        mongo = stack.enter_context(mongo_mock())
        pg.psql("CREATE DATABASE platform")
        pg.psql((ROOT / "tests" / "sql" / "migration_019.sql").read_text(), database="platform")
        dsn = pg.dsn_for("postgres", database="platform")
        mongo_uri = f"mongodb://127.0.0.1:{mongo.port}/?directConnection=true"
        specs = build_plan(registry(dsn, redis_server.url, mongo_uri))

        connection = await asyncpg.connect(dsn)
        redis = Redis.from_url(redis_server.url)
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri)
        tables = sorted(EXPECTED)
        try:

            async def bare_ping() -> None:
                await asyncio.gather(
                    connection.fetchval("SELECT 1"), redis.ping(), client.admin.command("ping")
                )

            async def pg_same() -> None:
                # One connection cannot run statements concurrently; the probes use two.
                await connection.fetchval("SELECT 1")
                await connection.fetchrow(pg_probe._STATUS_SQL, 300.0)

            async def pg_indexes() -> None:
                await second.fetch(pg_probe._INDEXES_SQL, tables)

            async def redis_same() -> None:
                await redis.ping()
                await redis.info()

            async def mongo_same() -> None:
                await client.admin.command("ping")
                await client.admin.command("hello")
                await client.admin.command(
                    {"serverStatus": 1, "repl": 0, "metrics": 0, "locks": 0, "wiredTiger": 0}
                )

            second = await asyncpg.connect(dsn)

            async def bare_same() -> None:
                await asyncio.gather(pg_same(), pg_indexes(), redis_same(), mongo_same())

            async with Resources() as resources:

                async def probe_round() -> None:
                    done = await run_round(specs, resources)
                    bad = [r for r in done.results if r.error is not None]
                    assert not bad, bad

                ping_ms = await timed(bare_ping, rounds)
                same_ms = await timed(bare_same, rounds)
                round_ms = await timed(probe_round, rounds)
            await second.close()
        finally:
            await connection.close()
            await redis.aclose()
            await client.close()

    (ping_med, ping_p95), (same_med, same_p95) = stats(ping_ms), stats(same_ms)
    round_med, round_p95 = stats(round_ms)
    print(f"rounds: {rounds}; checks per round: {len(specs)} ({', '.join(s.id for s in specs)})")
    print(f"{'':24}{'median ms':>12}{'p95 ms':>10}")
    print(f"{'bare ping (3 trips)':24}{ping_med:12.2f}{ping_p95:10.2f}")
    print(f"{'bare same commands':24}{same_med:12.2f}{same_p95:10.2f}")
    print(f"{'round with probes':24}{round_med:12.2f}{round_p95:10.2f}")
    overhead = round_med - same_med
    print(
        f"overhead of the probes beyond their round trips: {overhead:.2f} ms median "
        f"({round_med / same_med:.2f}x the bare commands; {round_med / ping_med:.2f}x bare pings)"
        f" -> {'OK' if overhead < 20 else 'OVER'} (target < 20 ms)"
    )

    deadline = 0.5
    with silent_port() as p1, silent_port() as p2, silent_port() as p3:
        hung = build_plan(
            registry(
                f"postgresql://postgres@127.0.0.1:{p1}/x",
                f"redis://127.0.0.1:{p2}/0",
                f"mongodb://127.0.0.1:{p3}/?directConnection=true",
                timeout=f"{int(deadline * 1000)}ms",
            )
        )
        async with Resources() as resources:
            start = time.perf_counter()
            done = await run_round(hung, resources)
            elapsed = time.perf_counter() - start
    kinds = sorted({r.error.type.value for r in done.results if r.error is not None})
    print(
        f"round against 3 silent servers ({len(hung)} checks), deadline {deadline * 1000:.0f} ms:"
        f" {elapsed * 1000:.0f} ms ({elapsed / deadline:.2f}x the deadline); errors: {kinds}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(measure(args.rounds))


if __name__ == "__main__":
    main()
