"""Recognising the health and readiness bodies real frameworks answer with.

:func:`parse` turns a response body into a :class:`HealthBody`: the format it recognised, the
overall status the body claims and one status (plus a short message) per dependency, all
normalised to opsdash's statuses (reference: ``health-formats-and-queues.md``, "Normalisation").
Recognised shapes:

============================  ==========================================================
format                        shape
============================  ==========================================================
``ietf``                      ``application/health+json``: ``status`` pass/warn/fail,
                              ``checks`` of ``"component:measurement"`` -> [objects]
``spring-boot``               ``status`` UP/DOWN/OUT_OF_SERVICE/UNKNOWN, ``components``
                              (nested) or, before Boot 2.2, ``details``
``nestjs-terminus``           ``status`` ok/error/shutting_down, ``info``/``error``/
                              ``details`` of indicators ``{"status": "up"|"down"}``
``godaddy-terminus``          ``status`` ok/error with optional ``info``/``error``/``details``
``microprofile``              ``status`` UP/DOWN, ``checks`` an array of ``{name, status}``
``aspnet-ui``                 HealthChecks.UI writer: ``status`` Healthy/Degraded/Unhealthy,
                              ``entries`` of ``{status, description?, exception?}``
``aspnet``                    text ``Healthy`` | ``Degraded`` | ``Unhealthy``
``lightship``                 text ``SERVER_IS_READY``, ``SERVER_IS_NOT_READY``...
``kubernetes``                text ``[+]etcd ok`` / ``[-]etcd failed: reason withheld``
                              lines ending with ``readyz check passed|failed``
``go-health``                 alexliesenfeld/health: ``status`` up/down/unknown,
                              ``details`` of ``{status, error?}``
``health-go``                 hellofresh/health-go: ``status`` OK/Partially Available/
                              Unavailable, ``failures`` name -> message
``plain``                     ``{"status": ..., "checks"|"dependencies": {...}}`` and a
                              bare ``{"status": ...}``
``text``                      a bare ``ok`` (Kubernetes without ``?verbose``, many others)
============================  ==========================================================

Anything else gives ``None`` (the caller judges by status code). Nothing here raises on a
body, however broken: a health endpoint is exactly where garbage shows up when things go wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from opsdash.records import dataclass, field
from opsdash.status import Status

MESSAGE_LIMIT = 200
"""Longest dependency message kept (exception texts can be pages long)."""

_STATUS_WORDS: dict[str, Status] = {
    # up
    "pass": Status.OK,
    "ok": Status.OK,
    "up": Status.OK,
    "healthy": Status.OK,
    "server_is_ready": Status.OK,
    "server_is_not_shutting_down": Status.OK,
    # degraded
    "warn": Status.WARN,
    "warning": Status.WARN,
    "degraded": Status.WARN,
    "partially available": Status.WARN,
    "out_of_service": Status.WARN,
    # down
    "fail": Status.CRIT,
    "failed": Status.CRIT,
    "error": Status.CRIT,
    "down": Status.CRIT,
    "unhealthy": Status.CRIT,
    "unavailable": Status.CRIT,
    "shutting_down": Status.CRIT,
    "server_is_not_ready": Status.CRIT,
    "server_is_shutting_down": Status.CRIT,
    # unknown
    "unknown": Status.UNKNOWN,
}


def normalise(word: object) -> Status:
    """A framework's status word as an opsdash status; anything unrecognised is unknown."""
    if isinstance(word, bool):  # {"healthy": true} style flags
        return Status.OK if word else Status.CRIT
    if not isinstance(word, str):
        return Status.UNKNOWN
    return _STATUS_WORDS.get(word.strip().lower(), Status.UNKNOWN)


@dataclass(frozen=True, slots=True)
class Dependency:
    """One dependency (check, component, indicator) as the body reports it."""

    status: Status
    message: str | None = None


@dataclass(frozen=True, slots=True)
class HealthBody:
    """What a recognised body says."""

    format: str
    status: Status
    dependencies: Mapping[str, Dependency] = field(default_factory=dict)

    def failing(self) -> list[tuple[str, Dependency]]:
        """Dependencies that are not ok, worst first, then by name."""
        bad = [(name, dep) for name, dep in self.dependencies.items() if dep.status.failing]
        return sorted(bad, key=lambda item: (-item[1].status.severity, item[0]))


def parse(status_code: int, content_type: str | None, body: bytes) -> HealthBody | None:
    """The health body in ``body``, or ``None`` when it is no shape this module knows.

    ``status_code`` is used where a format is told apart by it (a bare ``{"status":"error"}``
    is @godaddy/terminus only with a 503); ``content_type`` picks JSON versus text and marks
    IETF bodies. Never raises.
    """
    try:
        return _parse(status_code, (content_type or "").lower(), body)
    except Exception:  # a parser bug must not turn a health answer into a crash
        return None


def _parse(status_code: int, content_type: str, body: bytes) -> HealthBody | None:
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return None
    if text[0] in "{[" or "json" in content_type:
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            # Kubernetes' "[+]etcd ok" starts like a JSON array.
            return _parse_text(text)
        if not isinstance(document, dict):
            return None
        return _parse_json(document, "health+json" in content_type, status_code)
    return _parse_text(text)


