"""Health bodies as real frameworks write them, normalised to opsdash statuses."""

from __future__ import annotations

import json

import pytest

from opsdash.probes.health_bodies import parse
from opsdash.status import Status

OK, WARN, CRIT, UNKNOWN = Status.OK, Status.WARN, Status.CRIT, Status.UNKNOWN
JSON = "application/json"


def _j(document: object) -> bytes:
    return json.dumps(document).encode()


CASES = [
    # IETF draft, the draft's own example.
    (
        "ietf",
        200,
        "application/health+json",
        _j(
            {
                "status": "pass",
                "version": "1",
                "releaseId": "1.2.2",
                "checks": {
                    "cassandra:responseTime": [
                        {
                            "componentId": "dfd6cf2b",
                            "componentType": "datastore",
                            "observedValue": 250,
                            "observedUnit": "ms",
                            "status": "pass",
                        }
                    ],
                    "cassandra:connections": [
                        {"componentId": "dfd6cf2b", "observedValue": 75, "status": "warn"}
                    ],
                    "uptime": [
                        {
                            "componentType": "system",
                            "observedValue": 1209600.245,
                            "observedUnit": "s",
                            "status": "pass",
                        }
                    ],
                },
            }
        ),
        OK,
        {"cassandra": WARN, "uptime": OK},  # one entry per component, its worst,
    ),
    ("ietf", 503, "application/health+json", _j({"status": "fail", "output": "db gone"}), CRIT, {}),
    # Spring Boot 3, with details and nested components.
    (
        "spring-boot",
        503,
        "application/vnd.spring-boot.actuator.v3+json",
        _j(
            {
                "status": "DOWN",
                "components": {
                    "db": {
                        "status": "DOWN",
                        "details": {
                            "error": "org.springframework.jdbc."
                            "CannotGetJdbcConnectionException: Failed to obtain JDBC Connection"
                        },
                    },
                    "diskSpace": {
                        "status": "UP",
                        "details": {
                            "total": 511430909952,
                            "free": 20698329088,
                            "threshold": 10485760,
                            "exists": True,
                        },
                    },
                    "redis": {
                        "status": "UP",
                        "components": {
                            "primary": {"status": "UP"},
                            "replica": {"status": "OUT_OF_SERVICE"},
                        },
                    },
                    "ping": {"status": "UP"},
                },
            }
        ),
        CRIT,
        {"db": CRIT, "diskSpace": OK, "redis.primary": OK, "redis.replica": WARN, "ping": OK},
    ),
    (
        "spring-boot",
        200,
        JSON,
        _j(
            {
                "status": "UP",
                "components": {"db": {"status": "UP"}, "readinessState": {"status": "UP"}},
            }
        ),
        OK,
        {"db": OK, "readinessState": OK},
    ),
    ("spring-boot", 200, JSON, _j({"status": "UNKNOWN"}), UNKNOWN, {}),
    # @nestjs/terminus
    (
        "nestjs-terminus",
        503,
        JSON,
        _j(
            {
                "status": "error",
                "info": {"database": {"status": "up"}},
                "error": {"redis": {"status": "down", "message": "Could not connect"}},
                "details": {
                    "database": {"status": "up"},
                    "redis": {"status": "down", "message": "Could not connect"},
                },
            }
        ),
        CRIT,
        {"database": OK, "redis": CRIT},
    ),
    (
        "nestjs-terminus",
        200,
        JSON,
        _j(
            {
                "status": "ok",
                "info": {"database": {"status": "up"}},
                "error": {},
                "details": {"database": {"status": "up"}},
            }
        ),
        OK,
        {"database": OK},
    ),
    # @godaddy/terminus
    ("godaddy-terminus", 503, JSON, _j({"status": "error"}), CRIT, {}),
    (
        "godaddy-terminus",
        503,
        JSON,
        _j(
            {
                "status": "error",
                "error": {"mongo": "connection refused"},
                "details": {"mongo": "connection refused"},
            }
        ),
        CRIT,
        {"mongo": CRIT},
    ),
    # MicroProfile Health
    (
        "microprofile",
        503,
        JSON,
        _j(
            {
                "status": "DOWN",
                "checks": [
                    {"name": "firstCheck", "status": "DOWN", "data": {"key": "value"}},
                    {"name": "secondCheck", "status": "UP"},
                ],
            }
        ),
        CRIT,
        {"firstCheck": CRIT, "secondCheck": OK},
    ),
    ("microprofile", 200, JSON, _j({"status": "UP", "checks": []}), OK, {}),
    # ASP.NET Core, HealthChecks.UI writer and plain text.
    (
        "aspnet-ui",
        503,
        JSON,
        _j(
            {
                "status": "Unhealthy",
                "totalDuration": "00:00:00.1234567",
                "entries": {
                    "npgsql": {
                        "data": {},
                        "duration": "00:00:00.0123456",
                        "exception": "Connection timeout",
                        "status": "Unhealthy",
                        "tags": ["ready"],
                    },
                    "redis": {
                        "data": {},
                        "duration": "00:00:00.0010000",
                        "status": "Degraded",
                        "description": "slow",
                    },
                },
            }
        ),
        CRIT,
        {"npgsql": CRIT, "redis": WARN},
    ),
    ("aspnet", 200, "text/plain", b"Degraded", WARN, {}),
    ("aspnet", 503, "text/plain", b"Unhealthy", CRIT, {}),
    ("aspnet", 200, "text/plain; charset=utf-8", b"Healthy", OK, {}),
    # lightship
    ("lightship", 200, "text/plain", b"SERVER_IS_READY", OK, {}),
    ("lightship", 500, "text/plain", b"SERVER_IS_NOT_READY", CRIT, {}),
    ("lightship", 500, "text/plain", b"SERVER_IS_SHUTTING_DOWN", CRIT, {}),
    # Kubernetes ?verbose
    (
        "kubernetes",
        200,
        "text/plain; charset=utf-8",
        b"[+]ping ok\n[+]log ok\n[+]etcd ok\nreadyz check passed\n",
        OK,
        {"ping": OK, "log": OK, "etcd": OK},
    ),
    (
        "kubernetes",
        500,
        "text/plain; charset=utf-8",
        b"[+]ping ok\n[-]etcd failed: reason withheld\n[+]informer-sync ok\nreadyz check failed\n",
        CRIT,
        {"ping": OK, "etcd": CRIT, "informer-sync": OK},
    ),
    ("text", 200, "text/plain", b"ok", OK, {}),
    # Go: alexliesenfeld/health, hellofresh/health-go
    (
        "go-health",
        503,
        JSON,
        _j(
            {
                "status": "down",
                "details": {
                    "database": {"status": "up", "timestamp": "2021-07-01T08:05:14.603364Z"},
                    "search": {
                        "status": "down",
                        "timestamp": "2021-07-01T08:05:14.603364Z",
                        "error": "this makes the check fail",
                    },
                },
            }
        ),
        CRIT,
        {"database": OK, "search": CRIT},
    ),
    (
        "health-go",
        200,
        JSON,
        _j(
            {
                "status": "Partially Available",
                "timestamp": "2017-01-01T00:00:00.413567856+03:00",
                "failures": {"rabbitmq": "Failed during rabbitmq health check"},
                "system": {"version": "go1.8", "goroutines_count": 4},
            }
        ),
        WARN,
        {"rabbitmq": WARN},
    ),
    (
        "health-go",
        503,
        JSON,
        _j(
            {
                "status": "Unavailable",
                "timestamp": "2017-01-01T00:00:00Z",
                "failures": {"postgres": "dial tcp: connection refused"},
            }
        ),
        CRIT,
        {"postgres": CRIT},
    ),
    # plain {"status", "checks"|"dependencies"}
    (
        "plain",
        503,
        JSON,
        _j({"status": "error", "checks": {"postgres": "ok", "redis": "down", "mongo": "ok"}}),
        CRIT,
        {"postgres": OK, "redis": CRIT, "mongo": OK},
    ),
    (
        "plain",
        200,
        JSON,
        _j(
            {
                "status": "degraded",
                "dependencies": {
                    "cache": {"status": "warn", "message": "hit rate 12%"},
                    "db": {"status": "ok"},
                },
            }
        ),
        WARN,
        {"cache": WARN, "db": OK},
    ),
    ("plain", 200, JSON, _j({"status": "ok"}), OK, {}),
    ("plain", 200, JSON, _j({"status": "ok", "uptime": 12.5}), OK, {}),
]


