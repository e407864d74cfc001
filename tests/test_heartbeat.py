"""Heartbeats, a dead man's switch for cron jobs: ``opsdash heartbeat ID`` and
``POST /heartbeat/ID`` to ``serve`` write the beat to the alerting state; the heartbeat check
reads it back (crit when older than ``max_age``, else what the job reported)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from opsdash.alertstate.store import open_store
from opsdash.beats import Heartbeat
from opsdash.cli import main
from opsdash.exporter import Exporter
from opsdash.heartbeats import find
from opsdash.plan import build_plan
from opsdash.probes.heartbeat import HeartbeatTarget, judge
from opsdash.registry import load_registry
from opsdash.resources import Resources
from opsdash.status import Status

TOKEN = "s3cret-heartbeat-token-0123"
REGISTRY = f"""\
version: 1
platform: test
workers:
  billing:
    checks:
      nightly-export: {{heartbeat: {{max_age: 26h, token: {TOKEN}}}}}
      weekly: {{heartbeat: {{max_age: 8d}}}}
"""


@pytest.fixture
def registry_path(tmp_path: Path) -> Path:
    path = tmp_path / "services.yaml"
    path.write_text(REGISTRY)
    return path


def check_json(registry_path: Path, state: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    code = main(["check", "-r", str(registry_path), "--state", str(state), "--json"])
    document = json.loads(capsys.readouterr().out)
    return {c["id"]: c for c in document["checks"]} | {"_exit": code}


def test_before_the_first_beat_the_check_is_unknown(
    registry_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checks = check_json(registry_path, tmp_path / "state.db", capsys)
    nightly = checks["billing.nightly-export"]
    assert (nightly["status"], nightly["summary"]) == (
        "unknown",
        "no heartbeat yet (expected one every 26h)",
    )
    assert nightly["kind"] == "heartbeat"
    assert not (tmp_path / "state.db").exists()  # reading never creates the state


def test_a_beat_from_the_cli_makes_the_check_ok_and_warn_is_kept(
    registry_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.db"
    args = ["-r", str(registry_path), "--state", str(state)]
    assert main(["heartbeat", "billing.nightly-export", *args]) == 0
    assert capsys.readouterr().out == "recorded a heartbeat for billing.nightly-export (ok)\n"
    checks = check_json(registry_path, state, capsys)
    assert checks["billing.nightly-export"]["status"] == "ok"
    assert checks["billing.nightly-export"]["summary"].startswith("last heartbeat ")

    # the bare name works when only one heartbeat check has it
    assert (
        main(["heartbeat", "weekly", "--status", "warn", "--message", "3 rows skipped", *args]) == 0
    )
    capsys.readouterr()
    weekly = check_json(registry_path, state, capsys)["billing.weekly"]
    assert weekly["status"] == "warn"
    assert weekly["summary"].endswith("ago reporting warn: 3 rows skipped")
    assert weekly["details"]["source"] == "cli"


def test_an_old_beat_is_crit(registry_path: Path, tmp_path: Path) -> None:
    registry = load_registry(registry_path, environ={})
    target = HeartbeatTarget("billing.nightly-export", 26 * 3600)
    beat = Heartbeat("billing.nightly-export", 1000.0, Status.OK, "done", "cli")
    verdict = judge(beat, target, now=1000.0 + 27 * 3600)
    assert verdict.status is Status.CRIT
    assert verdict.summary == "last heartbeat 27h ago, older than 26h: done"
    assert find(registry, "nightly-export").check_id == "billing.nightly-export"


def test_an_unknown_name_or_status_exits_3(
    registry_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["-r", str(registry_path), "--state", str(tmp_path / "state.db")]
    assert main(["heartbeat", "nope", *args]) == 3
    assert "no heartbeat check 'nope' in the registry" in capsys.readouterr().err
    assert main(["heartbeat", "weekly", "--status", "sideways", *args]) == 3
    assert not (tmp_path / "state.db").exists()


def test_a_state_file_from_before_heartbeats_gains_the_table(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    with open_store(state, report=print) as store:
        store.connection.execute("DROP TABLE heartbeats")  # as written by an older opsdash
    assert main(["heartbeat", "weekly", "-r", str(_registry(tmp_path)), "--state", str(state)]) == 0
    rows = sqlite3.connect(state).execute("SELECT check_id, status FROM heartbeats").fetchall()
    assert rows == [("billing.weekly", "ok")]


def _registry(tmp_path: Path) -> Path:
    path = tmp_path / "services.yaml"
    path.write_text(REGISTRY)
    return path


async def test_post_heartbeat_to_serve_needs_the_token(registry_path: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    registry = load_registry(registry_path, environ={})
    specs = build_plan(registry)
    async with Resources(state_path=state) as resources:
        exporter = Exporter(registry, specs, resources, state_path=state)
        port = await exporter.start("127.0.0.1", 0)
        base = f"http://127.0.0.1:{port}/heartbeat"
        try:
            async with httpx.AsyncClient() as client:
                no_token = await client.post(f"{base}/billing.nightly-export")
                wrong = await client.post(
                    f"{base}/billing.nightly-export", headers={"Authorization": "Bearer nope"}
                )
                tokenless_check = await client.post(
                    f"{base}/billing.weekly", headers={"Authorization": f"Bearer {TOKEN}"}
                )
                missing = await client.post(f"{base}/nothing")
                good = await client.post(
                    f"{base}/billing.nightly-export?status=crit&message=disk%20full",
                    headers={"Authorization": f"Bearer {TOKEN}"},
                    content=b"ignored",
                )
                bad_status = await client.post(
                    f"{base}/billing.nightly-export?status=maybe",
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
                metrics = await client.get(f"http://127.0.0.1:{port}/metrics")
        finally:
            await exporter.stop()
    assert (no_token.status_code, wrong.status_code, tokenless_check.status_code) == (403, 403, 403)
    assert TOKEN not in wrong.text
    assert missing.status_code == 404
    assert (good.status_code, good.text) == (
        200,
        "recorded a heartbeat for billing.nightly-export (crit)\n",
    )
    assert bad_status.status_code == 400
    assert metrics.status_code == 200
    store = sqlite3.connect(state)
    row = store.execute("SELECT status, message, source FROM heartbeats").fetchone()
    assert row == ("crit", "disk full", "http")
    # the check, run against the same state, reports what the job said
    async with Resources(state_path=state) as resources:
        from opsdash.harness import run_probe

        [spec] = [s for s in specs if s.id == "billing.nightly-export"]
        result = await run_probe(spec, resources)
    assert result.status is Status.CRIT
    assert result.summary.endswith("reporting crit: disk full")
    assert time.time() - result.figures.last_beat_at.timestamp() < 3600  # type: ignore[union-attr]


def test_alert_reads_the_beats_from_its_own_state(
    registry_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "alert-state.db"
    only = ["--only", "billing.nightly-export"]
    alert = ["alert", "-r", str(registry_path), "--state", str(state), "-q", *only]
    assert main(alert) == 3  # unknown: no beat yet
    assert (
        main(["heartbeat", "nightly-export", "-r", str(registry_path), "--state", str(state)]) == 0
    )
    assert main(alert) == 0
    capsys.readouterr()
