"""Input latency of a key press while a round of 1,000 probes is in flight.

1,000 checks (500 services x health + ready) against one loopback server; one service in ten
never answers (each of those probes hangs until its 2 s deadline). The key ``f`` is pressed
while the round runs; the latency is the time from posting the key to the action running.
Baseline in the same run: the same key press with the checks paused and idle.
Target: under 100 ms.

    .venv/bin/python -m bench.tui_keypress
"""

from __future__ import annotations

import asyncio
import statistics
import time

from opsdash.demo.server import HttpServer, Response
from opsdash.plan import build_plan
from opsdash.registry.model import Registry
from opsdash.tui.app import DashboardApp

SERVICES = 500
PRESSES = 7


async def handler(path: str) -> Response:
    """``/s<n>/health``: service numbers divisible by ten hang, the rest answer at once."""
    number = int(path.split("/")[1].removeprefix("s"))
    if number % 10 == 0:
        await asyncio.sleep(3600)
    return Response(200, b'{"status":"ok"}')


class Timed(DashboardApp):
    """Records when the ``f`` action runs."""

    handled: list[float]

    def action_failing_only(self) -> None:
        self.handled.append(time.perf_counter())
        super().action_failing_only()


async def press_latency(pilot: object, app: Timed) -> float:
    app.handled = []
    start = time.perf_counter()
    await pilot.press("f")  # type: ignore[attr-defined]
    return (app.handled[0] - start) * 1000


async def main() -> None:
    async with HttpServer(handler) as server:
        registry = Registry.model_validate(
            {
                "version": 1,
                "platform": "bench",
                "defaults": {"interval": "5s", "timeout": "2s"},
                "services": {f"s{i}": {"url": f"{server.url}/s{i}"} for i in range(SERVICES)},
            }
        )
        app = Timed(registry, build_plan(registry), concurrency=1024)
        in_flight: list[float] = []
        idle: list[float] = []
        async with app.run_test(size=(160, 48)) as pilot:
            for _ in range(PRESSES):
                assert app.scheduler is None or not app.scheduler.paused
                await pilot.pause(0.3)  # the round is under way: 100 probes hang for 2 s
                in_flight.append(await press_latency(pilot, app))
            assert app.scheduler is not None
            app.scheduler.pause()
            await pilot.pause(2.5)  # let the round finish: nothing in flight
            for _ in range(PRESSES):
                idle.append(await press_latency(pilot, app))
        results = len(app.state.results())
    busy_ms, idle_ms = statistics.median(in_flight), statistics.median(idle)
    print(f"checks: {SERVICES * 2}, results on screen: {results}")
    print(f"key press, checks idle (baseline): median {idle_ms:6.1f} ms")
    print(
        f"key press, round in flight:        median {busy_ms:6.1f} ms "
        f"(max {max(in_flight):.1f}; {busy_ms / idle_ms:.1f}x)"
    )
    print(f"target 100 ms: {'met' if max(in_flight) < 100 else 'MISSED'}")


if __name__ == "__main__":
    asyncio.run(main())
