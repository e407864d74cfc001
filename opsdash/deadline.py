"""The running probe's deadline, for probes whose library keeps a clock of its own.

The harness enforces every deadline with ``asyncio.timeout``. A few libraries (pymongo's
server selection) also want to be told how long they may wait, so that they fail with their
own reason ("connection refused") before the harness's deadline turns it into a bare timeout.
:func:`time_left` tells them what the harness set, including a ``--timeout`` override.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_DEADLINE: ContextVar[float | None] = ContextVar("opsdash_probe_deadline", default=None)


@contextmanager
def deadline_in(seconds: float) -> Iterator[None]:
    """Mark the code inside as running under a deadline ``seconds`` from now."""
    token = _DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def time_left(default: float) -> float:
    """Seconds left before the running probe's deadline; ``default`` outside the harness."""
    deadline = _DEADLINE.get()
    return default if deadline is None else max(deadline - time.monotonic(), 0.0)
