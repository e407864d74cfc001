"""How fast the exporter's ``/metrics`` answers with 1,000 checks (target: under 50 ms).

500 services x (health, ready) against one loopback stub; every check runs once (the interval
is long), then ``/metrics`` is fetched repeatedly over loopback and timed end to end.

    .venv/bin/python -m bench.exporter_metrics [--checks 1000] [--scrapes 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time
from http.server import ThreadingHTTPServer

import httpx

from bench.alert_vs_check import _Ok
from opsdash.exporter import Exporter
from opsdash.plan import build_plan
from opsdash.registry.model import Registry
from opsdash.resources import Resources


async def run(checks: int, scrapes: int) -> None:
    ThreadingHTTPServer.request_queue_size = 512
    stub = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{stub.server_address[1]}"
    registry = Registry.model_validate(
        {
            "version": 1,
            "platform": "bench",
            "defaults": {"interval": "1h", "timeout": "10s", "concurrency": 32},
            "services": {f"svc{i:04d}": {"url": url} for i in range(checks // 2)},
        }
    )
    specs = build_plan(registry)
    async with Resources(concurrency=32) as resources:
        exporter = Exporter(registry, specs, resources)
        port = await exporter.start("127.0.0.1", 0)
        while len(exporter.live.runs) < len(specs):  # noqa: ASYNC110 (a bench polls a counter)
            await asyncio.sleep(0.05)
        timings = []
        async with httpx.AsyncClient() as client:
            for _ in range(scrapes):
                start = time.perf_counter()
                response = await client.get(f"http://127.0.0.1:{port}/metrics")
                timings.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200
        await exporter.stop()
    stub.shutdown()
    timings.sort()
    print(
        f"{len(specs)} checks, {len(response.content) / 1024:.0f} KiB: /metrics median "
        f"{statistics.median(timings):.1f} ms, p95 {timings[int(len(timings) * 0.95) - 1]:.1f} ms, "
        f"max {timings[-1]:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--scrapes", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(run(args.checks, args.scrapes))


if __name__ == "__main__":
    main()
