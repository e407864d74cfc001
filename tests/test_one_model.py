"""One model of what is wrong, told the same way by every face.

The demo platform is driven into its Redis outage and one round of every check runs against it
over loopback. Five faces then tell the redis incident: its ``affected`` list (JSON), the
numbers in its summary, the dashboard's Incidents row, the alert notification and the
exporter's ``opsdash_incident_affected``. They must agree, component for component.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from opsdash.alerting.notify import text, title
from opsdash.alerting.policy import Policy, decide
from opsdash.demo.platform import DemoPlatform
from opsdash.demo.story import REDIS_OUTAGE, SERVICES, WORKERS
from opsdash.engine import run_round
from opsdash.exporter import LiveState
from opsdash.plan import CheckSpec, build_plan
from opsdash.registry.model import Registry
from opsdash.render.json import check_document, dumps
from opsdash.resources import Resources
from opsdash.results import CheckResult
from opsdash.rounds import one_round
from opsdash.state import PlatformState
from opsdash.tui.rows import View, incident_rows

# During the outage the six services whose readiness checks redis answer 503; of the workers
# that use redis, a one-shot round sees allocation-worker failing (its DLQ holds 2 from 15 s).
OUTAGE_AT = REDIS_OUTAGE[0] + 6
REDIS_SERVICES = [s.name for s in SERVICES if s.uses_redis]


def _faces_agree(
    registry: Registry, specs: list[CheckSpec], rounds: list[list[CheckResult]], workers: list[str]
) -> None:
    """Feed ``rounds`` to each face's own state and check that all five tell the redis
    incident with the six redis services and ``workers`` affected."""
    # the dashboard's state and the exporter's, each fed every round (derive steps see history)
    state = PlatformState(registry, specs)
    live = LiveState(registry, specs)
    for results in rounds:
        state.apply_all(results)
        for result in results:
            live.record(result)
    snapshot = state.snapshot()

    # 1. the incident's affected list, as check --json prints it
    document = json.loads(dumps(check_document(snapshot)))
    (incident,) = [i for i in document["incidents"] if i["cause"] == "redis"]
    affected = incident["affected"]
    by_type = incident["affected_by_type"]
    assert sorted(by_type["service"]) == sorted(REDIS_SERVICES)
    assert by_type["worker"] == workers
    assert by_type["datastore"] == []
    assert affected == [*by_type["service"], *by_type["worker"]]

    # 2. the numbers in its summary are exactly those
    summary = incident["summary"]
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (service|worker)s?\b", summary)}
    assert counts == {"service": len(by_type["service"]), "worker": len(by_type["worker"])}

    # 3. the dashboard's Incidents row
    view = View(state, snapshot, datetime.now(UTC))
    (row,) = [r for r in incident_rows(view) if r.key.endswith(":redis")]
    count_cell, summary_cell = row.cells[2][0], row.cells[3][0]
    assert count_cell == f"{len(affected)}: {', '.join(affected)}"
    assert summary_cell == summary

    # 4. the alert notification (grouped by incident, past the failure threshold at once)
    decision = decide(
        platform=registry.platform,
        results=snapshot.results,
        incidents=snapshot.incidents,
        specs={spec.id: spec for spec in specs},
        states={},
        groups={},
        silences=[],
        policy=Policy(failure_threshold=1),
        alerts=registry.alerts,
        now=1_800_000_000.0,
    )
    (notification,) = [n for n in decision.notifications if n.group.key == "redis"]
    payload = notification.payload
    assert payload["summary"] == summary and payload["affected"] == affected
    assert payload["affected_by_type"] == by_type
    assert title(payload) == f"[FIRING crit] {summary}"
    assert f"affected: {', '.join(affected)}" in text(payload).splitlines()

    # 5. the exporter's opsdash_incident_affected
    samples = {
        (s.name, s.labels.get("cause"), s.labels.get("type")): s.value
        for family in text_string_to_metric_families(live.render().decode("utf-8"))
        for s in family.samples
    }
    exported = {
        kind: int(value)
        for (name, cause, kind), value in samples.items()
        if name == "opsdash_incident_affected" and cause == "redis"
    }
    assert exported == {"service": counts["service"], "worker": counts["worker"]}
    assert samples[("opsdash_incident_status", "redis", None)] == 2


async def test_every_face_tells_the_redis_outage_alike() -> None:
    async with DemoPlatform(start_at=OUTAGE_AT, drive=False) as demo:
        registry = demo.registry
        specs = build_plan(registry)
        snapshot = await one_round(registry, specs, concurrency=registry.defaults.concurrency)
    (incident,) = [i for i in snapshot.incidents if i.cause == "redis"]
    assert incident.summary == "redis unreachable; 6 services not ready, 1 worker failing"
    _faces_agree(registry, specs, [list(snapshot.results)], ["allocation-worker"])


class _StoryClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_with_history_every_face_counts_the_retrying_workers_alike() -> None:
    # The dashboard and the exporter keep history, so retry rates count: the three workers
    # that use redis are failing within the outage's first rounds.
    clock = _StoryClock()
    rounds: list[list[CheckResult]] = []
    async with DemoPlatform(clock=clock, drive=False) as demo:
        registry = demo.registry
        specs = build_plan(registry)
        async with Resources() as resources:
            for at in (REDIS_OUTAGE[0] - 2, REDIS_OUTAGE[0] + 2, REDIS_OUTAGE[0] + 4):
                clock.now = 1000.0 + at
                await demo.sync()
                round_ = await run_round(specs, resources, concurrency=16)
                rounds.append(list(round_.results))
    workers = [w.name for w in WORKERS if w.uses_redis]
    _faces_agree(registry, specs, rounds, workers)
