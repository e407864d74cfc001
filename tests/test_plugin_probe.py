"""Nagios plugins as custom checks: real monitoring-plugins binaries, scripts that follow the
convention, and scripts that misbehave in every way the issue lists.

Every run goes the way ``opsdash check`` runs it: a registry, ``build_plan`` and ``run_probe``
(the deadline, the error mapping). The misbehaving plugins record their own pid and their
children's, and each test asserts that none of them is left, running or as a zombie.
"""

from __future__ import annotations

import os
import socket
import stat
import textwrap
from pathlib import Path
from typing import Any

import pytest

from opsdash.harness import run_probe
from opsdash.plan import CheckSpec, build_plan
from opsdash.registry.model import Registry
from opsdash.resources import Resources
from opsdash.results import CheckResult
from opsdash.status import Status
from tests.servers import unavailable, wait_until

PLUGINS = Path("/usr/lib/nagios/plugins")


def _registry(tmp_path: Path, check: dict[str, Any], *, timeout: str = "5s") -> Registry:
    registry = Registry.from_data(
        {
            "version": 1,
            "platform": "test",
            "defaults": {"timeout": timeout},
            "workers": {"nightly": {"checks": {"probe": check}}},
        }
    )
    return registry.located_at(tmp_path)


def _spec(tmp_path: Path, check: dict[str, Any], **options: Any) -> CheckSpec:
    (spec,) = build_plan(_registry(tmp_path, check, **options))
    return spec


async def run(tmp_path: Path, check: dict[str, Any], **options: Any) -> CheckResult:
    async with Resources() as resources:
        return await run_probe(_spec(tmp_path, check, **options), resources)


def script(tmp_path: Path, name: str, body: str, *, executable: bool = True) -> Path:
    """A plugin in ``<registry dir>/checks/`` (where relative plugin paths resolve)."""
    path = tmp_path / "checks" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    if executable:
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _alive(pid: int) -> bool:
    """Whether ``pid`` exists at all (a zombie counts: it is a process left behind)."""
    return Path(f"/proc/{pid}").exists()


