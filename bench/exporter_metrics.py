"""How fast the exporter's ``/metrics`` answers with 1,000 checks (target: under 50 ms).

500 services x (health, ready) against one loopback stub, each check re-running every 10 s (the
default interval; ``--interval``), so results keep arriving (and ``/metrics`` keeps being
re-rendered) while it is scraped. Scrapes of ``/metrics`` alternate with scrapes of ``/healthz``
(the baseline: the same server and client, no metrics), spread over the run (0.1 s apart), and
are timed end to end over loopback.

    .venv/bin/python -m bench.exporter_metrics [--checks 1000] [--scrapes 200] [--interval 10]
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


async def run(checks: int, scrapes: int, interval: float) -> None:
    ThreadingHTTPServer.request_queue_size = 512
    stub = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{stub.server_address[1]}"
    registry = Registry.from_data(
        {
            "version": 1,
            "platform": "bench",
            "defaults": {"interval": f"{interval}s", "timeout": "10s", "concurrency": 32},
            "services": {f"svc{i:04d}": {"url": url} for i in range(checks // 2)},
        }
    )
    specs = build_plan(registry)
    async with Resources(concurrency=32) as resources:
        exporter = Exporter(registry, specs, resources)
        port = await exporter.start("127.0.0.1", 0)
        while len(exporter.live.runs) < len(specs):  # noqa: ASYNC110 (a bench polls a counter)
            await asyncio.sleep(0.05)
        timings: dict[str, list[float]] = {"/healthz": [], "/metrics": []}
        async with httpx.AsyncClient() as client:
            for _ in range(scrapes):
                for path, kept in timings.items():
                    start = time.perf_counter()
                    response = await client.get(f"http://127.0.0.1:{port}{path}")
                    kept.append((time.perf_counter() - start) * 1000)
                    assert response.status_code == 200
                    if path == "/metrics":
                        size = len(response.content)
                await asyncio.sleep(0.1)  # spread the scrapes over the re-renderings
        runs = sum(exporter.live.runs.values())
        await exporter.stop()
    stub.shutdown()
    baseline = statistics.median(timings["/healthz"])
    print(f"{len(specs)} checks, {runs} runs during the scrapes, /metrics {size / 1024:.0f} KiB")
    for path, kept in timings.items():
        kept.sort()
        median = statistics.median(kept)
        print(
            f"{path:<9} median {median:5.1f} ms ({median / baseline:4.1f}x /healthz), "
            f"p95 {kept[int(len(kept) * 0.95) - 1]:5.1f} ms, max {kept[-1]:5.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--interval", type=float, default=10.0)
    args = parser.parse_args()
    asyncio.run(run(args.checks, args.scrapes, args.interval))


if __name__ == "__main__":
    main()
