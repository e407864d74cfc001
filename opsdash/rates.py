"""Rates from successive samples: counter increases with resets, gauge growth, time to a limit.

Pure functions over plain numbers, so that the DLQ and worker-metrics checks (and anything
else with history) share one set of rules (reference section 4):

- a counter only goes up; a value lower than the one before means the process restarted and
  counted from zero again, so the increase over that step is the new value itself, never a
  negative number; a changed process start time means the same even when the new value
  already overtook the old one;
- as Prometheus' ``sum(rate(...))``, not ``rate(sum(...))``: when a figure is the sum of several
  series, each series' increase is taken on its own and the increases are summed, so a series
  that disappears (a queue label gone) is not a drop of the sum read as a reset;
- a gauge (a queue depth) may go up and down: its growth is a plain difference;
- no rate from a single sample, nor over a step that does not move forward in time.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

from opsdash.records import dataclass

SECONDS_PER_MINUTE = 60.0


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of a figure at a time (seconds since the epoch)."""

    at: float
    value: float
    started: float | None = None
    """When the process that counts started (a counter's reset marker), when known."""


def counter_increase(previous: float, current: float, *, restarted: bool = False) -> float:
    """How much a counter grew from ``previous`` to ``current``.

    A drop, or ``restarted``, means the counter was reset in between: it counted from zero,
    so the increase is ``current`` (what happened before the reset is lost, not negative).
    """
    if restarted or current < previous:
        return max(current, 0.0)
    return current - previous


def increase_over(samples: Sequence[Sample]) -> float:
    """The total increase of a counter across ``samples`` (oldest first), step by step, so a
    reset in the middle of the window costs only that step."""
    total = 0.0
    for before, after in itertools.pairwise(samples):
        restarted = (
            before.started is not None
            and after.started is not None
            and after.started != before.started
        )
        total += counter_increase(before.value, after.value, restarted=restarted)
    return total


SeriesPoint = tuple[float, float | None, Mapping[str, float]]
"""``(at, started, {series: value})``: one scrape of a figure that sums several series."""


def increase_over_series(points: Sequence[SeriesPoint]) -> float:
    """The total increase of a figure that sums several series, each series on its own, then
    summed (``points`` oldest first). Step by step: a series in both scrapes adds its own
    :func:`counter_increase`; a series new in the later one counts from zero (client libraries
    print a labelled counter only after its first increment); a series gone adds nothing,
    where the drop of the sum would have read as a reset."""
    total = 0.0
    for (_, started_before, before), (_, started_after, after) in itertools.pairwise(points):
        restarted = (
            started_before is not None
            and started_after is not None
            and started_after != started_before
        )
        for key, value in after.items():
            previous = before.get(key)
            if previous is None:
                total += max(value, 0.0)
            else:
                total += counter_increase(previous, value, restarted=restarted)
    return total


def per_minute(amount: float, seconds: float) -> float | None:
    """``amount`` spread over ``seconds``, per minute; ``None`` when no time passed."""
    if seconds <= 0:
        return None
    return amount * SECONDS_PER_MINUTE / seconds


def gauge_growth(first: Sample, last: Sample) -> float | None:
    """How fast a gauge (a queue depth) moved from ``first`` to ``last``, per minute; negative
    when it drains; ``None`` when no time passed."""
    return per_minute(last.value - first.value, last.at - first.at)


def seconds_until(
    value: float, growth_per_minute: float | None, limit: float | None
) -> float | None:
    """When a figure growing at ``growth_per_minute`` reaches ``limit``, in seconds from now.

    ``0`` when it is already there; ``None`` when there is no limit or it is not growing.
    """
    if limit is None:
        return None
    if value >= limit:
        return 0.0
    if growth_per_minute is None or growth_per_minute <= 0:
        return None
    return (limit - value) / growth_per_minute * SECONDS_PER_MINUTE


def ratio_percent(part: float, whole: float) -> float | None:
    """``part`` as a percentage of ``whole``; ``None`` when ``whole`` is zero (nothing to
    compare with, which is not a problem)."""
    if whole <= 0:
        return None
    return part * 100.0 / whole


def window(samples: Sequence[Sample], span: float) -> list[Sample]:
    """The samples (oldest first) within ``span`` seconds of the newest one.

    When every earlier sample is older than that (a long interval), the newest earlier one
    is kept, so that two samples always give a figure.
    """
    if not samples:
        return []
    newest = samples[-1]
    recent = [sample for sample in samples if newest.at - sample.at <= span]
    if len(recent) < 2 and len(samples) >= 2:
        return [samples[-2], newest]
    return recent
