"""``check --format junit``: one testcase per check, parsed back as XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from opsdash.figures import HttpFigures
from opsdash.plan import build_plan
from opsdash.registry.model import Registry
from opsdash.render.junit import render_junit
from opsdash.results import CheckResult, ErrorType, ProbeError
from opsdash.state import PlatformState, Snapshot
from opsdash.status import Status

REGISTRY = Registry.from_data(
    {
        "version": 1,
        "platform": "learning-platform",
        "services": {
            "booking": {"url": "http://127.0.0.1:1"},
            "chat": {"url": "http://127.0.0.1:2", "ready": False},
        },
    }
)


def result(
    check_id: str, status: Status, summary: str, error: ProbeError | None = None
) -> CheckResult:
    component, check = check_id.split(".")
    return CheckResult(
        check_id, component, check, "http", status, summary, 12.5,
        f"http://127.0.0.1/{check}", HttpFigures(http_status=503), error,
        datetime(2026, 1, 25, 10, tzinfo=UTC),
    )  # fmt: skip


def snapshot(*results: CheckResult) -> Snapshot:
    state = PlatformState(REGISTRY, build_plan(REGISTRY))
    state.apply_all(results)
    return state.snapshot(started_at=datetime(2026, 1, 25, 10, tzinfo=UTC), duration_ms=84.2)


def test_a_testcase_per_check_with_failures_and_errors() -> None:
    text = render_junit(
        snapshot(
            result("booking.health", Status.OK, "200 OK"),
            result("booking.ready", Status.CRIT, "503 Service Unavailable: redis down"),
            result(
                "chat.health", Status.UNKNOWN, "bad config <&>",
                ProbeError(ErrorType.CONFIG, "bad config <&>"),
            ),
        )
    )  # fmt: skip
    root = ET.fromstring(text.encode())
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "learning-platform"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert list(cases) == ["booking.health", "booking.ready", "chat.health"]
    assert cases["booking.ready"].get("classname") == "booking"
    assert cases["booking.ready"].get("time") == "0.013"
    assert cases["booking.health"].find("failure") is None
    failure = cases["booking.ready"].find("failure")
    assert failure is not None
    assert failure.get("message") == "503 Service Unavailable: redis down"
    assert failure.get("type") == "crit"
    error = cases["chat.health"].find("error")
    assert error is not None and error.get("message") == "bad config <&>"
    assert error.get("type") == "config"
    out = cases["booking.ready"].find("system-out")
    assert out is not None and "target: http://127.0.0.1/ready" in (out.text or "")


def test_warn_is_a_failure_of_type_warn() -> None:
    root = ET.fromstring(render_junit(snapshot(result("booking.health", Status.WARN, "slow"))))
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None and failure.get("type") == "warn"
