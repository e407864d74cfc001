"""The registry's unit strings: durations, percentages, rates and sizes."""

from __future__ import annotations

import math

import pytest

from opsdash.registry.units import (
    format_duration,
    parse_duration,
    parse_percent,
    parse_rate,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("3s", 3.0),
        ("1m", 60.0),
        ("1.5h", 5400.0),
        ("14d", 14 * 86400.0),
        (" 2 s ", 2.0),
        ("0s", 0.0),
        (3, 3.0),
        (0.25, 0.25),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "bad", ["3 seconds", "1m30s", "3S", "-1s", "s", "", -1, math.inf, math.nan, True, None, [3]]
)
def test_bad_durations_say_what_is_expected(bad: object) -> None:
    with pytest.raises(
        ValueError, match=r"expected a duration such as 500ms, 3s, 1m, 1h or 14d; found"
    ):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.5, "500ms"), (3.0, "3s"), (60.0, "1m"), (90.0, "90s"), (86400.0, "1d")]
)
def test_format_duration_round_trips(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize(
    ("text", "value"), [("80%", 80.0), ("99.5 %", 99.5), (5, 5.0), ("0%", 0.0), ("150%", 150.0)]
)
def test_percentages(text: object, value: float) -> None:
    assert parse_percent(text) == value


@pytest.mark.parametrize("bad", ["80", "80 percent", "-5%", -5, math.nan, False])
def test_bad_percentages(bad: object) -> None:
    with pytest.raises(ValueError, match=r"expected a percentage such as 80%; found"):
        parse_percent(bad)


@pytest.mark.parametrize(
    ("text", "per_minute"),
    [
        ("1/min", 1.0),
        ("10/h", 10 / 60),
        ("2/s", 120.0),
        ("3 / minute", 3.0),
        ("1/hour", 1 / 60),
        (4, 4.0),
    ],
)
def test_rates_are_per_minute(text: object, per_minute: float) -> None:
    assert parse_rate(text) == pytest.approx(per_minute)


@pytest.mark.parametrize("bad", ["1/day", "fast", "1 per min", "/min", -1, math.inf])
def test_bad_rates(bad: object) -> None:
    with pytest.raises(ValueError, match=r"expected a rate such as 1/min, 10/h or 2/s; found"):
        parse_rate(bad)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("65536", 65536),
        (65536, 65536),
        ("64KiB", 65536),
        ("1MiB", 1024**2),
        ("1 GB", 10**9),
        ("10B", 10),
    ],
)
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["64kb", "1.5MiB", "-1", -1, 1.5, True, "big"])
def test_bad_sizes(bad: object) -> None:
    with pytest.raises(ValueError, match=r"expected a size such as 65536, 64KiB or 1MiB; found"):
        parse_size(bad)
