"""Work too big for the event loop: a parse that may take more than a few milliseconds runs in
a worker thread, so that one probe's large answer never delays another probe's verdict (nor
``serve``'s ``/healthz``).

The thread still shares the GIL, but the interpreter hands it back to the loop every
``sys.getswitchinterval()`` (5 ms): the loop keeps turning while the parse goes on. Small
inputs, the common case, are parsed in place (a thread hop costs ~50 us), and handed back as a
finished future: awaiting it adds no coroutine frame that the probe's task would resume through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

OFF_LOOP_ABOVE = 256 * 1024
"""Input bytes above which a parse leaves the loop (a 256 KiB JSON or metrics page parses in
~2-20 ms here)."""


def parse_off_loop(
    size: int, parse: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> Awaitable[T]:
    """``parse(*args, **kwargs)``, to await: run in place when ``size`` is small (an error it
    raises, raised at once), else in a worker thread.

    A caller cut by its deadline stops waiting at once; the thread finishes its (capped) input
    and its result is dropped."""
    if size <= OFF_LOOP_ABOVE:
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        done.set_result(parse(*args, **kwargs))
        return done
    return asyncio.to_thread(parse, *args, **kwargs)
