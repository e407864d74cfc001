"""The options every command shares, and the parsing of duration arguments.

Imports only click (and the unit parser lazily): every command module uses these, and cron
pays for each import.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

F = TypeVar("F", bound=Callable[..., object])

registry_option = click.option(
    "-r",
    "--registry",
    "registry_path",
    # Not checked here: the loader reports a directory or a device as a configuration error
    # (exit 3, and with --json the one document stdout promises).
    type=click.Path(path_type=Path),
    default="services.yaml",
    envvar="OPSDASH_REGISTRY",
    show_default=True,
    show_envvar=True,
    help="The registry file.",
)
env_option = click.option(
    "-e",
    "--env",
    "env_name",
    metavar="NAME",
    envvar="OPSDASH_ENV",
    show_envvar=True,
    help="Merge config/NAME.yaml (next to the registry) over it.",
)
only_option = click.option(
    "--only",
    multiple=True,
    metavar="GLOB",
    help="Only checks whose id or component matches GLOB (repeatable).",
)
tag_option = click.option(
    "--tag", "tags", multiple=True, metavar="TAG", help="Only checks carrying TAG (repeatable)."
)
state_option = click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="OPSDASH_STATE",
    show_envvar=True,
    help="The alerting state file [default: $XDG_STATE_HOME/opsdash/state.db].",
)


def _stacked(command: F, options: tuple[Callable[[F], F], ...]) -> F:
    """``command`` with ``options``, listed in its help in that order."""
    for option in reversed(options):
        command = option(command)
    return command


def selection_options(command: F) -> F:
    """``-r/--registry``, ``-e/--env``, ``--only`` and ``--tag``: which registry, and which of
    its checks, a command runs (``check``, ``ui``, ``alert``, ``serve``). The command receives
    ``registry_path``, ``env_name``, ``only`` and ``tags``."""
    return _stacked(command, (registry_option, env_option, only_option, tag_option))


OUTPUT_FORMATS = ("text", "json", "junit", "prometheus", "nagios")


def output_options(command: F) -> F:
    """``--json``, ``--format`` and ``-q/--quiet``: how ``check`` (and ``demo --check``) print
    a round. The command receives ``as_json``, ``output_format`` and ``quiet``."""
    return _stacked(
        command,
        (
            click.option(
                "--json", "as_json", is_flag=True, help="Print one opsdash.check/v1 JSON document."
            ),
            click.option(
                "--format",
                "output_format",
                type=click.Choice(OUTPUT_FORMATS),
                default="text",
                show_default=True,
                help="Output format (json is the same as --json).",
            ),
            click.option(
                "-q",
                "--quiet",
                is_flag=True,
                help="Text: only what is not ok, plus the incidents.",
            ),
        ),
    )


def duration_value(value: str, option: str) -> float:
    """Seconds from a duration argument (``30m``), or a usage error naming ``option``."""
    from opsdash.registry.units import parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None
    if seconds <= 0:
        raise click.BadParameter("must be more than zero", param_hint=option)
    return seconds


token_file_option = click.option(
    "--token-file",
    "token_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="OPSDASH_TOKEN_FILE",
    show_envvar=True,
    help="A file holding the API's bearer token (serve: required from API clients; "
    "--from: sent to the sources).",
)


def read_token(path: Path | None) -> str | None:
    """The bearer token in ``path`` (surrounding whitespace dropped), or a usage error naming
    the file; None without a file. The token itself is never printed."""
    if path is None:
        return None
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        message = f"cannot read {path}: {reason}"
        raise click.BadParameter(message, param_hint="--token-file") from None
    if not token or any(ch.isspace() for ch in token):
        raise click.BadParameter(
            f"{path} must hold one token (no spaces or line breaks inside it)",
            param_hint="--token-file",
        )
    return token
