"""How the console script tunes a process for its command (opsdash.launch): a one-shot command
collects garbage rarely, but does collect it (failing probes leave reference cycles, and
``check --wait`` repeats rounds for as long as it is given); long-running ones keep the
interpreter's defaults."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from opsdash.launch import ONE_SHOT_GC_THRESHOLD, is_one_shot
from tests.servers import refused_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "argv",
    [["check", "--json", "-r", "s.yaml"], ["alert"], ["check", "--wait", "5m"], ["--help"]],
)
def test_one_shot_command_lines(argv: list[str]) -> None:
    assert is_one_shot(argv)


def test_long_running_commands_are_not_one_shot() -> None:
    for argv in ([], ["ui"], ["serve", "-r", "x.yaml"], ["demo"]):
        assert not is_one_shot(argv), argv


@pytest.mark.parametrize("wait", [[], ["--wait", "1s"]])
def test_a_check_process_still_collects_garbage_rarely(tmp_path: Path, wait: list[str]) -> None:
    registry = tmp_path / "services.yaml"
    registry.write_text(
        f"version: 1\nplatform: t\nservices:\n  a:\n    url: http://127.0.0.1:{refused_port()}\n"
    )
    # The child reports its collector as the process ends (launch ends it with os._exit).
    probe = textwrap.dedent(
        f"""
        import gc, os, sys
        end = os._exit
        def report(code):
            print(gc.isenabled(), gc.get_threshold(), file=sys.stderr)
            end(code)
        os._exit = report
        sys.argv = ["opsdash", "check", "--json", "--timeout", "0.2s", *{wait!r},
                    "-r", {str(registry)!r}]
        from opsdash.launch import run
        run()
        """
    )
    child = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
        env={**os.environ}, timeout=60,
    )  # fmt: skip
    assert child.returncode == 2, child.stderr  # refused: crit, so the round ran
    assert child.stderr.strip().splitlines()[-1] == f"True {ONE_SHOT_GC_THRESHOLD}"
