"""Custom HTTP checks: one GET (the HTTP probe's bounded fetch: capped body, redirects one hop
at a time), judged by the check's ``expect:`` conditions (:mod:`opsdash.probes.conditions`)
instead of the health-body rules. Every failed condition is named in the summary."""

from __future__ import annotations

import time

from opsdash.figures import HttpExpectFigures
from opsdash.probes import http
from opsdash.probes.conditions import failed_conditions
from opsdash.records import dataclass
from opsdash.registry.model import HttpExpect
from opsdash.resources import Resources
from opsdash.results import Observation
from opsdash.status import Status

_NAMED = 5
"""Failed conditions named in the summary before "and N more" (all are in the details)."""


@dataclass(frozen=True, slots=True)
class HttpCheckTarget:
    """The request and the conditions."""

    request: http.HttpTarget
    expect: HttpExpect


async def probe_http_check(resources: Resources, target: HttpCheckTarget) -> Observation:
    """GET and judge by the conditions."""
    start = time.perf_counter()
    answer = await http.get(resources, target.request)
    latency_s = time.perf_counter() - start
    headers: dict[str, str] = {}
    for name, _ in answer.headers:
        headers.setdefault(name.lower(), answer.header(name) or "")
    failed = failed_conditions(
        target.expect,
        status_code=answer.status_code,
        headers=headers,
        body=answer.body,
        truncated=answer.truncated,
        latency_s=latency_s,
    )
    headline = f"{answer.status_code} {answer.reason}".strip()
    wants_body = target.expect.json_ or target.expect.body is not None
    figures = HttpExpectFigures(
        http_status=answer.status_code,
        failed=tuple(failed),
        body=http.excerpt(answer.body) if failed and wants_body and answer.body else None,
        body_truncated=answer.truncated,
    )
    if not failed:
        return Observation(Status.OK, headline, figures)
    named = failed[:_NAMED] + ([f"and {len(failed) - _NAMED} more"] if len(failed) > _NAMED else [])
    return Observation(Status.CRIT, f"{headline}: {'; '.join(named)}", figures)
