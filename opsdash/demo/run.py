"""Running the demo: the dashboard on it, or one check round against it (a smoke test)."""

from __future__ import annotations

import sys

from opsdash.demo.platform import DemoPlatform


async def check_once(*, as_json: bool = False, start_at: float = 0.0) -> int:
    """Start the demo platform, run one round of every check, print it; the exit code."""
    from opsdash.engine import run_round
    from opsdash.plan import build_plan
    from opsdash.resources import Resources
    from opsdash.state import PlatformState

    async with DemoPlatform(start_at=start_at, drive=False) as demo:
        registry = demo.registry
        specs = build_plan(registry)
        async with Resources() as resources:
            round_ = await run_round(specs, resources)
    state = PlatformState(registry, specs)
    state.apply_all(round_.results)
    snapshot = state.snapshot(started_at=round_.started_at, duration_ms=round_.duration_ms)
    if as_json:
        from opsdash.render.json import check_document, dumps

        print(dumps(check_document(snapshot)))
    else:
        from opsdash.render.text import render_text

        print(render_text(snapshot, color=sys.stdout.isatty(), width=120))
    return int(snapshot.status.exit_code)


async def open_dashboard(*, start_at: float = 0.0) -> None:
    """Start the demo platform and open the dashboard on it until the user quits."""
    from opsdash.plan import build_plan
    from opsdash.tui.app import DashboardApp

    async with DemoPlatform(start_at=start_at) as demo:
        registry = demo.registry
        await DashboardApp(registry, build_plan(registry)).run_async()
