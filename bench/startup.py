"""Start-up time of the commands cron and CI call (target: ``opsdash check --help`` < 0.3 s).

Baseline in the same run: a bare ``python -c pass`` (the interpreter's own start-up). Runs each
command alternately, several times, and reports medians and the ratio.

    .venv/bin/python -m bench.startup [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def _time(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=False, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    commands = {
        "python -c pass (baseline)": [sys.executable, "-c", "pass"],
        "opsdash --version": [sys.executable, "-m", "opsdash", "--version"],
        "opsdash check --help": [sys.executable, "-m", "opsdash", "check", "--help"],
        "import opsdash.tui.app": [sys.executable, "-c", "import opsdash.tui.app"],
    }
    timings: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):  # alternate, so that drift hits every command alike
        for name, argv in commands.items():
            timings[name].append(_time(argv))
    baseline = statistics.median(timings["python -c pass (baseline)"])
    print(f"{'command':<28} {'median':>9} {'vs python':>10}")
    for name, values in timings.items():
        median = statistics.median(values)
        print(f"{name:<28} {median * 1000:>7.0f}ms {median / baseline:>9.1f}x")


if __name__ == "__main__":
    main()
