"""One ``opsdash alert`` run: lock, one round, one transaction, then deliveries.

The order is what makes it safe to kill at any point:

1. take the run lock (a second run says so and leaves);
2. run one round of checks (no state touched yet);
3. in one transaction: every check's new state, the history rows, the alert groups and the
   outbox rows of the notifications this run decided; commit;
4. deliver the outbox (this run's and any earlier run's leftovers), deleting each row once its
   target accepted it.

Killed before 3 commits: nothing happened, the next run decides again. Killed during 4: the
undelivered rows are still in the outbox and the next run sends them (at-least-once: a message
already accepted just before the kill may be sent again; none is lost).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opsdash.alerting.notify import (
    DeliveryError,
    deliver,
    idempotency_key,
    make_client,
    max_attempts,
    retry_delay,
    title,
)
from opsdash.alerting.policy import Decision, Notification, Policy, decide, route
from opsdash.alertstate.store import (
    CheckState,
    Group,
    HistoryRow,
    OutboxItem,
    RunLock,
    Silence,
    Store,
    in_memory_copy,
    open_store,
    set_aside,
)
from opsdash.figures import figures_from_json, type_name
from opsdash.plan import CheckSpec
from opsdash.records import dataclass
from opsdash.registry.model import AlertTarget, Registry
from opsdash.registry.units import format_duration
from opsdash.resources import Resources
from opsdash.result_json import check_object
from opsdash.results import CheckResult, ErrorType, ProbeError
from opsdash.rounds import one_round
from opsdash.state import Snapshot
from opsdash.status import ExitCode, Status

Echo = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What a run did, for the command's exit code and for tests."""

    exit_code: ExitCode
    snapshot: Snapshot | None
    decided: tuple[Notification, ...] = ()
    sent: int = 0
    failed: int = 0
    skipped: bool = False
    """True when another run held the lock and this one did nothing."""


# --- results across runs --------------------------------------------------------------------


def dump_result(result: CheckResult) -> str:
    """A result as JSON (the ``check --json`` entry plus its time), read back next run by
    :func:`load_result`."""
    entry = {
        **check_object(result),
        "started_at": result.started_at.timestamp(),
        "figures": type_name(result.figures),
    }
    return json.dumps(entry, default=str, ensure_ascii=False)


def load_result(text: str) -> CheckResult | None:
    """The result :func:`dump_result` wrote, or ``None`` if it cannot be read back."""
    try:
        data = json.loads(text)
        error = data["error"]
        return CheckResult(
            id=data["id"],
            component=data["component"],
            check=data["check"],
            kind=data["kind"],
            status=Status(data["status"]),
            summary=data["summary"],
            latency_ms=data["latency_ms"],
            target=data["target"],
            figures=figures_from_json(data.get("figures"), data["details"]),
            error=None if error is None else ProbeError(ErrorType(error["type"]), error["message"]),
            started_at=datetime.fromtimestamp(data["started_at"], UTC),
        )
    except (ValueError, KeyError, TypeError):
        return None


# --- the run --------------------------------------------------------------------------------


def _commit(
    store: Store, decision: Decision, snapshot: Snapshot, registry: Registry, now: float
) -> None:
    by_id = {result.id: result for result in snapshot.results}
    states = [
        replace(state, last_result=dump_result(by_id[state.id])) if state.id in by_id else state
        for state in decision.states
    ]
    with store.transaction():
        store.save_check_states(states)
        store.add_history(
            [HistoryRow(r.id, now, r.status, r.summary, r.latency_ms) for r in snapshot.results]
        )
        for group in decision.groups:
            store.save_group(group)
        for key in decision.closed:
            store.delete_group(key)
        for notification in decision.notifications:
            # One key per notification, the same for every target and every attempt.
            key = idempotency_key(registry.platform, notification.group.key, notification.kind, now)
            payload = {**notification.payload, "idempotency_key": key}
            for target in route(notification, registry.alerts):
                store.enqueue(target, notification.kind, notification.group.key, payload, now)
        store.purge_history(now - registry.alerts.history_retention)
        store.purge_silences(now)


