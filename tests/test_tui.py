"""Pilot tests of the dashboard: every key and navigation path, the filter, the detail screen,
and the screen following a real datastore outage through the real engine."""

from __future__ import annotations

import gc
import io
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console
from textual.pilot import Pilot

from opsdash.plan import build_plan
from opsdash.registry.model import Registry
from opsdash.tui.app import DashboardApp, ResultsArrived
from opsdash.tui.screens import DetailScreen, HelpScreen
from opsdash.tui.widgets import KeyedTable
from tests.snapshot_apps.platform import build

SIZE = (120, 40)


pytestmark = pytest.mark.usefixtures("utc_zone")


async def until(
    pilot: Pilot[None], condition: Callable[[], bool], what: str, timeout: float = 10.0
) -> None:
    """Let the app run until ``condition()`` holds; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:g}s")
        await pilot.pause(0.02)


def plain(renderable: object, width: int = 160) -> str:
    """A rich renderable as plain text."""
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text()


def header(app: DashboardApp) -> str:
    return str(app.query_one("#status-header").render())


async def test_panels_show_every_part_of_the_platform() -> None:
    app = build(incident=True)
    async with app.run_test(size=SIZE):
        assert app.services.keys == [
            "booking-service",
            "student-service",
            "course-service",
            "payment-service",
            "chat-service",
        ]
        assert app.services.cell_text("booking-service", 2) == "✖ crit"
        assert app.services.cell_text("booking-service", 6) == "redis"
        assert app.services.cell_text("course-service", 2) == "▲ warn"
        assert app.datastores.cell_text("redis", 1) == "✖ crit"
        assert app.datastores.cell_text("postgres", 5) == "primary"
        assert app.queues.cell_text("purchase-worker", 2).startswith("120 ↑")
        assert app.queues.cell_text("cache-worker", 2) == "no DLQ"
        assert app.queues.cell_text("allocation-worker", 6) == "40.0%"
        # root causes first: redis before the slow service
        assert app.incidents.keys[0] == "datastore-down:redis"
        assert "booking-service" in app.incidents.cell_text("datastore-down:redis", 2)
        assert app.events.cell_text(app.events.keys[0], 1) == "purchase-worker.dlq"
        text = header(app)
        assert "✖ CRIT" in text and "✖ 8 crit" in text and "last result 10:00:50" in text


async def test_filter_by_name_and_tag_then_clear() -> None:
    app = build(incident=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash")
        assert app.focused is app.query_one("#filter")
        await pilot.press(*"booking")
        assert app.services.keys == ["booking-service"]
        assert app.queues.keys == []
        await pilot.press("enter")
        assert app.focused is app.services
        assert "filter: booking" in header(app)
        await pilot.press("escape")
        assert len(app.services.keys) == 5
        # a tag matches too
        await pilot.press("slash", *"core", "enter")
        assert "chat-service" not in app.services.keys and "booking-service" in app.services.keys


async def test_failing_only_toggles_and_keeps_the_cursor_on_its_row() -> None:
    app = build(incident=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down", "down", "down")  # payment-service
        assert app.services.cursor_key() == "payment-service"
        await pilot.press("f")
        assert app.services.keys == [
            "booking-service",
            "student-service",
            "course-service",
            "chat-service",
        ]
        assert "failing only" in header(app)
        assert app.datastores.keys == ["redis"]
        await pilot.press("f")
        assert len(app.services.keys) == 5
        assert app.services.keys[3] == "payment-service"  # registry order is restored


async def test_cursor_follows_its_row_when_rows_come_and_go() -> None:
    app = build(incident=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down", "down")  # course-service, which is failing
        await pilot.press("f")  # booking and student stay above it
        assert app.services.cursor_key() == "course-service"
        await pilot.press("f")
        assert app.services.cursor_key() == "course-service"
        await pilot.press("down")
        assert app.services.cursor_key() == "payment-service"


async def test_the_collector_is_given_back_as_it_was_at_exit() -> None:
    before = gc.get_threshold()
    app = build(incident=False)
    async with app.run_test(size=SIZE):
        assert gc.get_freeze_count() > 0  # what lives as long as the app is kept out of scans
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


async def test_refresh_keeps_cursor_and_updates_only_changed_cells() -> None:
    app = build(incident=False, rounds=3)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down", "down")
        before = app.services.cursor_key()
        from tests.snapshot_apps.platform import round_results

        app.ingest(round_results(3, incident=True))
        await pilot.pause()
        assert app.services.cursor_key() == before == "course-service"
        assert app.services.cell_text("booking-service", 2) == "✖ crit"
        # nothing new: a refresh writes no cell (only changed cells are ever written)
        assert app.refresh_panels() == 0


async def test_enter_opens_the_detail_and_escape_comes_back() -> None:
    app = build(incident=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")  # booking-service
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        # the failing check first
        assert screen.check_ids == ("booking-service.ready", "booking-service.health")
        body = plain(screen.content)
        assert "http://127.0.0.1:3001/ready" in body
        assert "503 Service Unavailable: redis down" in body
        assert "Dependencies, as the service reports them" in body and "redis" in body
        assert "Response excerpt" in body and '"status":"error"' in body
        assert "Recent history" in body and "10:00:50" in body
        await pilot.press("escape")
        assert not isinstance(app.screen, DetailScreen)
        assert app.focused is app.services


async def test_every_panel_opens_a_detail() -> None:
    app = build(incident=True)
    async with app.run_test(size=SIZE) as pilot:
        expected = {
            "#datastores": ("postgres",),
            "#queues": ("allocation-worker.retries", "allocation-worker.dlq"),
            "#incidents": None,  # the redis incident: its checks
            "#events": ("purchase-worker.dlq",),
        }
        for selector, checks in expected.items():
            table = app.query_one(selector, KeyedTable)
            table.focus()
            await pilot.press("enter")
            assert isinstance(app.screen, DetailScreen), selector
            if checks is None:
                assert app.screen.check_ids[0] == "redis"
                assert "booking-service.ready" in app.screen.check_ids
            else:
                assert app.screen.check_ids == checks
            await pilot.press("escape")
            assert not isinstance(app.screen, DetailScreen)


async def test_a_timer_tick_during_shutdown_draws_nothing_and_raises_nothing() -> None:
    """The refresh timer can fire once more while the app shuts down, its screen stack
    already empty: that tick must not end the dashboard with a ScreenStackError."""
    app = build(incident=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")  # a detail screen open when the app quits
        assert isinstance(app.screen, DetailScreen)
    assert app.screen_stack == []
    app._tick()  # what the timer does; returns quietly


async def test_mouse_click_selects_then_opens() -> None:
    app = build(incident=True)
    async with app.run_test(size=SIZE) as pilot:
        # the services panel: border (1) + column header (1), so the second row is at y=3
        await pilot.click("#services", offset=(3, 3))
        assert app.services.cursor_key() == "student-service"
        assert not isinstance(app.screen, DetailScreen)
        await pilot.click("#services", offset=(3, 3))
        assert isinstance(app.screen, DetailScreen)
        assert app.screen.check_ids[0] == "student-service.ready"  # the failing one first


async def test_help_zoom_tab_and_quit() -> None:
    app = build(incident=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("tab")
        assert app.focused is not app.services and isinstance(app.focused, KeyedTable)
        await pilot.press("shift+tab")
        assert app.focused is app.services
        await pilot.press("z")
        assert app.zoomed is app.services
        await pilot.press("z")
        assert app.zoomed is None
        await pilot.press("q")
    assert app.return_code == 0


async def test_small_terminal_stacks_panels_incidents_first() -> None:
    app = build(incident=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        panels = [child.id for child in app.query_one("#panels").children]
        assert panels[0] == "incidents"
        assert app.incidents.region.y < app.services.region.y
    app = build(incident=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        assert app.services.region.x < app.incidents.region.x  # side by side


# --- live: the real engine and real servers -------------------------------------------------


def _live_registry(redis_url: str) -> Registry:
    return Registry.from_data(
        {
            "version": 1,
            "platform": "live-test",
            "defaults": {"interval": "300ms", "timeout": "1s"},
            "datastores": {"redis": {"kind": "redis", "url": redis_url}},
        }
    )


async def test_screen_follows_a_redis_outage_and_recovery(
    redis_factory: Callable[..., object],
) -> None:
    server = redis_factory()
    registry = _live_registry(server.url)  # type: ignore[attr-defined]
    app = DashboardApp(registry, build_plan(registry))
    async with app.run_test(size=SIZE) as pilot:
        await until(
            pilot,
            lambda: (
                app.datastores.keys == ["redis"] and app.datastores.cell_text("redis", 1) == "✔ ok"
            ),
            "redis ok",
        )
        assert app.datastores.cell_text("redis", 5) == "master"
        assert app.incidents.keys == []
        server.stop()  # type: ignore[attr-defined]
        await until(pilot, lambda: app.datastores.cell_text("redis", 1) == "✖ crit", "redis crit")
        assert app.incidents.keys == ["datastore-down:redis"]
        assert "✖ CRIT" in header(app)
        assert any(app.events.cell_text(k, 1) == "redis" for k in app.events.keys)
        server.start()  # type: ignore[attr-defined]
        await until(
            pilot, lambda: app.datastores.cell_text("redis", 1) == "✔ ok", "redis recovered"
        )
        await until(pilot, lambda: app.incidents.keys == [], "incident closed")


async def test_refresh_and_pause_drive_the_scheduler(redis_factory: Callable[..., object]) -> None:
    server = redis_factory()
    registry = Registry.from_data(
        {
            "version": 1,
            "platform": "live-test",
            "defaults": {"interval": "1h"},
            "datastores": {"redis": {"kind": "redis", "url": server.url}},  # type: ignore[attr-defined]
        }
    )
    arrived: list[ResultsArrived] = []
    app = DashboardApp(registry, build_plan(registry))
    async with app.run_test(
        size=SIZE,
        message_hook=lambda m: arrived.append(m) if isinstance(m, ResultsArrived) else None,
    ) as pilot:
        await until(pilot, lambda: app.state.latest("redis") is not None, "first round")
        first = app.state.latest("redis")
        await pilot.press("r")
        await until(
            pilot,
            lambda: app.state.latest("redis") is not first,
            "a run on r despite the 1h interval",
        )
        assert arrived  # results reach the screen through the coalescing message
        await pilot.press("p")
        assert "PAUSED" in header(app)
        scheduler = app.scheduler
        assert scheduler is not None
        assert scheduler.paused  # same loop as the app: the key reaches the scheduler at once
        await pilot.press("p")
        assert "PAUSED" not in header(app)
        assert not scheduler.paused


async def test_silences_from_the_alerting_state_are_shown(
    redis_factory: Callable[..., object], tmp_path: Path
) -> None:
    from opsdash.cli import main

    state = tmp_path / "state.db"
    assert (
        main(["silence", "redis", "--for", "1h", "--reason", "drill", "--state", str(state)]) == 0
    )
    server = redis_factory()
    registry = _live_registry(server.url)  # type: ignore[attr-defined]
    app = DashboardApp(registry, build_plan(registry), alert_state=state)
    async with app.run_test(size=SIZE) as pilot:
        await until(
            pilot,
            lambda: (
                app.datastores.keys == ["redis"]
                and app.datastores.cell_text("redis", 7).endswith("[silenced]")
            ),
            "redis marked silenced",
        )
        assert app.datastores.cell_text("redis", 1) == "✔ ok"  # a silence never hides a status


async def test_a_selection_changes_neither_the_dlq_column_nor_the_panel_totals() -> None:
    from tests.snapshot_apps.platform import NOW, REGISTRY, specs

    chosen = [s for s in specs() if s.id in ("allocation-worker.retries", "booking-service.ready")]
    app = DashboardApp(REGISTRY, chosen, live=False, clock=lambda: NOW)
    async with app.run_test(size=SIZE):
        # its DLQ is not selected, but it has one: not "no DLQ (by design)"
        assert app.queues.cell_text("allocation-worker", 2) == "-"
        assert app.services.border_title == "Services"  # 1 of the 1 selected, not "1/5"
        assert app.queues.border_title == "Queues and workers"
