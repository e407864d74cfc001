"""Input latency of a key press while a round of 1,000 probes is in flight.

1,000 checks (500 services x health + ready) against one loopback server, run in a child
process (as a real platform is: its work must not be billed to the dashboard's loop); one
service in ten never answers (each of those probes hangs until its 2 s deadline). The probes
run on the app's own loop (uvloop when installed, as ``opsdash ui``; ``--asyncio`` for the
standard loop). Their first runs start when the dashboard mounts (``FIRST_RUNS_PER_S``: all
1,000 within a second), so the first round is the worst case: connections open, 900 answers
pour in and the panels refresh every ``FLUSH_GAP`` while 100 probes hang.

Key presses come from a separate thread, as a terminal's input thread would
(``driver.send_message``), at seeded-random instants spread over the whole round (about every
``SPACING`` seconds, jittered so they land at every phase of the refresh cycle). Every
``TARGETED``-th press waits for a panel refresh to be running and is posted during it: the
worst moment to type, which random instants rarely hit. The latency of one press is the time
from posting the key to the ``f`` action starting ("handled"), and to it finishing ("action
done": the action re-filters every panel). The report says how many presses landed while a
refresh was running.

Baseline in the same run: the same presses with the checks paused and nothing in flight.
Target: every press handled within 100 ms (p95 and max).

    .venv/bin/python -m bench.tui_keypress [--asyncio]
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from textual import events

from opsdash.demo.server import HttpServer, Response
from opsdash.plan import build_plan
from opsdash.registry.model import Registry
from opsdash.resources import event_loop_factory
from opsdash.results import CheckResult
from opsdash.tui.app import DashboardApp

SERVICES = 500
TIMEOUT_S = 2.0
WINDOW_S = TIMEOUT_S + 0.6
"""Presses are spread over the round: from mount to past the hanging probes' deadline."""
SPACING = 0.08
"""Mean seconds between presses (a fast typist; the ``f`` action itself costs a refresh)."""
TARGETED = 3
"""Every third press is posted while a panel refresh runs."""
IDLE_PRESSES = 15
TARGET_MS = 100.0


async def handler(path: str) -> Response:
    """``/s<n>/health``: service numbers divisible by ten hang, the rest answer at once."""
    number = int(path.split("/")[1].removeprefix("s"))
    if number % 10 == 0:
        await asyncio.sleep(3600)
    return Response(200, b'{"status":"ok"}')


async def serve() -> None:
    """The child process: serve :func:`handler`, print the URL, stop when stdin closes."""
    async with HttpServer(handler) as server:
        print(server.url, flush=True)
        await asyncio.to_thread(sys.stdin.read)


@contextlib.contextmanager
def platform() -> Iterator[str]:
    """Run :func:`serve` in a child process; its URL."""
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.tui_keypress", "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        yield child.stdout.readline().strip()
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)


@dataclass
class Trace:
    """What the app did, with ``time.perf_counter`` stamps."""

    started: list[float] = field(default_factory=list)
    finished: list[float] = field(default_factory=list)
    refreshes: list[tuple[float, float]] = field(default_factory=list)
    results: list[float] = field(default_factory=list)
    refreshing: threading.Event = field(default_factory=threading.Event)


class Timed(DashboardApp):
    """Records when the ``f`` action starts and ends, each refresh, and each result."""

    trace: Trace

    def action_failing_only(self) -> None:
        self.trace.started.append(time.perf_counter())
        super().action_failing_only()
        self.trace.finished.append(time.perf_counter())

    def refresh_panels(self) -> int:
        start = time.perf_counter()
        self.trace.refreshing.set()
        try:
            return super().refresh_panels()
        finally:
            self.trace.refreshing.clear()
            self.trace.refreshes.append((start, time.perf_counter()))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        put = self.inbox.put  # the engine's sink (taken at mount): every result passes here

        def traced(result: CheckResult) -> None:
            self.trace.results.append(time.perf_counter())
            put(result)

        self.inbox.put = traced  # type: ignore[method-assign]


def schedule(window: float, spacing: float, seed: int) -> list[float]:
    """Press instants (seconds from the start) over ``window``, jittered around ``spacing``."""
    rng = random.Random(seed)
    at, out = rng.uniform(0, spacing), []
    while at < window:
        out.append(at)
        at += rng.uniform(0.5 * spacing, 1.5 * spacing)
    return out


