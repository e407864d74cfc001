"""The shared datastore clients, one per registry datastore, made on first use.

Every datastore probe and every queue source that reads through a registry datastore gets its
client here, so a process holds one pool per datastore whatever reads from it. Clients are
created without connecting; connecting happens inside a probe, under the harness's deadline.

No client retries with a backoff or sets its own long timeouts: the harness's deadline bounds
each call, and a retry loop would turn "connection refused" into "no answer within 3s". Each
recovers from an outage by itself (a closed connection is replaced on the next use); a caller
whose call was cut by the deadline may ``resources.discard(key)`` with :func:`postgres_key`,
:func:`redis_key` or :func:`mongo_key` to start from a fresh client.

The drivers are imported by the planners of the checks that use them (:func:`load_postgres`,
:func:`load_redis`, :func:`load_mongo`), not here at first use: an import inside a round
holds the event loop for tens to hundreds of milliseconds (pymongo ~230 ms here) while every
other probe of the round waits to be started or to read its answer. A registry without a
datastore still loads none.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from opsdash.lazy_ssl import load_ssl
from opsdash.registry.model import MongoDatastore, PostgresDatastore, RedisDatastore
from opsdash.resources import Resources

T = TypeVar("T")

if TYPE_CHECKING:
    import asyncpg
    from pymongo import AsyncMongoClient
    from redis.asyncio import Redis

APPLICATION_NAME = "opsdash"
"""How opsdash's connections introduce themselves (``pg_stat_activity.application_name``,
Redis ``CLIENT SETNAME``, MongoDB ``appname``): easy to find and count on the server."""


def load_postgres() -> None:
    """Import asyncpg now (planning a check that reads PostgreSQL), not in a round; with ssl
    ready for asyncio (asyncpg's ``sslmode=prefer`` starts TLS through the loop)."""
    load_ssl()
    import asyncpg  # noqa: F401


def load_redis() -> None:
    """Import redis.asyncio now (planning a check that reads Redis), not in a round; and work
    out the driver's name and version it sends each connection (:func:`_redis_identity`);
    with ssl ready for asyncio (``rediss://`` connects through the loop)."""
    load_ssl()
    import redis.asyncio  # noqa: F401

    _redis_identity()


def load_mongo() -> None:
    """Import pymongo now (planning a check that reads MongoDB), not in a round; with ssl
    ready for asyncio (its TLS connections go through the loop)."""
    load_ssl()
    import pymongo  # noqa: F401


def postgres_key(name: str) -> str:
    """The :meth:`Resources.shared` key of datastore ``name``'s pool."""
    return f"postgres:{name}"


def redis_key(name: str) -> str:
    """The :meth:`Resources.shared` key of datastore ``name``'s Redis client."""
    return f"redis:{name}"


def mongo_key(name: str) -> str:
    """The :meth:`Resources.shared` key of datastore ``name``'s MongoDB client."""
    return f"mongo:{name}"


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
            server_settings={"application_name": APPLICATION_NAME},
        )
        return await pool

    async def close(pool: asyncpg.Pool) -> None:
        # terminate, not close: close waits for connections in use, which may be stuck.
        pool.terminate()

    return await resources.shared(postgres_key(name), create, close)


async def redis_client(resources: Resources, name: str, datastore: RedisDatastore) -> Redis:
    """The redis.asyncio client of datastore ``name`` (a small connection pool)."""
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    async def create() -> Redis:
        return Redis.from_url(
            datastore.url,
            max_connections=8,
            socket_keepalive=True,
            health_check_interval=30,
            # One immediate retry replaces a connection the server closed (restart, idle
            # timeout); no backoff, so a refused connection is reported as such at once.
            retry=Retry(NoBackoff(), 1),
            client_name=APPLICATION_NAME,
            **_redis_identity(),
        )

    async def close(client: Redis) -> None:
        await client.aclose()

    return await resources.shared(redis_key(name), create, close)


