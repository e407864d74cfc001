"""Worker retry metrics: the ``<worker>.retries`` check.

A probe scrapes the worker's counters once (``retries``, ``failures``, ``processed``,
``dead_letters``, whichever the registry names) from one of three sources:

- ``prometheus``: the worker's ``/metrics``, parsed by ``prometheus_client``; each figure is a
  series selector (``worker_retries_total{worker="allocation-worker"}``), matching series
  summed (see :mod:`opsdash.probes.promtext`); ``process_start_time_seconds``, when exposed,
  marks restarts;
- ``redis-hash``: fields of one hash (``HMGET``, through the datastore's pipeline batcher);
- ``http-json``: dotted paths into a JSON document.

Judging, the same function for both cases (:func:`judge`):

- one sample (a one-shot ``check``): the retry ratio from the counters as scraped, i.e.
  retries / processed since the worker started; nothing processed means no ratio, which is ok;
- with history (:func:`make_derive`): retries, failures and dead letters per minute and the
  retry ratio over the last :data:`WINDOW_S` seconds; a counter that dropped, or a changed
  start time, is a restart and counts from zero (:mod:`opsdash.rates`), never a negative or
  huge rate. Retries with nothing processed in the window is the worst ratio there is.

A configured figure the source does not have (no such series, field or path), or an answer
that is not an exposition / JSON at all, gives ``unknown`` with a plain summary.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import replace

from opsdash import formats
from opsdash.figures import WORKER_COUNTERS, WorkerFigures
from opsdash.probe_plan import Derive, Planned
from opsdash.probes.queue_sources import (
    MissingPath,
    Unjudgeable,
    as_number,
    dotted,
    fetch,
    load_json,
    redis_error,
    registry_datastore,
)
from opsdash.rates import (
    Sample,
    increase_over,
    increase_over_series,
    per_minute,
    ratio_percent,
    window,
)
from opsdash.records import dataclass
from opsdash.redact import redact_url
from opsdash.registry.model import (
    HttpJsonMetrics,
    MetricsBase,
    PrometheusMetrics,
    RedisDatastore,
    RedisHashMetrics,
    Registry,
    Worker,
)
from opsdash.resources import Resources
from opsdash.results import CheckResult, ErrorType, Observation, ProbeFailure
from opsdash.status import Status, worst

WINDOW_S = 300.0
"""Rates and the retry ratio are measured over the last five minutes of samples."""

METRICS_MAX_BODY = 4 * 1024 * 1024
"""A ``/metrics`` page with histograms per route runs to hundreds of KiB; past 4 MiB it is not
a worker's page any more (and the cap still bounds memory)."""

FIGURES = WORKER_COUNTERS
"""The counters a worker may expose, in the order they are shown."""

NO_DLQ = "none (by design)"

_ACCEPT = "text/plain;version=0.0.4;q=1,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1"


@dataclass(frozen=True, slots=True)
class Scrape:
    """One reading of a worker's counters."""

    values: Mapping[str, float | None]
    """Each configured figure's value; ``None`` when the source does not have it."""
    started: float | None = None
    """The worker's start time, when the source tells (a restart marker)."""
    kind: str = "series"
    """What the figures are called in this source, for a summary naming missing ones."""
    series: Mapping[str, Mapping[str, float]] | None = None
    """``prometheus``: each figure's matching series apart (rates are taken per series)."""


Reader = Callable[[Resources], Awaitable[Scrape]]


def plan(name: str, worker: Worker, registry: Registry) -> Iterator[Planned]:
    """The ``<worker>.retries`` check, when the worker has metrics: probe, target and derive
    step."""
    metrics = worker.metrics
    if metrics is None:
        return
    reader, target = _source(metrics, registry)
    context = _Context(
        metrics=metrics,
        max_attempts=worker.max_attempts,
        dlq=NO_DLQ if worker.dlq is None else f"{name}.dlq",
    )

    async def probe(resources: Resources) -> Observation:
        return await probe_metrics(resources, reader, context)

    yield Planned(
        check="retries",
        kind="retries",
        target=target,
        probe=probe,
        judge_latency=False,
        derive=make_derive(context),
        heavy_start=isinstance(metrics, RedisHashMetrics),  # read through redis.asyncio
    )


@dataclass(frozen=True, slots=True)
class _Context:
    metrics: MetricsBase
    max_attempts: int | None
    dlq: str


