"""What the commands share: loading the registry, selecting checks, failing with exit 3, and
printing a snapshot in the format asked for.

Only click is imported at module level (the CLI imports this module at start-up, and cron
pays for every import); each helper imports what it needs when it runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from opsdash.status import ExitCode

if TYPE_CHECKING:
    from opsdash.plan import CheckSpec
    from opsdash.registry.model import Registry
    from opsdash.state import Snapshot

T = TypeVar("T")


def run_async(coroutine: Coroutine[Any, Any, T], *, checks: int | None = None) -> T:
    """Run ``coroutine`` on opsdash's event loop (:func:`opsdash.resources.run_async`, imported
    only when a command runs probes; ``checks``: the size of a one-shot round, which picks the
    loop)."""
    from opsdash.resources import run_async as run

    return run(coroutine, checks=checks)


def echo_err(message: str) -> None:
    """One line on stderr (progress and problems: stdout is the report)."""
    click.echo(message, err=True)


def fail_config(message: str) -> NoReturn:
    """Report a configuration problem on stderr and exit 3 (no traceback)."""
    echo_err(message)
    sys.exit(ExitCode.UNKNOWN)


def fail_json(message: str, *, platform: str | None = None) -> NoReturn:
    """Print the opsdash.check/v1 document of a run that could not happen, and exit 3."""
    from opsdash.render.json import dumps, error_document

    click.echo(dumps(error_document(message, platform=platform)))
    sys.exit(ExitCode.UNKNOWN)


def fail_nagios(message: str) -> NoReturn:
    """Print a Nagios plugin's UNKNOWN answer on stdout (its first line the first line of
    ``message``, the rest long output), and exit 3: a monitoring system reads stdout only."""
    from opsdash.render.nagios import unknown_output

    click.echo(unknown_output(message), nl=False)
    sys.exit(ExitCode.UNKNOWN)


def load(
    registry_path: Path, env_name: str | None, *, as_json: bool = False, as_nagios: bool = False
) -> Registry:
    """The validated registry, or exit 3 with every problem listed: on stderr, or with
    ``as_json`` as the one opsdash.check/v1 document stdout promises (``as_nagios``: as a
    plugin's UNKNOWN output)."""
    from opsdash.registry import RegistryError, load_registry

    try:
        return load_registry(registry_path, env=env_name)
    except RegistryError as exc:
        if as_json:
            fail_json(str(exc))
        if as_nagios:
            fail_nagios(f"invalid configuration\n{exc}")
        fail_config(f"opsdash: invalid configuration\n{exc}")


def selected_specs(
    registry: Registry,
    *,
    only: Sequence[str] = (),
    tags: Sequence[str] = (),
    timeout: float | None = None,
    as_json: bool = False,
    as_nagios: bool = False,
) -> list[CheckSpec]:
    """The checks the options select, or exit 3 when they select none (with ``as_json``, as
    the one document stdout promises)."""
    from opsdash.lazy_ssl import import_asyncio

    import_asyncio()  # the plan's modules load asyncio: without ssl, unless a check needs TLS
    from opsdash.plan import build_plan, select

    specs = select(build_plan(registry, timeout=timeout), only=only, tags=tags)
    if not specs:
        message = "opsdash: no check matches the selection (--only/--tag)"
        if as_json:
            fail_json(message, platform=registry.platform)
        if as_nagios:
            fail_nagios(message.removeprefix("opsdash: "))
        fail_config(message)
    return specs


def emit_snapshot(snapshot: Snapshot, output_format: str, *, quiet: bool = False) -> None:
    """Print a snapshot on stdout in ``output_format`` (text, json, junit, prometheus,
    nagios);
    ``quiet`` leaves the ok checks out of the text."""
    if output_format == "json":
        from opsdash.render.json import check_document, dumps

        click.echo(dumps(check_document(snapshot)))
        return
    if output_format == "junit":
        from opsdash.render.junit import render_junit

        click.echo(render_junit(snapshot), nl=False)
        return
    if output_format == "nagios":
        from opsdash.render.nagios import render_nagios

        click.echo(render_nagios(snapshot), nl=False)
        return
    if output_format == "prometheus":
        from opsdash.render.prometheus import render_prometheus

        click.echo(render_prometheus(snapshot), nl=False)
        return
    from opsdash.render.text import render_text

    terminal = sys.stdout.isatty()
    color = terminal and "NO_COLOR" not in os.environ
    import shutil  # here, not at the top: `opsdash --help` would pay for it

    # Piped (a log, a CI job, grep): no width to fit, so every summary is printed whole.
    width = shutil.get_terminal_size((120, 24)).columns if terminal else None
    click.echo(render_text(snapshot, color=color, width=width, quiet=quiet), color=color)
