"""``opsdash check`` end to end: real loopback services, exit codes, the JSON contract."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from opsdash.cli import main
from tests.loopback import Platform, Routes
from tests.servers import refused_port

SCHEMA = json.loads(
    (Path(__file__).resolve().parent.parent / "opsdash/schemas/check-v1.json").read_text()
)

HEALTHY: Routes = {
    "/health": (200, "application/json", b'{"status":"ok"}'),
    "/ready": (
        200,
        "application/json",
        b'{"status":"ok","info":{"redis":{"status":"up"}},"error":{},'
        b'"details":{"redis":{"status":"up"}}}',
    ),
}
REDIS_DOWN = (
    503,
    "application/json",
    b'{"status":"error","info":{},"error":{"redis":{"status":"down","message":"ECONNREFUSED"}},'
    b'"details":{"redis":{"status":"down","message":"ECONNREFUSED"}}}',
)


@pytest.fixture
def platform() -> Iterator[Platform]:
    running = Platform()
    yield running
    running.close()


def write_registry(tmp_path: Path, services: dict[str, dict[str, Any]]) -> Path:
    lines = ["version: 1", "platform: test-platform", "defaults:", "  timeout: 2s", "services:"]
    for name, entry in services.items():
        lines.append(f"  {name}:")
        lines += [f"    {key}: {json.dumps(value)}" for key, value in entry.items()]
    path = tmp_path / "services.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_all_ok_exits_0_with_a_valid_document(
    platform: Platform, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = write_registry(
        tmp_path, {"api": {"url": platform.add(HEALTHY)}, "web": {"url": platform.add(HEALTHY)}}
    )
    code, out, _ = run(capsys, "check", "-r", str(registry), "--json")
    document = json.loads(out)
    jsonschema.validate(document, SCHEMA)
    assert code == 0
    assert document["status"] == "ok"
    assert document["counts"] == {"ok": 4, "warn": 0, "crit": 0, "unknown": 0}
    assert [c["id"] for c in document["checks"]] == [
        "api.health",
        "api.ready",
        "web.health",
        "web.ready",
    ]
    assert document["incidents"] == []


def test_an_unready_service_exits_2_and_says_why(
    platform: Platform, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = write_registry(
        tmp_path,
        {
            "api": {"url": platform.add({**HEALTHY, "/ready": REDIS_DOWN})},
            "gone": {"url": f"http://127.0.0.1:{refused_port()}"},
        },
    )
    code, out, _ = run(capsys, "check", "-r", str(registry), "--format", "json")
    document = json.loads(out)
    jsonschema.validate(document, SCHEMA)
    checks = {c["id"]: c for c in document["checks"]}
    assert code == 2
    assert checks["api.ready"]["status"] == "crit"
    assert checks["api.ready"]["summary"].startswith("503 Service Unavailable")
    assert checks["gone.health"]["error"] == {"type": "refused", "message": "connection refused"}
    assert {i["cause"] for i in document["incidents"]} == {"api", "gone"}


def test_text_output_is_plain_when_piped(
    platform: Platform, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = write_registry(
        tmp_path, {"api": {"url": platform.add({**HEALTHY, "/ready": REDIS_DOWN})}}
    )
    code, out, _ = run(capsys, "check", "-r", str(registry))
    assert code == 2
    assert "\x1b[" not in out
    assert "✖ crit" in out
    assert "api.ready" in out
    assert "503 Service Unavailable" in out


def test_only_and_tag_select_checks(
    platform: Platform, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = write_registry(
        tmp_path,
        {
            "api": {"url": platform.add(HEALTHY), "tags": ["core"]},
            "web": {"url": f"http://127.0.0.1:{refused_port()}"},
        },
    )
    code, out, _ = run(capsys, "check", "-r", str(registry), "--json", "--only", "api*")
    assert code == 0
    assert {c["component"] for c in json.loads(out)["checks"]} == {"api"}
    code, out, _ = run(capsys, "check", "-r", str(registry), "--json", "--tag", "core")
    assert code == 0
    code, _, err = run(capsys, "check", "-r", str(registry), "--only", "nothing-*")
    assert code == 3
    assert "no check matches" in err


def test_a_broken_registry_still_gives_one_json_document_and_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = tmp_path / "services.yaml"
    registry.write_text(
        "version: 1\nplatform: x\nservices:\n  api:\n    url: http://x\n    helth: /h\n"
    )
    code, out, err = run(capsys, "check", "-r", str(registry), "--json")
    document = json.loads(out)
    jsonschema.validate(document, SCHEMA)
    assert code == 3
    assert document["status"] == "unknown"
    assert document["error"]["type"] == "config"
    assert "services.yaml:6" in document["error"]["message"]
    assert "helth" in document["error"]["message"]
    code, out, err = run(capsys, "check", "-r", str(registry))
    assert code == 3
    assert "services.yaml:6" in err
    assert "Traceback" not in err


def test_usage_errors_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "check", "--no-such-option")
    assert code == 3
    assert "No such option" in err
    code, _, err = run(capsys, "check", "--timeout", "soon")
    assert code == 3
    assert "duration" in err


def test_wait_reruns_until_everything_is_ok(
    platform: Platform, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = platform.add({**HEALTHY, "/ready": REDIS_DOWN})
    port = int(url.rsplit(":", 1)[1])
    registry = write_registry(tmp_path, {"api": {"url": url}})

    # The service recovers after its first readiness answer.

    answers = iter([REDIS_DOWN])

    def ready() -> tuple[int, str, bytes]:
        answer = next(answers, HEALTHY["/ready"])
        return answer if not callable(answer) else answer()

    platform.routes[port]["/ready"] = ready
    code, out, err = run(capsys, "check", "-r", str(registry), "--json", "--wait", "20s")
    assert code == 0
    assert json.loads(out)["status"] == "ok"
    assert "round 1: 1 not ok (api.ready)" in err


def test_the_installed_command_reports_by_exit_code(platform: Platform, tmp_path: Path) -> None:
    registry = write_registry(
        tmp_path, {"api": {"url": platform.add({**HEALTHY, "/ready": REDIS_DOWN})}}
    )
    done = subprocess.run(
        [sys.executable, "-m", "opsdash", "check", "-r", str(registry), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert json.loads(done.stdout)["status"] == "crit"


def test_check_shows_silences_from_the_alerting_state(
    platform: Platform, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = write_registry(
        tmp_path, {"api": {"url": platform.add({**HEALTHY, "/ready": REDIS_DOWN})}}
    )
    state = tmp_path / "state.db"
    code, _, _ = run(
        capsys, "silence", "api", "--for", "30m", "--reason", "deploy", "--state", str(state)
    )
    assert code == 0
    code, out, _ = run(capsys, "check", "-r", str(registry), "--json", "--state", str(state))
    checks = {c["id"]: c for c in json.loads(out)["checks"]}
    assert code == 2  # a silence holds notifications back; it does not hide the status
    assert checks["api.ready"]["details"]["silenced"]["reason"] == "deploy"
    code, out, _ = run(capsys, "check", "-r", str(registry), "--state", str(state))
    assert "[silenced until " in out


def test_an_empty_selection_still_gives_one_json_document(
    platform: Platform, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = write_registry(tmp_path, {"api": {"url": platform.add(HEALTHY)}})
    code, out, _ = run(capsys, "check", "-r", str(registry), "--json", "--only", "nothing-*")
    document = json.loads(out)
    jsonschema.validate(document, SCHEMA)
    assert code == 3
    assert document["platform"] == "test-platform"
    assert document["error"]["type"] == "config"
    assert "no check matches" in document["error"]["message"]


def test_a_mistyped_silence_leaves_no_state_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.db"
    code, _, err = run(
        capsys, "silence", "redis", "--for", "soon", "--reason", "x", "--state", str(state)
    )
    assert code == 3
    assert "duration" in err
    code, _, _ = run(capsys, "silence", "--state", str(state))
    assert code == 3
    assert not state.exists()


def test_piped_text_keeps_the_whole_reason_and_quiet_shows_what_is_wrong(
    platform: Platform, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a reason far wider than any terminal: piped, it is printed whole, never with "…"
    names = ", ".join(f"dependency-number-{i}" for i in range(12))
    long_body = json.dumps({"status": "down", "checks": {n: "down" for n in names.split(", ")}})
    broken = {
        "/health": HEALTHY["/health"],
        "/ready": (503, "application/json", long_body.encode()),
    }
    registry = write_registry(
        tmp_path, {"api": {"url": platform.add(HEALTHY)}, "web": {"url": platform.add(broken)}}
    )
    code, out, _ = run(capsys, "check", "-r", str(registry))
    assert code == 2 and "…" not in out
    lines = out.splitlines()
    ready = next(line for line in lines if "web.ready" in line)
    assert "dependency-number-0 down" in ready and "and 9 more" in ready
    first = lines[next(i for i, line in enumerate(lines) if line.startswith("STATUS")) + 1]
    assert first.split()[2] == "web.ready"  # failing checks first

    code, quiet, _ = run(capsys, "check", "-q", "-r", str(registry))
    assert code == 2
    assert "api.health" not in quiet and "web.health" not in quiet
    assert "web.ready" in quiet and "Incidents" in quiet
