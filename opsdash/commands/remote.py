"""``--from URL``: ``check`` and ``ui`` read ``opsdash serve``'s API instead of probing.

Imports only click at module level (the CLI imports this module at start-up); the client code
(:mod:`opsdash.remote`, httpx) loads when a command runs with ``--from``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from opsdash.commands.common import echo_err, emit_snapshot, fail_nagios, run_async
from opsdash.status import ExitCode

WAIT_EVERY = 2.0
"""Seconds between two reads of the sources while ``--wait`` waits for everything ok."""


def from_option_callback(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    """Each ``--from`` as a serve's base URL, or a usage error."""
    if not values:  # click calls back for the default too: no client imports then
        return ()
    from opsdash.remote import source_url

    try:
        return tuple(source_url(value) for value in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--from") from None


from_option = click.option(
    "--from",
    "sources",
    multiple=True,
    metavar="URL",
    callback=from_option_callback,
    help="Read the results of an `opsdash serve` (http://host:9108) instead of probing; "
    "repeat for several shards.",
)


def fail_source(message: str, error_type: str, *, as_json: bool) -> NoReturn:
    """A source could not be read: exit 3 with ``message`` (with ``as_json``, as the one
    opsdash.check/v1 document stdout promises, its ``error.type`` saying why)."""
    if as_json:
        from opsdash.document import dumps, error_document

        document: dict[str, Any] = error_document(message)
        document["error"]["type"] = error_type
        click.echo(dumps(document))
    else:
        echo_err(message)
    sys.exit(ExitCode.UNKNOWN)


def check_from(
    sources: Sequence[str],
    *,
    token: str | None,
    only: Sequence[str],
    output_format: str,
    wait: float | None,
    quiet: bool = False,
) -> NoReturn:
    """``opsdash check --from URL...``: read, merge, report; exit with the worst status."""
    from opsdash.remote import SourceError, document_snapshot, read_sources

    as_json = output_format == "json"
    deadline = None if wait is None else time.monotonic() + wait
    attempt = 0
    while True:
        attempt += 1
        try:
            document = run_async(read_sources(sources, token))
        except SourceError as exc:
            message = f"opsdash: cannot read {exc}"
            if output_format == "nagios":  # a monitoring system reads stdout only
                fail_nagios(message.removeprefix("opsdash: "))
            fail_source(message, exc.error_type.value, as_json=as_json)
        snapshot = document_snapshot(document, only=only)
        if not snapshot.results:
            message = "opsdash: no check matches the selection (--only)"
            if not document["checks"]:
                message = "opsdash: the sources report no check"
            if output_format == "nagios":
                fail_nagios(message.removeprefix("opsdash: "))
            fail_source(message, "config", as_json=as_json)
        failing = [result.id for result in snapshot.results if result.status.failing]
        if deadline is None or not failing or time.monotonic() >= deadline:
            break
        remaining = deadline - time.monotonic()
        echo_err(
            f"opsdash: read {attempt}: {len(failing)} not ok; reading again, {remaining:.0f}s left"
        )
        time.sleep(min(WAIT_EVERY, remaining))
    emit_snapshot(snapshot, output_format, quiet=quiet)
    sys.exit(snapshot.status.exit_code)
