"""``opsdash demo``: the dashboard on a built-in demo platform, or one check round of it.

Only click is imported here: the CLI imports this module at start-up, and the demo (servers,
prometheus_client, textual) loads only when the command runs.
"""

from __future__ import annotations

import click


@click.command("demo")
@click.option(
    "--check",
    "one_round",
    is_flag=True,
    help="Run one check round against the demo instead of opening the dashboard.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="With --check: one opsdash.check/v1 document."
)
@click.option(
    "--at",
    "start_at",
    type=click.FloatRange(0, None),
    default=0.0,
    metavar="SECONDS",
    help="Start this far into the 80 s story (10-30: redis outage; 20-60: DLQ; 50-68: slow).",
)
def demo(one_round: bool, as_json: bool, start_at: float) -> None:
    """Start a demo platform on loopback (11 services, 4 workers, a looping story of a redis
    outage, a DLQ that fills and drains, a slow service) and open the dashboard on it.

    Needs no external server. With --check, exits 0/1/2/3 like ``opsdash check``.
    """
    import sys

    from opsdash.demo.run import check_once, open_dashboard
    from opsdash.resources import run_async

    if one_round:
        sys.exit(run_async(check_once(as_json=as_json, start_at=start_at)))
    run_async(open_dashboard(start_at=start_at))
