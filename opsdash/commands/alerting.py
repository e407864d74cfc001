"""The unattended faces: ``opsdash alert`` (cron), ``silence``, ``history`` and ``serve``.

Only click is imported at module level: cron runs ``alert`` every minute and pays for every
import; each command imports what it needs in its body.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from opsdash.commands.options import (
    duration_value,
    read_token,
    selection_options,
    state_option,
    token_file_option,
)
from opsdash.status import ExitCode


def _state(path: Path | None) -> Path:
    from opsdash.alertstate.store import default_state_path

    return path or default_state_path()


def _err(message: str) -> None:
    click.echo(message, err=True)


@click.command()
@selection_options
@state_option
@click.option("--dry-run", is_flag=True, help="Print what would be sent; change no state.")
@click.option(
    "-q", "--quiet", is_flag=True, help="Print nothing on stdout (problems still go to stderr)."
)
def alert(
    registry_path: Path,
    env_name: str | None,
    only: tuple[str, ...],
    tags: tuple[str, ...],
    state_path: Path | None,
    dry_run: bool,
    quiet: bool,
) -> None:
    """Run every selected check once and notify on transitions (for cron, every minute).

    A check fires after failure_threshold failing runs and resolves after success_threshold
    ok runs; notifications are grouped by incident and routed by alerts.routes. Silences
    (opsdash silence) hold them back. A failed delivery is kept and retried on the next run.
    Exit codes as check; a run that finds another one running says so and exits 0.
    """
    import sqlite3

    from opsdash.alerting.run import alert_run
    from opsdash.alertstate.store import StateFileError
    from opsdash.commands.common import load, run_async, selected_specs

    registry = load(registry_path, env_name)
    specs = selected_specs(registry, only=only, tags=tags)

    def out(message: str) -> None:
        if not quiet:
            click.echo(message)

    try:
        outcome = run_async(
            alert_run(
                registry, specs, state_path=_state(state_path), dry_run=dry_run, out=out, err=_err
            )
        )
    except StateFileError as exc:
        _err(f"opsdash alert: {exc}")
        sys.exit(ExitCode.UNKNOWN)
    except sqlite3.Error as exc:  # opened, then refused a write (a read-only file or disk)
        _err(f"opsdash alert: cannot write the state file {_state(state_path)}: {exc}")
        sys.exit(ExitCode.UNKNOWN)
    sys.exit(outcome.exit_code)


@click.command()
@click.argument("target", required=False)
@click.option("--for", "duration", metavar="DURATION", help="How long (30m, 2h, 1d).")
@click.option("--reason", metavar="TEXT", help="Why (shown by --list and by alert).")
@click.option("--list", "list_", is_flag=True, help="List the silences in force.")
@click.option("--clear", is_flag=True, help="End the silences on TARGET (or #ID); all without one.")
@state_option
def silence(
    target: str | None,
    duration: str | None,
    reason: str | None,
    list_: bool,
    clear: bool,
    state_path: Path | None,
) -> None:
    """Hold back notifications about TARGET: a check id, a component, a tag or a glob.

    \b
    opsdash silence redis --for 30m --reason "failover drill"
    opsdash silence bookings --for 2h --reason "deploy"     (a tag)
    opsdash silence --list
    opsdash silence --clear redis      (or --clear '#3', or --clear for all)

    Silences end by themselves; checks keep running and history keeps recording meanwhile.
    """
    import getpass
    import time

    from opsdash.alertstate.store import StateFileError, open_store
    from opsdash.registry.units import format_duration

    path = _state(state_path)
    now = time.time()
    if list_:
        from opsdash.alertstate.view import read_silences

        silences = read_silences(path, now=now)
        if not silences:
            click.echo("no silences in force")
        for s in silences:
            left = format_duration(round(s.expires - now))
            click.echo(
                f"#{s.id}  {s.matcher}  until {s.expires_at:%Y-%m-%d %H:%M} UTC ({left} left)"
                f"  by {s.author}: {s.reason}"
            )
        return
    if not clear:  # arguments first: a mistyped call must not create or move the state file
        if target is None or duration is None or not reason:
            raise click.UsageError("silence needs TARGET, --for DURATION and --reason TEXT")
        seconds = duration_value(duration, "--for")
    try:
        store = open_store(path, report=lambda m: _err(f"opsdash silence: {m}"))
    except StateFileError as exc:
        _err(f"opsdash silence: {exc}")
        sys.exit(ExitCode.UNKNOWN)
    with store:
        if clear:
            count = store.clear_silences(target)
            click.echo(f"ended {count} silence{'s' if count != 1 else ''}")
            return
        assert target is not None and reason is not None
        try:
            author = getpass.getuser()
        except (KeyError, OSError):
            author = "unknown"
        made = store.add_silence(target, reason, now=now, duration=seconds, author=author)
    click.echo(f"silenced {made.matcher} until {made.expires_at:%Y-%m-%d %H:%M} UTC (#{made.id})")


@click.command()
@click.argument("check_id", metavar="[ID]", required=False)
@click.option(
    "--since",
    "window",
    default="24h",
    show_default=True,
    metavar="DURATION",
    help="How far back to look (within the retention).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@state_option
def history(check_id: str | None, window: str, as_json: bool, state_path: Path | None) -> None:
    """What opsdash alert recorded: each check's status, since when, and uptime % (ok runs).

    With ID, that check's status changes in the window.
    """
    import json
    import time

    from opsdash.alerting.history import history_document, render_history
    from opsdash.alertstate.store import open_readonly

    path = _state(state_path)
    store = open_readonly(path)
    if store is None:
        _err(f"opsdash history: no alerting state at {path} (opsdash alert writes it)")
        sys.exit(ExitCode.UNKNOWN)
    with store:
        document = history_document(
            store, check_id, since=time.time() - duration_value(window, "--since"), window=window
        )
    if check_id is not None and not document["checks"]:
        _err(f"opsdash history: no runs of {check_id!r} recorded in the last {window}")
        sys.exit(ExitCode.UNKNOWN)
    if as_json:
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        click.echo(render_history(document))


@click.command()
@selection_options
@click.option(
    "--listen",
    default="127.0.0.1:9108",
    show_default=True,
    metavar="HOST:PORT",
    help="Where to serve /metrics, /healthz and the API (/api/v1/...).",
)
@click.option("--shard", metavar="I/N", help="Run only shard I of N (1-based) of the checks.")
@token_file_option
@state_option
def serve(
    registry_path: Path,
    env_name: str | None,
    only: tuple[str, ...],
    tags: tuple[str, ...],
    listen: str,
    shard: str | None,
    token_file: Path | None,
    state_path: Path | None,
) -> None:
    """A Prometheus exporter: run the checks on their intervals and serve /metrics.

    Also a read-only API for viewers (opsdash check/ui --from URL): GET /api/v1/check (the
    opsdash.check/v1 document of the latest results) and GET /api/v1/events (server-sent
    events); with --token-file, /api/ requires "Authorization: Bearer <token>".

    --shard I/N splits a large registry across N exporters by a stable hash of the check id;
    give each exporter its own I. Stops cleanly on SIGTERM or Ctrl-C.

    POST /heartbeat/ID (Authorization: Bearer TOKEN, the check's heartbeat token; optional
    ?status=warn|crit&message=TEXT) records a heartbeat in the alerting state (--state).
    """
    from opsdash.commands.common import load, selected_specs
    from opsdash.exporter import parse_listen, parse_shard, serve_forever, shard_specs

    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from None
    token = read_token(token_file)
    registry = load(registry_path, env_name)
    specs = selected_specs(registry, only=only, tags=tags)
    if shard is not None:
        try:
            index, count = parse_shard(shard)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--shard") from None
        specs = shard_specs(specs, index, count)
        if not specs:
            _err(f"opsdash serve: shard {shard} holds no check")
    try:
        serve_forever(
            registry,
            specs,
            host=host,
            port=port,
            announce=_err,
            token=token,
            state_path=_state(state_path),
        )
    except OSError as exc:
        _err(f"opsdash serve: cannot listen on {listen}: {exc.strerror or exc}")
        sys.exit(ExitCode.UNKNOWN)
