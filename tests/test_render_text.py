"""``opsdash check``'s text: failing checks first, reasons never cut, ``-q`` for what is wrong."""

from __future__ import annotations

from datetime import UTC, datetime

from opsdash.plan import build_plan
from opsdash.registry.model import Registry
from opsdash.render.text import render_text
from opsdash.results import ErrorType
from opsdash.state import PlatformState, Snapshot
from opsdash.status import Status
from tests.helpers import result

REGISTRY = Registry.from_data(
    {
        "version": 1,
        "platform": "p",
        "services": {
            "api": {"url": "http://127.0.0.1:1", "depends_on": []},
            "web": {"url": "http://127.0.0.1:2"},
        },
    }
)
LONG = (
    "503 Service Unavailable: postgres down, redis down, mongo down and 4 more; the body says "
    "the connection pool is exhausted after 30 s waiting for a free connection"
)
AT = datetime(2026, 1, 25, 10, tzinfo=UTC)


def snapshot() -> Snapshot:
    state = PlatformState(REGISTRY, build_plan(REGISTRY))
    state.apply_all(
        [
            result("api.health", Status.OK, "200 OK", at=AT),
            result("api.ready", Status.OK, "200 OK", at=AT),
            result("web.health", Status.WARN, "200 OK; slow: 812 ms", at=AT),
            result("web.ready", Status.CRIT, LONG, error=ErrorType.PROTOCOL, at=AT),
        ]
    )
    return state.snapshot(started_at=AT, duration_ms=12.0)


def test_piped_text_prints_every_summary_whole() -> None:
    out = render_text(snapshot(), width=None)
    assert "…" not in out
    assert any(line.endswith(LONG) for line in out.splitlines())
    # the incident's summary quotes the check's, whole too
    assert any(LONG in line and line.startswith("✖ crit") for line in out.splitlines())


def test_on_a_terminal_summaries_wrap_to_the_width() -> None:
    out = render_text(snapshot(), width=80)
    lines = out.splitlines()
    assert "…" not in out
    assert all(len(line) <= 80 for line in lines)
    assert " ".join(" ".join(lines).split()).count("waiting for a free connection") >= 1


def _table(out: str) -> list[str]:
    """The check ids of the table, in printed order."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("STATUS"))
    end = lines.index("", start)
    return [line.split()[2] for line in lines[start + 1 : end] if line[:1] in "✔▲✖?"]


def test_failing_checks_come_first() -> None:
    assert _table(render_text(snapshot())) == ["web.ready", "web.health", "api.health", "api.ready"]


def test_quiet_prints_only_what_is_not_ok_plus_the_incidents() -> None:
    out = render_text(snapshot(), quiet=True)
    assert _table(out) == ["web.ready", "web.health"]
    assert "Incidents" in out and "web: " in out
    assert out.splitlines()[0].startswith("p  ✖ crit  2 ok")  # the header still counts them
