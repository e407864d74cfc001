"""Series selectors over a Prometheus / OpenMetrics exposition, parsed by ``prometheus_client``.

A selector is what PromQL calls an instant vector selector, without ranges or functions::

    worker_retries_total{worker="allocation-worker", queue!="test", env=~"prod|eu"}

Every series whose name and labels match is summed (a worker exposing one series per queue
or per error class gives one figure); :meth:`Exposition.series` keeps them apart for rates,
which are taken per series (:func:`opsdash.rates.increase_over_series`). A series written twice
(same name, same labels) makes the page unjudgeable for any selector that matches it:
summing both would double the figure, picking one would be a guess.

Names are matched the way both formats spell counters:
the text format writes ``foo_total`` for a counter, OpenMetrics names the family ``foo`` and
its sample ``foo_total``, and some exporters expose a bare ``foo``; a selector written either
way finds the counter. A family's ``_created`` samples are never summed (they are timestamps).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal, cast

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families as text_families

from opsdash.records import dataclass

Op = Literal["=", "!=", "=~", "!~"]

_NAME = re.compile(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*")
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,)?')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}

START_TIME_SERIES = "process_start_time_seconds"
"""The standard process collector's start time: a change means the worker restarted."""


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label condition of a selector."""

    label: str
    op: Op
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a series with ``labels`` passes (a missing label counts as ``""``)."""
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found


@dataclass(frozen=True, slots=True)
class Selector:
    """A metric name and label matchers."""

    name: str
    matchers: tuple[Matcher, ...] = ()

    @classmethod
    def parse(cls, selector: str) -> Selector:
        """Parse ``name{label="value",...}``; ``ValueError`` says what is wrong."""
        match = _NAME.match(selector)
        if match is None:
            raise ValueError(f"expected a metric name at the start of {selector!r}")
        name, rest = match.group(1), selector[match.end() :]
        matchers: list[Matcher] = []
        if rest.startswith("{"):
            body = rest[1:]
            while True:
                if body.lstrip().startswith("}"):
                    rest = body.lstrip()[1:]
                    break
                found = _MATCHER.match(body)
                if found is None:
                    raise ValueError(f'expected label="value" or }} in {selector!r}')
                label, op, raw, comma = found.groups()
                value = re.sub(r"\\.", lambda m: _UNESCAPE.get(m.group(0), m.group(0)), raw)
                if op in ("=~", "!~"):
                    try:
                        re.compile(value)
                    except re.error as exc:
                        raise ValueError(f"bad regular expression {value!r}: {exc}") from None
                matchers.append(Matcher(label, cast(Op, op), value))
                body = body[found.end() :]
                if not comma and not body.lstrip().startswith("}"):
                    raise ValueError(f"expected , or }} after {label} in {selector!r}")
        if rest.strip():
            raise ValueError(f"unexpected {rest.strip()!r} in {selector!r}")
        return cls(name, tuple(matchers))

    def names(self) -> set[str]:
        """The sample names this selector accepts (with and without ``_total``)."""
        if self.name.endswith("_total"):
            return {self.name, self.name.removesuffix("_total")}
        return {self.name, self.name + "_total"}

    def __str__(self) -> str:
        if not self.matchers:
            return self.name
        labels = ",".join(f'{m.label}{m.op}"{m.value}"' for m in self.matchers)
        return f"{self.name}{{{labels}}}"


class DuplicateSeries(ValueError):
    """The page writes one series (name and labels) more than once."""


def series_key(name: str, labels: Mapping[str, str]) -> str:
    """``name{a="1",b="2"}``, labels sorted: one series' identity."""
    inner = ",".join(f'{key}="{labels[key]}"' for key in sorted(labels))
    return f"{name}{{{inner}}}"


@dataclass(frozen=True, slots=True)
class Exposition:
    """The samples of one scrape, by sample name, and the family names seen."""

    samples: Mapping[str, tuple[tuple[Mapping[str, str], float], ...]]
    families: frozenset[str]
    duplicates: frozenset[str] = frozenset()
    """The sample names with a series written more than once."""

    def series(self, selector: Selector) -> dict[str, float] | None:
        """Each series ``selector`` matches, by :func:`series_key`.

        Empty when the metric is declared but no series matches yet (client libraries print a
        labelled counter's ``# TYPE`` before its first increment); ``None`` when the
        exposition does not know the metric at all. :class:`DuplicateSeries` when a matching
        series is written twice.
        """
        names = selector.names()
        found: dict[str, float] = {}
        seen = False
        for name in names:
            for labels, value in self.samples.get(name, ()):
                seen = True
                if all(matcher.matches(labels) for matcher in selector.matchers):
                    key = series_key(name, labels)
                    if key in found and name in self.duplicates:
                        raise DuplicateSeries(f"series {key} appears more than once")
                    found[key] = value
        if seen or names & self.families:
            return found
        return None

    def select(self, selector: Selector) -> float | None:
        """The sum of the series ``selector`` matches (``0`` / ``None`` as :meth:`series`)."""
        found = self.series(selector)
        return None if found is None else float(sum(found.values()))

    def value(self, name: str) -> float | None:
        """The value of an unlabelled series such as ``process_start_time_seconds``."""
        series = self.samples.get(name, ())
        return series[0][1] if series else None


def parse(text: str, content_type: str = "") -> Exposition:
    """Parse a scrape; ``ValueError`` when it is not an exposition in either format.

    OpenMetrics when the server says so (``application/openmetrics-text``), else the classic
    text format. Non-finite values (NaN, infinities) are left out: a sum with them means
    nothing.
    """
    is_openmetrics = "openmetrics" in content_type.lower()
    families: Iterable[Any] = (openmetrics_families if is_openmetrics else text_families)(text)
    samples: dict[str, list[tuple[Mapping[str, str], float]]] = {}
    names: set[str] = set()
    try:
        for family in families:
            names.add(family.name)
            for sample in family.samples:
                # A family's ``_created`` sample is a timestamp; a metric that is itself
                # named ``..._created`` (a gauge ``jobs_created``) is a figure like any other.
                created = sample.name.endswith("_created") and sample.name != family.name
                if created or not math.isfinite(sample.value):
                    continue
                samples.setdefault(sample.name, []).append((sample.labels, float(sample.value)))
    except ValueError:
        raise
    except Exception as exc:  # the parser's own bugs on hostile input are a garbage answer too
        raise ValueError(f"{type(exc).__name__}: {exc}") from exc
    frozen = {name: tuple(series) for name, series in samples.items()}
    duplicates = frozenset(
        name
        for name, series in frozen.items()
        if len({tuple(sorted(labels.items())) for labels, _ in series}) < len(series)
    )
    return Exposition(frozen, frozenset(names), duplicates)