def configured(metrics: MetricsBase) -> dict[str, str]:
    """The figures the registry names, with their selector / field / path."""
    return {f: getattr(metrics, f) for f in FIGURES if getattr(metrics, f) is not None}


async def probe_metrics(resources: Resources, reader: Reader, context: _Context) -> Observation:
    """Scrape once and judge from the counters as scraped."""
    base = WorkerFigures(
        source=getattr(context.metrics, "source", ""),
        max_attempts=context.max_attempts,
        dlq=context.dlq,
        sampled_at=time.time(),
    )
    try:
        scrape = await reader(resources)
    except Unjudgeable as exc:
        return Observation(Status.UNKNOWN, str(exc), replace(base, sampled_at=time.time()))
    negative = [
        f"{wanted_name} is {formats.number(value)}"
        for name, wanted_name in configured(context.metrics).items()
        for value in _values(scrape, name)
        if value < 0
    ]
    if negative:
        # A counter only goes up from zero: a negative one is a broken exporter, and judging
        # it (a negative ratio reads as fine) would hide that.
        summary = f"a counter cannot be negative: {', '.join(negative)}"
        return Observation(Status.UNKNOWN, summary, replace(base, sampled_at=time.time()))
    figures = replace(
        base,
        retries_total=scrape.values.get("retries"),
        failures_total=scrape.values.get("failures"),
        processed_total=scrape.values.get("processed"),
        dead_letters_total=scrape.values.get("dead_letters"),
        started_at=scrape.started,
        sampled_at=time.time(),
        series=scrape.series,
    )
    wanted = configured(context.metrics)
    missing = [wanted[f] for f in wanted if scrape.values.get(f) is None]
    if missing:
        summary = f"{scrape.kind} not found: {', '.join(missing)}"
        return Observation(Status.UNKNOWN, summary, replace(figures, missing=tuple(missing)))
    return judge(context, [figures])


def _values(scrape: Scrape, name: str) -> list[float]:
    """Every value behind figure ``name``: its series apart when known, else the figure."""
    if scrape.series is not None and name in scrape.series:
        return list(scrape.series[name].values())
    value = scrape.values.get(name)
    return [] if value is None else [value]


# --- judging ----------------------------------------------------------------------------


def _increase(points: Sequence[WorkerFigures], name: str) -> float:
    """How much counter ``name`` grew across ``points``: per series and summed when every
    point kept its series (``sum(rate())``), else from the scraped totals."""
    if all(p.series is not None and name in p.series for p in points):
        return increase_over_series(
            [(p.sampled_at, p.started_at, p.series[name]) for p in points if p.series is not None]
        )
    return increase_over(_samples(points, name))


def _samples(points: Sequence[WorkerFigures], name: str) -> list[Sample]:
    return [
        Sample(point.sampled_at, value, point.started_at)
        for point in points
        if (value := point.total(name)) is not None
    ]


