"""Coalescing the Redis commands of many probes into one pipeline per Redis.

A round starts every check at once; with a hundred DLQ checks on one Redis, a hundred
probes each want an ``LLEN``. Sent one by one they cost a round trip each (and exhaust the
client's few connections: redis-py's pool raises ``Too many connections`` rather than wait);
here the commands submitted during one tick of the event loop, or while the previous pipeline
was in flight, go out in one non-transactional pipeline, one round trip for all of them, and
each probe gets back exactly its own replies. This is what ioredis calls auto-pipelining;
redis-py has no such mode.

A probe that hits its deadline stops waiting; when every probe of a batch has stopped
waiting, the batch itself is cancelled, so a hung server holds no task after the round.
A reply that is a Redis error (``WRONGTYPE``) fails only the probe that asked for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from opsdash.records import dataclass, field
from opsdash.registry.model import RedisDatastore
from opsdash.resources import Resources

if TYPE_CHECKING:
    from redis.asyncio import Redis


@dataclass(frozen=True, slots=True)
class Command:
    """One Redis command, named as the redis-py method that sends it (so that its reply is
    parsed the way redis-py parses it: ``xpending`` gives a dict, ``zrange`` pairs)."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


def cmd(method: str, *args: Any, **kwargs: Any) -> Command:
    """Shorthand: ``cmd("llen", "dlq:allocation")``."""
    return Command(method, args, kwargs)


@dataclass(slots=True)
class _Request:
    commands: Sequence[Command]
    future: asyncio.Future[list[Any]]


class RedisBatcher:
    """Sends the commands submitted while no pipeline is in flight, one pipeline at a time.

    At most one pipeline per Redis is in flight: what arrives meanwhile waits and goes out
    together in the next one. That bounds the batcher to one connection of the client's small
    pool (a hundred concurrent plain commands would exhaust it) and makes batches as large as
    the server's pace allows.
    """

    def __init__(self, client: Callable[[], Awaitable[Redis]]) -> None:
        # A getter, not a client: if the shared client is discarded and made anew, the
        # batcher follows it.
        self._client = client
        self._pending: list[_Request] = []
        self._scheduled = False
        self._in_flight: asyncio.Task[None] | None = None

    async def execute(self, *commands: Command) -> list[Any]:
        """Send ``commands`` (in the next pipeline) and return their replies, in order.

        Raises the first Redis error among this call's replies, or the connection error that
        failed the whole pipeline.
        """
        request = _Request(commands, asyncio.get_running_loop().create_future())
        self._pending.append(request)
        self._schedule()
        return await request.future

    def _schedule(self) -> None:
        if self._scheduled or self._in_flight is not None:
            return
        self._scheduled = True
        # call_soon: every probe that submits during this tick of the loop joins the batch.
        asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        batch = [request for request in self._pending if not request.future.done()]
        self._pending = []
        if not batch:
            return
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._in_flight = task
        task.add_done_callback(self._sent)

        def abandon(_: asyncio.Future[list[Any]]) -> None:
            # Every waiter gave up (deadlines): nobody needs the answer any more.
            if all(request.future.cancelled() for request in batch):
                task.cancel()

        for request in batch:
            request.future.add_done_callback(abandon)

    def _sent(self, _: asyncio.Task[None]) -> None:
        self._in_flight = None
        if self._pending:
            self._schedule()

    async def _send(self, batch: list[_Request]) -> None:
        try:
            client = await self._client()
            async with client.pipeline(transaction=False) as pipe:
                for request in batch:
                    for command in request.commands:
                        getattr(pipe, command.method)(*command.args, **command.kwargs)
                replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(exc)
            return
        position = 0
        for request in batch:
            mine = replies[position : position + len(request.commands)]
            position += len(request.commands)
            if request.future.done():
                continue
            error = next((reply for reply in mine if isinstance(reply, Exception)), None)
            if error is not None:
                request.future.set_exception(error)
            else:
                request.future.set_result(mine)

    async def aclose(self) -> None:
        """Cancel the pipeline in flight and every request still waiting."""
        for request in self._pending:
            request.future.cancel()
        self._pending = []
        task = self._in_flight
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def redis_batcher(resources: Resources, name: str, datastore: RedisDatastore) -> RedisBatcher:
    """The batcher of datastore ``name``, over its shared client."""
    from opsdash.probes.clients import redis_client

    async def client() -> Redis:
        return await redis_client(resources, name, datastore)

    async def create() -> RedisBatcher:
        return RedisBatcher(client)

    async def close(batcher: RedisBatcher) -> None:
        await batcher.aclose()

    return await resources.shared(f"redis-batch:{name}", create, close)
