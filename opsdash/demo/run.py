"""Running the demo: the dashboard on it, or one check round against it (a smoke test)."""

from __future__ import annotations

from opsdash.demo.platform import DemoPlatform


async def check_once(*, as_json: bool = False, start_at: float = 0.0) -> int:
    """Start the demo platform, run one round of every check, print it; the exit code."""
    from opsdash.cli import check_rounds, emit_snapshot
    from opsdash.plan import build_plan

    async with DemoPlatform(start_at=start_at, drive=False) as demo:
        registry = demo.registry
        snapshot = await check_rounds(
            registry, build_plan(registry), wait=None, concurrency=registry.defaults.concurrency
        )
    emit_snapshot(snapshot, "json" if as_json else "text")
    return int(snapshot.status.exit_code)


async def open_dashboard(*, start_at: float = 0.0) -> None:
    """Start the demo platform and open the dashboard on it until the user quits."""
    from opsdash.plan import build_plan
    from opsdash.tui.app import DashboardApp

    async with DemoPlatform(start_at=start_at) as demo:
        registry = demo.registry
        await DashboardApp(registry, build_plan(registry)).run_async()