def press_from_thread(app: Timed, instants: list[float], *, targeted: bool) -> list[float]:
    """Post an ``f`` key at each instant, as the terminal driver's input thread does; with
    ``targeted``, every :data:`TARGETED`-th press waits (up to 0.5 s) for a refresh to run."""
    driver = app._driver
    assert driver is not None
    start = time.perf_counter()
    posted = []
    for n, at in enumerate(instants):
        delay = start + at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        if targeted and n % TARGETED == TARGETED - 1:
            app.trace.refreshing.wait(0.5)
        key = events.Key("f", "f")
        key.set_sender(app)
        posted.append(time.perf_counter())
        driver.send_message(key)
    return posted


async def presses(
    app: Timed, instants: list[float], *, targeted: bool
) -> tuple[list[float], list[float], list[float]]:
    """Press at ``instants``; the posting times and each press's two latencies (ms)."""
    app.trace.started.clear()
    app.trace.finished.clear()
    posted = await asyncio.to_thread(press_from_thread, app, instants, targeted=targeted)
    deadline = time.monotonic() + 10
    while len(app.trace.finished) < len(posted) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)  # the actions run on this loop: poll them with a deadline
    assert len(app.trace.finished) == len(posted), "some key presses were never handled"
    handled = [(s - p) * 1000 for p, s in zip(posted, app.trace.started, strict=True)]
    done = [(f - p) * 1000 for p, f in zip(posted, app.trace.finished, strict=True)]
    return posted, handled, done


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def line(label: str, values: list[float], baseline: float | None = None) -> str:
    """median / p95 / max, and the ratio of the median to the baseline's."""
    median = statistics.median(values)
    ratio = "" if baseline is None else f"  ({median / baseline:.1f}x baseline median)"
    return (
        f"{label:<34} median {median:6.1f}  p95 {pct(values, 0.95):6.1f}  "
        f"max {max(values):6.1f} ms{ratio}"
    )


async def main() -> None:
    with platform() as url:
        registry = Registry.from_data(
            {
                "version": 1,
                "platform": "bench",
                "defaults": {"interval": "5s", "timeout": f"{TIMEOUT_S:g}s"},
                "services": {f"s{i}": {"url": f"{url}/s{i}"} for i in range(SERVICES)},
            }
        )
        app = Timed(registry, build_plan(registry), concurrency=1024)
        app.trace = Trace()
        async with app.run_test(size=(160, 48)) as pilot:
            # the scheduler starts at mount: the first round is in flight from here
            mounted = time.perf_counter()
            posted, handled, done = await presses(
                app, schedule(WINDOW_S, SPACING, seed=5), targeted=True
            )
            app.action_toggle_pause()  # as the user's ``p``: hold the checks
            await pilot.pause(TIMEOUT_S + 0.5)  # let the round finish: nothing in flight
            _, idle_handled, idle_done = await presses(
                app, schedule(IDLE_PRESSES * 0.1, 0.1, seed=6), targeted=False
            )
        trace = app.trace
    results = len(trace.results)
    last_result = max(trace.results) if trace.results else mounted
    in_flight = sum(1 for p in posted if p <= last_result)
    during_refresh = sum(1 for p in posted if any(s <= p < e for s, e in trace.refreshes))
    busy_refreshes = [(e - s) * 1000 for s, e in trace.refreshes if s <= last_result]
    base = statistics.median(idle_handled)
    loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
    print(
        f"checks: {SERVICES * 2}, results during the round: {results}, terminal 160x48, "
        f"one {loop} loop"
    )
    print(
        f"round: first result {1000 * (min(trace.results) - mounted):.0f} ms after mount, "
        f"last {1000 * (last_result - mounted):.0f} ms; "
        f"{len(busy_refreshes)} panel refreshes, each median "
        f"{statistics.median(busy_refreshes):.1f} / max {max(busy_refreshes):.1f} ms"
    )
    print(
        f"presses: {len(posted)} over {WINDOW_S:g} s, {in_flight} while results were arriving, "
        f"{during_refresh} landed during a panel refresh"
    )
    print(line("idle: press -> handled (baseline)", idle_handled))
    print(line("idle: press -> action done", idle_done, base))
    print(line("round in flight: press -> handled", handled, base))
    print(line("round in flight: press -> action done", done, base))
    verdict = "met" if max(handled) < TARGET_MS else "MISSED"
    print(f"target {TARGET_MS:.0f} ms (handled, p95 and max): {verdict}")


if __name__ == "__main__":
    if "--serve" in sys.argv:
        asyncio.run(serve())
    else:
        factory = asyncio.new_event_loop if "--asyncio" in sys.argv else event_loop_factory()
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(main())