def _in_group(pgid: int) -> list[int]:
    """Processes whose process group is ``pgid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


def _my_zombies() -> list[int]:
    """Children of this process that exited and were never reaped."""
    zombies = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == os.getpid():
            zombies.append(int(entry.name))
    return zombies


def assert_nothing_left(pid_file: Path) -> None:
    """Every pid the plugin recorded is gone, its process group is empty, and this process
    has no unreaped child. Children reparented to init are reaped by it a moment after the
    kill: polled, bounded."""
    pids = [int(line) for line in pid_file.read_text().split()]
    assert pids, "the plugin recorded no pid"
    leader = pids[0]
    wait_until(
        lambda: not any(map(_alive, pids)) and not _in_group(leader),
        timeout=10,
        what=f"plugin processes {pids} gone",
    )
    assert _my_zombies() == []


# --- plugins that follow the convention ------------------------------------------------


async def test_exit_code_summary_perfdata_and_long_output(tmp_path: Path) -> None:
    script(
        tmp_path,
        "check_queue",
        """\
        echo "QUEUE WARNING - 42 jobs waiting | jobs=42;10;100;0; 'oldest job'=95.5s;60;300"
        echo "billing: 40"
        echo "mail: 2 | lag=3ms;;;0;1000"
        exit 1
        """,
    )
    result = await run(tmp_path, {"plugin": "check_queue"})
    assert result.status is Status.WARN
    assert result.summary == "QUEUE WARNING - 42 jobs waiting"
    assert result.kind == "plugin"
    assert result.id == "nightly.probe"
    assert result.target == str(tmp_path / "checks" / "check_queue")
    assert result.details["exit_code"] == 1
    assert result.details["long_output"] == ["billing: 40", "mail: 2"]
    assert result.details["perfdata"] == [
        {"label": "jobs", "value": 42.0, "unit": "", "warn": "10", "crit": "100",
         "min": 0.0, "max": None},
        {"label": "oldest job", "value": 95.5, "unit": "s", "warn": "60", "crit": "300",
         "min": None, "max": None},
        {"label": "lag", "value": 3.0, "unit": "ms", "warn": None, "crit": None,
         "min": 0.0, "max": 1000.0},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("code", "status"),
    [(0, Status.OK), (1, Status.WARN), (2, Status.CRIT), (3, Status.UNKNOWN)],
)
async def test_each_nagios_exit_code_is_its_status(
    tmp_path: Path, code: int, status: Status
) -> None:
    script(tmp_path, "plugin", f"echo 'SAID {code}'\nexit {code}\n")
    result = await run(tmp_path, {"plugin": "plugin"})
    assert (result.status, result.summary, result.error) == (status, f"SAID {code}", None)


async def test_args_and_env_reach_the_plugin_and_its_secrets_do_not_leak(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSDASH_POSTGRES_DSN", "postgresql://u:hunter22@db/x")
    script(
        tmp_path,
        "show",
        """\
        echo "OK - $1 $2 token=$API_TOKEN dsn=${OPSDASH_POSTGRES_DSN:-none} lang=$LC_ALL"
        """,
    )
    check = {"plugin": "show", "args": ["-w", "two words"], "env": {"API_TOKEN": "s3cret-token"}}
    result = await run(tmp_path, check)
    # opsdash's own environment is not handed down; the registry's env is (and is masked).
    assert result.summary == "OK - -w two words token=*** dsn=none lang=C"


async def test_no_output_is_named(tmp_path: Path) -> None:
    script(tmp_path, "quiet", "echo 'disk gone' >&2\nexit 2\n")
    result = await run(tmp_path, {"plugin": "quiet"})
    assert result.status is Status.CRIT
    assert result.summary == "plugin printed nothing on stdout; stderr: disk gone"


async def test_control_characters_never_reach_the_summary(tmp_path: Path) -> None:
    script(tmp_path, "ansi", "printf 'OK \\033[2J cleared\\n'\n")
    result = await run(tmp_path, {"plugin": "ansi"})
    assert "\x1b" not in result.summary
    assert result.summary.startswith("OK ") and result.summary.endswith("[2J cleared")


# --- plugins that misbehave: unknown, within the deadline, nothing left behind -----------


async def test_a_hanging_plugin_is_killed_at_the_deadline(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script(tmp_path, "hang", f"echo $$ >> {pids}\nsleep 60 &\necho $! >> {pids}\nwait\n")
    result = await run(tmp_path, {"plugin": "hang", "timeout": "1s"})
    assert result.status is Status.UNKNOWN
    assert result.error is not None and result.error.type.value == "timeout"
    assert "killed it and its children" in result.summary
    assert result.latency_ms is not None and result.latency_ms < 5000  # not the 60 s sleep
    assert_nothing_left(pids)


async def test_children_holding_stdout_keep_the_plugin_running_until_killed(
    tmp_path: Path,
) -> None:
    pids = tmp_path / "pids"
    script(
        tmp_path,
        "forker",
        f"""\
        echo $$ >> {pids}
        sleep 60 &
        echo $! >> {pids}
        (sleep 60; echo late) &
        echo $! >> {pids}
        echo "OK - parent done"
        exit 0
        """,
    )
    result = await run(tmp_path, {"plugin": "forker", "timeout": "1s"})
    assert result.status is Status.UNKNOWN
    assert "still running" in result.summary
    assert_nothing_left(pids)


async def test_a_detached_child_is_killed_after_the_answer(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script(
        tmp_path,
        "daemonish",
        f"""\
        echo $$ >> {pids}
        sleep 60 > /dev/null 2>&1 &
        echo $! >> {pids}
        echo "OK - answered"
        """,
    )
    result = await run(tmp_path, {"plugin": "daemonish"})
    assert (result.status, result.summary) == (Status.OK, "OK - answered")
    assert_nothing_left(pids)


async def test_megabytes_of_output_stop_the_plugin(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script(tmp_path, "flood", f"echo $$ >> {pids}\nwhile :; do echo 'OK xxxxxxxxxxxxxxxx'; done\n")
    result = await run(tmp_path, {"plugin": "flood"})
    assert result.status is Status.UNKNOWN
    assert result.summary == "plugin printed more than 64 KiB on stdout: stopped it"
    assert_nothing_left(pids)


async def test_megabytes_of_stderr_are_dropped_not_fatal(tmp_path: Path) -> None:
    script(tmp_path, "chatty", "head -c 3000000 /dev/zero | tr '\\0' e >&2\necho 'OK - fine'\n")
    result = await run(tmp_path, {"plugin": "chatty"})
    assert (result.status, result.summary) == (Status.OK, "OK - fine")
    assert sum(map(len, result.details["stderr"])) <= 4096


async def test_binary_output_is_unknown(tmp_path: Path) -> None:
    script(tmp_path, "binary", "printf 'OK \\000\\001\\377 garbage'\n")
    result = await run(tmp_path, {"plugin": "binary"})
    assert (result.status, result.summary) == (
        Status.UNKNOWN,
        "plugin printed binary data on stdout",
    )


async def test_exit_127_names_the_missing_command(tmp_path: Path) -> None:
    script(tmp_path, "broken", "no_such_command_opsdash_test\n")
    result = await run(tmp_path, {"plugin": "broken"})
    assert result.status is Status.UNKNOWN
    assert result.summary.startswith("plugin exited 127 (command not found): ")
    assert "no_such_command_opsdash_test" in result.summary


async def test_a_plugin_that_is_not_executable(tmp_path: Path) -> None:
    script(tmp_path, "plain", "echo OK\n", executable=False)
    result = await run(tmp_path, {"plugin": "plain"})
    assert result.status is Status.UNKNOWN
    assert result.summary == f"plugin {tmp_path / 'checks' / 'plain'} is not executable (chmod +x)"
    assert result.error is not None and result.error.type.value == "config"


async def test_a_directory_is_not_a_plugin(tmp_path: Path) -> None:
    (tmp_path / "checks" / "adir").mkdir(parents=True)
    result = await run(tmp_path, {"plugin": "adir"})
    assert result.status is Status.UNKNOWN
    assert (
        result.summary == f"plugin {tmp_path / 'checks' / 'adir'} is a directory, not an executable"
    )


async def test_a_missing_plugin(tmp_path: Path) -> None:
    result = await run(tmp_path, {"plugin": "/nonexistent/check_nothing"})
    assert (result.status, result.summary) == (
        Status.UNKNOWN,
        "plugin not found: /nonexistent/check_nothing",
    )


async def test_a_slow_plugin_delays_no_other_check(tmp_path: Path) -> None:
    from opsdash.engine import run_round

    script(tmp_path, "slow", "sleep 60\n")
    script(tmp_path, "fast", "echo 'OK - quick'\n")
    registry = Registry.from_data(
        {
            "version": 1,
            "platform": "test",
            "workers": {
                "a": {"checks": {"slow": {"plugin": "slow", "timeout": "1s"}}},
                "b": {"checks": {"fast": {"plugin": "fast"}}},
            },
        }
    ).located_at(tmp_path)
    async with Resources() as resources:
        round_ = await run_round(build_plan(registry), resources)
    slow, fast = round_.results
    assert slow.status is Status.UNKNOWN
    assert (fast.status, fast.summary) == (Status.OK, "OK - quick")
    assert fast.latency_ms is not None and slow.latency_ms is not None
    assert fast.latency_ms < slow.latency_ms


# --- real monitoring-plugins ------------------------------------------------------------


def _real(name: str) -> str:
    path = PLUGINS / name
    if not os.access(path, os.X_OK):
        unavailable(f"{path} is not installed (Debian package monitoring-plugins)")
    return str(path)


async def test_real_check_tcp_against_a_loopback_listener(tmp_path: Path) -> None:
    plugin = _real("check_tcp")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = await run(
            tmp_path, {"plugin": plugin, "args": ["-H", "127.0.0.1", "-p", str(port)]}
        )
    assert result.status is Status.OK, result.summary
    assert result.summary.startswith("TCP OK - ")
    [time_figure] = result.details["perfdata"]
    assert (time_figure["label"], time_figure["unit"], time_figure["min"]) == ("time", "s", 0.0)


async def test_real_check_tcp_on_a_closed_port_is_crit(tmp_path: Path) -> None:
    plugin = _real("check_tcp")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = await run(tmp_path, {"plugin": plugin, "args": ["-H", "127.0.0.1", "-p", str(port)]})
    assert result.status is Status.CRIT
    assert "Connection refused" in result.summary
    assert result.error is None  # the plugin decided: a verdict, not a failed probe


async def test_real_check_disk_reports_bytes_with_thresholds(tmp_path: Path) -> None:
    plugin = _real("check_disk")
    result = await run(tmp_path, {"plugin": plugin, "args": ["-w", "0%", "-c", "0%", "-p", "/"]})
    assert result.status is Status.OK, result.summary
    assert result.summary.startswith("DISK OK")
    [root] = result.details["perfdata"]
    assert root["label"] == "/"
    assert root["unit"] in ("B", "KB", "MB", "MiB")
    assert root["min"] == 0.0 and root["max"] is not None and root["max"] > 0
    assert root["warn"] is not None and root["crit"] is not None


async def test_real_plugin_timeout_option_against_a_silent_server(tmp_path: Path) -> None:
    """check_tcp's own -t fires before opsdash's deadline: its verdict (crit) stands."""
    plugin = _real("check_tcp")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        args = ["-H", "127.0.0.1", "-p", str(port), "-s", "HELLO", "-e", "WORLD", "-t", "1"]
        result = await run(tmp_path, {"plugin": plugin, "args": args, "timeout": "5s"})
    assert result.status in (Status.CRIT, Status.UNKNOWN)
    assert "1 second" in result.summary or "timeout" in result.summary.lower()
