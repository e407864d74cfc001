"""The engine is headless: the check path never imports textual (start-up time, cron, CI);
each command loads only what its path needs (``--help`` nothing but click)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from opsdash.cli import COMMANDS, cli, main
from opsdash.resources import UVLOOP_FROM, event_loop_factory

ROOT = Path(__file__).resolve().parent.parent


def _modules_after(code: str) -> set[str]:
    probe = textwrap.dedent(
        f"""
        import sys
        {code}
        print("\\n".join(sorted(sys.modules)))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return set(out.stdout.split())


def test_importing_the_cli_loads_no_tui_and_no_driver() -> None:
    loaded = _modules_after("import opsdash.cli")
    assert "opsdash.cli" in loaded
    for heavy in ("textual", "httpx", "asyncpg", "redis", "pymongo", "pydantic"):
        assert heavy not in loaded, f"importing opsdash.cli loads {heavy}"


def test_a_check_round_loads_no_textual() -> None:
    loaded = _modules_after(
        """
        import asyncio
        from opsdash.rounds import check_rounds
        from opsdash.plan import build_plan
        from opsdash.registry.model import Registry
        registry = Registry.from_data(
            {"version": 1, "platform": "t", "services": {"a": {"url": "http://127.0.0.1:9"}}}
        )
        specs = build_plan(registry, timeout=0.5)
        snapshot = asyncio.run(check_rounds(registry, specs, wait=None, concurrency=4))
        assert len(snapshot.results) == 2
        from opsdash.render.json import check_document
        from opsdash.render.text import render_text
        render_text(snapshot); check_document(snapshot)
        """
    )
    assert "opsdash.engine" in loaded
    assert not any(name == "textual" or name.startswith("textual.") for name in loaded)


def test_no_module_outside_the_tui_imports_textual() -> None:
    engine_modules = [
        path
        for path in (ROOT / "opsdash").rglob("*.py")
        if "tui" not in path.relative_to(ROOT / "opsdash").parts
    ]
    assert len(engine_modules) > 10
    offenders = [
        path.relative_to(ROOT).as_posix()
        for path in engine_modules
        if any(
            line.strip().startswith(("import textual", "from textual"))
            for line in path.read_text().splitlines()
        )
    ]
    assert offenders == []


def test_the_check_command_without_from_loads_no_http_client_library(tmp_path: Path) -> None:
    """``--from``'s client (httpx) loads only when ``--from`` is given: click calls the option's
    callback for its empty default too, which once put 0.4 s of imports on every ``check``."""
    registry = tmp_path / "services.yaml"
    registry.write_text("version: 1\nplatform: t\nservices:\n  a:\n    url: http://127.0.0.1:9\n")
    loaded = _modules_after(
        f"""
        from opsdash.cli import main
        code = main(["check", "--json", "--timeout", "0.2s", "-r", {str(registry)!r}])
        assert code == 2, code  # the service is down: crit, so the round really ran
        """
    )
    assert "opsdash.rounds" in loaded
    assert "httpx" not in loaded and "opsdash.remote" not in loaded


def _command_modules(argv: list[str], tmp_path: Path) -> set[str]:
    """The modules an ``opsdash`` command line leaves loaded (run in a fresh interpreter, with
    a state directory of its own: no alerting state unless the test makes one)."""
    probe = textwrap.dedent(
        f"""
        import contextlib, io, sys
        from opsdash.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            code = main({argv!r})
        print(code)
        print("\\n".join(sorted(sys.modules)))
        """
    )
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state-home")}
    env.pop("OPSDASH_STATE", None)
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT, env=env
    )
    code, *loaded = out.stdout.split()
    return {f"exit {code}", *loaded}


def _http_registry(tmp_path: Path) -> Path:
    registry = tmp_path / "services.yaml"
    registry.write_text("version: 1\nplatform: t\nservices:\n  a:\n    url: http://127.0.0.1:9\n")
    return registry


