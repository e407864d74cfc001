"""Health and readiness bodies in the formats real frameworks send (reference document §1).

Each function takes whether each dependency is up and returns a :class:`Response` with the
status code and body that framework would produce.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from opsdash.demo.server import Response

Dependencies = Mapping[str, bool]
"""Dependency name -> up."""


def _json(status: int, body: Any, content_type: str = "application/json") -> Response:
    return Response(status, json.dumps(body, separators=(",", ":")).encode(), content_type)


def _code(deps: Dependencies) -> int:
    return 200 if all(deps.values()) else 503


def nestjs(deps: Dependencies) -> Response:
    """@nestjs/terminus: ``info``, ``error`` and ``details``; 503 with ``status: error``."""
    details = {
        name: {"status": "up"} if up else {"status": "down", "message": "Could not connect"}
        for name, up in deps.items()
    }
    ok = all(deps.values())
    return _json(
        _code(deps),
        {
            "status": "ok" if ok else "error",
            "info": {n: d for n, d in details.items() if deps[n]},
            "error": {n: d for n, d in details.items() if not deps[n]},
            "details": details,
        },
    )


def godaddy(deps: Dependencies) -> Response:
    """@godaddy/terminus: ``{"status": "ok", "info", "details"}`` or 503 ``error``."""
    if all(deps.values()):
        info = {name: {"status": "up"} for name in deps}
        return _json(200, {"status": "ok", "info": info, "details": info})
    causes = {n: {"status": "down", "message": "ECONNREFUSED"} for n, up in deps.items() if not up}
    return _json(503, {"status": "error", "error": causes, "details": causes})


def spring(deps: Dependencies) -> Response:
    """Spring Boot Actuator readiness group: ``components``, 503 when DOWN."""
    components: dict[str, Any] = {n: {"status": "UP" if up else "DOWN"} for n, up in deps.items()}
    components["readinessState"] = {"status": "UP"}
    return _json(
        _code(deps),
        {"status": "UP" if all(deps.values()) else "DOWN", "components": components},
        "application/vnd.spring-boot.actuator.v3+json",
    )


def ietf(deps: Dependencies) -> Response:
    """IETF ``application/health+json``: ``checks`` keyed ``component:measurement``."""
    checks = {
        f"{name}:connections": [
            {
                "componentType": "datastore",
                "status": "pass" if up else "fail",
                **({} if up else {"output": "connection refused"}),
            }
        ]
        for name, up in deps.items()
    }
    return _json(
        _code(deps),
        {"status": "pass" if all(deps.values()) else "fail", "version": "1", "checks": checks},
        "application/health+json",
    )


def microprofile(deps: Dependencies) -> Response:
    """MicroProfile Health: ``checks`` is an array of ``{name, status}``."""
    checks = [{"name": n, "status": "UP" if up else "DOWN"} for n, up in deps.items()]
    return _json(_code(deps), {"status": "UP" if all(deps.values()) else "DOWN", "checks": checks})


def aspnet(deps: Dependencies) -> Response:
    """ASP.NET Core with the HealthChecks.UI JSON writer."""
    entries: dict[str, dict[str, Any]] = {
        name: {
            "data": {},
            "duration": "00:00:00.0031250",
            "status": "Healthy" if up else "Unhealthy",
            "tags": ["ready"],
            **({} if up else {"exception": "It was not possible to connect to the server"}),
        }
        for name, up in deps.items()
    }
    return _json(
        _code(deps),
        {
            "status": "Healthy" if all(deps.values()) else "Unhealthy",
            "totalDuration": "00:00:00.0040000",
            "entries": entries,
        },
    )


def aspnet_text(deps: Dependencies) -> Response:
    """ASP.NET Core's default writer: ``text/plain`` Healthy / Unhealthy."""
    ok = all(deps.values())
    return Response(200 if ok else 503, b"Healthy" if ok else b"Unhealthy", "text/plain")


def plain(deps: Dependencies) -> Response:
    """A hand-rolled ``{"status", "dependencies"}`` body."""
    dependencies = {n: "ok" if up else "down" for n, up in deps.items()}
    return _json(
        _code(deps),
        {"status": "ok" if all(deps.values()) else "down", "dependencies": dependencies},
    )


FORMATS: dict[str, Callable[[Dependencies], Response]] = {
    "nestjs": nestjs,
    "godaddy": godaddy,
    "spring": spring,
    "ietf": ietf,
    "microprofile": microprofile,
    "aspnet": aspnet,
    "aspnet-text": aspnet_text,
    "plain": plain,
}


def liveness(format_name: str, deps: Dependencies | None = None) -> Response:
    """A liveness body: the process is up (and, for the anti-pattern, its dependencies)."""
    if format_name == "spring" and not deps:
        return _json(200, {"status": "UP", "components": {"livenessState": {"status": "UP"}}})
    return FORMATS[format_name](deps or {})
