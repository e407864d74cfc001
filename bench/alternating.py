"""The plumbing ``bench/hostile.py`` and ``bench/hostile_http.py`` share: servers in child
processes, each measured round in a fresh interpreter (so its peak RSS is the round's), healthy-only
and hostile rounds alternating so both see the same machine load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Figures = dict[str, Any]
"""One round's figures as its worker printed them (JSON object)."""


async def serve_until_killed(ready: Any, handlers: dict[str, list[Any]]) -> None:
    """In the servers' child process: serve every handler (``tests.adversarial.serve``), send
    ``{kind: [base URL, ...]}`` down ``ready``, then keep serving until the process is killed."""
    from tests import adversarial

    contexts = []
    urls: dict[str, list[str]] = {}
    for kind, group in handlers.items():
        for handler in group:
            context = adversarial.serve(handler)
            server = await context.__aenter__()
            contexts.append(context)  # held: a context dropped would close its server
            urls.setdefault(kind, []).append(server.url)
    ready.send(urls)
    await asyncio.Event().wait()


def parse_args(doc: str, runs: int) -> argparse.Namespace:
    """``--runs`` (default ``runs``) and the hidden ``--worker`` a fresh interpreter is run with."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=runs)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def fresh_round(module: str, registry: dict[str, Any]) -> Figures:
    """Run ``python -m module --worker`` with the registry on stdin; the figures it prints."""
    done = subprocess.run(
        [sys.executable, "-m", module, "--worker"],
        input=json.dumps(registry),
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    figures: Figures = json.loads(done.stdout)
    return figures


def alternate(
    module: str,
    servers: Sequence[Callable[[Any], None]],
    registry: Callable[[dict[str, list[str]], bool], dict[str, Any]],
    runs: int,
) -> tuple[list[Figures], list[Figures]]:
    """Start ``servers`` (each sends its ``{kind: [URL, ...]}`` down the pipe it is given), each
    in a child process of its own, then ``runs`` times a healthy-only round and a hostile one;
    (calm, hostile) figures."""
    children: list[multiprocessing.Process] = []
    urls: dict[str, list[str]] = {}
    try:
        for target in servers:
            receive, send = multiprocessing.Pipe(duplex=False)
            child = multiprocessing.Process(target=target, args=(send,), daemon=True)
            child.start()
            children.append(child)
            urls.update(receive.recv())
        calm: list[Figures] = []
        hostile: list[Figures] = []
        for _ in range(runs):
            calm.append(fresh_round(module, registry(urls, False)))
            hostile.append(fresh_round(module, registry(urls, True)))
    finally:
        for child in children:
            child.kill()
    return calm, hostile


@dataclass(frozen=True)
class Cost:
    """What the hostile readers cost: the slowest healthy verdict (median over runs) and peak
    RSS, with them and without."""

    calm_ms: float
    with_ms: float
    calm_rss_mb: float
    rss_mb: float


def cost(calm: list[Figures], hostile: list[Figures]) -> Cost:
    """Medians of ``healthy_max_ms`` and maxima of ``rss_mb`` of both series."""
    return Cost(
        calm_ms=statistics.median(f["healthy_max_ms"] for f in calm),
        with_ms=statistics.median(f["healthy_max_ms"] for f in hostile),
        calm_rss_mb=max(f["rss_mb"] for f in calm),
        rss_mb=max(f["rss_mb"] for f in hostile),
    )


def against_deadline(worst_ms: float, deadline_s: float) -> str:
    """The worst verdict against the deadline, in words that stay true on both sides of it."""
    over = worst_ms - deadline_s * 1000
    if over >= 0:
        return f"{worst_ms:.0f} ms = deadline + {over:.0f} ms"
    return f"{worst_ms:.0f} ms = {-over:.0f} ms before the deadline"


def print_rss(figures: Cost) -> None:
    """The peak-RSS line both benchmarks print."""
    print(
        f"peak RSS, every hostile reader at once: {figures.rss_mb:.0f} MB "
        f"(healthy alone {figures.calm_rss_mb:.0f} MB)"
    )
