"""Nagios plugins: run an executable, read its verdict from its exit code and stdout.

The convention (monitoring-plugins' guidelines): exit 0 ok, 1 warn, 2 crit, 3 unknown; the
first line of stdout is the summary, perfdata follows ``|`` (:mod:`opsdash.probes.nagios`).

What a plugin may do wrong costs one probe at most its deadline and a capped amount of memory,
and leaves no process behind:

- it runs without a shell, in a session of its own (``start_new_session``), with a minimal
  environment (``PATH``, ``LC_ALL=C`` and the registry's ``env:``): opsdash's own secrets are
  not handed to every plugin;
- however the run ends (exit, deadline, too much output, cancellation), the whole process group
  is killed with SIGKILL, so children it forked and left hanging go too;
- stdout is read up to :data:`MAX_STDOUT` (more stops the plugin: unknown), stderr up to
  :data:`MAX_STDERR` (the rest is drained and dropped);
- a plugin that cannot decide (not found, not executable, a directory, exit 126/127 or any
  code outside 0-3, binary output, no answer in time) is unknown, with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
from collections.abc import Mapping
from pathlib import Path

from opsdash.deadline import time_left
from opsdash.figures import PluginFigures
from opsdash.probes.nagios import parse_output
from opsdash.records import dataclass, field
from opsdash.registry.units import format_duration
from opsdash.resources import Resources
from opsdash.results import ErrorType, Observation, ProbeFailure
from opsdash.status import Status

MAX_STDOUT = 64 * 1024
MAX_STDERR = 4 * 1024
SUMMARY_CHARS = 300
LONG_OUTPUT_CHARS = 8 * 1024
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
_KILL_WAIT = 2.0
"""Seconds to wait for the kernel to report a SIGKILLed plugin gone (never reached in
practice; bounds a cleanup that must not hang)."""
_DEADLINE_MARGIN = 0.05
"""The probe stops the plugin this much before the harness's deadline, so that the summary
says what happened to the plugin rather than a bare timeout."""

_EXIT_STATUS = {0: Status.OK, 1: Status.WARN, 2: Status.CRIT, 3: Status.UNKNOWN}
_EXIT_MEANING = {126: "not executable", 127: "command not found"}


@dataclass(frozen=True, slots=True)
class PluginTarget:
    """One plugin run: the executable, its arguments and its environment."""

    path: Path
    """Absolute (a relative registry path is resolved against ``checks/``)."""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 3.0


def resolve(path: str, base_dir: Path) -> Path:
    """``path`` as written in the registry, resolved against ``<registry dir>/checks/``."""
    written = Path(path).expanduser()
    return written if written.is_absolute() else base_dir / "checks" / written


def environment(extra: Mapping[str, str]) -> dict[str, str]:
    """What a plugin sees: a minimal environment plus the registry's ``env:``."""
    env = {"PATH": os.environ.get("PATH", DEFAULT_PATH), "LC_ALL": "C"}
    for name in ("HOME", "TZ", "TMPDIR"):
        if name in os.environ:
            env[name] = os.environ[name]
    env.update(extra)
    return env