# --- JSON -------------------------------------------------------------------------------

JsonParser = Callable[[dict[str, Any], bool, int], "HealthBody | None"]


def _parse_json(document: dict[str, Any], ietf_type: bool, status_code: int) -> HealthBody | None:
    if "status" not in document:
        return None
    for parser in _JSON_PARSERS:
        found = parser(document, ietf_type, status_code)
        if found is not None:
            return found
    return None


def _ietf(document: dict[str, Any], ietf_type: bool, _code: int) -> HealthBody | None:
    status = document["status"]
    checks = document.get("checks")
    is_ietf_word = isinstance(status, str) and status.lower() in ("pass", "warn", "fail")
    arrays = isinstance(checks, dict) and all(isinstance(v, list) for v in checks.values())
    if not (ietf_type or (is_ietf_word and (arrays or checks is None))):
        return None
    dependencies: dict[str, Dependency] = {}
    if isinstance(checks, dict):
        for key, items in checks.items():
            entries = (
                [item for item in items if isinstance(item, dict)]
                if isinstance(items, list)
                else []
            )
            if not entries:
                continue
            worst_entry = max(entries, key=lambda e: normalise(e.get("status")).severity)
            found = Dependency(
                normalise(worst_entry.get("status")), _message(worst_entry.get("output"))
            )
            # Keys are "component:measurement": one dependency per component, its worst figure.
            component = str(key).split(":", 1)[0] or str(key)
            known = dependencies.get(component)
            if known is None or found.status.severity > known.status.severity:
                dependencies[component] = found
    return HealthBody("ietf", normalise(status), dependencies)


def _spring_boot(document: dict[str, Any], _ietf_type: bool, _code: int) -> HealthBody | None:
    status = document["status"]
    if status not in ("UP", "DOWN", "OUT_OF_SERVICE", "UNKNOWN"):
        return None
    children = document.get("components", document.get("details"))
    if isinstance(document.get("checks"), list):
        return None  # MicroProfile
    if children is not None and not _is_spring_map(children):
        return None
    dependencies = dict(_spring_components(children or {}, prefix=""))
    return HealthBody("spring-boot", normalise(status), dependencies)


def _is_spring_map(children: object) -> bool:
    return isinstance(children, dict) and all(
        isinstance(child, dict) and "status" in child for child in children.values()
    )


def _spring_components(children: dict[str, Any], prefix: str) -> Iterator[tuple[str, Dependency]]:
    """Leaf components as ``parent.child`` names: a composite's own status is its worst child."""
    for name, child in children.items():
        nested = child.get("components")
        if _is_spring_map(nested) and nested:
            yield from _spring_components(nested, f"{prefix}{name}.")
            continue
        details = child.get("details")
        error = details.get("error") if isinstance(details, dict) else None
        yield f"{prefix}{name}", Dependency(normalise(child.get("status")), _message(error))


def _microprofile(document: dict[str, Any], _ietf_type: bool, _code: int) -> HealthBody | None:
    checks = document.get("checks")
    if document["status"] not in ("UP", "DOWN") or not isinstance(checks, list):
        return None
    dependencies: dict[str, Dependency] = {}
    for check in checks:
        if isinstance(check, dict) and isinstance(check.get("name"), str):
            data = check.get("data")
            message = data.get("error") or data.get("message") if isinstance(data, dict) else None
            dependencies[check["name"]] = Dependency(
                normalise(check.get("status")), _message(message)
            )
    return HealthBody("microprofile", normalise(document["status"]), dependencies)


def _aspnet_ui(document: dict[str, Any], _ietf_type: bool, _code: int) -> HealthBody | None:
    entries = document.get("entries")
    if document["status"] not in ("Healthy", "Degraded", "Unhealthy") or not isinstance(
        entries, dict
    ):
        return None
    dependencies = {
        str(name): Dependency(
            normalise(entry.get("status")),
            _message(entry.get("exception") or entry.get("description")),
        )
        for name, entry in entries.items()
        if isinstance(entry, dict)
    }
    return HealthBody("aspnet-ui", normalise(document["status"]), dependencies)


_TERMINUS_KEYS = frozenset({"status", "info", "error", "details"})


def _terminus(document: dict[str, Any], _ietf_type: bool, status_code: int) -> HealthBody | None:
    status = document["status"]
    if status not in ("ok", "error", "shutting_down") or not set(document) <= _TERMINUS_KEYS:
        return None
    details = document.get("details")
    indicators = details if _is_indicator_map(details) else None
    if indicators is None and _is_indicator_map(document.get("info")):
        error = document.get("error")
        indicators = dict(document["info"])
        if isinstance(error, dict) and _is_indicator_map(error):
            indicators.update(error)
    nest = {"info", "error", "details"} <= set(document) and indicators is not None
    if len(document) == 1 and status_code < 500 and status != "error":
        return None  # a bare {"status": "ok"}: let the plain parser name it
    dependencies = {
        str(name): Dependency(normalise(value.get("status")), _message(value.get("message")))
        for name, value in (indicators or {}).items()
    }
    if isinstance(document.get("error"), dict):
        # @godaddy/terminus puts whatever the health function threw under "error" (plain
        # values, not indicators): each one is a failing dependency.
        for name, value in document["error"].items():
            dependencies.setdefault(str(name), Dependency(Status.CRIT, _message(value)))
    return HealthBody(
        "nestjs-terminus" if nest else "godaddy-terminus", normalise(status), dependencies
    )