async def _deliver_outbox(
    store: Store, registry: Registry, out: Echo, err: Echo, now: float
) -> tuple[int, int]:
    """Send the pending notifications that are due; (sent, failed). Per target in order,
    stopping at the first failure or the first not yet due, so that a target never gets a
    ``resolved`` before its ``firing``. One attempt per notification per run."""
    pending: dict[str, list[OutboxItem]] = {}
    for item in _recover_interrupted(store, err):
        pending.setdefault(item.target, []).append(item)
    counts = {"sent": 0, "failed": 0}

    async def drain(name: str, items: list[OutboxItem], client: Any) -> None:
        target = registry.alerts.targets.get(name)
        if target is None:
            for item in items:
                store.delivered(item.id)
            err(
                f"opsdash alert: dropped {len(items)} notification(s) for target {name!r}, "
                "which is no longer in the registry"
            )
            return
        for position, item in enumerate(items):
            if item.next_attempt > now:
                return  # backing off after a failure: this and the later ones wait
            store.sending(item.id, now)
            try:
                await deliver(client, target, item.payload)
            except DeliveryError as exc:
                counts["failed"] += len(items) - position
                _failed(store, item, target, name, str(exc), now, err)
                return
            store.delivered(item.id)
            counts["sent"] += 1
            out(f"sent {item.kind} to {name}: {title(item.payload)}")

    if pending:
        async with make_client() as client:
            await asyncio.gather(*(drain(n, items, client) for n, items in pending.items()))
    return counts["sent"], counts["failed"]


def _recover_interrupted(store: Store, err: Echo) -> list[OutboxItem]:
    """The outbox, after dealing with deliveries a dead run left in flight: each is re-sent
    once (it may or may not have arrived: the idempotency key tells the receiver), and given
    up when a run died while sending it again."""
    kept: list[OutboxItem] = []
    for item in store.outbox():
        if item.sending is None:
            kept.append(item)
            continue
        if item.interrupted >= 1:
            store.delivered(item.id)
            err(
                f"opsdash alert: gave up {item.kind} to {item.target!r}: two runs died while "
                f"sending it (idempotency key {item.payload.get('idempotency_key')})"
            )
            continue
        store.interrupted(item.id)
        kept.append(replace(item, sending=None, interrupted=item.interrupted + 1))
    return kept


def _failed(
    store: Store,
    item: OutboxItem,
    target: AlertTarget,
    name: str,
    reason: str,
    now: float,
    err: Echo,
) -> None:
    attempts = item.attempts + 1
    noun = "attempt" if attempts == 1 else "attempts"
    if attempts >= max_attempts(target):
        store.delivered(item.id)
        err(
            f"opsdash alert: target {name!r} failed: {reason}; gave up {item.kind} "
            f"after {attempts} {noun}"
        )
        return
    delay = retry_delay(attempts)
    store.failed(item.id, reason, retry_at=now + delay)
    when = "on the next run" if delay == 0 else f"in {format_duration(delay)} at the earliest"
    err(
        f"opsdash alert: target {name!r} failed: {reason} ({attempts} {noun}); "
        f"kept, tried again {when}"
    )


def _print_dry_run(store: Store, decision: Decision, registry: Registry, out: Echo) -> None:
    for item in store.outbox():
        out(
            f"would retry {item.kind} to {item.target} (failed {item.attempts}x): "
            f"{title(item.payload)}"
        )
    if not decision.notifications:
        out("would send nothing")
    for notification in decision.notifications:
        targets = route(notification, registry.alerts)
        where = ", ".join(targets) if targets else "no target (no route matches)"
        out(f"would send {notification.kind} to {where}: {title(notification.payload)}")
        out(json.dumps(notification.payload, indent=2, ensure_ascii=False))


