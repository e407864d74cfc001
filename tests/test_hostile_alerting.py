"""Alerting against hostile targets and a hostile state (issue 11, class 9): a webhook that
answers after the timeout, a run killed mid-delivery, absurd durations, an unusable state
directory. Real loopback services and a loopback webhook receiver."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from opsdash.alerting.notify import IDEMPOTENCY_HEADER, retry_delay
from opsdash.alertstate.store import open_store
from opsdash.cli import main
from opsdash.registry.model import Registry
from tests.test_alert import FlipService, Runner

# Fixtures shared with test_alert.py.
from tests.test_alert import service as service


class SlowReceiver:
    """A webhook receiver that records each request on arrival (headers and body), then
    answers ``fail_with`` or 200, ``delay`` seconds later."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.delay = 0.0
        self.fail_with: int | None = None
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.lock:
                    receiver.requests.append((dict(self.headers.items()), body))
                time.sleep(receiver.delay)  # the hostile part: took it, answers late
                self.send_response(receiver.fail_with or 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def keys(self) -> list[tuple[str | None, str | None]]:
        """(header key, payload key) of every request received."""
        with self.lock:
            return [(h.get(IDEMPOTENCY_HEADER), b.get("idempotency_key")) for h, b in self.requests]


@pytest.fixture
def hook() -> Iterator[SlowReceiver]:
    receiver = SlowReceiver()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def registry(service: FlipService, hook: SlowReceiver, **target: Any) -> Registry:
    return Registry.from_data(
        {
            "version": 1,
            "platform": "hostile",
            "defaults": {"timeout": "2s", "failure_threshold": 1},
            "services": {"booking": {"url": service.url}},
            "alerts": {
                "targets": {"hook": {"type": "webhook", "url": hook.url, **target}},
                "routes": [{"targets": ["hook"]}],
            },
        }
    )


def outbox(state: Path) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(state)) as connection:
        return list(connection.execute("SELECT attempts, sending, interrupted FROM outbox"))


def test_backoff_is_the_next_run_then_doubles_from_a_minute_to_fifteen() -> None:
    assert [retry_delay(n) for n in range(1, 8)] == [0, 60, 120, 240, 480, 900, 900]


async def test_a_webhook_answering_after_the_timeout_gets_bounded_keyed_copies(
    service: FlipService, hook: SlowReceiver, tmp_path: Path
) -> None:
    hook.delay = 1.0
    runner = Runner(registry(service, hook, timeout="200ms", retries=2), tmp_path / "state.db")
    service.ready(503)
    for _ in range(6):  # fires on the first; one attempt per run, backing off; 3 at most
        await runner.run(advance=60)
    keys = hook.keys()
    assert len(keys) == 3
    header, _ = keys[0]
    assert header is not None and len(header) == 32
    assert set(keys) == {(header, header)}  # one key, as header and in the payload, every time
    assert any("gave up firing after 3 attempts" in line for line in runner.err)
    assert any("tried again on the next run" in line for line in runner.err)
    assert outbox(runner.state) == []


async def test_a_run_killed_mid_delivery_is_re_sent_once_then_given_up(
    service: FlipService, hook: SlowReceiver, tmp_path: Path
) -> None:
    runner = Runner(registry(service, hook), tmp_path / "state.db")
    hook.fail_with = 500
    service.ready(503)
    await runner.run()  # fires; the target refuses: kept in the outbox
    assert outbox(runner.state) == [(1, None, 0)]

    def killed_while_sending() -> None:
        # What a SIGKILL during the POST leaves: an attempt counted and marked in flight.
        with contextlib.closing(sqlite3.connect(runner.state)) as connection:
            connection.execute("UPDATE outbox SET attempts = attempts + 1, sending = 1")
            connection.commit()

    killed_while_sending()
    hook.fail_with = None
    await runner.run()  # re-sent once: the receiver dedupes by key if the first one arrived
    assert len(hook.keys()) == 2 and hook.keys()[0] == hook.keys()[1]
    assert outbox(runner.state) == []

    hook.fail_with = 500
    service.ready(200)
    await runner.run()  # resolved, refused
    killed_while_sending()
    await runner.run()  # the killed delivery is re-sent once, refused again: kept
    assert outbox(runner.state)[0][2] == 1
    killed_while_sending()
    hook.fail_with = None
    before = len(hook.keys())
    await runner.run()  # a second run died sending it: given up, not sent a third time
    assert len(hook.keys()) == before
    assert any("two runs died while sending it" in line for line in runner.err)
    assert outbox(runner.state) == []


def test_an_absurd_silence_is_refused_and_one_already_stored_breaks_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.db"
    args = ["silence", "redis", "--reason", "drill", "--state", str(state)]
    assert main([*args, "--for", "9999999d"]) == 3
    assert "at most 3650d" in capsys.readouterr().err
    assert main([*args, "--for", "3650d"]) == 0
    # A silence stored by an older version, far past any date.
    with open_store(state, report=print) as store:
        store.connection.execute("UPDATE silences SET expires = 1e300")
    capsys.readouterr()
    assert main(["silence", "--list", "--state", str(state)]) == 0
    assert "until 9999-12-31 23:59 UTC" in capsys.readouterr().out
    registry = tmp_path / "services.yaml"
    registry.write_text(
        "version: 1\nplatform: p\nservices:\n  redis: {url: 'http://127.0.0.1:1'}\n"
    )
    assert main(["check", "-r", str(registry), "--state", str(state)]) == 2
    assert "[silenced: drill]" in capsys.readouterr().out
    assert main(["check", "-r", str(registry), "--state", str(state), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["checks"][0]["status"] == "crit"


def test_an_unusable_state_is_a_warning_for_check_and_exit_3_for_alert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = tmp_path / "services.yaml"
    registry.write_text("version: 1\nplatform: p\nservices:\n  a: {url: 'http://127.0.0.1:1'}\n")
    # /sys refuses new files even to root: a state directory opsdash cannot write.
    unwritable = Path("/sys/opsdash-state.db")
    assert main(["alert", "-r", str(registry), "--state", str(unwritable)]) == 3
    err = capsys.readouterr().err
    assert "opsdash alert: cannot create the lock file /sys/opsdash-state.db.lock" in err
    assert "Traceback" not in err
    # One of ours by its header, with its tables gone: check reports, and warns.
    damaged = tmp_path / "state.db"
    with open_store(damaged, report=print) as store:
        store.connection.execute("DROP TABLE silences")
    capsys.readouterr()
    assert main(["check", "-r", str(registry), "--state", str(damaged)]) == 2
    captured = capsys.readouterr()
    assert "a" in captured.out
    assert "opsdash: warning: alerting state not read" in captured.err
