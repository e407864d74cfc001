"""Redis check (redis.asyncio): PING round trip, then the figures of ``INFO``.

One check per ``kind: redis`` datastore, id ``<name>``, through the datastore's shared client
(:func:`opsdash.probes.clients.redis_client`; ``rediss://`` and ``redis://:password@`` URLs
work as redis-py parses them). Judged: used memory against ``maxmemory`` when a limit is set,
and on a replica the link to its master. Counters (evicted keys, rejected connections) are
reported, not judged: they count since the server started.

redis-py drops a connection whose command was cancelled, so a run cut by the harness's
deadline leaves no half-read reply behind for the next one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

from opsdash.figures import RedisFigures, ReplicaLink
from opsdash.probe_plan import Planned, bind
from opsdash.probes.clients import load_redis, redis_client
from opsdash.redact import redact_url
from opsdash.registry.model import RedisDatastore, Registry
from opsdash.resources import Resources
from opsdash.results import Observation
from opsdash.status import Status, worst

KIND = "redis"


def plan(name: str, datastore: RedisDatastore, registry: Registry) -> Iterator[Planned]:
    """The checks of one redis datastore (just the one)."""
    load_redis()
    probe = bind(probe_redis, name, datastore)
    yield Planned(None, KIND, redact_url(datastore.url), probe, heavy_start=True)


async def probe_redis(resources: Resources, name: str, datastore: RedisDatastore) -> Observation:
    """PING, then ``INFO``, judged by :func:`judge_info`."""
    client = await redis_client(resources, name, datastore)
    start = time.perf_counter()
    await client.ping()
    ping_ms = (time.perf_counter() - start) * 1000.0
    info: Mapping[str, Any] = await client.info()
    return judge_info(datastore, ping_ms, info)


def judge_info(datastore: RedisDatastore, ping_ms: float, info: Mapping[str, Any]) -> Observation:
    """The verdict on a parsed ``INFO`` answer (a pure function, for tests)."""
    version = str(info.get("redis_version", "?"))
    is_replica = info.get("role") == "slave"
    used = _int(info.get("used_memory"))
    limit = _int(info.get("maxmemory"))
    pct = round(used * 100.0 / limit, 1) if used is not None and limit else None
    clients = _int(info.get("connected_clients"))
    link = info.get("master_link_status") if is_replica else None

    memory_status = datastore.memory.judge(pct)
    # A replica cut from its master still answers, with data that grows stale: a warning.
    link_status = Status.WARN if is_replica and link != "up" else Status.OK

    head = f"Redis {version} {'replica' if is_replica else 'master'}"
    if is_replica:
        head += f" (link {link or 'unknown'})"
    parts = [head, f"{clients} clients"]
    if used is not None:
        parts.append(
            f"memory {_size(used)} of {_size(limit)} ({pct:g}%)"
            if limit and pct is not None
            else f"memory {_size(used)}"
        )
    policy = info.get("maxmemory_policy")
    figures = RedisFigures(
        version=version,
        role="replica" if is_replica else "master",
        ping_ms=round(ping_ms, 2),
        clients_connected=clients,
        clients_blocked=_int(info.get("blocked_clients")),
        memory_used=used,
        memory_max=limit or None,
        memory_pct=pct,
        maxmemory_policy=None if policy is None else str(policy),
        evicted_keys=_int(info.get("evicted_keys")),
        rejected_connections=_int(info.get("rejected_connections")),
        replica=ReplicaLink(
            master_link_status=None if link is None else str(link),
            master_last_io_seconds_ago=_int(info.get("master_last_io_seconds_ago")),
            master_link_down_since_seconds=_int(info.get("master_link_down_since_seconds")),
        )
        if is_replica
        else None,
    )
    return Observation(worst((memory_status, link_status)), "; ".join(parts), figures)


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str | bytes):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _size(value: int | None) -> str:
    """Bytes as ``812 B``, ``1.2 MiB``, ``4 GiB``."""
    if value is None:
        return "?"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024:
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TiB"