def _report_held(decision: Decision, err: Echo) -> None:
    for held in decision.held:
        reasons = "; ".join(
            f"silence #{s.id} on {s.matcher!r} until {s.expires_at:%Y-%m-%d %H:%M} UTC: {s.reason}"
            for s in held.silences
        )
        err(f"opsdash alert: silenced, not notifying: {held.group.summary} ({reasons})")


async def alert_run(
    registry: Registry,
    specs: Sequence[CheckSpec],
    *,
    state_path: Path,
    dry_run: bool = False,
    out: Echo = print,
    err: Echo = print,
    clock: Callable[[], float] = time.time,
    resources: Resources | None = None,
) -> RunOutcome:
    """One alerting run (see the module docstring). ``out`` gets what was sent (or, with
    ``dry_run``, what would be); ``err`` gets problems, silences and lock contention."""
    lock = RunLock(state_path)
    if not dry_run and not lock.acquire():
        err(
            f"opsdash alert: another run (pid {lock.holder()}) holds {lock.path}; skipping this run"
        )
        return RunOutcome(ExitCode.OK, None, skipped=True)
    try:
        store, read = _open(state_path, dry_run=dry_run, err=err, now=clock())
        with store:
            return await _run(
                registry,
                specs,
                store,
                read,
                dry_run=dry_run,
                concurrency=registry.defaults.concurrency,
                out=out,
                err=err,
                clock=clock,
                resources=resources,
                state_path=state_path,
            )
    finally:
        lock.release()


StateRead = tuple[dict[str, CheckState], dict[str, Group], list[Silence]]


def _open(state_path: Path, *, dry_run: bool, err: Echo, now: float) -> tuple[Store, StateRead]:
    """The store and what it holds, read once: a file whose header looked fine but whose
    tables cannot be read is corrupt too, and is set aside like one (never with ``dry_run``)."""
    if dry_run:
        store = in_memory_copy(state_path)
        return store, _read_state(store, now)
    store = open_store(state_path, report=lambda m: err(f"opsdash alert: {m}"))
    try:
        return store, _read_state(store, now)
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            raise
        store.close()
        aside = set_aside(state_path)
        err(
            f"opsdash alert: the state file {state_path} is not usable ({exc}); "
            f"moved it to {aside.name}"
        )
        store = open_store(state_path, report=lambda m: err(f"opsdash alert: {m}"))
    return store, _read_state(store, now)


def _read_state(store: Store, now: float) -> StateRead:
    return store.check_states(), store.groups(), store.silences(now=now)


async def _run(
    registry: Registry,
    specs: Sequence[CheckSpec],
    store: Store,
    read: StateRead,
    *,
    dry_run: bool,
    concurrency: int,
    out: Echo,
    err: Echo,
    clock: Callable[[], float],
    resources: Resources | None,
    state_path: Path | None = None,
) -> RunOutcome:
    states, groups, silences = read
    previous = {
        check_id: result
        for check_id, state in states.items()
        if state.last_result and (result := load_result(state.last_result)) is not None
    }
    # The previous run's results feed the derive steps, so that DLQ growth and retry rates
    # work across cron runs as they do in the dashboard.
    snapshot = await one_round(
        registry,
        specs,
        concurrency=concurrency,
        resources=resources,
        earlier=[previous[s.id] for s in specs if s.id in previous],
        state_path=state_path,  # heartbeat checks read their beats from it
    )
    now = clock()
    decision = decide(
        platform=registry.platform,
        results=snapshot.results,
        incidents=snapshot.incidents,
        specs={spec.id: spec for spec in specs},
        states=states,
        groups=groups,
        silences=silences,
        policy=Policy.of(registry.defaults),
        alerts=registry.alerts,
        now=now,
    )
    _report_held(decision, err)
    exit_code = snapshot.status.exit_code
    if dry_run:
        _print_dry_run(store, decision, registry, out)
        return RunOutcome(exit_code, snapshot, decision.notifications)
    _commit(store, decision, snapshot, registry, now)
    sent, failed = await _deliver_outbox(store, registry, out, err, clock())
    return RunOutcome(exit_code, snapshot, decision.notifications, sent, failed)
