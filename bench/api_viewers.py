"""One prober, many viewers: the CPU of one ``opsdash serve`` at 1,000 services (2,000 checks,
nginx on loopback, the default 10 s interval) with 20 dashboards attached, against the same
serve with none. Target (issue 15): at most 1.5x.

    flock /tmp/opsdash-bench.lock .venv/bin/python -m bench.api_viewers [--window 30]

The viewers: 19 event-stream clients running :class:`opsdash.remote.RemoteFeed` (the client
code ``ui --from`` runs) in one process, and one real dashboard (``DashboardApp`` with
``sources=``, headless) in another. serve's CPU is read from ``/proc/<pid>/stat`` (user +
system) over equal windows: none, viewers, none again; the ratio is against the mean of the
two baselines, so drift on a shared machine shows as a gap between them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.http_round import free_ports, nginx

SERVICES = 1000
VIEWERS = 20
ROOT = Path(__file__).resolve().parent.parent


def _registry(ports: list[int], directory: str) -> Path:
    path = Path(directory, "services.yaml")
    lines = ["version: 1", "platform: bench", "defaults: {interval: 10s, timeout: 3s}", "services:"]
    for i, port in enumerate(ports):
        lines += [f"  svc-{i}:", f"    url: http://127.0.0.1:{port}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(pid: int, window: float) -> float:
    """serve's CPU seconds per wall second over ``window``."""
    start_cpu, start = _cpu_seconds(pid), time.monotonic()
    time.sleep(window)
    return (_cpu_seconds(pid) - start_cpu) / (time.monotonic() - start)


def _wait_all_checks(url: str, checks: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(f"{url}/api/v1/check", timeout=10)
            if answer.status_code == 200 and len(answer.json()["checks"]) == checks:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("serve did not report every check within 120 s")


# --- the viewer processes -------------------------------------------------------------------


async def _feeds(url: str, count: int, checks: int) -> None:
    """``count`` RemoteFeed clients; prints ``ready`` once each has every check's result, then
    the results each received per second, every 10 s, until killed."""
    from opsdash.remote import RemoteFeed

    seen: list[set[str]] = [set() for _ in range(count)]
    received = [0] * count
    complete = [0]
    ready = asyncio.Event()

    def sink_for(index: int):  # type: ignore[no-untyped-def]
        def sink(result: object, _source: str) -> None:
            received[index] += 1
            ids = seen[index]
            if len(ids) < checks:
                ids.add(result.id)  # type: ignore[attr-defined]
                if len(ids) == checks:
                    complete[0] += 1
                    if complete[0] == count:
                        ready.set()

        return sink

    tasks = [
        asyncio.create_task(RemoteFeed([url]).run(sink_for(i), lambda _state: None))
        for i in range(count)
    ]
    await ready.wait()
    print("ready", flush=True)
    while True:
        before, start = sum(received), time.monotonic()
        await asyncio.sleep(10)
        rate = (sum(received) - before) / (time.monotonic() - start) / count
        print(f"results/s per viewer: {rate:.0f}", flush=True)
    await asyncio.gather(*tasks)  # pragma: no cover


async def _dashboard(url: str, registry_path: str, checks: int) -> None:
    """One real dashboard on ``url``, headless; prints ``ready`` once it shows every check."""
    from opsdash.plan import build_plan
    from opsdash.registry import load_registry
    from opsdash.tui.app import DashboardApp

    registry = load_registry(Path(registry_path))
    app = DashboardApp(registry, build_plan(registry), sources=[url])
    async with app.run_test(size=(120, 40)) as pilot:
        while len(app.state.results()) < checks:
            await pilot.pause(0.2)
        print("ready", flush=True)
        while True:
            await pilot.pause(1.0)


def _viewer_main(argv: list[str]) -> None:
    from opsdash.resources import run_async

    kind, url, extra, checks = argv[0], argv[1], argv[2], int(argv[3])
    if kind == "feeds":
        run_async(_feeds(url, int(extra), checks))
    else:
        run_async(_dashboard(url, extra, checks))


def _start_viewer(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.api_viewers", "--viewer", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def _await_ready(process: subprocess.Popen[str], what: str) -> None:
    assert process.stdout is not None
    line = process.stdout.readline()
    if line.strip() != "ready":
        raise SystemExit(f"{what} did not get ready: {line!r} (exit {process.poll()})")


# --- the run ------------------------------------------------------------------------------------


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--viewer":
        _viewer_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=SERVICES)
    parser.add_argument("--viewers", type=int, default=VIEWERS)
    parser.add_argument("--window", type=float, default=30.0, help="seconds per measurement")
    args = parser.parse_args()
    checks = 2 * args.services
    with nginx(args.services) as ports, tempfile.TemporaryDirectory() as tmp:
        registry = _registry(ports, tmp)
        [port] = free_ports(1)
        url = f"http://127.0.0.1:{port}"
        serve = subprocess.Popen(
            [sys.executable, "-m", "opsdash", "serve", "-r", str(registry), "--listen",
             f"127.0.0.1:{port}"],
            cwd=ROOT, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        viewers: list[subprocess.Popen[str]] = []
        try:
            _wait_all_checks(url, checks)
            time.sleep(10)  # one more interval: the first runs' start-up is not measured
            alone = _measure(serve.pid, args.window)
            print(f"serve alone:            {alone * 100:5.1f}% of a core")

            viewers.append(_start_viewer("dashboard", url, str(registry), str(checks)))
            viewers.append(_start_viewer("feeds", url, str(args.viewers - 1), str(checks)))
            for process in viewers:
                _await_ready(process, "a viewer")
            time.sleep(5)  # past the replays: the steady state is measured
            watched = _measure(serve.pid, args.window)
            print(f"serve with {args.viewers} viewers:  {watched * 100:5.1f}% of a core")
            feeds = viewers[1].stdout
            assert feeds is not None
            print(f"  ({feeds.readline().strip()})")
            for process in viewers:
                process.kill()
                process.wait()
            viewers.clear()
            time.sleep(5)
            again = _measure(serve.pid, args.window)
            print(f"serve alone again:      {again * 100:5.1f}% of a core")
            baseline = (alone + again) / 2
            ratio = watched / baseline
            verdict = "within" if ratio <= 1.5 else "OVER"
            print(f"ratio with/without viewers: {ratio:.2f}x ({verdict} the 1.5x target)")
        finally:
            for process in viewers:
                process.kill()
                process.wait()
            serve.terminate()
            serve.wait(30)


if __name__ == "__main__":
    main()
