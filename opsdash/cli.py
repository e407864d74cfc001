"""The ``opsdash`` command line.

``opsdash`` alone opens the dashboard (``ui``); ``check``, ``validate``, ``schema``, ``demo``,
``alert``, ``silence``, ``history``, ``heartbeat`` and ``serve`` are the other faces. Exit
codes follow the Nagios convention for every command (``opsdash.status.ExitCode``), usage
errors included (3).

Start-up time matters for cron and CI: this module imports only click; each command imports
what it needs when it runs, and nothing on the ``check`` path imports textual.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import click
from click_default_group import DefaultGroup

from opsdash import __version__
from opsdash.commands.common import echo_err, emit_snapshot, load, run_async, selected_specs
from opsdash.commands.options import (
    duration_value,
    env_option,
    only_option,
    output_options,
    read_token,
    registry_option,
    state_option,
    tag_option,
    token_file_option,
)
from opsdash.commands.remote import check_from, from_option
from opsdash.status import ExitCode


def _duration(value: str | None, option: str) -> float | None:
    return None if value is None else duration_value(value, option)


@click.version_option(__version__, prog_name="opsdash")
def _root() -> None:
    """opsdash: what is broken on the platform, since when, and why.

    Without a command, opens the live dashboard (opsdash ui).

    Exit codes: 0 ok, 1 warn, 2 crit, 3 unknown (also a broken configuration or a usage error).
    """


# DefaultGroup (click-default-group) makes a bare ``opsdash`` run ``ui``; it ships no types.
cli: click.Group = click.group(  # type: ignore[no-untyped-call]
    cls=DefaultGroup,
    default="ui",
    default_if_no_args=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)(_root)


@cli.command()
@registry_option
@env_option
@only_option
@tag_option
@output_options
@click.option("--timeout", metavar="DURATION", help="Override every probe's deadline (e.g. 2s).")
@click.option(
    "--wait",
    metavar="DURATION",
    help="Re-run until everything selected is ok or DURATION is up (progress on stderr).",
)
@click.option(
    "--concurrency", type=click.IntRange(1, 1024), help="Probes in flight at once (default 64)."
)
@state_option
@from_option
@token_file_option
def check(
    registry_path: Path,
    env_name: str | None,
    only: tuple[str, ...],
    tags: tuple[str, ...],
    as_json: bool,
    output_format: str,
    quiet: bool,
    timeout: str | None,
    wait: str | None,
    concurrency: int | None,
    state_path: Path | None,
    sources: tuple[str, ...],
    token_file: Path | None,
) -> None:
    """Run every selected check once and report.

    A table on a terminal, failing checks first, summaries wrapped to the width (plain text
    when piped, every summary whole; NO_COLOR respected), or with --json exactly one
    opsdash.check/v1 document on stdout, also when the configuration is broken.

    With --from URL (repeatable), read the latest results of `opsdash serve` instances instead
    of probing (merged; a source that cannot be read exits 3).
    """
    output_format = "json" if as_json else output_format
    timeout_s = _duration(timeout, "--timeout")
    wait_s = _duration(wait, "--wait")
    as_json = output_format == "json"
    if sources:
        if tags:
            raise click.BadParameter(
                "tags live in the registry, which --from does not read; select with --only",
                param_hint="--tag",
            )
        if timeout_s is not None or concurrency is not None:
            raise click.UsageError("--timeout and --concurrency tune probes; --from probes nothing")
        check_from(
            sources, token=read_token(token_file), only=only, output_format=output_format,
            wait=wait_s, quiet=quiet,
        )  # fmt: skip
    as_nagios = output_format == "nagios"
    registry = load(registry_path, env_name, as_json=as_json, as_nagios=as_nagios)
    specs = selected_specs(
        registry, only=only, tags=tags, timeout=timeout_s, as_json=as_json, as_nagios=as_nagios
    )
    # The registry and the plan live as long as the process: out of the collector's sight.
    gc.freeze()

    from opsdash.alertstate.view import mark_snapshot
    from opsdash.rounds import check_rounds

    snapshot = run_async(
        check_rounds(
            registry,
            specs,
            wait=wait_s,
            concurrency=concurrency or registry.defaults.concurrency,
            progress=echo_err,
            state_path=state_path,
        )
    )

    # Silences and flapping from `opsdash alert`'s state, when there is one; a state file
    # that cannot be read costs the marks and a warning, never the check.
    snapshot = mark_snapshot(
        snapshot, specs, state_path, warn=lambda m: echo_err(f"opsdash: warning: {m}")
    )
    emit_snapshot(snapshot, output_format, quiet=quiet)
    sys.exit(snapshot.status.exit_code)


@cli.command()
@registry_option
@env_option
def validate(registry_path: Path, env_name: str | None) -> None:
    """Check the registry and print a summary of what it resolves to (secrets masked)."""
    from opsdash.registry.summary import describe, warnings

    registry = load(registry_path, env_name)
    click.echo(describe(registry))
    for warning in warnings(registry):
        click.echo(f"warning: {warning}", err=True)


@cli.command()
def schema() -> None:
    """Print the registry's JSON Schema (for editors' YAML validation)."""
    import json

    from opsdash.registry.summary import registry_json_schema

    click.echo(json.dumps(registry_json_schema(), indent=2))


@cli.command()
@registry_option
@env_option
@only_option
@tag_option
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


def _register_commands() -> None:
    # Each face's commands live beside it; their modules import only click at the top.
    from opsdash.commands.alerting import alert, history, serve, silence
    from opsdash.commands.demo import demo
    from opsdash.commands.heartbeat import heartbeat

    for command in (alert, silence, history, serve, demo, heartbeat):
        cli.add_command(command)


_register_commands()


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


def run() -> NoReturn:
    """Console-script entry point.

    A one-shot command allocates the registry, the plan and the results once and drops them
    at exit: the collector is told to run rarely (it cost 67 ms at 1,000 services), and once
    the output is flushed the process ends without the interpreter's teardown (tens of ms of
    freeing modules and objects nobody will look at again). Long-running commands (``ui``,
    ``serve``, ``demo``) keep the defaults."""
    one_shot = _is_one_shot(sys.argv[1:])
    if one_shot:
        gc.set_threshold(50_000, 50, 100)
    code = main()
    if one_shot:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):  # a closed pipe: let the normal exit report it
            sys.exit(code)
        os._exit(code)
    sys.exit(code)


_ONE_SHOT = frozenset({"check", "validate", "schema", "alert", "silence", "history"})


def _is_one_shot(argv: Sequence[str]) -> bool:
    """The command named on the command line ends by itself (``ui`` is the default)."""
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    return command in _ONE_SHOT
