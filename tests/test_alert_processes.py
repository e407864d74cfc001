"""``opsdash alert`` as cron runs it: separate processes racing for the state, a process killed
with SIGKILL in the middle of its writes, and the ``silence``/``history`` commands."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from opsdash.commands.alerting import alert, history, silence
from tests.servers import wait_until
from tests.test_alert import FlipService, Receiver

ROOT = Path(__file__).resolve().parent.parent
# Runs the CLI with the alerting commands registered, whether or not opsdash.cli has them yet.
CLI = (
    "import sys; from opsdash.cli import cli, main; from opsdash.commands import alerting as a; "
    "[cli.add_command(c) for c in (a.alert, a.silence, a.history, a.serve) "
    "if c.name not in cli.commands]; sys.exit(main(sys.argv[1:]))"
)


def opsdash(*args: str) -> list[str]:
    """The argv of an ``opsdash`` subprocess."""
    return [sys.executable, "-c", CLI, *args]


def write_registry(path: Path, services: dict[str, str], hook: str, **defaults: object) -> Path:
    lines = ["version: 1", "platform: test-platform", "defaults:", "  timeout: 5s"]
    lines += [f"  {key}: {value}" for key, value in defaults.items()]
    lines.append("services:")
    for name, url in services.items():
        lines += [f"  {name}:", f"    url: {url}"]
    lines += [
        "alerts:",
        "  targets:",
        "    hook: {type: webhook, url: '" + hook + "', retries: 0}",
        "  routes:",
        "    - {targets: [hook], status: [warn, crit, unknown]}",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def test_two_processes_at_once_deliver_each_notification_once(
    receiver: Receiver, tmp_path: Path
) -> None:
    gate = threading.Event()
    service = FlipService()
    handler = service.server.RequestHandlerClass
    original = handler.do_GET  # type: ignore[attr-defined]

    def held(self: object) -> None:
        gate.wait(20)  # keep the run that got the lock busy until the other one has left
        original(self)

    handler.do_GET = held  # type: ignore[attr-defined]
    try:
        service.ready(503)
        registry = write_registry(
            tmp_path / "services.yaml", {"booking": service.url}, receiver.url,
            failure_threshold=1,
        )  # fmt: skip
        argv = opsdash("alert", "-r", str(registry), "--state", str(tmp_path / "state.db"))
        runs = [
            subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(2)
        ]
        wait_until(
            lambda: any(run.poll() is not None for run in runs), timeout=30, what="one run ends"
        )
        gate.set()
        outputs = [run.communicate(timeout=30) for run in runs]
    finally:
        gate.set()
        service.close()
    codes = sorted(run.returncode for run in runs)
    errors = [err.decode() for _, err in outputs]
    assert codes == [0, 2], errors  # the skipped run exits 0, the real one crit
    assert sum("skipping this run" in err for err in errors) == 1
    assert receiver.kinds() == ["firing"]


_LOOP = """
import asyncio, sys
from pathlib import Path
from opsdash.alerting.run import alert_run
from opsdash.plan import build_plan
from opsdash.registry import load_registry

registry = load_registry(Path(sys.argv[1]))
specs = build_plan(registry)

async def main():
    while True:
        await alert_run(registry, specs, state_path=Path(sys.argv[2]), out=lambda m: None,
                        err=lambda m: None)

asyncio.run(main())
"""


@pytest.mark.slow
def test_sigkill_mid_write_leaves_a_state_the_next_run_reads(
    receiver: Receiver, tmp_path: Path
) -> None:
    service = FlipService()
    try:
        services = {f"svc{i:03d}": service.url for i in range(100)}  # 200 checks a run
        # A busy loopback server may answer slowly; latency is not what this test is about.
        registry = write_registry(
            tmp_path / "services.yaml", services, receiver.url, latency="{warn: 30s, crit: 60s}"
        )
        state = tmp_path / "state.db"
        checks = 2 * len(services)

        def history_rows() -> int:
            try:
                with sqlite3.connect(f"{state.as_uri()}?mode=ro", uri=True) as db:
                    return int(db.execute("SELECT count(*) FROM history").fetchone()[0])
            except sqlite3.Error:
                return 0

        rng = random.Random(6)
        for round_ in range(5):
            service.ready(503 if round_ % 2 else 200)
            before = history_rows()
            loop = subprocess.Popen(
                [sys.executable, "-c", _LOOP, str(registry), str(state)], cwd=ROOT
            )
            try:
                wait_until(lambda b=before: history_rows() > b, timeout=30, what="a committed run")
                time.sleep(rng.uniform(0.0, 0.3))  # lands at a random point of a later run
            finally:
                os.kill(loop.pid, signal.SIGKILL)
                loop.wait()
            with sqlite3.connect(state) as db:
                assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                # all or nothing: every committed run wrote one row per check
                assert db.execute("SELECT count(*) FROM history").fetchone()[0] % checks == 0
                (states,) = db.execute("SELECT count(*) FROM checks").fetchone()
                assert states == checks
        done = subprocess.run(
            opsdash("alert", "-r", str(registry), "--state", str(state)),
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        # Nothing set aside, nothing failed; the only words allowed: a delivery two killed
        # runs left in flight is given up (re-sent at most once, issue 11).
        assert all("two runs died while sending it" in line for line in done.stderr.splitlines()), (
            done.stderr
        )
        assert done.returncode == 0, done.stdout
        assert history_rows() % checks == 0
    finally:
        service.close()


def test_silence_and_history_commands(receiver: Receiver, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    service = FlipService()
    cli = CliRunner()
    try:
        registry = write_registry(
            tmp_path / "services.yaml", {"booking": service.url}, receiver.url
        )
        made = cli.invoke(
            silence, ["booking", "--for", "30m", "--reason", "deploy", "--state", str(state)]
        )
        assert made.exit_code == 0, made.output
        assert made.output.startswith("silenced booking until ")
        listed = cli.invoke(silence, ["--list", "--state", str(state)])
        assert "booking" in listed.output and "deploy" in listed.output
        assert "30m left" in listed.output or "29m" in listed.output

        service.ready(503)
        args = ["-r", str(registry), "--state", str(state)]
        for _ in range(2):
            ran = cli.invoke(alert, args)
            assert ran.exit_code == 2
        assert receiver.kinds() == []
        assert "silenced, not notifying" in ran.stderr

        cleared = cli.invoke(silence, ["--clear", "booking", "--state", str(state)])
        assert cleared.output == "ended 1 silence\n"
        assert cli.invoke(silence, ["--list", "--state", str(state)]).output == (
            "no silences in force\n"
        )
        cli.invoke(alert, args)
        assert receiver.kinds() == ["firing"]
        service.ready(200)
        cli.invoke(alert, args)
        assert receiver.kinds() == ["firing", "resolved"]
    finally:
        service.close()

    table = cli.invoke(history, ["--state", str(state)])
    assert table.exit_code == 0
    ready_line = next(line for line in table.output.splitlines() if "booking.ready" in line)
    assert "ok" in ready_line and "25.00%" in ready_line  # 1 ok run of 4
    one = cli.invoke(history, ["booking.ready", "--state", str(state), "--json"])
    import json

    (entry,) = json.loads(one.output)["checks"]
    assert [c["status"] for c in entry["changes"]] == ["crit", "ok"]
    assert entry["runs"] == 4

    missing = cli.invoke(history, ["--state", str(tmp_path / "none.db")])
    assert missing.exit_code == 3
    usage = cli.invoke(silence, ["booking", "--state", str(state)])
    assert usage.exit_code != 0 and "needs TARGET, --for DURATION and --reason" in usage.output
