"""``opsdash check`` end to end: real loopback services, exit codes, the JSON contract."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from opsdash.cli import main

SCHEMA = json.loads(
    (Path(__file__).resolve().parent.parent / "opsdash/schemas/check-v1.json").read_text()
)

# path -> (status code, content type, body); the tests change it between runs.
Routes = dict[str, tuple[int, str, bytes]]

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


class Platform:
    """Loopback HTTP services whose answers a test can change; counts requests."""

    def __init__(self) -> None:
        self.routes: dict[int, Routes] = {}
        self.hits = 0
        self.servers: list[ThreadingHTTPServer] = []

    def add(self, routes: Routes) -> str:
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                platform.hits += 1
                port = self.server.server_address[1]
                status, content_type, body = platform.routes[port].get(
                    self.path, (404, "text/plain", b"not found")
                )
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        port = server.server_address[1]
        self.routes[port] = dict(routes)
        self.servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{port}"

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def platform() -> Iterator[Platform]:
    running = Platform()
    yield running
    running.close()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
            "gone": {"url": f"http://127.0.0.1:{_free_port()}"},
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
            "web": {"url": f"http://127.0.0.1:{_free_port()}"},
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

    # The service recovers after its first readiness answer: flip the route on the first hit.
    original = platform.routes[port]

    class Recovering(dict[str, tuple[int, str, bytes]]):
        def get(self, key: str, default: Any = None) -> Any:
            answer = original.get(key, default)
            if key == "/ready":
                original["/ready"] = HEALTHY["/ready"]
            return answer

    platform.routes[port] = Recovering()
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
