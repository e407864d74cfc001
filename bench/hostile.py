"""Every hostile reader at once (issue 11): peak memory of the round, the worst probe's latency
against its deadline, and what the hostile checks cost the healthy ones.

    flock /tmp/opsdash-bench.lock .venv/bin/python -m bench.hostile [--runs 5]

A superset of ``bench/hostile_http.py`` (the HTTP readers: gzip bombs, redirects with endless
bodies, endless ``100 Continue``, 4 MiB metrics pages, read by the health probe, DLQ http-json,
worker metrics, RabbitMQ): it adds servers that accept and never answer, drip a byte a second,
stream a gigabyte, or reset, read by the health probe and by every datastore client (PostgreSQL
and ``sql`` DLQs through asyncpg, Redis and ``redis-list`` DLQs through redis.asyncio, MongoDB
through pymongo), and RabbitMQ queue states full of terminal escapes.

The 40 healthy HTTP services run in one child process and the hostile servers in another, each
with its own event loop (so a healthy answer never waits for a hostile server's own CPU in the
same loop); each measurement runs in a fresh interpreter (its peak RSS is its rounds'), two
rounds over the same shared clients, as ``serve`` and the dashboard run them: the first one
cold (no connection open yet), the second one warm. Alternating, ``--runs`` times: the healthy
services alone, then the same with every hostile reader. Printed: peak RSS, the worst probe
against its deadline, and for each of the two rounds the healthy probes' round time (from the
round's start to the end of the slowest healthy verdict, so a verdict that waited to be started
counts its wait) with and without the hostile ones, as a ratio.
"""

from __future__ import annotations

import asyncio
import json
import os
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
ROUNDS = 2
"""Rounds per fresh interpreter: the first (cold) and the second (warm) are reported apart."""
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


def _healthy_servers(ready: Any) -> None:
    """Child process: the healthy services, until killed; sends their base URLs to ``ready``."""
    from tests import adversarial
    from tests.test_http_hostile import GOOD

    async def main() -> None:
        handlers = {"healthy": [adversarial.fixed(200, "OK", GOOD) for _ in range(HEALTHY)]}
        await serve_until_killed(ready, handlers)

    asyncio.run(main())


def _hostile_servers(ready: Any) -> None:
    """Child process: every hostile server, until killed; sends their base URLs to ``ready``."""
    from tests import adversarial
    from tests.test_http_hostile import (
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
    """Fresh interpreter: :data:`ROUNDS` rounds over the registry on stdin, one set of shared
    clients; figures on stdout."""
    from opsdash.collector import CollectorPolicy
    from opsdash.engine import Round, run_round
    from opsdash.plan import build_plan
    from opsdash.registry.model import Registry
    from opsdash.resources import Resources, run_async
    from opsdash.safetext import is_printable

    specs = build_plan(Registry.from_data(json.loads(sys.stdin.read())))

    def healthy_round_ms(round_: Round) -> float:
        """From the round's start to the end of its slowest healthy verdict."""
        return max(
            (r.started_at - round_.started_at).total_seconds() * 1000.0 + (r.latency_ms or 0.0)
            for r in round_.results
            if r.component.startswith("ok-")
        )

    async def main() -> dict[str, Any]:
        rounds: list[Round] = []
        walls: list[float] = []
        # The collector as ``serve`` runs it: what lives as long as the process is frozen at
        # start and again once the first round is in, the young threshold raised.
        collector = CollectorPolicy()
        collector.start()
        async with Resources() as resources:
            for _ in range(ROUNDS):
                start = time.perf_counter()
                rounds.append(await run_round(specs, resources, concurrency=64))
                walls.append((time.perf_counter() - start) * 1000.0)
                collector.settled()
        collector.stop()
        results = [r for round_ in rounds for r in round_.results]
        worst = max(results, key=lambda r: r.latency_ms or 0.0)
        raw = sorted(
            {
                r.id
                for r in results
                if not is_printable(r.summary) or not is_printable(json.dumps(r.details))
            }
        )
        healthy = [healthy_round_ms(round_) for round_ in rounds]
        return {
            "healthy_ms": healthy,
            "healthy_max_ms": healthy[0],
            "worst_ms": worst.latency_ms or 0.0,
            "worst_check": f"{worst.id}: {worst.summary[:70]}",
            "round_ms": walls,
            "checks": len(rounds[0].results),
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
    load = os.getloadavg()[0]
    calm, hostile = alternate(
        "bench.hostile", [_healthy_servers, _hostile_servers], _registry, args.runs
    )
    figures = cost(calm, hostile)
    worst = max(hostile, key=lambda f: f["worst_ms"])
    raw = sorted({check for f in hostile for check in f["raw_text"]})
    print(
        f"# {int(hostile[0]['checks'])} checks ({HEALTHY} healthy), deadline {DEADLINE:g}s, "
        f"{args.runs} alternating runs of {ROUNDS} rounds; load {load:.2f}"
    )
    print_rss(figures)
    print(f"worst probe: {against_deadline(worst['worst_ms'], DEADLINE)} ({worst['worst_check']})")
    for n, name in enumerate(("first", "second")[:ROUNDS]):
        with_ms = statistics.median(f["healthy_ms"][n] for f in hostile)
        calm_ms = statistics.median(f["healthy_ms"][n] for f in calm)
        print(
            f"healthy probes' {name} round (round start to slowest healthy verdict, median): "
            f"{with_ms:.0f} ms with the hostile ones, {calm_ms:.0f} ms without "
            f"({with_ms / calm_ms:.2f}x)"
        )
    walls = ", ".join(
        f"{statistics.median(f['round_ms'][n] for f in hostile):.0f}" for n in range(ROUNDS)
    )
    print(f"whole hostile rounds (median): {walls} ms")
    print(f"results with raw control characters: {raw or 'none'}")


if __name__ == "__main__":
    main()