@pytest.mark.parametrize(
    ("fmt", "code", "content_type", "body", "status", "dependencies"),
    CASES,
    ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)],
)
def test_recognised_bodies(
    fmt: str,
    code: int,
    content_type: str,
    body: bytes,
    status: Status,
    dependencies: dict[str, Status],
) -> None:
    parsed = parse(code, content_type, body)
    assert parsed is not None
    assert parsed.format == fmt
    assert parsed.status is status
    assert {name: dep.status for name, dep in parsed.dependencies.items()} == dependencies


def test_dependency_messages_are_kept_short_and_on_one_line() -> None:
    body = _j(
        {
            "status": "Unhealthy",
            "entries": {
                "npgsql": {
                    "status": "Unhealthy",
                    "exception": "Npgsql.NpgsqlException:\n   at " + "frame " * 200,
                }
            },
        }
    )
    parsed = parse(503, JSON, body)
    assert parsed is not None
    message = parsed.dependencies["npgsql"].message
    assert message is not None
    assert message.startswith("Npgsql.NpgsqlException: at frame")
    assert "\n" not in message and len(message) <= 200


def test_failing_lists_worst_first() -> None:
    parsed = parse(
        503, JSON, _j({"status": "error", "checks": {"a": "warn", "b": "down", "c": "ok"}})
    )
    assert parsed is not None
    assert [name for name, _ in parsed.failing()] == ["b", "a"]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"<html><body>Bad Gateway</body></html>",
        b'{"status": "ok", oops',
        b"[1, 2, 3]",
        b'{"message": "hello"}',
        b'{"status": {"nested": true}}',
        b"\xff\xfe\x00garbage",
        b'{"status": "ok", "checks": 42}',
        b"{" * 100_000,  # deep nesting: json's recursion limit must not escape
    ],
    ids=[
        "empty",
        "blank",
        "html",
        "bad-json",
        "array",
        "no-status",
        "odd-status",
        "binary",
        "odd-checks",
        "deep",
    ],
)
def test_unknown_or_broken_bodies_give_none(body: bytes) -> None:
    assert parse(200, JSON, body) is None


def test_terminus_with_indicators_and_a_plain_error_names_both() -> None:
    body = b'{"status":"error","info":{"db":{"status":"up"}},"error":{"cache":"ECONNREFUSED"}}'

    parsed = parse(503, "application/json", body)

    assert parsed is not None
    assert {name: dep.status for name, dep in parsed.dependencies.items()} == {
        "db": Status.OK,
        "cache": Status.CRIT,
    }
    assert parsed.dependencies["cache"].message == "ECONNREFUSED"
