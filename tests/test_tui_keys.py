"""Every key of the dashboard driven through Pilot, and what a person sees at start-up:
ctrl+c quits like q, zoom keeps the header and the incident banner, ``?`` lists the live
bindings, checks that have not answered are counted as pending."""

from __future__ import annotations

import pytest

from opsdash.tui.app import DashboardApp
from opsdash.tui.screens import HelpScreen
from tests.snapshot_apps.platform import build, round_results, specs

SMALL = (80, 24)


pytestmark = pytest.mark.usefixtures("utc_zone")


def _header(app: DashboardApp) -> str:
    return str(app.query_one("#status-header").render())


def _banner(app: DashboardApp) -> str:
    return str(app.query_one("#incident-banner").render())


@pytest.mark.parametrize("key", ["ctrl+c", "q"])
async def test_ctrl_c_quits_like_q(key: str) -> None:
    app = build(incident=True)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press(key)
        await pilot.pause()
    assert app.return_code == 0
    assert not app.is_running


async def test_zoom_keeps_the_header_and_the_incident_at_80x24() -> None:
    app = build(incident=True)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        await pilot.press("z")
        await pilot.pause()
        assert app.zoomed is app.services
        header = app.query_one("#status-header")
        banner = app.query_one("#incident-banner")
        assert header.region.height == 2 and header.region.y == 0
        assert banner.region.height > 0 and "redis unreachable" in _banner(app)
        assert app.services.region.height > 5
        assert not app.queues.region.height  # the others give the zoomed panel their space
        await pilot.press("escape")  # esc leaves the zoom too
        await pilot.pause()
        assert app.zoomed is None and app.queues.display


async def test_help_lists_the_live_bindings() -> None:
    app = build(incident=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        screen = app.screen
        assert isinstance(screen, HelpScreen)
        listed = dict(screen.keys)
        described = {does for _, does in screen.keys}
        for binding in DashboardApp.BINDINGS:
            assert binding.tooltip in described, binding  # enter: the focused panel's own
        assert listed["r"] == "refresh now: run every check at once"
        assert listed["^c"] == "quit, like q"
        assert listed["/"].startswith("filter")
        assert any(keys == "tab" for keys in listed)  # the screen's own, not a copy
        assert listed["↓"] == "Cursor down"  # the focused panel's
        await pilot.press("question_mark")
        assert not isinstance(app.screen, HelpScreen)


async def test_cursor_keys_move_through_the_panel() -> None:
    app = build(incident=False)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.services
        await pilot.press("down", "down")
        assert table.cursor_key() == "course-service"
        await pilot.press("up")
        assert table.cursor_key() == "student-service"
        await pilot.press("end")
        assert table.cursor_key() == "chat-service"
        await pilot.press("home")
        assert table.cursor_key() == "booking-service"
        await pilot.press("pagedown")
        assert table.cursor_key() == "chat-service"
        await pilot.press("pageup")
        assert table.cursor_key() == "booking-service"


async def test_pending_checks_are_shown_and_counted_at_the_first_frame() -> None:
    app = DashboardApp(
        build(incident=False).state.registry, specs(), live=False, clock=lambda: _now()
    )
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        total = len(specs())
        assert f"{total} checks · {total} pending" in _header(app)
        assert "no result yet" in _banner(app)
        first = [r for r in round_results(0, incident=False)][:5]
        app.ingest(first)
        await pilot.pause()
        assert f"{total} checks · {total - 5} pending" in _header(app)
        assert f"5 checks ok, {total - 5} pending" in _banner(app)
        app.ingest(round_results(0, incident=False))
        await pilot.pause()
        assert "pending" not in _header(app)
        assert _banner(app) == f"✔ All is well: {total} checks ok"


def _now():  # type: ignore[no-untyped-def]
    from tests.snapshot_apps.platform import NOW

    return NOW
