"""How the console script tunes a process for its command (opsdash.launch): a single round
runs without the cyclic collector; ``check --wait``, which repeats rounds for as long as it is
given, keeps one, so that what failing rounds leave in cycles is reclaimed."""

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
    ("argv", "threshold"),
    [
        (["check", "--json", "-r", "services.yaml"], None),
        (["alert", "-r", "services.yaml"], None),
        (["check", "--wait", "5m"], REPEATING_GC_THRESHOLD),
        (["check", "--wait=30s", "--json"], REPEATING_GC_THRESHOLD),
    ],
)
def test_the_collector_of_each_one_shot_command_line(
    argv: list[str], threshold: tuple[int, int, int] | None
) -> None:
    assert is_one_shot(argv)
    assert one_shot_gc_threshold(argv) == threshold


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
            print("collecting" if gc.isenabled() else "not collecting", file=sys.stderr)
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
    assert child.stderr.strip().splitlines()[-1] == (
        "collecting" if collecting else "not collecting"
    )
