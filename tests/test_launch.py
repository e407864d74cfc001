"""How the console script tunes a process for its command (opsdash.launch): a single round
runs without the cyclic collector; ``check --wait``, which repeats rounds for as long as it is
given, keeps one, so that what each round leaves in cycles is reclaimed; long-running
commands keep the interpreter's defaults."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from opsdash.launch import REPEATING_GC_THRESHOLD, is_one_shot, one_shot_gc_threshold
from tests.servers import refused_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "argv",
    [["check", "--json", "-r", "s.yaml"], ["alert"], ["check", "--wait", "5m"], ["--help"]],
)
def test_one_shot_command_lines(argv: list[str]) -> None:
    assert is_one_shot(argv)
    repeats = "--wait" in argv
    assert one_shot_gc_threshold(argv) == (REPEATING_GC_THRESHOLD if repeats else None)
    assert one_shot_gc_threshold([*argv, "--wait=30s"]) == REPEATING_GC_THRESHOLD


def test_long_running_commands_are_not_one_shot() -> None:
    for argv in ([], ["ui"], ["serve", "-r", "x.yaml"], ["demo"]):
        assert not is_one_shot(argv), argv


@pytest.mark.parametrize(("wait", "collecting"), [([], False), (["--wait", "1s"], True)])
def test_a_check_process_collects_only_when_it_repeats_rounds(
    tmp_path: Path, wait: list[str], collecting: bool
) -> None:
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
    expected = f"True {REPEATING_GC_THRESHOLD}" if collecting else "False (700, 10, 10)"
    assert child.stderr.strip().splitlines()[-1] == expected
