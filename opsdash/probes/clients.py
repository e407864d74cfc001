"""The shared datastore clients, one per registry datastore, made on first use.

Every datastore probe and every queue source that reads through a registry datastore gets its
client here, so a process holds one pool per datastore whatever reads from it. Clients are
created without connecting; connecting happens inside a probe, under the harness's deadline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opsdash.registry.model import MongoDatastore, PostgresDatastore, RedisDatastore
from opsdash.resources import Resources

if TYPE_CHECKING:
    import asyncpg
    from pymongo import AsyncMongoClient
    from redis.asyncio import Redis


async def postgres_pool(
    resources: Resources, name: str, datastore: PostgresDatastore
) -> asyncpg.Pool:
    """The asyncpg pool of datastore ``name`` (min_size 0: it connects when used)."""
    import asyncpg

    async def create() -> asyncpg.Pool:
        pool = asyncpg.create_pool(
            datastore.dsn,
            min_size=0,
            max_size=4,
            max_inactive_connection_lifetime=60.0,
            command_timeout=None,
        )
        return await pool

    async def close(pool: asyncpg.Pool) -> None:
        pool.terminate()

    return await resources.shared(f"postgres:{name}", create, close)


async def redis_client(resources: Resources, name: str, datastore: RedisDatastore) -> Redis:
    """The redis.asyncio client of datastore ``name`` (a small connection pool)."""
    from redis.asyncio import Redis

    async def create() -> Redis:
        return Redis.from_url(
            datastore.url,
            max_connections=8,
            socket_keepalive=True,
            health_check_interval=30,
            retry_on_timeout=False,
        )

    async def close(client: Redis) -> None:
        await client.aclose()

    return await resources.shared(f"redis:{name}", create, close)


async def mongo_client(
    resources: Resources, name: str, datastore: MongoDatastore, *, timeout: float
) -> AsyncMongoClient[dict[str, Any]]:
    """The AsyncMongoClient of datastore ``name``; selection and socket waits bounded."""
    from pymongo import AsyncMongoClient

    async def create() -> AsyncMongoClient[dict[str, Any]]:
        timeout_ms = int(timeout * 1000)
        return AsyncMongoClient(
            datastore.uri,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            socketTimeoutMS=timeout_ms,
            maxPoolSize=4,
            appname="opsdash",
        )

    async def close(client: AsyncMongoClient[dict[str, Any]]) -> None:
        await client.close()

    return await resources.shared(f"mongo:{name}", create, close)
