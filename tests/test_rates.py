"""Rates from successive samples: resets never give negative or huge rates."""

from __future__ import annotations

import pytest

from opsdash.rates import (
    Sample,
    counter_increase,
    gauge_growth,
    increase_over,
    increase_over_series,
    per_minute,
    ratio_percent,
    seconds_until,
    window,
)


def test_counter_increase_is_the_difference_while_the_counter_climbs() -> None:
    assert counter_increase(10, 25) == 15


def test_a_counter_that_dropped_was_reset_and_counts_from_zero() -> None:
    # A worker restarted between the scrapes: 1000 -> 7 is 7 new events, not -993.
    assert counter_increase(1000, 7) == 7


def test_a_restart_marker_counts_from_zero_even_when_the_new_value_is_higher() -> None:
    # Restarted and already past the old value: without the marker this would read 20.
    assert counter_increase(5, 25, restarted=True) == 25


def test_increase_over_a_window_loses_only_the_step_with_the_reset() -> None:
    samples = [Sample(0, 100), Sample(60, 160), Sample(120, 10), Sample(180, 40)]
    assert increase_over(samples) == 60 + 10 + 30


def test_increase_over_uses_start_times_to_see_a_hidden_reset() -> None:
    samples = [Sample(0, 10, started=1.0), Sample(60, 50, started=2.0)]
    assert increase_over(samples) == 50


def test_a_counters_rate_is_its_increase_per_minute_across_a_restart() -> None:
    assert per_minute(increase_over([Sample(0, 0), Sample(30, 15)]), 30) == pytest.approx(30.0)
    restarted = per_minute(increase_over([Sample(0, 5000), Sample(60, 3)]), 60)
    assert restarted == pytest.approx(3.0)


def test_no_rate_over_a_step_that_does_not_move_forward() -> None:
    assert per_minute(5, 0) is None
    assert per_minute(increase_over([Sample(10, 1), Sample(10, 2)]), 10 - 10) is None


def test_gauge_growth_may_be_negative_when_a_queue_drains() -> None:
    assert gauge_growth(Sample(0, 10), Sample(120, 30)) == pytest.approx(10.0)
    assert gauge_growth(Sample(0, 30), Sample(60, 0)) == pytest.approx(-30.0)


def test_seconds_until_the_depth_crosses_crit() -> None:
    assert seconds_until(40, 10.0, 100) == pytest.approx(360.0)
    assert seconds_until(120, 10.0, 100) == 0.0
    assert seconds_until(40, 0.0, 100) is None
    assert seconds_until(40, -3.0, 100) is None
    assert seconds_until(40, 10.0, None) is None


def test_ratio_without_processed_jobs_is_none_not_an_error() -> None:
    assert ratio_percent(5, 100) == pytest.approx(5.0)
    assert ratio_percent(5, 0) is None


def test_window_keeps_recent_samples_and_at_least_two() -> None:
    samples = [Sample(t, 0) for t in (0, 100, 200, 290, 300)]
    assert [s.at for s in window(samples, 150)] == [200, 290, 300]
    sparse = [Sample(0, 0), Sample(1000, 0)]
    assert [s.at for s in window(sparse, 300)] == [0, 1000]
    assert window([], 300) == []


# --- Prometheus' rate() rule (issue 11, class 8) --------------------------------------------


def test_resets_follow_prometheus_rate_any_drop_is_a_reset_from_zero() -> None:
    # rate()'s counter correction: a value lower than the one before means the counter restarted
    # at zero, so the step's increase is the new value. 10 -> 20 -> 5 -> 15 grew 10 + 5 + 10.
    samples = [Sample(0, 10), Sample(60, 20), Sample(120, 5), Sample(180, 15)]
    assert increase_over(samples) == 25
    assert per_minute(increase_over(samples), 180) == pytest.approx(25 / 3)


def test_series_are_rated_apart_then_summed_as_sum_of_rate() -> None:
    # Two queues' counters; queue b's series vanishes (its label gone). Summed first, the total
    # drops from 9,900,000 to 100 and reads as a reset: 100 "new" retries. Per series: only
    # queue a's +40 counted.
    points = [
        (0.0, None, {'r{queue="a"}': 60.0, 'r{queue="b"}': 9_899_940.0}),
        (60.0, None, {'r{queue="a"}': 100.0}),
    ]
    assert increase_over_series(points) == 40
    assert increase_over([Sample(0, 9_900_000), Sample(60, 100)]) == 100  # rate(sum()) is wrong


def test_a_series_reset_and_a_new_series_each_count_from_zero() -> None:
    points = [
        (0.0, None, {"a": 500.0}),
        (60.0, None, {"a": 3.0, "b": 7.0}),  # a restarted (dropped), b printed after its first +7
        (120.0, None, {"a": 13.0, "b": 9.0}),
    ]
    assert increase_over_series(points) == 3 + 7 + 10 + 2


def test_a_changed_start_time_resets_every_series() -> None:
    points = [(0.0, 1.0, {"a": 5.0}), (60.0, 2.0, {"a": 25.0})]
    assert increase_over_series(points) == 25
