"""Every hostile HTTP reader at once (issue 11, classes 1 and 2): peak memory, the worst
verdict's latency against its deadline, and what they cost the healthy probes of the round.

    .venv/bin/python -m bench.hostile_http [--runs 3]

The hostile servers (tests/test_http_hostile.py's: gzip bombs, redirects with endless bodies,
endless ``100 Continue``, 4 MiB metrics pages) and 40 healthy ones run in a child process with
their own event loop; each measured round runs in a fresh interpreter (its peak RSS is the
round's). Alternating: the healthy services alone, then the same with every hostile reader of
every kind (health probe, DLQ http-json, worker metrics http-json and prometheus, RabbitMQ).
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
from typing import Any

from bench.alternating import (
    against_deadline,
    alternate,
    cost,
    parse_args,
    print_rss,
    serve_until_killed,
)

HEALTHY = 40
DEADLINE = 3.0


def _servers(ready: Any) -> None:
    """Child process: every server, until killed; sends their base URLs to ``ready``."""
    from tests import adversarial
    from tests.test_http_hostile import (
        GOOD,
        _big_metrics_page,
        _bomb_server,
        _endless_continue,
        _endless_redirect,
        bomb,
    )

    async def main() -> None:
        bomb()
        page = _big_metrics_page()
        handlers = {
            "healthy": [adversarial.fixed(200, "OK", GOOD) for _ in range(HEALTHY)],
            "bomb": [_bomb_server] * 2,
            "redirect": [_endless_redirect] * 2,
            "continue": [_endless_continue] * 2,
            "page": [adversarial.fixed(200, "OK", page, {"Content-Type": "text/plain"})] * 2,
        }
        await serve_until_killed(ready, handlers)

    asyncio.run(main())


def _registry(urls: dict[str, list[str]], hostile: bool) -> dict[str, Any]:
    services = {f"ok-{i}": {"url": url, "ready": False} for i, url in enumerate(urls["healthy"])}
    workers: dict[str, Any] = {}
    if hostile:
        bad = [*urls["bomb"], *urls["redirect"], *urls["continue"]]
        for i, url in enumerate(bad):
            services[f"bad-{i}"] = {"url": url, "health": "/start", "ready": False}
            workers[f"dlq-{i}"] = {
                "dlq": {"source": "http-json", "url": f"{url}/start", "path": "d"}
            }
            workers[f"rabbit-{i}"] = {
                "dlq": {"source": "rabbitmq", "management_url": f"{url}/start", "queue": "q"}
            }
            workers[f"metrics-{i}"] = {
                "metrics": {
                    "source": "http-json",
                    "url": f"{url}/start",
                    "retries": "r",
                    "processed": "p",
                }
            }
        for i, url in enumerate(urls["page"]):
            workers[f"page-{i}"] = {
                "metrics": {
                    "source": "prometheus",
                    "url": url,
                    "retries": 'worker_retries_total{worker="w"}',
                    "processed": 'worker_processed_total{worker="w"}',
                }
            }
    return {
        "version": 1,
        "platform": "hostile",
        "defaults": {"timeout": DEADLINE, "latency": {"warn": "10s", "crit": "20s"}},
        "services": services,
        "workers": workers,
    }


def worker() -> None:
    """Fresh interpreter: one round over the registry on stdin; figures on stdout."""
    from opsdash.engine import run_round
    from opsdash.plan import build_plan
    from opsdash.registry.model import Registry
    from opsdash.resources import Resources, run_async

    specs = build_plan(Registry.from_data(json.loads(sys.stdin.read())))

    async def main() -> dict[str, float]:
        async with Resources() as resources:
            round_ = await run_round(specs, resources, concurrency=64)
        healthy = [r.latency_ms or 0.0 for r in round_.results if r.component.startswith("ok-")]
        everyone = [r.latency_ms or 0.0 for r in round_.results]
        return {
            "healthy_max_ms": max(healthy),
            "worst_ms": max(everyone),
            "checks": len(everyone),
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        }

    print(json.dumps(run_async(main())))


def main() -> None:
    """Command line entry point."""
    args = parse_args(__doc__, runs=3)
    if args.worker:
        worker()
        return
    calm, hostile = alternate("bench.hostile_http", [_servers], _registry, args.runs)
    figures = cost(calm, hostile)
    calm_ms, with_ms = figures.calm_ms, figures.with_ms
    worst = max(f["worst_ms"] for f in hostile)
    print(f"# {int(hostile[0]['checks'])} checks, {HEALTHY} healthy; deadline {DEADLINE:g}s")
    print_rss(figures)
    print(f"worst probe: {against_deadline(worst, DEADLINE)}")
    ratio = with_ms / calm_ms
    print(f"slowest healthy: {with_ms:.0f} ms among them, {calm_ms:.0f} ms alone ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
