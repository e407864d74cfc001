"""JUnit XML of a snapshot (``check --format junit``), for CI systems' test reports.

One ``<testcase>`` per check: ``classname`` is the component, ``name`` the check id, ``time``
the latency in seconds. warn and crit are ``<failure>`` (the summary is the message, the
status its type); unknown is an ``<error>`` (the check could not decide). The target and the
details go to ``<system-out>`` so that a failure is diagnosable from the report alone.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC

from opsdash.figures import details_json
from opsdash.results import CheckResult
from opsdash.state import Snapshot
from opsdash.status import Status


def _seconds(result: CheckResult) -> str:
    return f"{(result.latency_ms or 0.0) / 1000.0:.3f}"


def _testcase(result: CheckResult) -> ET.Element:
    case = ET.Element("testcase", classname=result.component, name=result.id, time=_seconds(result))
    if result.status in (Status.WARN, Status.CRIT):
        failure = ET.SubElement(case, "failure", message=result.summary, type=result.status.value)
        failure.text = f"{result.status.value}: {result.summary}"
    elif result.status is Status.UNKNOWN:
        kind = result.error.type.value if result.error is not None else "unknown"
        error = ET.SubElement(case, "error", message=result.summary, type=kind)
        error.text = f"unknown: {result.summary}"
    out = ET.SubElement(case, "system-out")
    out.text = "\n".join(
        [
            f"target: {result.target}",
            f"status: {result.status.value}",
            f"details: {json.dumps(details_json(result.figures), default=str, ensure_ascii=False)}",
        ]
    )
    return case


def render_junit(snapshot: Snapshot) -> str:
    """The snapshot as a JUnit XML document (one testsuite named after the platform)."""
    results = snapshot.results
    counts = snapshot.counts
    attributes = {
        "name": snapshot.platform,
        "tests": str(len(results)),
        "failures": str(counts["warn"] + counts["crit"]),
        "errors": str(counts["unknown"]),
        "skipped": "0",
        "time": f"{(snapshot.duration_ms or 0.0) / 1000.0:.3f}",
        "timestamp": snapshot.started_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
    }
    suites = ET.Element("testsuites", {k: v for k, v in attributes.items() if k != "timestamp"})
    suites.set("name", "opsdash")
    suite = ET.SubElement(suites, "testsuite", attributes)
    for result in results:
        suite.append(_testcase(result))
    ET.indent(suites)
    body = ET.tostring(suites, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
