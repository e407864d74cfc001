"""What the typed figures cost ``check --json``: building every check's ``details`` with
:func:`opsdash.figures.details_json`, against the baseline of copying the same ``details`` as
ready-made dicts (what the free-form mapping cost before figures were typed), and against
building the whole ``opsdash.check/v1`` document (what a user waits for), same run.

2,000 HTTP checks with a readiness body (status, format, two dependencies) and a DLQ and a
worker-metrics check per 100 of them.

    .venv/bin/python -m bench.figures_json [--checks 2000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from opsdash.figures import DlqFigures, Figures, HttpFigures, WorkerFigures, details_json
from opsdash.plan import build_plan
from opsdash.registry.model import Registry
from opsdash.render.json import check_document, dumps
from opsdash.results import CheckResult
from opsdash.state import snapshot_of
from opsdash.status import Status


def _figures(kind: str, index: int) -> Figures:
    if kind == "dlq":
        return DlqFigures("redis-list", index % 7, 1_769_335_200.0, growth_per_min=0.5)
    if kind == "retries":
        return WorkerFigures("prometheus", 5, "w.dlq", 1_769_335_200.0, 30, 2, 400, None)
    failing = index % 10 == 0
    return HttpFigures(
        http_status=503 if failing else 200,
        format="nestjs-terminus",
        dependencies={"redis": Status.CRIT if failing else Status.OK, "database": Status.OK},
    )


def _median(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checks", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    services = args.checks // 2
    registry = Registry.from_data(
        {
            "version": 1,
            "platform": "bench",
            "services": {f"s{i:04d}": {"url": "http://127.0.0.1:1"} for i in range(services)},
            "workers": {
                f"w{i:03d}": {
                    "dlq": {"source": "http-json", "url": "http://127.0.0.1:1", "path": "d"},
                    "metrics": {"source": "http-json", "url": "http://127.0.0.1:1", "retries": "r"},
                }
                for i in range(services // 100)
            },
        }
    )
    now = datetime.now(UTC)
    results = [
        CheckResult(s.id, s.component, s.check, s.kind, Status.OK, "200 OK", 1.0, "t",
                    _figures(s.kind, i), None, now)
        for i, s in enumerate(build_plan(registry))
    ]  # fmt: skip
    ready_made = [details_json(r.figures) for r in results]
    snapshot = snapshot_of(registry, build_plan(registry), results)

    baseline = _median(lambda: [dict(d) for d in ready_made], args.repeat)
    typed = _median(lambda: [details_json(r.figures) for r in results], args.repeat)
    document = _median(lambda: dumps(check_document(snapshot)), args.repeat)
    print(f"{len(results)} checks, medians of {args.repeat}")
    print(f"  details as ready-made dicts (baseline)  {baseline * 1000:7.2f} ms  1x")
    print(f"  details_json from typed figures         {typed * 1000:7.2f} ms  "
          f"{typed / baseline:.1f}x")  # fmt: skip
    print(f"  the whole check --json document         {document * 1000:7.2f} ms  "
          f"details_json is {typed / document:.0%} of it")  # fmt: skip


if __name__ == "__main__":
    main()