def judge(context: _Context, points: Sequence[WorkerFigures]) -> Observation:
    """Status, summary and figures (the current point's, with rates and ratio) from scraped
    points (oldest first, the current one last): over the window when there are two or more,
    else since the worker started."""
    metrics = context.metrics
    current = points[-1]
    rates: dict[str, float | None] = dict.fromkeys(FIGURES)
    parts: list[str] = []
    statuses = [Status.OK]
    if len(points) >= 2:
        span = points[-1].sampled_at - points[0].sampled_at
        increases = {f: _increase(points, f) for f in configured(metrics)}
        for name, increase in increases.items():
            rates[name] = _round(per_minute(increase, span))
        retries, processed = increases.get("retries"), increases.get("processed")
        ratio = None if retries is None or processed is None else ratio_percent(retries, processed)
        basis_name, window_s = "window", round(span, 1)
        shown = [
            f"{label} {formats.number(rate)}/min"
            for name, label in (
                ("retries", "retries"),
                ("failures", "failures"),
                ("dead_letters", "dead letters"),
            )
            if (rate := rates[name]) is not None
        ]
        if shown:
            parts.append(", ".join(shown))
        basis = f"over {formats.duration(span)}"
        if ratio is not None:
            parts.append(f"retry ratio {formats.number(ratio)}% {basis}")
            statuses.append(metrics.retry_ratio.judge(ratio))
        elif retries and processed == 0:
            parts.append(f"retrying with nothing processed {basis}")
            statuses.append(metrics.retry_ratio.judge(float("inf")))
        statuses.append(metrics.retry_rate.judge(rates["retries"]))
        statuses.append(metrics.failure_rate.judge(rates["failures"]))
    else:
        retries, processed = current.retries_total, current.processed_total
        ratio = None if retries is None or processed is None else ratio_percent(retries, processed)
        basis_name, window_s = "since start", None
        if ratio is not None:
            parts.append(
                f"retry ratio {formats.number(ratio)}% since start "
                f"({formats.number(retries or 0)} retries / "
                f"{formats.number(processed or 0)} processed)"
            )
            statuses.append(metrics.retry_ratio.judge(ratio))
        elif processed == 0:
            parts.append("no jobs processed yet")
        parts.append("rates not known yet")
    if context.max_attempts is not None:
        parts.append(f"up to {context.max_attempts} attempts")
    if context.dlq == NO_DLQ:
        parts.append("no DLQ (by design)")
    figures = replace(
        current,
        retries_per_min=rates["retries"],
        failures_per_min=rates["failures"],
        processed_per_min=rates["processed"],
        dead_letters_per_min=rates["dead_letters"],
        retry_ratio_pct=_round(ratio),
        ratio_basis=basis_name,
        window_s=window_s,
    )
    return Observation(worst(statuses), "; ".join(parts), figures)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _point(result: CheckResult) -> WorkerFigures | None:
    figures = result.figures
    if result.error is not None or not isinstance(figures, WorkerFigures) or not figures.judged:
        return None
    return figures


def make_derive(context: _Context, *, span: float = WINDOW_S) -> Derive:
    """Re-judge a fresh scrape with the earlier ones: rates and ratio over ``span``."""

    def derive(current: CheckResult, history: Sequence[CheckResult]) -> CheckResult:
        latest = _point(current)
        if latest is None:
            return current
        earlier = [
            p for p in map(_point, history) if p is not None and p.sampled_at < latest.sampled_at
        ]
        times = [Sample(p.sampled_at, 0.0) for p in [*earlier, latest]]
        kept = {sample.at for sample in window(times, span)}
        points = [p for p in [*earlier, latest] if p.sampled_at in kept]
        if len(points) < 2:
            return current
        judged = judge(context, points)
        return replace(
            current, status=judged.status, summary=judged.summary, figures=judged.figures
        )

    return derive


# --- sources ----------------------------------------------------------------------------


def _source(metrics: MetricsBase, registry: Registry) -> tuple[Reader, str]:
    if isinstance(metrics, PrometheusMetrics):
        return _prometheus_reader(metrics), redact_url(metrics.url)
    if isinstance(metrics, RedisHashMetrics):
        datastore = registry_datastore(registry, metrics.datastore, RedisDatastore)
        target = f"{redact_url(datastore.url)} HMGET {metrics.key}"
        return _redis_hash_reader(metrics, datastore), target
    if isinstance(metrics, HttpJsonMetrics):
        return _http_json_reader(metrics, registry.defaults.max_body), redact_url(metrics.url)
    raise TypeError(f"unknown metrics source {type(metrics).__name__}")  # the model forbids it


def _lines_of(content: bytes, names: tuple[str, ...]) -> str:
    """The lines of a metrics page that can matter to selectors of ``names``: comments
    (``# TYPE``, ``# EOF``...) and samples whose name starts with one of them, in page order.

    Found with ``bytes.find`` for each line head (a name that another one starts with is
    looked for once), not by splitting the page: a 4 MiB page is 75,000 lines, and splitting
    its text (decoded first) took ~40 ms and ~12 MB here for the few lines a check reads;
    the scans take ~8 ms and hold only what they keep. Lines end at ``\n``, as the parsers
    read them."""
    heads = sorted({b"#", *(name.encode() for name in names)})
    # "worker_retries" finds every line "worker_retries_total" would: look for it alone.
    heads = [head for n, head in enumerate(heads) if n == 0 or not head.startswith(heads[n - 1])]
    kept: dict[int, bytes] = {}  # by where the line starts: page order, each line once
    for head in heads:
        for start in _line_starts(content, head):
            end = content.find(b"\n", start)
            kept[start] = content[start : len(content) if end < 0 else end]
    lines = (kept[start] for start in sorted(kept))
    return b"\n".join(lines).decode("utf-8", errors="replace") + "\n"


