"""The repository's own registry (``services.yaml`` + ``config/*.yaml``), the registry's JSON
Schema and the ``opsdash validate`` summary."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from opsdash.registry import RegistryError, load_registry
from opsdash.registry.model import PostgresDatastore, PrometheusMetrics, RedisKeyDlq
from opsdash.registry.summary import describe, registry_json_schema

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ROOT / "services.yaml"
STAGING_ENV = {
    "OPSDASH_POSTGRES_DSN": "postgresql://opsdash:pg-s3cret@127.0.0.1:5432/platform",
    "OPSDASH_REDIS_URL": "redis://:redis-s3cret@127.0.0.1:6379/0",
    "OPSDASH_MONGO_URI": "mongodb://opsdash:mongo-s3cret@127.0.0.1:27017/?replicaSet=rs0",
}
NAMES = (
    "booking",
    "student",
    "course",
    "admin",
    "trainer",
    "student-auth",
    "trainer-auth",
    "notification",
    "analytics",
    "chat",
    "payment",
)


def test_the_repo_registry_describes_the_platform() -> None:
    registry = load_registry(SERVICES, environ={})
    assert list(registry.services) == [f"{name}-service" for name in NAMES]
    for port, name in enumerate(NAMES, start=3001):
        service = registry.services[f"{name}-service"]
        assert service.url == f"http://127.0.0.1:{port}"
        assert (service.health, service.ready) == ("/health", "/ready")
        assert {"postgres", "redis"} <= set(service.depends_on)
        assert ("mongo" in service.depends_on) == (name in ("chat", "notification", "analytics"))
    assert set(registry.datastores) == {"postgres", "redis", "mongo"}
    workers = registry.workers
    assert {name: w.max_attempts for name, w in workers.items()} == {
        "allocation-worker": 5,
        "purchase-worker": 3,
        "session-worker": 3,
        "cache-worker": 3,
    }
    assert workers["cache-worker"].dlq is None
    for port, name in enumerate(workers, start=9464):
        metrics = workers[name].metrics
        assert isinstance(metrics, PrometheusMetrics)
        assert metrics.url == f"http://127.0.0.1:{port}/metrics"
        if name != "cache-worker":
            assert isinstance(workers[name].dlq, RedisKeyDlq)


def test_the_repo_registry_expects_the_seven_migration_019_indexes() -> None:
    postgres = load_registry(SERVICES, environ={}).datastores["postgres"]
    assert isinstance(postgres, PostgresDatastore)
    assert postgres.expect_indexes == {
        "payments": ("idx_payments_student_status_created",),
        "tutoring_sessions": (
            "idx_sessions_student_status_date_time",
            "idx_sessions_trainer_date",
            "idx_sessions_trainer_status",
        ),
        "trainer_allocations": (
            "idx_allocations_student_status_course",
            "idx_allocations_trainer_status",
        ),
        "student_course_purchases": ("idx_purchases_student_created",),
    }
    assert sum(map(len, postgres.expect_indexes.values())) == 7


def test_every_address_in_the_repo_registry_is_overridable() -> None:
    environ = {
        f"{n.upper().replace('-', '_')}_SERVICE_URL": f"http://127.0.0.2:{i}"
        for i, n in enumerate(NAMES, start=1)  # port 0 can never work: refused at load
    }
    environ |= {
        f"{n.split('-')[0].upper()}_WORKER_METRICS_URL": f"http://127.0.0.3:{i}/m"
        for i, n in enumerate(
            ("allocation-worker", "purchase-worker", "session-worker", "cache-worker"), start=1
        )
    }
    environ |= STAGING_ENV
    registry = load_registry(SERVICES, environ=environ)
    assert all(s.url.startswith("http://127.0.0.2:") for s in registry.services.values())
    assert all(
        isinstance(w.metrics, PrometheusMetrics) and w.metrics.url.startswith("http://127.0.0.3:")
        for w in registry.workers.values()
    )
    datastores = registry.datastores
    assert [
        getattr(d, field)
        for d, field in zip(datastores.values(), ("dsn", "url", "uri"), strict=True)
    ] == list(STAGING_ENV.values())


def test_the_local_overlay_tightens_the_loop() -> None:
    registry = load_registry(SERVICES, env="local", environ={})
    assert registry.defaults.timeout == 1.0
    assert registry.defaults.interval == 3.0
    assert len(registry.services) == 11
    assert registry.services["booking-service"].url == "http://127.0.0.1:3001"


def test_the_staging_overlay_needs_its_datastore_secrets_from_the_environment() -> None:
    with pytest.raises(RegistryError) as caught:
        load_registry(SERVICES, env="staging", environ={})
    staging = ROOT / "config" / "staging.yaml"
    assert [(p.file, p.key) for p in caught.value.problems] == [
        (str(staging), "datastores.postgres.dsn"),
        (str(staging), "datastores.redis.url"),
        (str(staging), "datastores.mongo.uri"),
    ]
    assert "OPSDASH_POSTGRES_DSN is not set" in caught.value.problems[0].message

    registry = load_registry(
        SERVICES, env="staging", environ={**STAGING_ENV, "STAGING_HOST": "127.0.0.9"}
    )
    assert registry.services["chat-service"].url == "https://127.0.0.9:3010"
    assert registry.defaults.timeout == 5.0


def test_the_json_schema_validates_the_repo_registry_and_catches_typos() -> None:
    schema = registry_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"].startswith("opsdash registry")
    assert "description" in schema["$defs"]["Service"]
    validator = jsonschema.Draft202012Validator(schema)
    validator.check_schema(schema)
    document = yaml.safe_load(SERVICES.read_text())
    assert list(validator.iter_errors(document)) == []

    document["services"]["booking-service"]["helth"] = "/h"
    document["datastores"]["redis"]["kind"] = "reddis"
    document["defaults"]["timeout"] = "3 seconds"
    paths = sorted(".".join(map(str, e.absolute_path)) for e in validator.iter_errors(document))
    assert paths == ["datastores.redis", "defaults.timeout", "services.booking-service"]


def test_describe_summarises_with_passwords_masked() -> None:
    registry = load_registry(SERVICES, env="staging", environ=STAGING_ENV)
    text = describe(registry)
    for secret in ("pg-s3cret", "redis-s3cret", "mongo-s3cret"):
        assert secret not in text
    lines = text.splitlines()
    assert lines[0] == "platform learning-platform (registry version 1)"
    assert lines[1] == "3 datastores, 11 services, 4 workers"
    assert "timeout 5s" in lines[2]
    postgres = next(line for line in lines if line.strip().startswith("postgres "))
    assert "postgresql://opsdash:***@127.0.0.1:5432/platform" in postgres
    assert "7 expected indexes" in postgres
    chat = next(line for line in lines if "chat-service" in line)
    assert "depends on postgres, redis, mongo" in chat
    cache = next(line for line in lines if "cache-worker" in line)
    assert "max attempts 3" in cache and "no dlq" in cache
    allocation = next(line for line in lines if "allocation-worker" in line)
    assert "dlq redis-list redis key dlq:allocation" in allocation


def test_the_repo_registry_uses_custom_checks_where_they_make_sense() -> None:
    from opsdash.registry.model import HeartbeatCheck, PluginCheck, TlsCheck

    registry = load_registry(SERVICES, environ={})
    disk = registry.datastores["postgres"].custom_checks["disk"]
    assert isinstance(disk, PluginCheck)
    assert disk.plugin == "/usr/lib/nagios/plugins/check_disk"
    nightly = registry.services["analytics-service"].custom_checks["nightly-report"]
    assert isinstance(nightly, HeartbeatCheck)
    assert (nightly.heartbeat.max_age, nightly.heartbeat.token) == (26 * 3600.0, None)

    staging = load_registry(SERVICES, env="staging", environ=STAGING_ENV)
    public = staging.services["payment-service"].custom_checks["public-tls"]
    assert isinstance(public, TlsCheck)
    assert public.tls == "pay.staging.example.com:443"
    remote_disk = staging.datastores["postgres"].custom_checks["disk"]
    assert isinstance(remote_disk, PluginCheck) and remote_disk.plugin.endswith("check_by_ssh")
