"""Dead-letter queue depth: the ``<worker>.dlq`` check, from whichever source the registry names.

Sources (``dlq.source``) and what each can tell besides the depth:

==============  ===================================  ============================================
source          depth                                also
==============  ===================================  ============================================
redis-list      ``LLEN key``
redis-zset      ``ZCARD key``                        oldest's age, when ``score_time`` says the
                                                     score is a time (s or ms)
redis-stream    ``XLEN key``                         oldest entry's age (its id is its time);
                                                     pending entries per group and consumer
                                                     (``XINFO GROUPS``, ``XPENDING``)
bullmq          the ``failed`` count                 every state's count; oldest failure's age
rabbitmq        ``messages`` (management API)        ready, unacked, consumers, rates; head
                                                     message's age when it carries a timestamp
sql             a query returning one integer
mongo           ``count_documents(filter)``
http-json       a number at a dotted path
==============  ===================================  ============================================

A probe reads once and judges the depth. Growth needs history, so it is :func:`derive`'s job:
with earlier results it computes growth per minute over the last :data:`WINDOW_S` seconds,
judges it, and estimates when the depth will cross its crit threshold (``eta_crit_s``); with
none (a one-shot ``check``) the summary says growth is not known yet, which is not an error.

Redis sources go through the datastore's :class:`~opsdash.probes.redis_batch.RedisBatcher`:
all the Redis commands of a round's DLQ checks share one pipeline per Redis.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from opsdash import formats
from opsdash.figures import BullmqFigures, DlqFigures, RabbitmqFigures, StreamGroup
from opsdash.probe_plan import Derive, Planned
from opsdash.probes.queue_sources import (
    Unjudgeable,
    as_number,
    dotted,
    fetch,
    load_json,
    redis_error,
    registry_datastore,
    text,
)
from opsdash.rates import Sample, gauge_growth, seconds_until, window
from opsdash.records import dataclass
from opsdash.redact import redact_url
from opsdash.registry.model import (
    BullmqDlq,
    DlqBase,
    HttpJsonDlq,
    MongoDatastore,
    MongoDlq,
    PostgresDatastore,
    RabbitmqDlq,
    RedisDatastore,
    RedisKeyDlq,
    Registry,
    SqlDlq,
    Worker,
)
from opsdash.resources import Resources
from opsdash.results import CheckResult, ErrorType, Observation, ProbeFailure
from opsdash.status import Status, worst

if TYPE_CHECKING:
    from opsdash.probes.redis_batch import RedisBatcher


WINDOW_S = 300.0
"""Growth is measured over the last five minutes of samples (or the last two samples)."""


@dataclass(frozen=True, slots=True)
class Reading:
    """What one read of a DLQ source found."""

    depth: int
    oldest_at: float | None = None
    """When the oldest dead letter arrived (seconds since the epoch), if the source can tell."""
    groups: Mapping[str, StreamGroup] | None = None
    """A stream's consumer groups."""
    bullmq: BullmqFigures | None = None
    rabbitmq: RabbitmqFigures | None = None
    notes: tuple[str, ...] = ()
    """Short phrases worth a place in the summary (``3 pending in group replay``)."""


Reader = Callable[[Resources], Awaitable[Reading]]


def plan(name: str, worker: Worker, registry: Registry) -> Iterator[Planned]:
    """The ``<worker>.dlq`` check, when the worker has a DLQ: its probe, a password-free target
    and its derive step."""
    dlq = worker.dlq
    if dlq is None:
        return
    reader, target = _source(dlq, worker, registry)

    async def probe(resources: Resources) -> Observation:
        return await probe_dlq(resources, reader, dlq)

    yield Planned(
        check="dlq",
        kind="dlq",
        target=target,
        probe=probe,
        judge_latency=False,
        derive=make_derive(dlq),
        heavy_start=isinstance(dlq, _DRIVER_SOURCES),
    )


async def probe_dlq(resources: Resources, reader: Reader, dlq: DlqBase) -> Observation:
    """Read the source once and judge the depth (growth is :func:`derive`'s job)."""
    source = getattr(dlq, "source", "")
    try:
        reading = await reader(resources)
    except Unjudgeable as exc:
        return Observation(Status.UNKNOWN, str(exc), DlqFigures(source, None, time.time()))
    sampled_at = time.time()
    oldest_age = None if reading.oldest_at is None else max(0.0, sampled_at - reading.oldest_at)
    figures = DlqFigures(
        source=source,
        depth=reading.depth,
        sampled_at=sampled_at,
        oldest_age_s=None if oldest_age is None else round(oldest_age, 1),
        notes=reading.notes,
        groups=reading.groups,
        bullmq=reading.bullmq,
        rabbitmq=reading.rabbitmq,
    )
    status = dlq.depth.judge(reading.depth)
    return Observation(status, _summary(dlq, figures), figures)


