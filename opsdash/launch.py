"""How the ``opsdash`` console script starts and ends a process.

This module imports nothing but the standard library's ``gc``, ``os`` and ``sys``, so what it
decides comes before click and the command's modules load:

- A one-shot command (``check``, ``validate``, ``alert``, ...) that runs one round allocates
  its registry, plan and results once and drops them at exit, so the cyclic collector does
  not run at all, from the first import on. The imports alone used to trigger some forty
  collections; a round's results are young objects, and each collection walks all of them
  (one of 20-25 ms at 1,000 services at the default thresholds; one of ~110 ms at 5,000
  services at a threshold of 200,000). What it leaves is bounded by the round: reference
  cycles of about 1-2 KB a probe (a 10,000-service check peaks at ~150 MB, 20,000 refused
  probes at ~154 MB), reclaimed at exit.
- ``check --wait`` repeats rounds for as long as it is given: its collector runs, rarely
  (:data:`REPEATING_GC_THRESHOLD`), so each round's cycles are reclaimed.
- Once a one-shot command's output is flushed, the process ends without the interpreter's
  teardown (tens of ms of freeing modules and objects nobody will look at again).

Long-running commands (``ui``, ``serve``, ``demo``) are left as the interpreter starts them
here: the dashboard and ``serve`` tune their collector themselves while they run
(:mod:`opsdash.collector`).
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

ONE_SHOT_COMMANDS = frozenset({"check", "validate", "schema", "alert", "silence", "history"})
ANSWERS_AND_EXITS = frozenset({"-h", "--help", "--version"})
"""Options that print an answer and end the process, whatever command they follow."""

REPEATING_GC_THRESHOLD = (200_000, 50, 100)
"""The collector of a one-shot command that repeats rounds (``check --wait``)."""


def run() -> NoReturn:
    """Console-script entry point: :func:`opsdash.cli.main`, with the process tuned for the
    command named on the command line."""
    argv = sys.argv[1:]
    one_shot = is_one_shot(argv)
    if one_shot:
        threshold = one_shot_gc_threshold(argv)
        if threshold is None:
            gc.disable()
        else:
            gc.set_threshold(*threshold)
    from opsdash.cli import main  # after the collector is set: click and the commands load

    code = main()
    if one_shot:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):  # a closed pipe: let the normal exit report it
            sys.exit(code)
        os._exit(code)
    sys.exit(code)


def is_one_shot(argv: Sequence[str]) -> bool:
    """The command named on the command line ends by itself (``ui`` is the default, unless
    only the help or the version is asked for)."""
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command is None:
        return any(arg in ANSWERS_AND_EXITS for arg in argv)
    return command in ONE_SHOT_COMMANDS


def one_shot_gc_threshold(argv: Sequence[str]) -> tuple[int, int, int] | None:
    """The collector's thresholds for a one-shot command line: ``None`` (no collection) for a
    single round, :data:`REPEATING_GC_THRESHOLD` when ``--wait`` repeats rounds."""
    if any(arg == "--wait" or arg.startswith("--wait=") for arg in argv):
        return REPEATING_GC_THRESHOLD
    return None
