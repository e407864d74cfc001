"""The ``opsdash`` command line.

``opsdash`` alone opens the dashboard (``ui``); ``check``, ``validate``, ``schema``, ``demo``,
``alert``, ``silence``, ``history`` and ``serve`` are the other faces. Exit codes follow the
Nagios convention for every command (``opsdash.status.ExitCode``), usage errors included (3).

Start-up time matters for cron and CI: this module imports only click; each command imports
what it needs when it runs, and nothing on the ``check`` path imports textual.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
from click_default_group import DefaultGroup

from opsdash import __version__
from opsdash.commands.options import (
    duration_value,
    env_option,
    only_option,
    registry_option,
    state_option,
    tag_option,
)
from opsdash.status import ExitCode

if TYPE_CHECKING:
    from opsdash.plan import CheckSpec
    from opsdash.registry.model import Registry
    from opsdash.state import Snapshot

T = TypeVar("T")


def _duration(value: str | None, option: str) -> float | None:
    return None if value is None else duration_value(value, option)


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on opsdash's event loop (:func:`opsdash.resources.run_async`, imported
    only when a command runs probes: it loads httpx)."""
    from opsdash.resources import run_async as run

    return run(coroutine)


def fail_config(message: str) -> NoReturn:
    """Report a configuration problem on stderr and exit 3 (no traceback)."""
    click.echo(message, err=True)
    sys.exit(ExitCode.UNKNOWN)


def fail_json(message: str, *, platform: str | None = None) -> NoReturn:
    """Print the opsdash.check/v1 document of a run that could not happen, and exit 3."""
    from opsdash.render.json import dumps, error_document

    click.echo(dumps(error_document(message, platform=platform)))
    sys.exit(ExitCode.UNKNOWN)


def load(registry_path: Path, env_name: str | None, *, as_json: bool = False) -> Registry:
    """The validated registry, or exit 3 with every problem listed: on stderr, or with
    ``as_json`` as the one opsdash.check/v1 document stdout promises."""
    from opsdash.registry import RegistryError, load_registry

    try:
        return load_registry(registry_path, env=env_name)
    except RegistryError as exc:
        if as_json:
            fail_json(str(exc))
        fail_config(f"opsdash: invalid configuration\n{exc}")


def selected_specs(
    registry: Registry,
    *,
    only: Sequence[str] = (),
    tags: Sequence[str] = (),
    timeout: float | None = None,
    as_json: bool = False,
) -> list[CheckSpec]:
    """The checks the options select, or exit 3 when they select none (with ``as_json``, as
    the one document stdout promises)."""
    from opsdash.plan import build_plan, select

    specs = select(build_plan(registry, timeout=timeout), only=only, tags=tags)
    if not specs:
        message = "opsdash: no check matches the selection (--only/--tag)"
        if as_json:
            fail_json(message, platform=registry.platform)
        fail_config(message)
    return specs


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
@click.option("--json", "as_json", is_flag=True, help="Print one opsdash.check/v1 JSON document.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "junit", "prometheus"]),
    default="text",
    show_default=True,
    help="Output format (json is the same as --json).",
)
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
def check(
    registry_path: Path,
    env_name: str | None,
    only: tuple[str, ...],
    tags: tuple[str, ...],
    as_json: bool,
    output_format: str,
    timeout: str | None,
    wait: str | None,
    concurrency: int | None,
    state_path: Path | None,
) -> None:
    """Run every selected check once and report.

    A table on a terminal (plain text when piped; NO_COLOR respected), or with --json exactly one
    opsdash.check/v1 document on stdout, also when the configuration is broken.
    """
    output_format = "json" if as_json else output_format
    timeout_s = _duration(timeout, "--timeout")
    wait_s = _duration(wait, "--wait")
    as_json = output_format == "json"
    registry = load(registry_path, env_name, as_json=as_json)
    specs = selected_specs(registry, only=only, tags=tags, timeout=timeout_s, as_json=as_json)

    snapshot = run_async(
        check_rounds(
            registry, specs, wait=wait_s, concurrency=concurrency or registry.defaults.concurrency
        )
    )
    from opsdash.alerting import mark_results

    # Silences and flapping from `opsdash alert`'s state, when there is one.
    tags_of = {spec.id: spec.tags for spec in specs}
    marked = mark_results(snapshot.results, tags_of, state_path)
    snapshot = dataclasses.replace(snapshot, results=tuple(marked))
    emit_snapshot(snapshot, output_format)
    sys.exit(snapshot.status.exit_code)


