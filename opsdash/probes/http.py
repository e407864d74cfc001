"""HTTP liveness and readiness probe (stub: built under issue 2)."""

from __future__ import annotations

from dataclasses import dataclass, field

from opsdash.registry.model import RemainingThresholds
from opsdash.resources import Resources
from opsdash.results import Observation
from opsdash.status import Status


@dataclass(frozen=True, slots=True)
class HttpTarget:
    """Where and how to probe one HTTP endpoint."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    verify: bool = True
    max_body: int = 64 * 1024
    cert_expiry: RemainingThresholds = field(default_factory=RemainingThresholds)


async def probe_http(resources: Resources, target: HttpTarget) -> Observation:
    """GET the endpoint and judge status code and body."""
    response = await resources.http(verify=target.verify).get(target.url, headers=target.headers)
    ok = response.is_success
    status = Status.OK if ok else Status.CRIT
    return Observation(status, f"{response.status_code} {response.reason_phrase}")
