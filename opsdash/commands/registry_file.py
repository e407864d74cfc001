"""``opsdash validate`` and ``opsdash schema``: the registry file itself, no probe run."""

from __future__ import annotations

from pathlib import Path

import click

from opsdash.commands.common import load
from opsdash.commands.options import env_option, registry_option


@click.command()
@registry_option
@env_option
def validate(registry_path: Path, env_name: str | None) -> None:
    """Check the registry and print a summary of what it resolves to (secrets masked)."""
    from opsdash.registry.summary import describe, warnings

    registry = load(registry_path, env_name)
    click.echo(describe(registry))
    for warning in warnings(registry):
        click.echo(f"warning: {warning}", err=True)


@click.command()
def schema() -> None:
    """Print the registry's JSON Schema (for editors' YAML validation)."""
    import json

    from opsdash.registry.summary import registry_json_schema

    click.echo(json.dumps(registry_json_schema(), indent=2))
