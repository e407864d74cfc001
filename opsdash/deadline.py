"""The running probe's deadline, for probes whose library keeps a clock of its own.

The harness enforces every deadline with ``asyncio.timeout``. A few libraries (pymongo's
server selection) also want to be told how long they may wait, so that they fail with their
own reason ("connection refused") before the harness's deadline turns it into a bare timeout.
:func:`time_left` tells them what the harness set, including a ``--timeout`` override.
"""

from __future__ import annotations

import time
from contextvars import ContextVar, Token

_DEADLINE: ContextVar[float | None] = ContextVar("opsdash_probe_deadline", default=None)


class deadline_in:
    """Mark the code inside as running under a deadline ``seconds`` from now.

    A class named as the function it was (``with deadline_in(2.0):``), not a
    ``@contextmanager`` generator: it is entered once per probe run."""

    __slots__ = ("_deadline", "_token")

    def __init__(self, seconds: float) -> None:
        self._deadline = time.monotonic() + seconds
        self._token: Token[float | None] | None = None

    def __enter__(self) -> None:
        self._token = _DEADLINE.set(self._deadline)

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _DEADLINE.reset(self._token)


def time_left(default: float) -> float:
    """Seconds left before the running probe's deadline; ``default`` outside the harness."""
    deadline = _DEADLINE.get()
    return default if deadline is None else max(deadline - time.monotonic(), 0.0)
