"""The ``opsdash`` command line.

``opsdash`` alone opens the dashboard (``ui``); ``check``, ``validate``, ``schema``, ``demo``,
``alert``, ``silence``, ``history``, ``heartbeat`` and ``serve`` are the other faces. Exit
codes follow the Nagios convention for every command (``opsdash.status.ExitCode``), usage
errors included (3).

Start-up time matters for cron and CI: this module imports only click, and each command's
module (:mod:`opsdash.commands`) is imported when that command runs or shows its help
(:class:`LazyGroup`), so ``opsdash --help`` loads none of them and ``opsdash check`` loads
only its own. Nothing on the ``check`` path imports textual.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click
from click_default_group import DefaultGroup

from opsdash import __version__
from opsdash.status import ExitCode

COMMANDS: Mapping[str, tuple[str, str]] = {
    "alert": (
        "opsdash.commands.alerting",
        "Run every selected check once and notify on transitions (for cron, every minute).",
    ),
    "check": ("opsdash.commands.check", "Run every selected check once and report."),
    "demo": (
        "opsdash.commands.demo",
        "Start a demo platform on loopback (11 services, 4 workers, PostgreSQL, Redis and "
        "MongoDB, a looping story of a redis outage, a DLQ that fills and drains, PostgreSQL "
        "near saturation and missing an index, a slow service, a lagging MongoDB secondary) "
        "and open the dashboard on it.",
    ),
    "heartbeat": (
        "opsdash.commands.heartbeat",
        "Record a heartbeat for the heartbeat check ID (or its name after the dot).",
    ),
    "history": (
        "opsdash.commands.alerting",
        "What opsdash alert recorded: each check's status, since when, and uptime % (ok runs).",
    ),
    "schema": (
        "opsdash.commands.registry_file",
        "Print the registry's JSON Schema (for editors' YAML validation).",
    ),
    "serve": (
        "opsdash.commands.alerting",
        "A Prometheus exporter: run the checks on their intervals and serve /metrics.",
    ),
    "silence": (
        "opsdash.commands.alerting",
        "Hold back notifications about TARGET: a check id, a component, a tag or a glob.",
    ),
    "ui": ("opsdash.commands.ui", "Open the live dashboard (the default command)."),
    "validate": (
        "opsdash.commands.registry_file",
        "Check the registry and print a summary of what it resolves to (secrets masked).",
    ),
}
"""Each command: the module that defines it (as an attribute of the same name), and the first
paragraph of its help, which ``opsdash --help`` lists without importing the module
(``tests/test_import_hygiene.py`` holds the two equal)."""


class LazyGroup(DefaultGroup):  # type: ignore[misc]  # click-default-group ships no types
    """A :class:`DefaultGroup` whose commands (:data:`COMMANDS`) are imported on first use:
    when one runs, or when its own help is shown. Listing them (``opsdash --help``) reads
    their summaries instead."""

    commands: dict[str, click.Command]

    def __init__(self, *args: Any, lazy: Mapping[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self.load(cmd_name)
        command: click.Command | None = super().get_command(ctx, cmd_name)
        return command

    def load(self, name: str) -> click.Command | None:
        """The command ``name``, imported from its module now if it was not yet."""
        if name not in self.commands and name in self.lazy:
            module, _summary = self.lazy[name]
            self.add_command(getattr(importlib.import_module(module), name), name)
        return self.commands.get(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The listing is the standard one, over stand-ins for the commands not imported: a
        # command's summary line is the first paragraph of its help, cut to the width.
        saved: dict[str, click.Command] = self.commands
        stand_ins = {
            name: click.Command(name, help=summary)
            for name, (_module, summary) in self.lazy.items()
            if name not in saved
        }
        self.commands = {**saved, **stand_ins}
        try:
            super().format_commands(ctx, formatter)
        finally:
            self.commands = saved


@click.version_option(__version__, prog_name="opsdash")
def _root() -> None:
    """opsdash: what is broken on the platform, since when, and why.

    Without a command, opens the live dashboard (opsdash ui).

    Exit codes: 0 ok, 1 warn, 2 crit, 3 unknown (also a broken configuration or a usage error).
    """


# DefaultGroup (click-default-group) makes a bare ``opsdash`` run ``ui``; it ships no types.
cli: click.Group = click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    default="ui",
    default_if_no_args=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)(_root)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the CLI; usage errors exit 3 with the usage message (not click's 2)."""
    try:
        result: Any = cli.main(args=argv, prog_name="opsdash", standalone_mode=False)
    except click.ClickException as exc:  # usage errors included
        exc.show()
        return ExitCode.UNKNOWN
    except click.Abort:
        click.echo("Aborted.", err=True)
        return ExitCode.UNKNOWN
    except KeyboardInterrupt:
        return ExitCode.UNKNOWN
    except SystemExit as exc:  # commands end with sys.exit(code)
        return exc.code if isinstance(exc.code, int) else ExitCode.UNKNOWN
    return int(result) if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