def _line_starts(content: bytes, head: bytes) -> Iterator[int]:
    """Where the lines of ``content`` that begin with ``head`` begin."""
    if content.startswith(head):
        yield 0
    needle = b"\n" + head
    at = content.find(needle)
    while at >= 0:
        yield at + 1
        at = content.find(needle, at + 1)


def _prometheus_reader(metrics: PrometheusMetrics) -> Reader:
    from opsdash.offload import OFF_LOOP_ABOVE, parse_off_loop
    from opsdash.probes.promtext import START_TIME_SERIES, DuplicateSeries, Selector, parse

    selectors: dict[str, Selector] = {}
    problems: list[str] = []
    for name, text in configured(metrics).items():
        try:
            selectors[name] = Selector.parse(text)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")

    wanted = tuple(
        sorted({START_TIME_SERIES, *(n for sel in selectors.values() for n in sel.names())})
    )

    async def read(resources: Resources) -> Scrape:
        if problems:
            raise ProbeFailure(ErrorType.CONFIG, "bad selector: " + "; ".join(problems))
        body = await fetch(
            resources.http(),
            metrics.url,
            max_body=METRICS_MAX_BODY,
            headers={"Accept": _ACCEPT, **metrics.headers},
            what="metrics page",
        )
        if len(body.content) > OFF_LOOP_ABOVE:
            # A legal page may be 4 MiB (60,000 series: seconds of parsing, ~60 MB of objects)
            # for the handful of series a check reads: only their lines (and the comments that
            # declare families) are parsed, which selects exactly what parsing it all would.
            text = await parse_off_loop(len(body.content), _lines_of, body.content, wanted)
        else:
            text = body.text
        try:
            # Still large (a page of nothing but wanted series): off the loop.
            exposition = await parse_off_loop(len(text), parse, text, body.content_type)
        except ValueError as exc:
            start = body.content[:60].decode("utf-8", errors="replace")  # the page's, not the cut's
            snippet = start.strip().replace("\n", " ")
            raise Unjudgeable(f"not a Prometheus metrics page ({exc}): {snippet!r}") from None
        series: dict[str, dict[str, float]] = {}
        values: dict[str, float | None] = {}
        for name, selector in selectors.items():
            try:
                found = exposition.series(selector)
            except DuplicateSeries as exc:
                raise Unjudgeable(f"{metrics_name(selector)}: {exc}; the page is broken") from None
            values[name] = None if found is None else float(sum(found.values()))
            if found is not None:
                series[name] = found
        return Scrape(values, exposition.value(START_TIME_SERIES), series=series)

    return read


def metrics_name(selector: object) -> str:
    """A selector as the registry wrote it, for a summary."""
    return str(selector)


def _redis_hash_reader(metrics: RedisHashMetrics, datastore: RedisDatastore) -> Reader:
    from opsdash.probes.clients import load_redis

    load_redis()
    fields = configured(metrics)

    async def read(resources: Resources) -> Scrape:
        from redis.exceptions import ResponseError

        from opsdash.probes.redis_batch import cmd, redis_batcher

        batcher = await redis_batcher(resources, metrics.datastore, datastore)
        try:
            (replies,) = await batcher.execute(cmd("hmget", metrics.key, *fields.values()))
        except ResponseError as exc:
            raise redis_error(exc, metrics.key, "hash") from None
        values = {
            name: None if reply is None else as_number(reply, f"field {field!r}")
            for (name, field), reply in zip(fields.items(), replies, strict=True)
        }
        return Scrape(values, kind=f"fields of hash {metrics.key}")

    return read


def _http_json_reader(metrics: HttpJsonMetrics, max_body: int) -> Reader:
    paths = configured(metrics)

    async def read(resources: Resources) -> Scrape:
        body = await fetch(
            resources.http(), metrics.url, max_body=max_body, headers=metrics.headers, what="JSON"
        )
        document = await load_json(body)
        values: dict[str, float | None] = {}
        for name, path in paths.items():
            try:
                found = dotted(document, path)
            except MissingPath:
                values[name] = None
                continue
            # Present but not a number is a garbage answer, not a missing figure.
            values[name] = as_number(found, path)
        return Scrape(values, kind="JSON paths")

    return read
