"""The typed figures against the shipped schema: one of every figure type, validated.

A renamed or retyped field changes the ``details`` object; the shipped
``opsdash/schemas/check-v1.json`` (``$defs/details/<schema_name>``, no additional properties)
then refuses it here, and strict mypy refuses the faces that read the old name.
"""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from opsdash.figures import (
    FIGURE_TYPES,
    BullmqFigures,
    CertificateFigures,
    DlqFigures,
    DnsFigures,
    Figures,
    HeartbeatFigures,
    HttpExpectFigures,
    HttpFigures,
    IndexEntry,
    MongoFigures,
    MongoMember,
    PerfDatum,
    PluginFigures,
    PostgresFigures,
    PostgresIndexFigures,
    RabbitmqFigures,
    RedisFigures,
    ReplicaLink,
    SqlValueFigures,
    StreamGroup,
    TcpFigures,
    TlsFigures,
    WorkerFigures,
    details_json,
    figures_from_json,
    type_name,
)
from opsdash.marks import CheckMark, SilenceMark
from opsdash.render.json import check_object, dumps
from opsdash.results import CheckResult
from opsdash.status import Status

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "opsdash/schemas/check-v1.json").read_text())
AT = datetime(2026, 1, 25, 10, tzinfo=UTC)

# Every field set (nested ones too), so that every key is checked against the schema.
SAMPLES: dict[type[Figures], list[Figures]] = {
    HttpFigures: [
        HttpFigures(
            http_status=503,
            redirects=1,
            format="nestjs-terminus",
            dependencies={"redis": Status.CRIT, "database": Status.OK},
            dependency_messages={"redis": "ECONNREFUSED"},
            body="<html>oops</html>",
            body_truncated=True,
            excerpt=("<html>", "oops</html>"),
            certificate=CertificateFigures(12.5, AT, "CN=api", "CN=test CA"),
        ),
        HttpFigures(tls_error="certificate expired"),
    ],
    PostgresFigures: [PostgresFigures("16.4", "replica", 0.4, 12, 97, 12.4, 1, 300.0, 4.2)],
    PostgresIndexFigures: [
        PostgresIndexFigures(
            (IndexEntry("payments", "idx_payments", True, True, 42),),
            ("idx_missing",),
            ("idx_invalid",),
        )
    ],
    SqlValueFigures: [SqlValueFigures(3.0)],
    RedisFigures: [
        RedisFigures(
            "7.2.4",
            "replica",
            0.3,
            12,
            0,
            1024,
            4096,
            25.0,
            "noeviction",
            3,
            0,
            ReplicaLink("down", 12, 75),
        )
    ],
    MongoFigures: [
        MongoFigures(
            "7.0.2",
            "primary",
            "rs0",
            0.8,
            12,
            807,
            4.0,
            (
                MongoMember("db1:27017", "PRIMARY", True, True, None, 0.0),
                MongoMember("db2:27017", "SECONDARY", True, False, 4.0, 1.5),
            ),
            ("replSetGetStatus",),
        )
    ],
    DlqFigures: [
        DlqFigures(
            "redis-stream",
            4,
            1_769_335_200.0,
            7200.0,
            2.5,
            1920.0,
            240.0,
            ("3 pending in group replay",),
            groups={"replay": StreamGroup(3, {"c1": 3}, 1)},
        ),
        DlqFigures(
            "bullmq",
            4,
            1_769_335_200.0,
            bullmq=BullmqFigures({"failed": 4, "wait": 2}, False, "bull:purchases"),
        ),
        DlqFigures(
            "rabbitmq",
            12,
            1_769_335_200.0,
            rabbitmq=RabbitmqFigures(12, 0, 0, "running", 0.5, 0.0),
        ),
        DlqFigures("sql", None, 1_769_335_200.0),
    ],
    WorkerFigures: [
        WorkerFigures(
            "prometheus",
            5,
            "allocation-worker.dlq",
            1_769_335_200.0,
            30,
            2,
            400,
            1,
            1_700_000_000.0,
            None,
            15.0,
            1.0,
            60.0,
            0.0,
            25.0,
            "window",
            240.0,
        ),
        WorkerFigures(
            "redis-hash", None, "none (by design)", 1_769_335_200.0, missing=("retries",)
        ),
    ],
    PluginFigures: [
        PluginFigures(
            "/usr/lib/nagios/plugins/check_disk",
            1,
            (PerfDatum("/", 2.5e10, "B", "2e10", "2.5e10", 0.0, 2.7e10), PerfDatum("load", None)),
            ("line one", "line two"),
            ("warning: deprecated option",),
        ),
        PluginFigures("/x/check_x", None),
    ],
    TcpFigures: [TcpFigures(0.4, "+PONG"), TcpFigures(1.2)],
    DnsFigures: [
        DnsFigures("A", ("10.0.0.5",), "127.0.0.1:53", ("10.0.0.9",)),
        DnsFigures("CNAME", ()),
    ],
    TlsFigures: [
        TlsFigures(CertificateFigures(12.5, AT, "CN=api", "CN=test CA"), "TLSv1.3"),
        TlsFigures(tls_error="unknown issuer"),
    ],
    HttpExpectFigures: [
        HttpExpectFigures(503, ("$.status is DOWN, expected UP",), "{}", True),
        HttpExpectFigures(200),
    ],
    HeartbeatFigures: [
        HeartbeatFigures(93600.0, AT, 120.0, Status.WARN, "3 rows skipped", "cli"),
        HeartbeatFigures(93600.0),
    ],
}


