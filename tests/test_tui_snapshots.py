"""Snapshots of the dashboard (pytest-textual-snapshot) on fixed data under a frozen clock:
healthy, during an incident, and the detail screen, at 80x24 and 160x48.

Update after an intended change with ``pytest tests/test_tui_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.snapshot_apps.platform import NOW, build

SIZES = [(80, 24), (160, 48)]


pytestmark = pytest.mark.usefixtures("utc_zone")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_healthy(snap_compare: Callable[..., bool], size: tuple[int, int]) -> None:
    assert snap_compare(build(incident=False), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_incident(snap_compare: Callable[..., bool], size: tuple[int, int]) -> None:
    assert snap_compare(build(incident=True), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_detail(snap_compare: Callable[..., Any], size: tuple[int, int]) -> None:
    # booking-service during the outage: its dependencies, excerpt and history
    assert snap_compare(build(incident=True), press=["enter"], terminal_size=size)


def screen_text(app: Any) -> str:
    """Everything on the screen as text, as a person reads it."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True)
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text()


OUTAGE_SIZES = [(80, 24), (120, 40), (200, 50)]


@pytest.mark.parametrize("size", OUTAGE_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_outage_shows_the_whole_incident(
    snap_compare: Callable[..., bool], size: tuple[int, int]
) -> None:
    """During the outage the top of the screen says the whole incident, at every size: its
    summary, the cause's own words and everything it affects, wrapped, never cut."""
    from opsdash.tui.banner import incident_paragraph
    from opsdash.tui.rows import View, ordered_incidents

    async def check_sentences(pilot: Any) -> None:
        await pilot.pause()
        app = pilot.app
        view = View(app.state, app.state.snapshot(), NOW)
        shown = " ".join(screen_text(app).split())
        incidents = ordered_incidents(view)
        assert incidents and incidents[0].cause == "redis"
        for incident in incidents:
            sentence = " ".join(incident_paragraph(view, incident).plain.split())
            assert sentence in shown, (size, sentence)
        assert "redis unreachable" in shown and "booking-service" in shown
        assert "…" not in shown.split("Incidents")[0]  # nothing above the panels is cut

    assert snap_compare(build(incident=True), terminal_size=size, run_before=check_sentences)
