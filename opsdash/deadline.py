"""Probe deadlines: enforced (:class:`ProbeDeadlines`), and told to libraries that keep a
clock of their own (:func:`time_left`).

The harness runs every probe under ``ProbeDeadlines.within(seconds)``: as ``asyncio.timeout``,
the probe's task is cancelled when its time is up and the harness sees ``TimeoutError``. A few
libraries (pymongo's server selection) also want to be told how long they may wait, so that
they fail with their own reason ("connection refused") before the deadline turns it into a bare
timeout: :func:`time_left` tells them what the harness set, including a ``--timeout`` override.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from contextvars import ContextVar, Token
from types import TracebackType

_DEADLINE: ContextVar[float | None] = ContextVar("opsdash_probe_deadline", default=None)


def time_left(default: float) -> float:
    """Seconds left before the running probe's deadline; ``default`` outside the harness."""
    deadline = _DEADLINE.get()
    return default if deadline is None else max(deadline - time.monotonic(), 0.0)


_DUE_SLACK = 0.001
"""A deadline this close is due when the timer fires: the loop's clock ticks in milliseconds,
and a timer may run a little before its time."""


class ProbeDeadlines:
    """The deadlines of the probes running on one event loop, kept by one timer.

    ``asyncio.timeout`` arms a timer per probe; under uvloop that is a libuv timer made,
    started, stopped and closed each time (bench/README.md has what it cost). Here a deadline
    is an entry in a heap, and a single loop timer stands for the earliest one: probes of a
    round start in order with the same timeout, so the timer is set once for the round (when
    it fires after the round, it finds nothing due and ends).

    A probe that overruns is cancelled as ``asyncio.timeout`` cancels it (with the same
    ``cancelling()`` bookkeeping), and leaves :meth:`within` as ``TimeoutError``; any other
    cancellation passes through untouched.
    """

    __slots__ = ("_heap", "_loop", "_order", "_timer", "_timer_at")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Within]] = []
        self._order = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    def within(self, seconds: float) -> _Within:
        """A context manager: the code inside (in the current task) has ``seconds``."""
        return _Within(self, seconds)

    def _arm(self, entry: _Within) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # first use, or a new loop: nothing of the old one is due
            self._heap.clear()
            self._timer = None
            self._loop = loop
        when = loop.time() + entry.seconds
        heapq.heappush(self._heap, (when, next(self._order), entry))
        if self._timer is None or when < self._timer_at:
            self._set_timer(loop, when)

    def _disarm(self, entry: _Within) -> None:
        entry.armed = False
        self._drop_disarmed()
        # The timer stays when the heap empties: probes that run one after another (serve's
        # checks, each on its own interval) then share it instead of making one each; a timer
        # that finds nothing due when it fires just ends.

    def _drop_disarmed(self) -> None:
        # Entries leave the heap lazily: the earliest ones, once their probes are done.
        heap = self._heap
        while heap and not heap[0][2].armed:
            heapq.heappop(heap)

    def _set_timer(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(when, self._expire)
        self._timer_at = when

    def _expire(self) -> None:
        self._timer = None
        loop = self._loop
        assert loop is not None
        heap = self._heap
        due = loop.time() + _DUE_SLACK
        while heap and heap[0][0] <= due:
            entry = heapq.heappop(heap)[2]
            if entry.armed:
                entry.expire()
        self._drop_disarmed()
        if heap:
            self._set_timer(loop, heap[0][0])


class _Within:
    """One probe's deadline (:meth:`ProbeDeadlines.within`); also sets :func:`time_left`'s."""

    __slots__ = ("_cancelling", "_owner", "_task", "_token", "armed", "expired", "seconds")

    def __init__(self, owner: ProbeDeadlines, seconds: float) -> None:
        self._owner = owner
        self.seconds = seconds
        self.armed = False
        self.expired = False

    def __enter__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a probe deadline is entered in a task")
        self._task: asyncio.Task[object] = task
        self._cancelling = task.cancelling()
        self._token: Token[float | None] = _DEADLINE.set(time.monotonic() + self.seconds)
        self.armed = True
        self._owner._arm(self)

    def expire(self) -> None:
        """Time is up: cancel the task (the probe sees ``CancelledError`` where it waits)."""
        self.armed = False
        self.expired = True
        self._task.cancel()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _DEADLINE.reset(self._token)
        if self.armed:
            self._owner._disarm(self)
        # As asyncio.Timeout: ours was the only cancellation (none came from outside since
        # entering) -> the deadline's TimeoutError; else the caller's cancellation goes on.
        if (
            self.expired
            and self._task.uncancel() <= self._cancelling
            and exc_type is asyncio.CancelledError
        ):
            raise TimeoutError from exc
