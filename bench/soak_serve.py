"""Soak of the exporter: 10,000 check runs against loopback targets that flap, hang and refuse
in turn, with /metrics scraped along the way. Resident memory and open file descriptors are
sampled every 1,000 runs; both must end within 10% of their level after the first 1,000.

    .venv/bin/python -m bench.soak_serve [--runs 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from opsdash.exporter import Exporter
from opsdash.plan import build_plan
from opsdash.registry.model import Registry
from opsdash.resources import Resources
from tests.servers import free_port


class _Flaky(BaseHTTPRequestHandler):
    """Answers 200, 503 or hangs past the deadline, in turn per request."""

    count = 0

    def do_GET(self) -> None:
        _Flaky.count += 1
        turn = _Flaky.count % 3
        if turn == 2:
            time.sleep(0.4)  # past the 200 ms deadline: the probe times out
        code = 503 if turn == 1 else 200
        try:
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        except OSError:
            pass

    def log_message(self, format: str, *args: object) -> None:
        pass


def rss_kib() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def soak(runs: int) -> bool:
    ThreadingHTTPServer.request_queue_size = 128
    ThreadingHTTPServer.daemon_threads = True
    flaky = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=flaky.serve_forever, daemon=True).start()
    flaky_url = f"http://127.0.0.1:{flaky.server_address[1]}"
    refused_url = f"http://127.0.0.1:{free_port()}"
    registry = Registry.from_data(
        {
            "version": 1,
            "platform": "soak",
            "defaults": {"interval": "100ms", "timeout": "200ms"},
            "services": {
                **{f"flaky{i}": {"url": flaky_url} for i in range(8)},
                **{f"gone{i}": {"url": refused_url} for i in range(2)},
            },
        }
    )
    specs = build_plan(registry)
    samples: list[tuple[int, int, int]] = []
    async with Resources() as resources, httpx.AsyncClient() as client:
        exporter = Exporter(registry, specs, resources)
        port = await exporter.start("127.0.0.1", 0)
        next_sample = 1000
        while True:
            done = sum(exporter.live.runs.values())
            if done >= next_sample:
                await client.get(f"http://127.0.0.1:{port}/metrics")
                samples.append((done, rss_kib(), fds()))
                print(f"{done:>6} runs  rss {samples[-1][1]:>7} KiB  fds {samples[-1][2]}")
                next_sample += 1000
                if done >= runs:
                    break
            await asyncio.sleep(0.05)
        await exporter.stop()
    flaky.shutdown()
    _, rss0, fd0 = samples[0]
    _, rss1, fd1 = samples[-1]
    flat = rss1 <= rss0 * 1.10 and fd1 <= fd0 * 1.10
    print(
        f"after 1,000 runs: rss {rss0} KiB, fds {fd0}; at the end: rss {rss1} KiB "
        f"({(rss1 / rss0 - 1) * 100:+.1f}%), fds {fd1} ({(fd1 / fd0 - 1) * 100:+.1f}%): "
        + ("flat" if flat else "NOT FLAT")
    )
    return flat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()
    raise SystemExit(0 if asyncio.run(soak(args.runs)) else 1)


if __name__ == "__main__":
    main()
