"""The long-running commands' policy for Python's cyclic garbage collector, for as long as
they run (the dashboard, ``serve``).

A full collection walks every tracked object and stops the process while it does: with
textual, httpx and 1,000 checks' tasks, long enough to make a key press miss its 100 ms
(figures in ``bench/README.md``). What is alive at start (modules, widgets, the plan) and
after the first round (tasks, clients, connections) lives as long as the process, so walking
it again finds nothing: it is frozen out of the collector's reach (``gc.freeze``; reference
counting still frees it). And a round's rows, strips and results live a few hundred
milliseconds: at the default young threshold (700) they were scanned and promoted many times a
refresh (in ``serve``, ~10% of its CPU per probe), so the threshold is raised while the command
runs. Process-wide state, so :meth:`CollectorPolicy.stop` gives everything back.
"""

from __future__ import annotations

import gc

GC_YOUNG = 20_000
"""Allocations between two young-generation collections (Python's default: 700)."""


class CollectorPolicy:
    """Tunes the collector from :meth:`start` to :meth:`stop`."""

    def __init__(self, young: int = GC_YOUNG) -> None:
        self._young = young
        self._before: tuple[int, int, int] | None = None
        self._settled = False

    def start(self) -> None:
        """At mount: raise the young threshold and freeze what is alive. Idempotent: a second
        call (a subclass's ``on_mount`` calling its parent's: textual runs both) must not take
        the raised threshold for the one to give back."""
        if self._before is not None:
            return
        self._before = gc.get_threshold()
        gc.set_threshold(self._young, self._before[1], self._before[2])
        gc.freeze()

    @property
    def is_settled(self) -> bool:
        """Whether :meth:`settled` has been called."""
        return self._settled

    def settled(self) -> None:
        """Once, when the first round is in: its tasks and clients now live as long as the
        app, like the widgets frozen at mount. Later calls do nothing."""
        if not self._settled:
            self._settled = True
            gc.freeze()

    def stop(self) -> None:
        """At exit: the thresholds as they were, and the frozen objects back in reach."""
        if self._before is not None:
            gc.set_threshold(*self._before)
            self._before = None
        gc.unfreeze()
