"""One formatter per concept: the spellings every face shares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from opsdash.formats import clip, duration, iso, iso_at, number


@pytest.mark.parametrize(
    ("seconds", "text", "compact"),
    [
        (-3, "0s", "0s"),
        (42, "42s", "42s"),
        (12 * 60 + 59, "12m", "12m"),
        (2 * 3600, "2h", "2h00m"),
        (3 * 3600 + 5 * 60, "3h 5m", "3h05m"),
        (23 * 3600 + 59 * 60, "23h 59m", "23h59m"),
        (2 * 86400, "2d", "2d"),
        (2 * 86400 + 4 * 3600, "2d 4h", "2d"),
    ],
)
def test_a_duration_reads_the_same_in_a_summary_and_in_a_narrow_column(
    seconds: float, text: str, compact: str
) -> None:
    assert duration(seconds) == text
    assert duration(seconds, compact=True) == compact
    assert len(duration(seconds, compact=True)) <= 6  # the dashboard's "Since" column


def test_numbers_drop_a_trailing_zero_decimal() -> None:
    assert number(14.998) == "15"
    assert number(2.25) == "2.2"  # to one decimal (round half to even)
    assert number(3) == "3"


def test_clip_keeps_one_line_within_the_width() -> None:
    assert clip("redis\n  down   hard", 40) == "redis down hard"
    assert clip("abcdefgh", 5) == "abcd…"
    assert clip("abc", 0) == "…"


def test_times_are_utc_with_a_z() -> None:
    moment = datetime(2026, 1, 25, 11, 0, tzinfo=timezone(timedelta(hours=1)))
    assert iso(moment) == "2026-01-25T10:00:00.000Z"
    assert iso(moment, timespec="seconds") == "2026-01-25T10:00:00Z"
    assert iso_at(moment.timestamp()) == iso(moment.astimezone(UTC))
