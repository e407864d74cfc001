"""``opsdash demo``: the dashboard on a built-in demo platform, or one check round of it.

Only click is imported here: the CLI imports this module at start-up, and the demo (servers,
prometheus_client, textual) loads only when the command runs.
"""

from __future__ import annotations

import click

from opsdash.commands.options import output_options


@click.command("demo")
@click.option(
    "--check",
    "one_round",
    is_flag=True,
    help="Run one check round against the demo instead of opening the dashboard; takes "
    "every output option of `opsdash check` (--json, --format, -q).",
)
@output_options
@click.option(
    "--at",
    "start_at",
    type=click.FloatRange(0, None),
    default=0.0,
    metavar="SECONDS",
    help=(
        "Start this far into the 80 s story (10-30: redis outage; 20-60: DLQ; 30-46: "
        "postgres connections; 36-56: missing index; 50-68: slow; 56-76: mongo lag)."
    ),
)
def demo(one_round: bool, as_json: bool, output_format: str, quiet: bool, start_at: float) -> None:
    """Start a demo platform on loopback (11 services, 4 workers, PostgreSQL, Redis and
    MongoDB, a looping story of a redis outage, a DLQ that fills and drains, PostgreSQL near
    saturation and missing an index, a slow service, a lagging MongoDB secondary) and open the
    dashboard on it.

    Needs no external server: PostgreSQL is a throwaway cluster of the machine's binaries (or
    the pgserver wheel's), left out with a note when there are none. With --check, prints like
    ``opsdash check`` (so the demo shows every face: text, -q, --json, --format
    junit|prometheus) and exits 0/1/2/3 like it.
    """
    import sys

    from opsdash.commands.common import run_async

    output_format = "json" if as_json else output_format
    if one_round:
        sys.exit(run_async(check_once(output_format, quiet=quiet, start_at=start_at)))
    if as_json or output_format != "text" or quiet:
        raise click.UsageError("--json, --format and -q go with --check")
    run_async(open_dashboard(start_at=start_at))


async def check_once(
    output_format: str = "text", *, quiet: bool = False, start_at: float = 0.0
) -> int:
    """Start the demo platform, run one round of every check, print it; the exit code."""
    from opsdash.commands.common import emit_snapshot
    from opsdash.demo.platform import DemoPlatform
    from opsdash.plan import build_plan
    from opsdash.rounds import one_round

    async with DemoPlatform(start_at=start_at, drive=False) as demo:
        _note(demo.postgres_note)
        registry = demo.registry
        snapshot = await one_round(
            registry, build_plan(registry), concurrency=registry.defaults.concurrency
        )
    emit_snapshot(snapshot, output_format, quiet=quiet)
    return int(snapshot.status.exit_code)


async def open_dashboard(*, start_at: float = 0.0) -> None:
    """Start the demo platform and open the dashboard on it until the user quits."""
    from opsdash.demo.platform import DemoPlatform
    from opsdash.plan import build_plan
    from opsdash.tui.app import DashboardApp

    # PostgreSQL starts in the background: the first frame comes at once, its checks pending
    async with DemoPlatform(start_at=start_at, postgres_in_background=True) as demo:
        registry = demo.registry
        await DashboardApp(registry, demo.gated(build_plan(registry))).run_async()
        _note(demo.postgres_note)  # after the dashboard, where the terminal shows it


def _note(postgres_note: str) -> None:
    """Say on stderr why the demo runs without PostgreSQL (nothing when it has it)."""
    if postgres_note:
        click.echo(f"demo: without PostgreSQL: {postgres_note}", err=True)
