"""How the ``opsdash`` console script starts and ends a process.

This module imports nothing but the standard library's ``gc``, ``os`` and ``sys``, so what it
decides comes before click and the command's modules load:

- A one-shot command (``check``, ``validate``, ``alert``, ...) allocates its registry, plan
  and results once and drops them at exit, so the cyclic collector runs rarely, from the
  first import on: every :data:`ONE_SHOT_GC_THRESHOLD` allocations. The imports alone used
  to trigger some forty collections, and a 1,000-service round one of 20-25 ms (the round's
  results are young objects: each collection walks all of them); at this threshold neither
  happens. It still runs: the probes that fail leave reference cycles (about 2 KB each; 43 MB
  at 20,000 refused probes with no collector, 20 MB at this threshold), and ``check --wait``
  repeats rounds for as long as it is given.
- Once a one-shot command's output is flushed, the process ends without the interpreter's
  teardown (tens of ms of freeing modules and objects nobody will look at again).

Long-running commands (``ui``, ``serve``, ``demo``) keep the defaults.
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

ONE_SHOT_GC_THRESHOLD = (200_000, 50, 100)


def run() -> NoReturn:
    """Console-script entry point: :func:`opsdash.cli.main`, with the process tuned for the
    command named on the command line."""
    argv = sys.argv[1:]
    one_shot = is_one_shot(argv)
    if one_shot:
        gc.set_threshold(*ONE_SHOT_GC_THRESHOLD)
    from opsdash.cli import main  # after the threshold: click and the commands load under it

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
