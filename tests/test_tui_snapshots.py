"""Snapshots of the dashboard (pytest-textual-snapshot) on fixed data under a frozen clock:
healthy, during an incident, and the detail screen, at 80x24 and 160x48.

Update after an intended change with ``pytest tests/test_tui_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.snapshot_apps.platform import build

SIZES = [(80, 24), (160, 48)]


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Times on screen are local: pin the zone so snapshots match everywhere."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


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
