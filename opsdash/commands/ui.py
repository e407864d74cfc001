"""``opsdash ui`` (and a bare ``opsdash``): the live dashboard; textual loads when it runs."""

from __future__ import annotations

from pathlib import Path

import click

from opsdash.commands.common import load, selected_specs
from opsdash.commands.options import (
    read_token,
    selection_options,
    state_option,
    token_file_option,
)
from opsdash.commands.remote import from_option


@click.command()
@selection_options
@state_option
@from_option
@token_file_option
def ui(
    registry_path: Path,
    env_name: str | None,
    only: tuple[str, ...],
    tags: tuple[str, ...],
    state_path: Path | None,
    sources: tuple[str, ...],
    token_file: Path | None,
) -> None:
    """Open the live dashboard (the default command).

    With --from URL (repeatable), show the results `opsdash serve` instances stream instead of
    probing: the registry still lays out the panels; a source that goes away is shown in the
    header, its results marked stale, and reconnected by itself.
    """
    token = read_token(token_file)
    registry = load(registry_path, env_name)
    specs = selected_specs(registry, only=only, tags=tags)
    from opsdash.tui.app import run_dashboard

    run_dashboard(registry, specs, alert_state=state_path, sources=sources, token=token)
