"""Root-cause grouping, on results shaped as the probes produce them."""

from __future__ import annotations

from opsdash.figures import HttpFigures
from opsdash.incidents import datastore_named, find_incidents
from opsdash.plan import build_plan
from opsdash.registry.model import Registry
from opsdash.results import CheckResult, ErrorType
from opsdash.status import Status
from tests.helpers import result

REGISTRY = Registry.from_data(
    {
        "version": 1,
        "platform": "test",
        "datastores": {
            "postgres": {"kind": "postgres", "dsn": "postgresql://127.0.0.1:1/x"},
            "redis": {"kind": "redis", "url": "redis://127.0.0.1:1/0"},
        },
        "services": {
            "booking-service": {"url": "http://127.0.0.1:1", "depends_on": ["postgres", "redis"]},
            "chat-service": {"url": "http://127.0.0.1:2", "depends_on": ["redis"]},
            "course-service": {"url": "http://127.0.0.1:3", "depends_on": ["postgres"]},
            "admin-service": {"url": "http://127.0.0.1:4"},
        },
    }
)
SPECS = build_plan(REGISTRY)


def _healthy() -> dict[str, CheckResult]:
    results = {spec.id: result(spec.id) for spec in SPECS}
    for check_id in list(results):
        if check_id.endswith(".ready"):
            results[check_id] = result(
                check_id,
                figures=HttpFigures(
                    http_status=200, dependencies={"redis": Status.OK, "postgres": Status.OK}
                ),
            )
    return results


def _ready_failing(check_id: str, **dependencies: str) -> CheckResult:
    failing = ", ".join(name for name, status in dependencies.items() if status != "ok")
    return result(
        check_id,
        Status.CRIT,
        f"503 Service Unavailable: {failing} down",
        figures=HttpFigures(
            http_status=503, dependencies={n: Status(s) for n, s in dependencies.items()}
        ),
    )


def test_a_healthy_platform_has_no_incident() -> None:
    assert find_incidents(REGISTRY, SPECS, list(_healthy().values())) == []


def test_a_datastore_down_groups_its_failing_dependants() -> None:
    results = _healthy()
    results["redis"] = result("redis", Status.CRIT, "connection refused", error=ErrorType.REFUSED)
    results["booking-service.ready"] = _ready_failing("booking-service.ready", redis="crit")
    results["chat-service.ready"] = _ready_failing("chat-service.ready", redis="crit")

    incidents = find_incidents(REGISTRY, SPECS, list(results.values()))

    assert len(incidents) == 1
    (incident,) = incidents
    assert (incident.cause, incident.status, incident.kind) == (
        "redis",
        Status.CRIT,
        "datastore-down",
    )
    assert incident.affected.names == ("booking-service", "chat-service")
    assert incident.affected.services == ("booking-service", "chat-service")
    assert incident.summary == "redis unreachable; 2 services not ready"
    assert set(incident.checks) == {"redis", "booking-service.ready", "chat-service.ready"}


def test_dependants_that_are_fine_are_not_listed_as_affected() -> None:
    results = _healthy()
    results["redis"] = result("redis", Status.CRIT, "connection refused", error=ErrorType.REFUSED)
    results["chat-service.ready"] = _ready_failing("chat-service.ready", redis="crit")

    (incident,) = find_incidents(REGISTRY, SPECS, list(results.values()))

    assert incident.affected.names == ("chat-service",)
    assert incident.summary == "redis unreachable; 1 service not ready"


def test_a_datastore_that_answers_while_two_services_report_it_failing() -> None:
    results = _healthy()
    results["booking-service.ready"] = _ready_failing("booking-service.ready", redis="crit")
    results["chat-service.ready"] = _ready_failing("chat-service.ready", redis="crit")

    (incident,) = find_incidents(REGISTRY, SPECS, list(results.values()))

    assert (incident.cause, incident.kind) == ("redis", "unreachable-from-dependants")
    assert incident.affected.names == ("booking-service", "chat-service")
    assert "but 2 services report it failing" in incident.summary
    assert "answers opsdash" in incident.summary and "between them" in incident.summary


def test_a_single_service_reporting_a_datastore_is_its_own_incident() -> None:
    results = _healthy()
    results["chat-service.ready"] = _ready_failing("chat-service.ready", redis="crit")

    (incident,) = find_incidents(REGISTRY, SPECS, list(results.values()))

    assert (incident.cause, incident.kind, incident.affected.names) == (
        "chat-service",
        "component",
        ("chat-service",),
    )
    assert "its dependencies are fine" in incident.summary


