"""``opsdash check``: every selected check once, reported as a table, JSON, JUnit, Prometheus
text or a Nagios plugin's answer (or, with ``--from``, what ``opsdash serve`` instances report).

Only click and the shared option helpers are imported at module level: CI runs ``check`` after
every deploy and pays for each import; the engine loads when the command runs.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import click

from opsdash.commands.common import echo_err, emit_snapshot, load, run_async, selected_specs
from opsdash.commands.options import (
    duration_value,
    output_options,
    read_token,
    selection_options,
    state_option,
    token_file_option,
)
from opsdash.commands.remote import check_from, from_option


def _duration(value: str | None, option: str) -> float | None:
    return None if value is None else duration_value(value, option)


@click.command()
@selection_options
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
    # The registry and the plan live as long as the process: out of the sight of the collector
    # that --wait keeps (a single round runs with none: opsdash.launch).
    gc.freeze()

    from opsdash.rounds import check_rounds

    snapshot = run_async(
        check_rounds(
            registry,
            specs,
            wait=wait_s,
            concurrency=concurrency or registry.defaults.concurrency,
            progress=echo_err,
            state_path=state_path,
        ),
        checks=len(specs),
    )

    # Silences and flapping from `opsdash alert`'s state, when there is one; a state file
    # that cannot be read costs the marks and a warning, never the check.
    from opsdash.beats import default_state_path

    if (state_path or default_state_path()).is_file():
        # Only then: most checks (CI, a fresh machine) have no state, nor sqlite3 to load.
        from opsdash.alertstate.view import mark_snapshot

        snapshot = mark_snapshot(
            snapshot, specs, state_path, warn=lambda m: echo_err(f"opsdash: warning: {m}")
        )
    emit_snapshot(snapshot, output_format, quiet=quiet)
    sys.exit(snapshot.status.exit_code)
