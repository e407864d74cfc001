"""``opsdash check --format nagios``: one plugin line with perfdata, the checks that are not ok
as long output, the usual exit codes; and the parser of plugins' own output."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from opsdash.cli import main
from opsdash.figures import PerfDatum
from opsdash.probes.nagios import parse_output, parse_perfdatum


def _plugin(directory: Path, name: str, line: str, code: int) -> None:
    path = directory / "checks" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"#!/bin/sh\necho '{line}'\nexit {code}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _registry(tmp_path: Path, checks: dict[str, tuple[str, int]]) -> Path:
    lines = ["version: 1", "platform: test", "workers:", "  jobs:", "    checks:"]
    for name, (line, code) in checks.items():
        _plugin(tmp_path, name, line, code)
        lines.append(f"      {name}: {{plugin: {name}}}")
    path = tmp_path / "services.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_all_ok_is_one_line_with_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _registry(tmp_path, {"a": ("OK - a", 0), "b": ("OK - b", 0)})
    assert main(["check", "-r", str(path), "--format", "nagios"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    text, perf = line.split(" | ")
    assert text == "OPSDASH OK - 2 checks ok"
    assert perf.startswith(
        "checks_ok=2;;;0 checks_warn=0;;;0 checks_crit=0;;;0 checks_unknown=0;;;0 duration="
    )
    assert perf.endswith("s;;;0")


def test_failures_head_the_line_and_are_listed_worst_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _registry(
        tmp_path,
        {
            "ok": ("OK - fine", 0),
            "slow": ("WARNING - slow | pipes in text", 1),
            "down": ("CRITICAL - down", 2),
        },
    )
    assert main(["check", "-r", str(path), "--format", "nagios"]) == 2
    first, *long_output = capsys.readouterr().out.splitlines()
    assert first.startswith("OPSDASH CRITICAL - ")
    assert first.count("|") == 1  # the text part never holds the perfdata separator
    assert "checks_crit=1;;;0" in first and "checks_warn=1;;;0" in first
    assert long_output == [
        "[CRITICAL] jobs.down: CRITICAL - down",
        "[WARNING] jobs.slow: WARNING - slow",
    ]


def test_perfdata_forms() -> None:
    assert parse_perfdatum("time=0.000084s;;;0.000000;10.000000") == PerfDatum(
        "time", 8.4e-05, "s", None, None, 0.0, 10.0
    )
    assert parse_perfdatum("'/var/lib'=1024MB;@10:20;~:30") == PerfDatum(
        "/var/lib", 1024.0, "MB", "@10:20", "~:30"
    )
    assert parse_perfdatum("'it''s'=U") == PerfDatum("it's", None)
    assert parse_perfdatum("no-equals") is None
    assert parse_perfdatum("x=abc") is None


def test_output_without_perfdata_and_with_trailing_blank_lines() -> None:
    output = parse_output("PROCS OK: 3 processes\n\nline\n\n\n")
    assert output.summary == "PROCS OK: 3 processes"
    assert output.perfdata == ()
    assert output.long_output == ("", "line")


def test_an_unreadable_source_is_an_unknown_plugin_answer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.servers import refused_port

    url = f"http://127.0.0.1:{refused_port()}"
    assert main(["check", "--from", url, "--format", "nagios"]) == 3
    assert capsys.readouterr().out == f"OPSDASH UNKNOWN - cannot read {url}: connection refused\n"