@functools.cache
def _redis_identity() -> dict[str, Any]:
    """The ``driver_info`` every Redis connection of the process shares, made once.

    redis-py 7.1+ otherwise builds one per connection, and finding its own version reads the
    package's metadata from disk (``importlib.metadata``: ~1.3 ms of the event loop per
    connection here). The same name and version go out in ``CLIENT SETINFO``. Older redis-py
    reads its version once, at import, and takes no ``driver_info``."""
    try:
        from redis.driver_info import DriverInfo
    except ImportError:
        return {}
    return {"driver_info": DriverInfo()}


# pymongo re-checks a server it waits for every 0.5 s (pymongo.common.MIN_HEARTBEAT_INTERVAL)
# and gives up only at such a step, so a selection budget of 0.8 s really lasts 1 s.
_MONGO_SELECTION_STEP = 0.5


def mongo_budget(timeout: float) -> float:
    """How long pymongo may wait (server selection, sockets) within a ``timeout`` deadline.

    The budget ends just before one of pymongo's 0.5 s selection steps that falls inside the
    deadline, so that an unreachable server is reported with pymongo's reason ("Connection
    refused") before the deadline would report a bare timeout. Deadlines under about 0.55 s
    leave no whole step: the harness's deadline then decides.
    """
    steps = math.floor((timeout - 0.05) / _MONGO_SELECTION_STEP)
    if steps < 1:
        return timeout * 0.9
    return steps * _MONGO_SELECTION_STEP - 0.01


async def mongo_client(
    resources: Resources, name: str, datastore: MongoDatastore, *, timeout: float
) -> AsyncMongoClient[dict[str, Any]]:
    """The AsyncMongoClient of datastore ``name``; selection and socket waits bounded.

    ``timeout`` (the caller's deadline) bounds server selection and socket waits of every
    operation (set at the first call, see :func:`mongo_budget`); callers should also wrap
    their calls in ``pymongo.timeout(mongo_budget(deadline))``, which bounds the whole block.
    """
    from pymongo import AsyncMongoClient

    async def create() -> AsyncMongoClient[dict[str, Any]]:
        timeout_ms = int(timeout * 1000)
        return AsyncMongoClient(
            datastore.uri,
            serverSelectionTimeoutMS=max(int(mongo_budget(timeout) * 1000), 1),
            connectTimeoutMS=timeout_ms,
            socketTimeoutMS=timeout_ms,
            maxPoolSize=4,
            appname=APPLICATION_NAME,
        )

    async def close(client: AsyncMongoClient[dict[str, Any]]) -> None:
        await client.close()

    return await resources.shared(mongo_key(name), create, close)


async def with_postgres_connection(
    resources: Resources,
    name: str,
    datastore: PostgresDatastore,
    work: Callable[[asyncpg.Connection], Awaitable[T]],
) -> T:
    """Run ``work`` on a pooled connection of datastore ``name``: every reader of PostgreSQL
    (the datastore checks, ``.sql`` probes, ``sql`` DLQs) goes through here.

    A pooled connection the server has since closed (a restart, an idle timeout) fails its
    first statement; ``work`` is then run once more on a fresh connection, so that the result
    says what the server says now ("connection refused" while it is down) rather than how an
    old connection ended. A call the deadline cuts mid-query terminates only its own
    connection (others may be busy for other checks); one cut while connecting discards the
    pool, so that the next run starts from a fresh one.
    """
    import asyncpg

    pool = await postgres_pool(resources, name, datastore)
    cut_in_query = False

    async def attempt() -> T:
        nonlocal cut_in_query
        async with pool.acquire() as connection:
            try:
                return await work(connection)
            except asyncio.CancelledError:
                cut_in_query = True
                connection.terminate()  # no network wait; the pool replaces it
                raise

    try:
        try:
            return await attempt()
        except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, ConnectionResetError):
            return await attempt()
    except asyncio.CancelledError:
        if not cut_in_query:
            await resources.discard(postgres_key(name))
        raise