def _summary(dlq: DlqBase, figures: DlqFigures) -> str:
    depth = figures.depth or 0
    parts = [f"{depth} dead letter{'' if depth == 1 else 's'}"]
    if dlq.depth.crit is not None and depth >= dlq.depth.crit:
        parts[0] += f" (crit at {formats.number(dlq.depth.crit)})"
    elif dlq.depth.warn is not None and depth >= dlq.depth.warn:
        parts[0] += f" (warn at {formats.number(dlq.depth.warn)})"
    if figures.oldest_age_s is not None:
        parts.append(f"oldest {formats.duration(figures.oldest_age_s)}")
    growth = figures.growth_per_min
    if growth is None:
        parts.append("growth not known yet")
    else:
        parts.append(f"{'+' if growth >= 0 else ''}{formats.number(growth)}/min")
        eta = figures.eta_crit_s
        if eta is not None and eta > 0:
            parts.append(f"crit in ~{formats.duration(eta)}")
    parts.extend(figures.notes)
    return "; ".join(parts)


# --- history ----------------------------------------------------------------------------


def _depth_sample(result: CheckResult) -> Sample | None:
    figures = result.figures
    if result.error is not None or not isinstance(figures, DlqFigures) or figures.depth is None:
        return None
    return Sample(figures.sampled_at, figures.depth)


def make_derive(dlq: DlqBase, *, span: float = WINDOW_S) -> Derive:
    """The derive step of a DLQ check: growth per minute over ``span``, judged by
    ``dlq.growth``, and the time until the depth crosses ``dlq.depth.crit``."""

    def derive(current: CheckResult, history: Sequence[CheckResult]) -> CheckResult:
        latest = _depth_sample(current)
        if latest is None or not isinstance(current.figures, DlqFigures):
            return current
        samples = [s for s in map(_depth_sample, history) if s is not None and s.at < latest.at]
        recent = window([*samples, latest], span)
        if len(recent) < 2:
            return current
        growth = gauge_growth(recent[0], recent[-1])
        if growth is None:
            return current
        eta = seconds_until(latest.value, growth, dlq.depth.crit)
        figures = replace(
            current.figures,
            growth_per_min=round(growth, 3),
            eta_crit_s=None if eta is None else round(eta, 1),
            window_s=round(recent[-1].at - recent[0].at, 1),
        )
        status = worst((dlq.depth.judge(latest.value), dlq.growth.judge(growth)))
        return replace(current, status=status, summary=_summary(dlq, figures), figures=figures)

    return derive


# --- sources ----------------------------------------------------------------------------

_DRIVER_SOURCES = (RedisKeyDlq, BullmqDlq, SqlDlq, MongoDlq)
"""The sources read through a datastore driver: their readers import it when planned, and
their checks start after the light ones (``Planned.heavy_start``)."""


def _source(dlq: DlqBase, worker: Worker, registry: Registry) -> tuple[Reader, str]:
    """The reader of ``dlq`` and its target (passwords masked)."""
    timeout = worker.timeout or registry.defaults.timeout
    if isinstance(dlq, RedisKeyDlq):
        datastore = registry_datastore(registry, dlq.datastore, RedisDatastore)
        verb = {"redis-list": "LLEN", "redis-zset": "ZCARD", "redis-stream": "XLEN"}[dlq.source]
        target = f"{redact_url(datastore.url)} {verb} {dlq.key}"
        return _redis_key_reader(dlq, datastore), target
    if isinstance(dlq, BullmqDlq):
        datastore = registry_datastore(registry, dlq.datastore, RedisDatastore)
        target = f"{redact_url(datastore.url)} bullmq {dlq.prefix}:{dlq.queue}"
        return _bullmq_reader(dlq, datastore), target
    if isinstance(dlq, RabbitmqDlq):
        url = rabbitmq_queue_url(dlq)
        return _rabbitmq_reader(dlq, url, registry.defaults.max_body), redact_url(url)
    if isinstance(dlq, SqlDlq):
        pg = registry_datastore(registry, dlq.datastore, PostgresDatastore)
        return _sql_reader(dlq, pg), f"{redact_url(pg.dsn)} (query)"
    if isinstance(dlq, MongoDlq):
        mongo = registry_datastore(registry, dlq.datastore, MongoDatastore)
        where = f"{dlq.database}.{dlq.collection}" if dlq.database else dlq.collection
        return _mongo_reader(dlq, mongo, timeout), f"{redact_url(mongo.uri)} {where}"
    if isinstance(dlq, HttpJsonDlq):
        return _http_json_reader(dlq, registry.defaults.max_body), redact_url(dlq.url)
    raise TypeError(f"unknown DLQ source {type(dlq).__name__}")  # the model forbids it