def test_help_loads_no_command_module_and_no_engine(tmp_path: Path) -> None:
    """``opsdash --help`` lists every command from its summary: none of their modules, the
    registry, the engine or the event loop load for it."""
    loaded = _command_modules(["--help"], tmp_path)
    assert "exit 0" in loaded
    assert not {m for m in loaded if m.startswith("opsdash.commands")}
    for heavy in ("opsdash.registry", "opsdash.rounds", "opsdash.engine", "asyncio", "yaml"):
        assert heavy not in loaded, f"opsdash --help loads {heavy}"
    own_help = _command_modules(["check", "--help"], tmp_path)
    assert "opsdash.commands.check" in own_help
    assert "opsdash.commands.alerting" not in own_help and "opsdash.engine" not in own_help


def test_a_plain_check_loads_only_what_its_registry_needs(tmp_path: Path) -> None:
    """``opsdash check`` on an http-only registry, without an alerting state file: the round
    runs, and the alerting state (sqlite3), the other commands, the drivers, the TLS probe,
    ssl itself (opsdash.lazy_ssl) and the dashboard stay out of the process."""
    registry = _http_registry(tmp_path)
    loaded = _command_modules(
        ["check", "--json", "--timeout", "0.2s", "-r", str(registry)], tmp_path
    )
    assert "exit 2" in loaded  # nothing listens on port 9: crit, so the round really ran
    assert "opsdash.rounds" in loaded and "opsdash.probes.http" in loaded
    unwanted = {
        "sqlite3",
        "ssl",
        "opsdash.alertstate",
        "opsdash.alerting",
        "opsdash.commands.alerting",
        "opsdash.commands.demo",
        "opsdash.commands.heartbeat",
        "opsdash.commands.ui",
        "opsdash.probes.postgres",
        "opsdash.probes.redis",
        "opsdash.probes.mongo",
        "opsdash.probes.dlq",
        "opsdash.probes.worker_metrics",
        "httpx",
        "textual",
        "uvloop",  # a round this small ends sooner on asyncio's loop than uvloop loads
        "asyncpg",
        "redis",
        "pymongo",
        "bson",
    }
    assert unwanted & loaded == set()


def test_the_drivers_a_plan_needs_load_when_it_is_planned_not_in_the_round() -> None:
    """An import inside a round holds the event loop (pymongo: ~230 ms) while every other
    probe waits: the planners of driver-backed checks import their driver."""
    loaded = _modules_after(
        """
        import asyncio, sys
        from opsdash.engine import run_round
        from opsdash.plan import build_plan
        from opsdash.registry.model import Registry
        from opsdash.resources import Resources
        registry = Registry.from_data({
            "version": 1, "platform": "t",
            "datastores": {
                "pg": {"kind": "postgres", "dsn": "postgresql://u@127.0.0.1:9/db"},
                "cache": {"kind": "redis", "url": "redis://127.0.0.1:9/0"},
                "docs": {"kind": "mongo", "uri": "mongodb://127.0.0.1:9/db"},
            },
            "workers": {
                "a": {"dlq": {"source": "sql", "datastore": "pg", "query": "SELECT 1"}},
                "b": {"dlq": {"source": "redis-list", "datastore": "cache", "key": "k"}},
                "c": {"dlq": {"source": "mongo", "datastore": "docs", "collection": "c"}},
            },
        })
        specs = build_plan(registry, timeout=0.5)
        planned = set(sys.modules)

        async def main():
            async with Resources() as resources:
                return await run_round(specs, resources)

        round_ = asyncio.run(main())
        assert [r.error is not None for r in round_.results] == [True] * 6, round_
        drivers = ("asyncpg", "redis", "pymongo", "bson")
        late = sorted(m for m in set(sys.modules) - planned if m.split(".")[0] in drivers)
        assert late == [], late
        """
    )
    assert {"asyncpg", "redis.asyncio", "pymongo"} <= loaded


def test_large_rounds_and_long_runs_get_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")
    assert event_loop_factory(UVLOOP_FROM) is uvloop.new_event_loop
    assert event_loop_factory() is uvloop.new_event_loop  # serve, the dashboard
    assert event_loop_factory(UVLOOP_FROM - 1) is asyncio.new_event_loop