def _definition(cls: type[Figures]) -> dict[str, Any]:
    return {**SCHEMA["$defs"]["details"][cls.schema_name], "$defs": SCHEMA["$defs"]}


def test_every_figure_type_has_samples_and_a_schema_entry() -> None:
    assert set(SAMPLES) == set(FIGURE_TYPES)
    for cls in FIGURE_TYPES:
        assert cls.schema_name in SCHEMA["$defs"]["details"], cls.__name__


@pytest.mark.parametrize(
    "figures",
    [sample for samples in SAMPLES.values() for sample in samples],
    ids=lambda f: type(f).__name__,
)
def test_each_figure_type_matches_the_shipped_schema(figures: Figures) -> None:
    details = json.loads(dumps(details_json(figures)))
    jsonschema.validate(details, _definition(type(figures)))


@pytest.mark.parametrize(
    "figures",
    [sample for samples in SAMPLES.values() for sample in samples],
    ids=lambda f: type(f).__name__,
)
def test_figures_read_back_from_their_json(figures: Figures) -> None:
    # what `opsdash alert` keeps in its state file between runs (derive steps need it)
    details = json.loads(dumps(details_json(figures)))
    assert figures_from_json(type_name(figures), details) == figures


def test_a_document_with_every_figure_type_and_marks_is_valid() -> None:
    checks = []
    for index, figures in enumerate(f for samples in SAMPLES.values() for f in samples):
        result = CheckResult(
            f"c{index}", f"c{index}", "x", "test", Status.WARN, "s", 1.0, "t", figures, None, AT
        )
        mark = CheckMark(SilenceMark("c*", "deploy", AT), flapping=True) if index == 0 else None
        checks.append(check_object(result, mark))
    assert checks[0]["details"]["silenced"] == {
        "matcher": "c*",
        "reason": "deploy",
        "until": "2026-01-25T10:00:00+00:00",
    }
    document = {
        "schema": "opsdash.check/v1",
        "platform": "p",
        "status": "warn",
        "started_at": "2026-01-25T10:00:00.000Z",
        "duration_ms": 1.0,
        "counts": {"ok": 0, "warn": len(checks), "crit": 0, "unknown": 0},
        "checks": checks,
        "components": [],
        "incidents": [],
        "error": None,
    }
    jsonschema.validate(json.loads(dumps(document)), SCHEMA)


def test_v1_keys_are_as_they_were() -> None:
    # optional keys stay absent until they apply, as before figures were typed
    assert details_json(HttpFigures(http_status=200)) == {"http_status": 200}
    link = details_json(SAMPLES[RedisFigures][0])
    assert link["master_link_status"] == "down" and "replica" not in link
    cert = details_json(SAMPLES[HttpFigures][0])
    assert cert["cert_expires_at"] == "2026-01-25T10:00:00Z"
    assert cert["dependencies"] == {"redis": "crit", "database": "ok"}


FACES = ("render", "tui", "alerting", "alertstate", "exporter.py", "incidents.py", "commands")


def test_no_face_reads_details_by_string_key() -> None:
    # Faces read typed fields; ``details`` is the JSON view, built by details_json alone.
    offenders = []
    for face in FACES:
        path = ROOT / "opsdash" / face
        for file in [path] if path.is_file() else sorted(path.rglob("*.py")):
            tree = ast.parse(file.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and node.attr in ("details", "with_details"):
                    offenders.append(f"{file.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def _every_string(value: Any) -> list[str]:
    """Every string in ``value``, mapping keys included, walking every field (statuses are
    opsdash's own words, not a server's text)."""
    import dataclasses
    from collections.abc import Mapping

    if isinstance(value, Status):
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, tuple | list):
        return [text for item in value for text in _every_string(item)]
    if isinstance(value, Mapping):
        return [
            text
            for key, item in value.items()
            for text in [*_every_string(key), *_every_string(item)]
        ]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [
            text
            for f in dataclasses.fields(value)
            for text in _every_string(getattr(value, f.name))
        ]
    return []


@pytest.mark.parametrize(
    "figures",
    [sample for samples in SAMPLES.values() for sample in samples],
    ids=lambda f: type(f).__name__,
)
def test_the_harness_string_walk_sees_every_string(figures: Figures) -> None:
    # The harness escapes control characters only in figures any_string flags; its walk skips
    # the fields whose annotations hold no string: it must still reach every string there is.
    from opsdash.figures import any_string

    for text in _every_string(figures):
        assert any_string(figures, lambda seen, wanted=text: seen == wanted), text
