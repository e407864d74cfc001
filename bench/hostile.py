"""Every hostile reader at once (issue 11): peak memory of the round, the worst probe's latency
against its deadline, and what the hostile checks cost the healthy ones.

    flock /tmp/opsdash-bench.lock .venv/bin/python -m bench.hostile [--runs 5]

A superset of ``bench/hostile_http.py`` (the HTTP readers: gzip bombs, redirects with endless
bodies, endless ``100 Continue``, 4 MiB metrics pages, read by the health probe, DLQ http-json,
worker metrics, RabbitMQ): it adds servers that accept and never answer, drip a byte a second,
stream a gigabyte, or reset, read by the health probe and by every datastore client (PostgreSQL
and ``sql`` DLQs through asyncpg, Redis and ``redis-list`` DLQs through redis.asyncio, MongoDB
through pymongo), and RabbitMQ queue states full of terminal escapes.

The servers and 40 healthy HTTP services run in a child process with their own event loop;
each measured round runs in a fresh interpreter (its peak RSS is the round's). Alternating,
``--runs`` times: the healthy services alone, then the same with every hostile reader. Printed:
peak RSS, the worst probe against its deadline, and the healthy probes' round time (the
slowest healthy verdict) with and without the hostile ones, as a ratio.
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import sys
import time
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
COPIES = 2
"""Servers of each hostile kind (each read by every reader that applies)."""

ESCAPES = json.dumps(
    {
        "name": "q",
        "messages": 1,
        "messages_ready": 1,
        "messages_unacknowledged": 0,
        "consumers": 0,
        "state": "\x1b[2J\x1b]0;owned\x07crashed\nforged line",
    }
).encode()


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
        json_type = {"Content-Type": "application/json"}
        handlers = {
            "healthy": [adversarial.fixed(200, "OK", GOOD) for _ in range(HEALTHY)],
            "bomb": [_bomb_server] * COPIES,
            "redirect": [_endless_redirect] * COPIES,
            "continue": [_endless_continue] * COPIES,
            "page": [adversarial.fixed(200, "OK", page, {"Content-Type": "text/plain"})] * COPIES,
            "silent": [adversarial._silent] * COPIES,
            "drip": [adversarial._drip] * COPIES,
            "gigabyte": [adversarial._gigabyte] * COPIES,
            "reset": [adversarial._reset] * COPIES,
            "escapes": [adversarial.fixed(200, "OK\x1b[2J", ESCAPES, json_type)] * COPIES,
        }
        await serve_until_killed(ready, handlers)

    asyncio.run(main())


def _host_port(url: str) -> str:
    return url.removeprefix("http://")


def _registry(urls: dict[str, list[str]], hostile: bool) -> dict[str, Any]:
    services: dict[str, Any] = {
        f"ok-{i}": {"url": url, "ready": False} for i, url in enumerate(urls["healthy"])
    }
    workers: dict[str, Any] = {}
    datastores: dict[str, Any] = {}
    if hostile:
        http_bad = [*urls["bomb"], *urls["redirect"], *urls["continue"]]
        wire_bad = [*urls["silent"], *urls["drip"], *urls["gigabyte"], *urls["reset"]]
        for i, url in enumerate([*http_bad, *wire_bad, *urls["escapes"]]):
            services[f"bad-{i}"] = {"url": url, "health": "/start", "ready": False}
            workers[f"dlq-{i}"] = {
                "dlq": {"source": "http-json", "url": f"{url}/start", "path": "d"}
            }
            workers[f"rabbit-{i}"] = {
                "dlq": {"source": "rabbitmq", "management_url": url, "queue": "q"}
            }
            workers[f"metrics-{i}"] = {
                "metrics": {"source": "http-json", "url": f"{url}/start", "retries": "r"}
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
        # Every datastore client against servers that hang, drip, flood or reset.
        for i, url in enumerate(wire_bad):
            where = _host_port(url)
            datastores[f"pg-{i}"] = {"kind": "postgres", "dsn": f"postgresql://u@{where}/db"}
            datastores[f"redis-{i}"] = {"kind": "redis", "url": f"redis://{where}/0"}
            datastores[f"mongo-{i}"] = {"kind": "mongo", "uri": f"mongodb://{where}/db"}
            workers[f"sqldlq-{i}"] = {
                "dlq": {"source": "sql", "datastore": f"pg-{i}", "query": "SELECT 1"}
            }
            workers[f"listdlq-{i}"] = {
                "dlq": {"source": "redis-list", "datastore": f"redis-{i}", "key": "dlq"}
            }
    return {
        "version": 1,
        "platform": "hostile",
        "defaults": {"timeout": DEADLINE, "latency": {"warn": "10s", "crit": "20s"}},
        "datastores": datastores,
        "services": services,
        "workers": workers,
    }


def worker() -> None:
    """Fresh interpreter: one round over the registry on stdin; figures on stdout."""
    from opsdash.engine import run_round
    from opsdash.plan import build_plan
    from opsdash.registry.model import Registry
    from opsdash.resources import Resources, run_async
    from opsdash.safetext import is_printable

    specs = build_plan(Registry.from_data(json.loads(sys.stdin.read())))

    async def main() -> dict[str, Any]:
        start = time.perf_counter()
        async with Resources() as resources:
            round_ = await run_round(specs, resources, concurrency=64)
        wall_ms = (time.perf_counter() - start) * 1000.0
        healthy = [r.latency_ms or 0.0 for r in round_.results if r.component.startswith("ok-")]
        worst = max(round_.results, key=lambda r: r.latency_ms or 0.0)
        raw = [
            r.id
            for r in round_.results
            if not is_printable(r.summary) or not is_printable(json.dumps(r.details))
        ]
        return {
            "healthy_max_ms": max(healthy),
            "worst_ms": worst.latency_ms or 0.0,
            "worst_check": f"{worst.id}: {worst.summary[:70]}",
            "round_ms": wall_ms,
            "checks": len(round_.results),
            "raw_text": raw,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        }

    print(json.dumps(run_async(main())))


def main() -> None:
    """Command line entry point."""
    args = parse_args(__doc__, runs=5)
    if args.worker:
        worker()
        return
    calm, hostile = alternate("bench.hostile", _servers, _registry, args.runs)
    figures = cost(calm, hostile)
    calm_ms, with_ms = figures.calm_ms, figures.with_ms
    worst = max(hostile, key=lambda f: f["worst_ms"])
    raw = sorted({check for f in hostile for check in f["raw_text"]})
    print(
        f"# {int(hostile[0]['checks'])} checks ({HEALTHY} healthy), deadline {DEADLINE:g}s, "
        f"{args.runs} alternating runs"
    )
    print_rss(figures)
    print(f"worst probe: {against_deadline(worst['worst_ms'], DEADLINE)} ({worst['worst_check']})")
    print(
        f"healthy probes' round (slowest healthy verdict, median): {with_ms:.0f} ms with the "
        f"hostile ones, {calm_ms:.0f} ms without ({with_ms / calm_ms:.2f}x)"
    )
    print(
        f"whole hostile round (median): {statistics.median(f['round_ms'] for f in hostile):.0f} ms"
    )
    print(f"results with raw control characters: {raw or 'none'}")


if __name__ == "__main__":
    main()