def test_a_check_with_an_alerting_state_loads_it(tmp_path: Path) -> None:
    """With a state file (``opsdash silence`` made one) ``check`` reads it for its marks."""
    registry = _http_registry(tmp_path)
    state = tmp_path / "state.db"
    assert main(["silence", "a", "--for", "5m", "--reason", "r", "--state", str(state)]) == 0
    argv = ["check", "--json", "--timeout", "0.2s", "-r", str(registry), "--state", str(state)]
    loaded = _command_modules(argv, tmp_path)
    assert "exit 2" in loaded and "opsdash.alertstate.view" in loaded


def test_the_help_listing_is_the_commands_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """``opsdash --help`` reads each command's summary from ``opsdash.cli.COMMANDS``: what it
    prints is what click prints with every command loaded."""
    monkeypatch.setenv("COLUMNS", "72")
    runner = CliRunner()
    lazy = runner.invoke(cli, ["--help"], prog_name="opsdash")
    for name in COMMANDS:
        command = cli.get_command(click.Context(cli), name)  # imports the command's module
        assert command is not None and command.help is not None
        first_paragraph = " ".join(command.help.partition("\n\n")[0].split())
        assert COMMANDS[name][1] == first_paragraph, name
    loaded = runner.invoke(cli, ["--help"], prog_name="opsdash")
    assert (
        lazy.exit_code == 0
        and "check      Run every selected check once and report." in lazy.output
    )
    assert lazy.output == loaded.output


def test_the_check_command_loads_no_pydantic(tmp_path: Path) -> None:
    """The registry validates with opsdash's own layer (``opsdash/registry/schema.py``):
    importing pydantic and building its model classes took ~200 ms of every ``check``."""
    registry = tmp_path / "services.yaml"
    registry.write_text(
        "version: 1\nplatform: t\n"
        "datastores:\n  cache: {kind: redis, url: 'redis://127.0.0.1:9/0'}\n"
        "services:\n  a:\n    url: http://127.0.0.1:9\n    latency: {warn: 500ms}\n"
        "    checks:\n      status: {http: /s, expect: {status: 2xx, json: {$.ok: true}}}\n"
        "workers:\n  w:\n    dlq: {source: redis-list, datastore: cache, key: dlq}\n"
    )
    loaded = _modules_after(
        f"""
        from opsdash.cli import main
        code = main(["check", "--json", "--timeout", "0.2s", "-r", {str(registry)!r}])
        assert code == 2, code  # everything is down: crit, so the registry did validate
        """
    )
    assert "opsdash.registry.schema" in loaded
    assert not [name for name in loaded if name.split(".")[0] in ("pydantic", "pydantic_core")]


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["--version"], ["check", "--help"]])
def test_answers_that_skip_the_teardown_still_arrive_whole(argv: list[str]) -> None:
    """``--help`` and ``--version`` end like the one-shot commands, without the interpreter's
    teardown (os._exit once output is flushed): through a pipe, the text is the same as with
    a normal exit, whole, and the exit code is 0."""

    def answer(module: str, entry: str) -> subprocess.CompletedProcess[str]:
        probe = (
            "import atexit, sys\n"
            f"sys.argv = ['opsdash', *{argv!r}]\n"
            "atexit.register(lambda: print('TEARDOWN', file=sys.stderr))\n"
            f"from {module} import {entry}\n"
            f"sys.exit({entry}())\n"
        )
        env = {**os.environ, "COLUMNS": "80"}
        return subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=env
        )

    skipping, normal = answer("opsdash.launch", "run"), answer("opsdash.cli", "main")
    assert (skipping.returncode, normal.returncode) == (0, 0), skipping.stderr
    assert skipping.stdout == normal.stdout and normal.stdout.strip()
    assert "TEARDOWN" in normal.stderr and "TEARDOWN" not in skipping.stderr