def _is_indicator_map(value: object) -> bool:
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(v, dict) and v.get("status") in ("up", "down") for v in value.values())
    )


def _go_health(document: dict[str, Any], _ietf_type: bool, _code: int) -> HealthBody | None:
    details = document.get("details")
    if document["status"] not in ("up", "down", "unknown") or not (
        isinstance(details, dict)
        and all(isinstance(v, dict) and "status" in v for v in details.values())
    ):
        return None
    dependencies = {
        str(name): Dependency(normalise(value.get("status")), _message(value.get("error")))
        for name, value in details.items()
    }
    return HealthBody("go-health", normalise(document["status"]), dependencies)


def _health_go(document: dict[str, Any], _ietf_type: bool, _code: int) -> HealthBody | None:
    status = document["status"]
    if status not in ("OK", "Partially Available", "Unavailable"):
        return None
    if not ({"failures", "system", "component", "timestamp"} & set(document)):
        return None
    overall = normalise(status)
    failures = document.get("failures")
    # The format does not say which failure is critical: each gets the overall verdict.
    failed = Status.WARN if overall is Status.WARN else Status.CRIT
    dependencies = {
        str(name): Dependency(failed, _message(message))
        for name, message in (failures.items() if isinstance(failures, dict) else ())
    }
    return HealthBody("health-go", overall, dependencies)


def _plain(document: dict[str, Any], _ietf_type: bool, _code: int) -> HealthBody | None:
    status = document["status"]
    if not isinstance(status, str | bool):
        return None
    children = document.get("checks", document.get("dependencies"))
    dependencies: dict[str, Dependency] = {}
    if isinstance(children, dict):
        for name, value in children.items():
            dependencies[str(name)] = _plain_dependency(value)
    elif isinstance(children, list):
        for value in children:
            if isinstance(value, dict) and isinstance(value.get("name"), str):
                dependencies[value["name"]] = _plain_dependency(value)
    elif children is not None:
        return None
    return HealthBody("plain", normalise(status), dependencies)


def _plain_dependency(value: object) -> Dependency:
    if isinstance(value, dict):
        message = value.get("message") or value.get("error") or value.get("output")
        state = value.get("status", value.get("healthy", value.get("state")))
        return Dependency(normalise(state), _message(message))
    return Dependency(normalise(value))


_JSON_PARSERS: tuple[JsonParser, ...] = (
    _aspnet_ui,
    _microprofile,
    _spring_boot,
    _go_health,
    _health_go,
    _terminus,
    _ietf,
    _plain,
)


# --- text -------------------------------------------------------------------------------

_LIGHTSHIP = ("SERVER_IS_READY", "SERVER_IS_NOT_READY", "SERVER_IS_SHUTTING_DOWN")
_LIGHTSHIP_LIVE = "SERVER_IS_NOT_SHUTTING_DOWN"
_ASPNET = ("Healthy", "Degraded", "Unhealthy")


def _parse_text(text: str) -> HealthBody | None:
    if text in _LIGHTSHIP or text == _LIGHTSHIP_LIVE:
        return HealthBody("lightship", normalise(text))
    if text in _ASPNET:
        return HealthBody("aspnet", normalise(text))
    if text.lower() == "ok":
        return HealthBody("text", Status.OK)
    return _kubernetes(text)


def _kubernetes(text: str) -> HealthBody | None:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    checks = [line for line in lines if line.startswith(("[+]", "[-]"))]
    if not checks:
        return None
    dependencies: dict[str, Dependency] = {}
    for line in checks:
        name, _, rest = line[3:].partition(" ")
        if line.startswith("[+]"):
            dependencies[name] = Dependency(Status.OK)
        else:
            # "[-]etcd failed: reason withheld": the reason is what follows "failed:".
            _, _, reason = rest.partition(":")
            dependencies[name] = Dependency(Status.CRIT, _message(reason.strip() or rest))
    last = lines[-1].lower()
    if last.endswith("check passed"):
        overall = Status.OK
    elif last.endswith("check failed"):
        overall = Status.CRIT
    else:
        overall = Status.CRIT if any(d.status.failing for d in dependencies.values()) else Status.OK
    return HealthBody("kubernetes", overall, dependencies)


def _message(value: object) -> str | None:
    """A dependency's message, one line, capped; non-text values are rendered as JSON."""
    if value is None or value == "" or value == {}:
        return None
    if not isinstance(value, str):
        try:
            value = json.dumps(value, default=str, separators=(",", ":"))
        except ValueError:
            value = str(value)
    line = " ".join(value.split())
    return line if len(line) <= MESSAGE_LIMIT else line[: MESSAGE_LIMIT - 1] + "…"