def _redis_key_reader(dlq: RedisKeyDlq, datastore: RedisDatastore) -> Reader:
    from redis.exceptions import ResponseError

    from opsdash.probes.clients import load_redis
    from opsdash.probes.redis_batch import cmd, redis_batcher

    load_redis()

    kind = dlq.source.removeprefix("redis-")

    async def read(resources: Resources) -> Reading:
        batcher = await redis_batcher(resources, dlq.datastore, datastore)
        try:
            if dlq.source == "redis-list":
                (depth,) = await batcher.execute(cmd("llen", dlq.key))
                return Reading(int(depth))
            if dlq.source == "redis-zset":
                depth, first = await batcher.execute(
                    cmd("zcard", dlq.key), cmd("zrange", dlq.key, 0, 0, withscores=True)
                )
                scale = {"s": 1.0, "ms": 1000.0}.get(dlq.score_time or "")
                oldest_at = float(first[0][1]) / scale if first and scale else None
                return Reading(int(depth), oldest_at)
            return await _read_stream(batcher, dlq.key)
        except ResponseError as exc:
            raise redis_error(exc, dlq.key, kind) from None

    return read


async def _read_stream(batcher: RedisBatcher, key: str) -> Reading:
    from opsdash.probes.redis_batch import cmd

    depth, first, exists = await batcher.execute(
        cmd("xlen", key), cmd("xrange", key, "-", "+", count=1), cmd("exists", key)
    )
    oldest_at = None
    if first:
        entry_id = text(first[0][0])
        oldest_at = int(entry_id.split("-", 1)[0]) / 1000.0
    groups: dict[str, StreamGroup] = {}
    notes: list[str] = []
    if int(exists):
        (infos,) = await batcher.execute(cmd("xinfo_groups", key))
        names = [text(info["name"]) for info in infos]
        pendings = await batcher.execute(*(cmd("xpending", key, group) for group in names))
        for info, group, pending in zip(infos, names, pendings, strict=True):
            consumers = {text(c["name"]): int(c["pending"]) for c in pending["consumers"]}
            lag = info.get("lag")
            groups[group] = StreamGroup(
                pending=int(pending["pending"]),
                consumers=consumers,
                lag=None if lag is None else int(lag),
            )
            if pending["pending"]:
                notes.append(f"{pending['pending']} pending in group {group}")
    return Reading(int(depth), oldest_at, groups=groups, notes=tuple(notes))


def _bullmq_reader(dlq: BullmqDlq, datastore: RedisDatastore) -> Reader:
    from redis.exceptions import ResponseError

    from opsdash.probes.bullmq import read_counts
    from opsdash.probes.clients import load_redis
    from opsdash.probes.redis_batch import redis_batcher

    load_redis()

    async def read(resources: Resources) -> Reading:
        batcher = await redis_batcher(resources, dlq.datastore, datastore)
        try:
            found = await read_counts(batcher, dlq.prefix, dlq.queue)
        except ResponseError as exc:
            raise redis_error(exc, f"{dlq.prefix}:{dlq.queue}:*", "BullMQ key") from None
        if not found.exists:
            raise Unjudgeable(f"no BullMQ queue {dlq.queue!r} under prefix {dlq.prefix!r}")
        counts = found.counts
        notes = [f"{counts['wait']} waiting", f"{counts['active']} active",
                 f"{counts['delayed']} delayed"]  # fmt: skip
        if found.paused:
            notes.append("queue paused")
        extra = BullmqFigures(dict(counts), found.paused, f"{dlq.prefix}:{dlq.queue}")
        return Reading(counts["failed"], found.oldest_failed_at, bullmq=extra, notes=tuple(notes))

    return read


def rabbitmq_queue_url(dlq: RabbitmqDlq) -> str:
    """The management API URL of the queue; vhost and name percent-encoded (``/`` is ``%2f``)."""
    vhost = quote(dlq.vhost, safe="")
    name = quote(dlq.queue, safe="")
    return f"{dlq.management_url.rstrip('/')}/api/queues/{vhost}/{name}"


