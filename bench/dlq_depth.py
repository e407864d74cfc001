"""How much reading 100 DLQ depths on one Redis adds to a round (issue 4: under 50 ms).

Starts a throwaway ``redis-server`` on a free loopback port, fills 100 lists, then times, in
the same run and on the same server:

- ``round of no-op checks``: the same round with probes that return at once: the engine's and
  harness's own cost, so that ``round (batched)`` minus it is what reading Redis adds;
- ``round (batched)``: a real opsdash round of 100 ``<worker>.dlq`` checks (plan, harness,
  engine), whose LLENs the per-Redis batcher sends as one pipeline;
- ``100 round trips, sequential``: one ``LLEN`` after the other on one client;
- ``100 round trips, concurrent``: 100 ``LLEN`` at once, no pipelining, through a
  *blocking* pool of 8 connections (with opsdash's non-blocking pool of 8, 100 concurrent
  commands fail with ``MaxConnectionsError: Too many connections`` instead).

Run: ``.venv/bin/python bench/dlq_depth.py [--queues 100] [--repeat 30]``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from redis.asyncio import BlockingConnectionPool, Redis

from opsdash.engine import run_round
from opsdash.plan import build_plan
from opsdash.registry.model import Registry
from opsdash.resources import Resources
from opsdash.results import Observation
from opsdash.status import Status


@contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway redis-server; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not on PATH")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="opsdash-bench-") as directory:
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", directory]  # fmt: skip
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), 0.2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit("redis-server did not start") from None
                    time.sleep(0.02)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(10)


async def timed(repeat: int, run: Callable[[], Awaitable[object]]) -> list[float]:
    """Milliseconds per run, after one warm-up run."""
    await run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        await run()
        times.append((time.perf_counter() - start) * 1000)
    return times


def report(label: str, times: list[float]) -> None:
    times = sorted(times)
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    print(f"{label:<34} median {statistics.median(times):7.2f} ms   p95 {p95:7.2f} ms")


async def main(queues: int, repeat: int) -> None:
    with redis_server() as url:
        client = Redis.from_url(url, max_connections=8)
        keys = [f"dlq:bench:{i}" for i in range(queues)]
        for i, key in enumerate(keys):
            await client.rpush(key, *range(i % 7 + 1))
        registry = Registry.from_data(
            {
                "version": 1,
                "platform": "bench",
                "datastores": {"redis": {"kind": "redis", "url": url}},
                "workers": {
                    f"w{i}": {"dlq": {"source": "redis-list", "datastore": "redis", "key": key}}
                    for i, key in enumerate(keys)
                },
            }
        )
        specs = [spec for spec in build_plan(registry) if spec.check == "dlq"]
        async with Resources() as resources:
            cold_start = time.perf_counter()
            first = await run_round(specs, resources)
            cold = (time.perf_counter() - cold_start) * 1000
            assert all(r.error is None for r in first.results), first.results[0]

            async def noop_probe(_: Resources) -> Observation:
                return Observation(Status.OK, "noop")

            noops = [replace(spec, probe=noop_probe, derive=None) for spec in specs]

            async def noop() -> object:
                return await run_round(noops, resources)

            async def batched() -> object:
                return await run_round(specs, resources)

            async def sequential() -> object:
                return [await client.llen(key) for key in keys]

            pool = BlockingConnectionPool.from_url(url, max_connections=8)
            waiting = Redis(connection_pool=pool)

            async def concurrent() -> object:
                return await asyncio.gather(*(waiting.llen(key) for key in keys))

            print(f"{queues} DLQ depths on one Redis, {repeat} runs each (after a warm-up)")
            print(f"{'round (batched), first, connecting':<34} {cold:7.2f} ms")
            report("round of no-op checks", await timed(repeat, noop))
            report("round (batched)", await timed(repeat, batched))
            report(f"{queues} round trips, sequential", await timed(repeat, sequential))
            report(f"{queues} round trips, concurrent", await timed(repeat, concurrent))
            await waiting.aclose()
            await pool.disconnect()
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queues", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=30)
    options = parser.parse_args()
    asyncio.run(main(options.queues, options.repeat))
