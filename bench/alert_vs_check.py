"""``opsdash alert`` vs ``opsdash check --json`` on the repo's ``services.yaml``, process start
to exit (target: alert within 1.3x of check: the state work must be cheap).

Every service URL and the Slack webhook point at one loopback stub answering 200; datastores
are whatever answers on this machine's loopback (the same for both commands). The state file
is warmed with a day of history first, so the alert runs pay for a realistic database.

    .venv/bin/python -m bench.alert_vs_check [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = (
    "import sys; from opsdash.cli import cli, main; from opsdash.commands import alerting as a; "
    "[cli.add_command(c) for c in (a.alert, a.silence, a.history, a.serve) "
    "if c.name not in cli.commands]; sys.exit(main(sys.argv[1:]))"
)
SERVICES = ["BOOKING", "STUDENT", "COURSE", "ADMIN", "TRAINER", "STUDENT_AUTH", "TRAINER_AUTH",
            "NOTIFICATION", "ANALYTICS", "CHAT", "PAYMENT"]  # fmt: skip


class _Ok(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        body = b'{"status":"ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=False, capture_output=True, env=env, cwd=ROOT)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--only",
        default=None,
        help="a GLOB passed to both (e.g. '*-service' to leave out the "
        "datastores, whose timeouts on this machine can dominate both timings)",
    )
    args = parser.parse_args()
    ThreadingHTTPServer.request_queue_size = 128
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    env = {**os.environ, "OPSDASH_SLACK_WEBHOOK_URL": f"{url}/hook"}
    env.update({f"{name}_SERVICE_URL": url for name in SERVICES})
    registry = str(ROOT / "services.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        state = str(Path(tmp) / "state.db")
        alert = [sys.executable, "-c", CLI, "alert", "-q", "-r", registry, "--state", state]
        check = [sys.executable, "-c", CLI, "check", "--json", "-r", registry]
        if args.only:
            alert += ["--only", args.only]
            check += ["--only", args.only]
        _warm(state, alert, env)
        timings: dict[str, list[float]] = {"check --json": [], "alert": []}
        for _ in range(args.runs):  # alternate, so that drift hits both alike
            timings["check --json"].append(_time(check, env))
            timings["alert"].append(_time(alert, env))
    server.shutdown()
    check_median = statistics.median(timings["check --json"])
    for name, values in timings.items():
        median = statistics.median(values)
        print(f"{name:<14} median {median * 1000:7.0f} ms  ({median / check_median:.2f}x check)")


def _warm(state: str, alert: list[str], env: dict[str, str]) -> None:
    """One real run, then a day of history rows (1,440 runs) copied from it."""
    subprocess.run(alert, check=False, capture_output=True, env=env, cwd=ROOT)
    import sqlite3

    with sqlite3.connect(state) as db:
        rows = db.execute(
            "SELECT check_id, at, status, summary, latency_ms FROM history"
        ).fetchall()
        db.executemany(
            "INSERT INTO history VALUES (?, ?, ?, ?, ?)",
            [(c, at - 60 * k, s, m, lat) for k in range(1, 1440) for c, at, s, m, lat in rows],
        )
    print(f"state warmed: {len(rows) * 1440} history rows")


if __name__ == "__main__":
    main()