def _rabbitmq_reader(dlq: RabbitmqDlq, url: str, max_body: int) -> Reader:
    async def read(resources: Resources) -> Reading:
        body = await fetch(
            resources.http(),
            url,
            max_body=max_body,
            auth=(dlq.username, dlq.password),
            what=f"queue {dlq.queue!r} in vhost {dlq.vhost!r}",
        )
        doc = await load_json(body, "RabbitMQ's answer")
        if not isinstance(doc, Mapping):
            raise Unjudgeable("RabbitMQ's answer is not a queue object")
        if "messages" not in doc:
            # A queue declared a moment ago has no statistics until the next emission.
            raise Unjudgeable(f"RabbitMQ has not reported a message count for {dlq.queue!r} yet")
        depth = _count(doc["messages"], "RabbitMQ's messages")
        stats = doc.get("message_stats") or {}
        counts = {name: _optional_count(doc, name) for name in RABBITMQ_COUNTS}
        state = doc.get("state")
        extra = RabbitmqFigures(
            messages_ready=counts["messages_ready"],
            messages_unacknowledged=counts["messages_unacknowledged"],
            consumers=counts["consumers"],
            state=None if state is None else str(state),
            publish_rate=_optional_number(stats, "publish_details.rate"),
            deliver_rate=_optional_number(stats, "deliver_get_details.rate"),
        )
        head = _optional_number(doc, "head_message_timestamp")
        notes = []
        # RabbitMQ leaves figures out of a queue until its first statistics emission (about
        # 5 s after the declaration): say so rather than let a missing figure read as zero.
        unreported = [name for name, count in counts.items() if count is None]
        if unreported:
            notes.append(f"{', '.join(unreported)} not reported yet")
        if extra.messages_unacknowledged:
            notes.append(f"{formats.number(extra.messages_unacknowledged)} unacknowledged")
        if state not in (None, "running", "idle"):
            notes.append(f"queue {state}")
        return Reading(depth, head, rabbitmq=extra, notes=tuple(notes))

    return read


RABBITMQ_COUNTS = ("messages_ready", "messages_unacknowledged", "consumers")
"""The queue's counts shown beside the depth (``None`` until RabbitMQ reports them)."""


def _count(value: Any, what: str) -> int:
    """``value`` as a whole, non-negative count; anything else is :class:`Unjudgeable` (a
    negative depth is a broken source, not an empty queue)."""
    number = as_number(value, what)
    if number < 0 or not number.is_integer():
        raise Unjudgeable(f"{what} is {formats.number(number)}, not a count")
    return int(number)


def _optional_count(document: Mapping[str, Any], key: str) -> int | None:
    if key not in document:
        return None
    return _count(document[key], f"RabbitMQ's {key}")


def _optional_number(document: Any, path: str) -> float | None:
    try:
        return as_number(dotted(document, path), path)
    except Unjudgeable:
        return None


def _sql_reader(dlq: SqlDlq, datastore: PostgresDatastore) -> Reader:
    from opsdash.probes.clients import load_postgres

    load_postgres()

    async def read(resources: Resources) -> Reading:
        import asyncpg

        from opsdash.probes.clients import with_postgres_connection

        async def work(connection: asyncpg.Connection) -> object:
            async with connection.transaction(readonly=True):
                return await connection.fetchval(dlq.query)

        try:
            value = await with_postgres_connection(resources, dlq.datastore, datastore, work)
        except asyncpg.PostgresError as exc:
            # Class 42 (syntax error, undefined table...) and 25006 (the query tried to
            # write in the read-only transaction) are the registry's query: config.
            sqlstate = str(getattr(exc, "sqlstate", ""))
            if sqlstate.startswith("42") or sqlstate == "25006":
                raise ProbeFailure(ErrorType.CONFIG, f"DLQ query failed: {exc}") from None
            raise
        if value is None:
            raise Unjudgeable("the DLQ query returned no value")
        return Reading(_count(value, "the DLQ query's result"))

    return read


def _mongo_reader(dlq: MongoDlq, datastore: MongoDatastore, timeout: float) -> Reader:
    from opsdash.probes.clients import load_mongo

    load_mongo()

    async def read(resources: Resources) -> Reading:
        import pymongo
        from pymongo.errors import ConfigurationError

        from opsdash.deadline import time_left
        from opsdash.probes.clients import mongo_budget, mongo_client

        # As the mongo datastore probe: pymongo is told the harness's deadline (--timeout too).
        budget = time_left(timeout)
        client = await mongo_client(resources, dlq.datastore, datastore, timeout=budget)
        try:
            database = client[dlq.database] if dlq.database else client.get_default_database()
        except ConfigurationError:
            raise ProbeFailure(
                ErrorType.CONFIG, "no database: set dlq.database or name one in the URI"
            ) from None
        with pymongo.timeout(mongo_budget(budget)):
            count = await database[dlq.collection].count_documents(dict(dlq.filter))
        return Reading(int(count))

    return read


def _http_json_reader(dlq: HttpJsonDlq, max_body: int) -> Reader:
    async def read(resources: Resources) -> Reading:
        body = await fetch(
            resources.http(), dlq.url, max_body=max_body, headers=dlq.headers, what="JSON"
        )
        value = as_number(dotted(await load_json(body), dlq.path), dlq.path)
        if value < 0 or not value.is_integer():
            raise Unjudgeable(f"{dlq.path} is {formats.number(value)}, not a count")
        return Reading(int(value))

    return read
