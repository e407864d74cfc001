"""``opsdash heartbeat ID``: a cron job reports in (a dead man's switch).

Only click is imported at module level: cron pays for every import.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from opsdash.commands.options import env_option, registry_option, state_option


@click.command()
@click.argument("name", metavar="ID")
@click.option(
    "--status",
    "status_text",
    type=click.Choice(["ok", "warn", "crit"]),
    default="ok",
    show_default=True,
    help="What the job reports.",
)
@click.option("--message", metavar="TEXT", default="", help="A line shown with the check.")
@registry_option
@env_option
@state_option
def heartbeat(
    name: str,
    status_text: str,
    message: str,
    registry_path: Path,
    env_name: str | None,
    state_path: Path | None,
) -> None:
    """Record a heartbeat for the heartbeat check ID (or its name after the dot).

    \b
    0 3 * * *  nightly-export && opsdash heartbeat billing.nightly-export
    opsdash heartbeat nightly-export --status warn --message "3 rows skipped"

    The check goes crit when the last beat is older than its max_age; a beat reporting warn
    or crit gives that status until the next one.
    """
    from opsdash.alertstate.store import StateFileError, default_state_path
    from opsdash.commands.common import fail_config, load
    from opsdash.heartbeats import HeartbeatError, find, record, reported_status

    registry = load(registry_path, env_name)
    try:
        definition = find(registry, name)
        beat = record(
            state_path or default_state_path(),
            definition,
            status=reported_status(status_text),
            message=message,
            source="cli",
        )
    except HeartbeatError as exc:
        fail_config(f"opsdash heartbeat: {exc}")
    except StateFileError as exc:
        click.echo(f"opsdash heartbeat: {exc}", err=True)
        sys.exit(3)
    click.echo(f"recorded a heartbeat for {beat.check_id} ({beat.status})")
