"""``opsdash alert``: transitions, grouping by incident, flapping, reminders, silences, the
outbox, dry runs and a corrupt state file, against real loopback HTTP services and a real
loopback webhook receiver that counts deliveries."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from opsdash.alerting.policy import Notification, route
from opsdash.alerting.run import RunOutcome, alert_run
from opsdash.alertstate.store import Group, open_readonly, open_store
from opsdash.alertstate.view import read_silences
from opsdash.plan import build_plan
from opsdash.registry.model import Alerts, Registry
from opsdash.status import ExitCode, Status
from tests.servers import refused_port

# --- loopback servers -------------------------------------------------------------------


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class FlipService:
    """A loopback HTTP service whose ``/health`` and ``/ready`` codes a test sets between runs."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {"/health": 200, "/ready": 200}
        service = self

        class Handler(_Quiet):
            def do_GET(self) -> None:
                code = service.codes.get(self.path, 404)
                body = b'{"status":"ok"}' if code < 400 else b'{"status":"error"}'
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        # A deep backlog: a round opens many connections at once.
        ThreadingHTTPServer.request_queue_size = 256
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def ready(self, code: int) -> None:
        """Set the readiness answer (200 ok, 503 failing)."""
        self.codes["/ready"] = code

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


class Receiver:
    """A loopback webhook receiver: records every JSON body; answers ``fail_with`` if set."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail_with: int | None = None
        self.lock = threading.Lock()
        receiver = self

        class Handler(_Quiet):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                code = receiver.fail_with or 200
                if code < 300:
                    with receiver.lock:
                        receiver.bodies.append(body)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/s3cr3t-token"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def kinds(self) -> list[str]:
        """``kind`` of each delivery, in order."""
        with self.lock:
            return [body["kind"] for body in self.bodies]

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def service() -> Iterator[FlipService]:
    server = FlipService()
    yield server
    server.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def make_registry(
    services: dict[str, dict[str, Any]],
    receiver: Receiver,
    *,
    datastores: dict[str, Any] | None = None,
    defaults: dict[str, Any] | None = None,
    alerts: dict[str, Any] | None = None,
) -> Registry:
    """A registry of these services, alerting to ``receiver`` (routes: warn and crit)."""
    return Registry.from_data(
        {
            "version": 1,
            "platform": "test-platform",
            "defaults": {"timeout": "2s", "failure_threshold": 2, **(defaults or {})},
            "datastores": datastores or {},
            "services": services,
            "alerts": {
                "targets": {"hook": {"type": "webhook", "url": receiver.url}},
                "routes": [{"targets": ["hook"], "status": ["warn", "crit", "unknown"]}],
                **(alerts or {}),
            },
        }
    )


class Runner:
    """Drives alert runs in-process with a fake clock; collects stdout and stderr lines."""

    def __init__(self, registry: Registry, state: Path, *, now: float = 1_800_000_000.0) -> None:
        self.registry = registry
        self.specs = build_plan(registry)
        self.state = state
        self.now = now
        self.out: list[str] = []
        self.err: list[str] = []

    async def run(self, *, dry_run: bool = False, advance: float = 60.0) -> RunOutcome:
        self.now += advance
        return await alert_run(
            self.registry,
            self.specs,
            state_path=self.state,
            dry_run=dry_run,
            out=self.out.append,
            err=self.err.append,
            clock=lambda: self.now,
        )


# --- transitions --------------------------------------------------------------------------


async def test_fires_after_threshold_and_resolves_once(
    service: FlipService, receiver: Receiver, tmp_path: Path
) -> None:
    registry = make_registry({"booking": {"url": service.url}}, receiver)
    runner = Runner(registry, tmp_path / "state.db")

    assert (await runner.run()).exit_code is ExitCode.OK
    service.ready(503)
    first = await runner.run()
    assert first.exit_code is ExitCode.CRIT
    assert receiver.kinds() == []  # one failure is below failure_threshold (2)
    await runner.run()
    assert receiver.kinds() == ["firing"]
    await runner.run()
    assert receiver.kinds() == ["firing"]  # still failing: no new message
    service.ready(200)
    assert (await runner.run()).exit_code is ExitCode.OK
    assert receiver.kinds() == ["firing", "resolved"]

    firing, resolved = receiver.bodies
    assert firing["schema"] == "opsdash.alert/v1"
    assert firing["status"] == "crit"
    assert firing["summary"].startswith("booking: ready: 503")
    assert [c["id"] for c in firing["checks"]] == ["booking.ready"]
    assert resolved["key"] == firing["key"] == "booking"
    assert resolved["summary"] == firing["summary"]
    assert [c["id"] for c in resolved["checks"]] == ["booking.ready"]
    assert any("sent firing to hook" in line for line in runner.out)


async def test_one_message_per_incident(receiver: Receiver, tmp_path: Path) -> None:
    services = [FlipService() for _ in range(3)]
    try:
        for server in services:
            server.ready(503)
        registry = make_registry(
            {f"svc{i}": {"url": s.url, "depends_on": ["redis"]} for i, s in enumerate(services)},
            receiver,
            datastores={"redis": {"kind": "redis", "url": f"redis://127.0.0.1:{refused_port()}/0"}},
        )
        runner = Runner(registry, tmp_path / "state.db")
        await runner.run()
        await runner.run()
    finally:
        for server in services:
            server.close()
    assert receiver.kinds() == ["firing"]
    (body,) = receiver.bodies
    assert body["summary"] == "redis unreachable; 3 services not ready"
    assert body["cause"] == "redis"
    assert body["affected"] == ["svc0", "svc1", "svc2"]
    assert {c["id"] for c in body["checks"]} == {"redis", "svc0.ready", "svc1.ready", "svc2.ready"}


async def test_flapping_pages_once_then_resolves_once(
    service: FlipService, receiver: Receiver, tmp_path: Path
) -> None:
    registry = make_registry(
        {"booking": {"url": service.url}},
        receiver,
        defaults={"failure_threshold": 3, "flapping": {"changes": 3, "window": 6}},
    )
    runner = Runner(registry, tmp_path / "state.db")
    script = [200, 503, 200, 503, 200, 503, 200, 503, 200, 200, 200, 200, 200, 200, 200, 200]
    seen: list[list[str]] = []
    for code in script:
        service.ready(code)
        await runner.run()
        seen.append(receiver.kinds())
    # never 3 failures in a row, so only the flapping fires; it pages once, holds through
    # the flaps, and resolves once when the check has been steady long enough.
    assert receiver.kinds() == ["firing", "resolved"]
    assert seen.index(["firing"]) == 4  # the 4th change (run 5) is "more than 3"
    firing = receiver.bodies[0]
    assert firing["flapping"] is True
    assert firing["checks"][0]["flapping"] is True
    assert "(flapping)" in runner.out[0]


async def test_reminder_after_repeat_interval(
    service: FlipService, receiver: Receiver, tmp_path: Path
) -> None:
    registry = make_registry(
        {"booking": {"url": service.url}}, receiver, alerts={"repeat_interval": "1h"}
    )
    runner = Runner(registry, tmp_path / "state.db")
    service.ready(503)
    await runner.run()
    await runner.run()
    await runner.run(advance=1800)
    assert receiver.kinds() == ["firing"]
    await runner.run(advance=1800)
    assert receiver.kinds() == ["firing", "reminder"]
    await runner.run()
    assert receiver.kinds() == ["firing", "reminder"]


async def test_escalation_from_warn_to_crit_notifies(receiver: Receiver, tmp_path: Path) -> None:
    server = FlipService()
    try:
        registry = make_registry(
            {"booking": {"url": server.url, "health": False}},
            receiver,
            alerts={
                "routes": [{"targets": ["hook"], "status": ["crit"]}],
            },
        )
        runner = Runner(registry, tmp_path / "state.db")
        server.ready(503)
        await runner.run()
        await runner.run()
    finally:
        server.close()
    assert receiver.kinds() == ["firing"]
    assert receiver.bodies[0]["status"] == "crit"


# --- silences -----------------------------------------------------------------------------


async def test_silence_holds_notifications_until_it_expires(
    service: FlipService, receiver: Receiver, tmp_path: Path
) -> None:
    registry = make_registry({"booking": {"url": service.url, "tags": ["core"]}}, receiver)
    state = tmp_path / "state.db"
    runner = Runner(registry, state)
    with open_store(state, report=pytest.fail) as store:
        store.add_silence("core", "deploy", now=runner.now, duration=30 * 60, author="tester")
    assert [s.matcher for s in read_silences(state, now=runner.now + 1)] == ["core"]
    service.ready(503)
    await runner.run()
    await runner.run()
    assert receiver.kinds() == []
    assert any("silenced, not notifying" in line and "deploy" in line for line in runner.err)
    await runner.run(advance=30 * 60)  # the silence has ended: the alert goes out now
    assert receiver.kinds() == ["firing"]
    assert read_silences(state, now=runner.now) == []


async def _redis_outage(
    receiver: Receiver, tmp_path: Path, matcher: str
) -> tuple[Runner, list[FlipService]]:
    """Two alert runs of a redis outage with three dependants unready, ``matcher`` silenced."""
    services = [FlipService() for _ in range(3)]
    for server in services:
        server.ready(503)
    registry = make_registry(
        {f"svc{i}": {"url": s.url, "depends_on": ["redis"]} for i, s in enumerate(services)},
        receiver,
        datastores={"redis": {"kind": "redis", "url": f"redis://127.0.0.1:{refused_port()}/0"}},
    )
    state = tmp_path / "state.db"
    runner = Runner(registry, state)
    with open_store(state, report=pytest.fail) as store:
        store.add_silence(matcher, "failover", now=runner.now, duration=30 * 60, author="t")
    await runner.run()
    await runner.run()
    return runner, services


async def test_a_silence_on_the_cause_holds_back_the_whole_incident(
    receiver: Receiver, tmp_path: Path
) -> None:
    # `opsdash silence redis`: the dependants are not silenced themselves, but their
    # notification is the redis incident's, and that one is held back.
    runner, services = await _redis_outage(receiver, tmp_path, "redis")
    for server in services:
        server.close()
    assert receiver.kinds() == []
    held = [line for line in runner.err if "silenced, not notifying" in line]
    assert held and "redis unreachable; 3 services not ready" in held[0]


async def test_a_silence_on_a_dependant_holds_back_only_that_dependant(
    receiver: Receiver, tmp_path: Path
) -> None:
    _, services = await _redis_outage(receiver, tmp_path, "svc1")
    for server in services:
        server.close()
    assert receiver.kinds() == ["firing"]
    (body,) = receiver.bodies
    assert body["summary"] == "redis unreachable; 3 services not ready"
    assert body["affected"] == ["svc0", "svc1", "svc2"]
    silenced = {c["id"]: c["silenced"] for c in body["checks"]}
    assert silenced == {
        "redis": False,
        "svc0.ready": False,
        "svc1.ready": True,
        "svc2.ready": False,
    }


# --- outbox, dry run, state file ------------------------------------------------------------


async def test_failed_target_is_retried_next_run_without_loss_or_duplicate(
    service: FlipService, receiver: Receiver, tmp_path: Path
) -> None:
    registry = make_registry({"booking": {"url": service.url}}, receiver)
    runner = Runner(registry, tmp_path / "state.db")
    receiver.fail_with = 500
    service.ready(503)
    await runner.run()
    outcome = await runner.run()
    assert outcome.failed == 1
    assert receiver.kinds() == []
    assert any("target 'hook' failed: answered 500" in line for line in runner.err)
    assert not any("s3cr3t-token" in line for line in runner.err + runner.out)
    receiver.fail_with = None
    await runner.run()
    await runner.run()
    assert receiver.kinds() == ["firing"]


def _dump(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return list(connection.iterdump())


async def test_dry_run_prints_and_changes_nothing(
    service: FlipService, receiver: Receiver, tmp_path: Path
) -> None:
    registry = make_registry({"booking": {"url": service.url}}, receiver)
    state = tmp_path / "state.db"
    runner = Runner(registry, state)
    service.ready(503)
    await runner.run()
    before = (state.read_bytes(), _dump(state))
    outcome = await runner.run(dry_run=True)
    assert outcome.exit_code is ExitCode.CRIT
    assert receiver.kinds() == []
    assert any(line.startswith("would send firing to hook") for line in runner.out)
    # A reader of a WAL database may create the -shm index file; the data must not change.
    assert (state.read_bytes(), _dump(state)) == before
    await runner.run()  # the real run decides the same thing
    assert receiver.kinds() == ["firing"]


async def test_dry_run_without_state_creates_no_file(
    service: FlipService, receiver: Receiver, tmp_path: Path
) -> None:
    registry = make_registry({"booking": {"url": service.url}}, receiver)
    runner = Runner(registry, tmp_path / "nested" / "state.db")
    await runner.run(dry_run=True)
    assert runner.out == ["would send nothing"]
    assert not (tmp_path / "nested").exists()


@pytest.mark.parametrize("kind", ["garbage", "foreign-sqlite"])
async def test_corrupt_or_foreign_state_file_is_set_aside(
    kind: str, service: FlipService, receiver: Receiver, tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    if kind == "garbage":
        state.write_bytes(b"not a database at all\n" * 10)
    else:
        with contextlib.closing(sqlite3.connect(state)) as other:
            other.execute("CREATE TABLE mine (x)")
            other.commit()
    original = state.read_bytes()
    registry = make_registry({"booking": {"url": service.url}}, receiver)
    runner = Runner(registry, state)
    outcome = await runner.run()
    assert outcome.exit_code is ExitCode.OK
    (message,) = runner.err
    assert "is not usable" in message and "moved it to state.db.corrupt-" in message
    (aside,) = tmp_path.glob("state.db.corrupt-*")  # noqa: ASYNC240 (a test, after the run)
    assert aside.read_bytes() == original
    readonly = open_readonly(state)
    assert readonly is not None
    with readonly:
        assert readonly.check_states()["booking.ready"].firing is False


async def test_second_run_while_locked_skips(
    service: FlipService, receiver: Receiver, tmp_path: Path
) -> None:
    from opsdash.alertstate.store import RunLock

    state = tmp_path / "state.db"
    holder = RunLock(state)
    assert holder.acquire()
    try:
        runner = Runner(make_registry({"booking": {"url": service.url}}, receiver), state)
        outcome = await runner.run()
    finally:
        holder.release()
    assert outcome.skipped and outcome.exit_code is ExitCode.OK
    assert "holds" in runner.err[0] and "skipping this run" in runner.err[0]


# --- routing ------------------------------------------------------------------------------


def _notification(status: Status, tags: set[str]) -> Notification:
    group = Group("x", "x", "component", "x", (), (), 0.0, status, 0.0)
    return Notification("firing", group, status, (), frozenset(tags), {})


def test_routes_by_tag_and_status() -> None:
    alerts = Alerts.from_data(
        {
            "targets": {
                "pager": {"type": "webhook", "url": "http://127.0.0.1:1/p"},
                "chat": {"type": "slack", "url": "http://127.0.0.1:1/c"},
            },
            "routes": [
                {"targets": ["pager"], "tags": ["core"], "status": ["crit"]},
                {"targets": ["chat"], "status": ["warn", "crit"]},
            ],
        }
    )
    assert route(_notification(Status.CRIT, {"core"}), alerts) == ["pager", "chat"]
    assert route(_notification(Status.CRIT, {"edge"}), alerts) == ["chat"]
    assert route(_notification(Status.WARN, {"core"}), alerts) == ["chat"]
    assert route(_notification(Status.UNKNOWN, {"core"}), alerts) == []