async def check_rounds(
    registry: Registry, specs: Sequence[CheckSpec], *, wait: float | None, concurrency: int
) -> Snapshot:
    """One round, or rounds until all is ok or ``wait`` runs out; the last round's snapshot."""
    import asyncio
    import time

    from opsdash.engine import run_round
    from opsdash.resources import Resources
    from opsdash.state import snapshot_of
    from opsdash.status import Status

    deadline = None if wait is None else time.monotonic() + wait
    async with Resources(concurrency=concurrency) as resources:
        attempt = 0
        while True:
            attempt += 1
            round_ = await run_round(specs, resources, concurrency=concurrency)
            snapshot = snapshot_of(
                registry,
                specs,
                round_.results,
                started_at=round_.started_at,
                duration_ms=round_.duration_ms,
            )
            if deadline is None:
                return snapshot
            failing = [r.id for r in snapshot.results if r.status is not Status.OK]
            remaining = deadline - time.monotonic()
            if not failing or remaining <= 0:
                if failing:
                    click.echo(f"opsdash: gave up waiting; {len(failing)} not ok", err=True)
                return snapshot
            shown = ", ".join(failing[:5]) + (" …" if len(failing) > 5 else "")
            click.echo(
                f"opsdash: round {attempt}: {len(failing)} not ok ({shown}); "
                f"retrying, {remaining:.0f}s left",
                err=True,
            )
            await asyncio.sleep(min(2.0, remaining))


def emit_snapshot(snapshot: Snapshot, output_format: str) -> None:
    """Print a snapshot on stdout in ``output_format`` (text, json, junit, prometheus)."""
    if output_format == "json":
        from opsdash.render.json import check_document, dumps

        click.echo(dumps(check_document(snapshot)))
        return
    if output_format == "junit":
        from opsdash.render.junit import render_junit

        click.echo(render_junit(snapshot), nl=False)
        return
    if output_format == "prometheus":
        from opsdash.render.prometheus import render_prometheus

        click.echo(render_prometheus(snapshot), nl=False)
        return
    from opsdash.render.text import render_text

    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    width = shutil.get_terminal_size((120, 24)).columns if sys.stdout.isatty() else 120
    click.echo(render_text(snapshot, color=color, width=width), color=color)


@cli.command()
@registry_option
@env_option
def validate(registry_path: Path, env_name: str | None) -> None:
    """Check the registry and print a summary of what it resolves to (secrets masked)."""
    from opsdash.registry.summary import describe

    registry = load(registry_path, env_name)
    click.echo(describe(registry))


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
def ui(
    registry_path: Path,
    env_name: str | None,
    only: tuple[str, ...],
    tags: tuple[str, ...],
    state_path: Path | None,
) -> None:
    """Open the live dashboard (the default command)."""
    registry = load(registry_path, env_name)
    specs = selected_specs(registry, only=only, tags=tags)
    from opsdash.tui.app import run_dashboard

    run_dashboard(registry, specs, alert_state=state_path)


def _register_commands() -> None:
    # Each face's commands live beside it; their modules import only click at the top.
    from opsdash.commands.alerting import alert, history, serve, silence
    from opsdash.commands.demo import demo

    for command in (alert, silence, history, serve, demo):
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
    """Console-script entry point."""
    sys.exit(main())
