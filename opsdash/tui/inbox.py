"""Results from the scheduler on their way to the panels, in batches.

Results arrive one by one, up to thousands a second; redrawing the panels for each would leave
no loop turn for a key press. The inbox hands them on as one batch per burst, and at most one
batch every ``gap`` seconds after the panels were last refreshed, so a round of 1,000 results
costs a few refreshes. Nothing here knows textual: ``deliver`` posts the batch as a message.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from opsdash.results import CheckResult

FLUSH_GAP = 0.2
"""Seconds between two panel refreshes while results pour in."""

Deliver = Callable[[tuple[CheckResult, ...]], object]


class ResultInbox:
    """The scheduler's sink (:meth:`put`); ``deliver`` gets each batch, oldest first."""

    def __init__(
        self,
        deliver: Deliver,
        *,
        gap: float = FLUSH_GAP,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._deliver = deliver
        self._gap = gap
        self._clock = clock
        self._queue: deque[CheckResult] = deque()
        self._pending: asyncio.Handle | None = None
        self._last = float("-inf")

    def put(self, result: CheckResult) -> None:
        """Queue one result; the first of a burst schedules the next batch."""
        self._queue.append(result)
        if self._pending is None:
            self._pending = asyncio.get_running_loop().call_soon(self._schedule)

    def refreshed(self) -> None:
        """The panels were just redrawn (a tick, a key): the next batch waits for the gap."""
        self._last = self._clock()

    def close(self) -> None:
        """Drop a batch that is scheduled but not delivered (the app is going away)."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None

    def _schedule(self) -> None:
        delay = self._last + self._gap - self._clock()
        if delay <= 0:
            self._flush()
        else:
            self._pending = asyncio.get_running_loop().call_later(delay, self._flush)

    def _flush(self) -> None:
        # Clear the handle before draining: a result queued from here on schedules the next.
        self._pending = None
        queue = self._queue
        batch = tuple(queue.popleft() for _ in range(len(queue)))
        self._last = self._clock()
        if batch:
            self._deliver(batch)
