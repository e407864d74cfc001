"""The README's node_exporter textfile recipe, run exactly as written (extracted from the README).

It must publish the exposition when ``check`` exits 1 (warn) or 2 (crit), leave no temporary
file behind, and keep the previous file when the configuration is broken (nothing on stdout).
"""

from __future__ import annotations

import http.server
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import refused_port

ROOT = Path(__file__).resolve().parent.parent
MARKER = "<!-- textfile-recipe:"


def recipe() -> str:
    """The ``sh`` block right after the README's textfile-recipe marker."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(re.escape(MARKER) + r"[^\n]*\n```sh\n(.*?)```", readme, re.S)
    assert found, "the README lost its textfile recipe"
    return found.group(1)


class _Depth(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"depth": 5}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def depth_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Depth)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/dlq"
    server.shutdown()
    server.server_close()


def _run(script: Path, registry: Path, out: Path) -> subprocess.CompletedProcess[str]:
    bin_dir = Path(sys.executable).parent  # where the installed `opsdash` script lives
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "OPSDASH_REGISTRY": str(registry),
        "OPSDASH_TEXTFILE": str(out),
        "OPSDASH_STATE": str(out.parent / "state.db"),
    }
    return subprocess.run(
        ["sh", str(script)], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _statuses(out: Path) -> dict[str, float]:
    return {
        sample.labels["check"]: sample.value
        for family in text_string_to_metric_families(out.read_text())
        for sample in family.samples
        if sample.name == "opsdash_check_status"
    }


def test_the_recipe_publishes_warn_and_crit_and_leaves_no_temporary_file(
    tmp_path: Path, depth_server: str
) -> None:
    script = tmp_path / "opsdash-textfile"
    script.write_text(recipe())
    out = tmp_path / "textfile" / "opsdash.prom"
    out.parent.mkdir()
    registry = tmp_path / "services.yaml"

    # warn: a DLQ holding 5 (warn at 1): `check` exits 1
    registry.write_text(
        "version: 1\nplatform: t\nworkers:\n  w:\n    dlq:\n"
        f"      {{source: http-json, url: '{depth_server}', path: depth, depth: {{warn: 1}}}}\n"
    )
    warned = _run(script, registry, out)
    assert warned.returncode == 0, warned.stderr
    assert _statuses(out) == {"w.dlq": 1.0}

    # crit: a service nobody listens on (`check` exits 2) replaces the file
    registry.write_text(
        f"version: 1\nplatform: t\nservices:\n  api: {{url: 'http://127.0.0.1:{refused_port()}'}}\n"
    )
    crit = _run(script, registry, out)
    assert crit.returncode == 0, crit.stderr
    assert _statuses(out) == {"api.health": 2.0, "api.ready": 2.0}
    assert "opsdash_incident_status" in out.read_text()

    # a broken registry writes nothing: the last good file stays, no temporary file is left
    registry.write_text("version: 1\nplatform: t\nservices:\n  api: {url: 5}\n")
    broken = _run(script, registry, out)
    assert "expected a string" in broken.stderr
    assert _statuses(out) == {"api.health": 2.0, "api.ready": 2.0}
    assert sorted(p.name for p in out.parent.iterdir()) == ["opsdash.prom"]