def test_liveness_failing_with_a_datastore_is_flagged_as_cascading_restarts() -> None:
    results = _healthy()
    results["redis"] = result("redis", Status.CRIT, "connection refused", error=ErrorType.REFUSED)
    results["chat-service.health"] = result("chat-service.health", Status.CRIT, "503")
    results["chat-service.ready"] = _ready_failing("chat-service.ready", redis="crit")

    (incident,) = find_incidents(REGISTRY, SPECS, list(results.values()))

    assert any("cascading-restart" in note and "chat-service" in note for note in incident.notes)


def test_each_dependant_lands_in_one_incident_and_root_causes_come_first() -> None:
    results = _healthy()
    results["redis"] = result("redis", Status.CRIT, "connection refused", error=ErrorType.REFUSED)
    results["postgres"] = result("postgres", Status.CRIT, "timeout", error=ErrorType.TIMEOUT)
    results["booking-service.ready"] = _ready_failing(
        "booking-service.ready", redis="crit", postgres="crit"
    )
    results["course-service.ready"] = _ready_failing("course-service.ready", postgres="crit")
    results["admin-service.health"] = result("admin-service.health", Status.WARN, "slow")

    incidents = find_incidents(REGISTRY, SPECS, list(results.values()))

    causes = [incident.cause for incident in incidents]
    assert causes == ["postgres", "redis", "admin-service"]
    affected = [name for incident in incidents for name in incident.affected.names]
    assert sorted(affected) == ["admin-service", "booking-service", "course-service"]


def test_health_bodies_name_datastores_by_kind() -> None:
    assert datastore_named(REGISTRY, "database") == "postgres"
    assert datastore_named(REGISTRY, "Redis") == "redis"
    assert datastore_named(REGISTRY, "diskSpace") is None


def test_a_worker_retrying_while_its_datastore_is_down_joins_that_incident() -> None:
    registry = Registry.from_data(
        {
            "version": 1,
            "platform": "test",
            "datastores": {"redis": {"kind": "redis", "url": "redis://127.0.0.1:1/0"}},
            "services": {"chat-service": {"url": "http://127.0.0.1:2", "depends_on": ["redis"]}},
            "workers": {
                "allocation-worker": {
                    "max_attempts": 5,
                    "depends_on": ["redis"],
                    "metrics": {"source": "http-json", "url": "http://127.0.0.1:3/m"},
                }
            },
        }
    )
    specs = build_plan(registry)
    results = [
        result("redis", Status.CRIT, "connection refused", error=ErrorType.REFUSED),
        result("chat-service.health"),
        _ready_failing("chat-service.ready", redis="crit"),
        result("allocation-worker.retries", Status.CRIT, "retries 120/min; retry ratio 40%"),
    ]

    (incident,) = find_incidents(registry, specs, results)

    assert incident.cause == "redis"
    assert incident.affected.names == ("chat-service", "allocation-worker")
    assert incident.affected.workers == ("allocation-worker",)
    assert incident.summary == "redis unreachable; 1 service not ready, 1 worker failing"


def test_a_dependant_that_does_not_answer_is_down_itself_not_affected() -> None:
    results = _healthy()
    results["redis"] = result("redis", Status.CRIT, "connection refused", error=ErrorType.REFUSED)
    results["booking-service.ready"] = _ready_failing("booking-service.ready", redis="crit")
    for check in ("chat-service.health", "chat-service.ready"):
        results[check] = result(check, Status.CRIT, "connection refused", error=ErrorType.REFUSED)

    incidents = find_incidents(REGISTRY, SPECS, list(results.values()))

    by_cause = {incident.cause: incident for incident in incidents}
    assert by_cause["redis"].affected.names == ("booking-service",)
    assert by_cause["redis"].notes == ("connection refused",)  # no cascading flag: no answer
    chat = by_cause["chat-service"]
    assert chat.summary == "chat-service: health, ready: connection refused"  # said once
    assert "dependencies are fine" not in chat.summary  # redis is not fine


def test_a_datastore_incident_says_each_reason_once() -> None:
    registry = Registry.from_data(
        {
            "version": 1,
            "platform": "test",
            "datastores": {
                "postgres": {
                    "kind": "postgres",
                    "dsn": "postgresql://127.0.0.1:1/platform",
                    "expect_indexes": {"payments": ["idx_payments_student_status_created"]},
                }
            },
        }
    )
    specs = build_plan(registry)
    assert [spec.id for spec in specs] == ["postgres", "postgres.indexes"]
    results = [
        result(spec.id, Status.UNKNOWN, 'database "platform" does not exist') for spec in specs
    ]

    (incident,) = find_incidents(registry, specs, results)

    assert incident.summary == 'postgres: database "platform" does not exist'
