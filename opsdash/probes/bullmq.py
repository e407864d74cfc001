"""The counts of a BullMQ queue, read from BullMQ's own Redis keys (no Node, no Lua).

Layout followed (``src/classes/queue-keys.ts`` and the Lua scripts of taskforcesh/bullmq),
keys ``{prefix}:{queue}:{suffix}``, default prefix ``bull``:

========================  =====  =========================================================
suffix                    type   note
========================  =====  =========================================================
``wait``                  LIST   BullMQ 3.x-4.x may end it with a ``0:<ts>`` delay marker
``paused``                LIST   up to 5.x; 6.x keeps a paused queue's jobs in ``wait``
``active``                LIST
``delayed``               ZSET   retries with backoff wait here
``prioritized``           ZSET   4.x and later
``waiting-children``      ZSET   flows
``completed``/``failed``  ZSET   score = finish time in ms
``meta``                  HASH   field ``paused`` present while the queue is paused
``id``                    STR    job counter (exists once a job was ever added)
``marker``                ZSET   5.x and later: wake-up markers, not jobs (not counted)
========================  =====  =========================================================

Version differences handled: the 3.x/4.x marker at the tail of ``wait`` (or ``paused``) is
not a job and is not counted, exactly as BullMQ's own ``getCounts`` script does; in 6.x a
paused queue keeps its jobs in ``wait`` and says so in ``meta.paused``: they are reported as
``paused`` (what ``getJobCounts`` reported for them up to 5.x), so the figures mean the same
whatever the version. The DLQ depth of a BullMQ queue is its ``failed`` count (jobs land there
only after their last attempt); the oldest failure's age comes from the ``failed`` score.

Every command goes out in one pipeline (through the datastore's batcher): one round trip.
"""

from __future__ import annotations

from typing import Any

from opsdash.probes.queue_sources import text
from opsdash.probes.redis_batch import RedisBatcher, cmd
from opsdash.records import dataclass

_MARKER_PREFIX = "0:"


@dataclass(frozen=True, slots=True)
class BullmqCounts:
    """What one read of a BullMQ queue found."""

    counts: dict[str, int]
    paused: bool
    exists: bool
    """False when none of the queue's bookkeeping keys exists: a wrong name or prefix."""
    oldest_failed_at: float | None
    """Finish time (seconds since the epoch) of the oldest job in ``failed``."""


def _marker(tail: Any) -> bool:
    return tail is not None and text(tail).startswith(_MARKER_PREFIX)


async def read_counts(batcher: RedisBatcher, prefix: str, queue: str) -> BullmqCounts:
    """Every state's count of ``queue`` under ``prefix``, in one round trip."""
    base = f"{prefix}:{queue}:"
    replies = await batcher.execute(
        cmd("llen", base + "wait"),
        cmd("lindex", base + "wait", -1),
        cmd("llen", base + "paused"),
        cmd("lindex", base + "paused", -1),
        cmd("llen", base + "active"),
        cmd("zcard", base + "delayed"),
        cmd("zcard", base + "prioritized"),
        cmd("zcard", base + "waiting-children"),
        cmd("zcard", base + "failed"),
        cmd("zcard", base + "completed"),
        cmd("hexists", base + "meta", "paused"),
        cmd("exists", base + "meta", base + "id"),
        cmd("zrange", base + "failed", 0, 0, withscores=True),
    )
    (wait, wait_tail, paused_len, paused_tail, active, delayed, prioritized, children, failed,
     completed, paused_flag, existing, oldest) = replies  # fmt: skip
    # A delay marker is not a job (BullMQ 3.x-4.x): BullMQ's getCounts drops it the same way.
    wait = max(0, int(wait) - (1 if _marker(wait_tail) else 0))
    paused_jobs = max(0, int(paused_len) - (1 if _marker(paused_tail) else 0))
    is_paused = bool(paused_flag)
    if is_paused and paused_jobs == 0:
        # BullMQ 6.x: no paused list; a paused queue's jobs wait in "wait".
        wait, paused_jobs = 0, wait
    counts = {
        "wait": wait,
        "active": int(active),
        "delayed": int(delayed),
        "prioritized": int(prioritized),
        "paused": paused_jobs,
        "waiting-children": int(children),
        "failed": int(failed),
        "completed": int(completed),
    }
    oldest_failed_at = float(oldest[0][1]) / 1000.0 if oldest else None
    exists = int(existing) > 0 or any(counts.values())
    return BullmqCounts(counts, is_paused, exists, oldest_failed_at)