def _refuse_unrunnable(path: Path) -> None:
    """A clear reason for the common ways a path cannot run (one ``stat``; the exec below
    still reports anything this misses)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ProbeFailure(ErrorType.CONFIG, f"plugin not found: {path}") from None
    except OSError as error:
        message = f"cannot run plugin {path}: {error.strerror or error}"
        raise ProbeFailure(ErrorType.CONFIG, message) from None
    if stat.S_ISDIR(info.st_mode):
        raise ProbeFailure(ErrorType.CONFIG, f"plugin {path} is a directory, not an executable")
    if not os.access(path, os.X_OK):
        raise ProbeFailure(ErrorType.CONFIG, f"plugin {path} is not executable (chmod +x)")


async def probe_plugin(resources: Resources, target: PluginTarget) -> Observation:
    """Run the plugin and judge what it printed and how it exited."""
    _refuse_unrunnable(target.path)
    try:
        process = await asyncio.create_subprocess_exec(
            str(target.path),
            *target.args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=environment(target.env),
            start_new_session=True,  # its own process group: killed as one at the end
        )
    except OSError as error:  # a race with the checks above, or ENOEXEC (no #! line)
        message = f"cannot run plugin {target.path}: {error.strerror or error}"
        raise ProbeFailure(ErrorType.CONFIG, message) from None
    try:
        budget = max(time_left(target.timeout) - _DEADLINE_MARGIN, 0.0)
        try:
            async with asyncio.timeout(budget):
                stdout, stderr, code = await _communicate(process)
        except TimeoutError:
            raise ProbeFailure(
                ErrorType.TIMEOUT,
                f"plugin still running after {format_duration(round(budget, 2))}:"
                " killed it and its children",
            ) from None
    finally:
        await _kill_group(process)
    return judge(target, stdout, stderr, code)


async def _communicate(
    process: asyncio.subprocess.Process,
) -> tuple[bytes, bytes, int]:
    """stdout (capped: more is an error), stderr (capped, rest dropped) and the exit code.
    Waits for both pipes to close, so a child still holding them counts as still running."""
    assert process.stdout is not None and process.stderr is not None
    stdout_task = asyncio.ensure_future(_read_capped(process.stdout, MAX_STDOUT))
    stderr_task = asyncio.ensure_future(_read_capped(process.stderr, MAX_STDERR))
    try:
        stdout, too_much = await stdout_task
        if too_much:
            raise ProbeFailure(
                ErrorType.PROTOCOL,
                f"plugin printed more than {MAX_STDOUT // 1024} KiB on stdout: stopped it",
            )
        stderr, _ = await stderr_task
        code = await process.wait()
    finally:
        for task in (stdout_task, stderr_task):
            task.cancel()
    return stdout, stderr, code


async def _read_capped(stream: asyncio.StreamReader, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes until EOF, and whether there was more. stdout stops at the cap
    (the caller kills the plugin); for stderr the rest is read and dropped, so that a chatty
    plugin is not blocked on a full pipe."""
    chunks: list[bytes] = []
    size = 0
    over = False
    while chunk := await stream.read(16 * 1024):
        if size < limit:
            chunks.append(chunk[: limit - size])
        size += len(chunk)
        if size > limit:
            over = True
            if limit == MAX_STDOUT:
                break
    return b"".join(chunks), over


async def _kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGKILL the plugin's whole process group (its children included) and reap the plugin.

    Runs on every way out, cancellation included; the group may already be gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.returncode is None:
        with contextlib.suppress(TimeoutError, ProcessLookupError):
            # Shielded: a second cancellation must not leave the plugin unreaped (a zombie).
            await asyncio.shield(asyncio.wait_for(process.wait(), _KILL_WAIT))


def _text(data: bytes, what: str) -> str:
    """``data`` as text; binary output (NULs, not UTF-8) cannot be a plugin's verdict."""
    if b"\x00" in data:
        raise ProbeFailure(ErrorType.PROTOCOL, f"plugin printed binary data on {what}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ProbeFailure(ErrorType.PROTOCOL, f"plugin printed binary data on {what}") from None
    return text


def _lines(lines: tuple[str, ...], limit: int) -> tuple[str, ...]:
    """``lines`` up to ``limit`` characters in all (the last one cut)."""
    kept: list[str] = []
    room = limit
    for line in lines:
        if room <= 0:
            break
        kept.append(_cut(line, room))
        room -= len(line)
    return tuple(kept)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def judge(target: PluginTarget, stdout: bytes, stderr: bytes, code: int) -> Observation:
    """The verdict of a finished plugin: the exit code decides, the output explains."""
    # Control characters are escaped by the harness, as for every probe's words.
    output = parse_output(_text(stdout, "stdout"))
    error_lines = stderr.decode("utf-8", errors="replace").strip().splitlines()
    error_line = error_lines[0] if error_lines else ""
    status = _EXIT_STATUS.get(code)
    summary = output.summary
    if status is None:
        # Not a plugin's answer: a shell's "not found", a crash, a signal.
        status = Status.UNKNOWN
        if code < 0:
            meaning = f"killed by signal {signal.Signals(-code).name}"
        else:
            meaning = f"exited {code}" + (
                f" ({_EXIT_MEANING[code]})" if code in _EXIT_MEANING else ""
            )
        reason = error_line or summary
        summary = f"plugin {meaning}" + (f": {reason}" if reason else "")
    elif not summary:
        summary = "plugin printed nothing on stdout" + (
            f"; stderr: {error_line}" if error_line else ""
        )
    figures = PluginFigures(
        plugin=str(target.path),
        exit_code=code,
        perfdata=output.perfdata,
        long_output=_lines(output.long_output, LONG_OUTPUT_CHARS),
        stderr=_lines(tuple(error_lines), MAX_STDERR),
    )
    return Observation(status, _cut(summary, SUMMARY_CHARS), figures)
