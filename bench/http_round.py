"""Benchmark: one round of HTTP probes over N services on loopback, against curl.

nginx serves N loopback ports (``return 200 '{"status":"ok"}'``), so the server is not the
bottleneck. Three things alternate, several times, on the same URLs:

- curl ``--parallel --parallel-max 64`` (process start to exit);
- the real command, ``opsdash check --json -r <generated registry>`` (process start to exit:
  interpreter, imports, YAML, plan, round, JSON output), with its peak RSS and CPU;
- the round alone: a fresh process builds a registry of N services (health + ready: 2N
  probes), plans it with :func:`opsdash.plan.build_plan` and runs
  :func:`opsdash.engine.run_round` once, cold, as ``opsdash check`` does; its wall time, CPU
  per probe and peak RSS are measured inside.

A second scenario runs 50 services of which 10 accept connections and never answer, and
checks that the round ends within the deadline + 0.5 s.

Usage::

    .venv/bin/python -m bench.http_round            # 1,000 services, 5 runs each, uvloop
    .venv/bin/python -m bench.http_round --n 200 --runs 3 --loop asyncio

Needs ``nginx`` (``apt-get install -y nginx``) and ``curl`` on PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

CONCURRENCY = 64


# --- servers ----------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """``count`` loopback ports free right now (held open together so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@contextlib.contextmanager
def nginx(count: int) -> Iterator[list[int]]:
    """nginx answering ``{"status":"ok"}`` on ``count`` loopback ports; yields the ports."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(binary):
        raise SystemExit("nginx is not installed: apt-get install -y nginx")
    ports = free_ports(count)
    with tempfile.TemporaryDirectory(prefix="opsdash-bench-") as tmp:
        listens = "\n".join(f"    listen 127.0.0.1:{port} backlog=4096;" for port in ports)
        temp_paths = " ".join(
            f"{kind}_temp_path {tmp};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        config = f"""
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
worker_rlimit_nofile {count * 4 + 1024};
events {{ worker_connections {count * 4 + 512}; }}
http {{
  access_log off;
  {temp_paths}
  server {{
{listens}
    location / {{ default_type application/json; return 200 '{{"status":"ok"}}'; }}
  }}
}}
"""
        Path(tmp, "nginx.conf").write_text(config)
        process = subprocess.Popen([binary, "-p", tmp, "-c", f"{tmp}/nginx.conf"])
        try:
            _wait_listening(ports[-1], process, Path(tmp, "error.log"))
            yield ports
        finally:
            process.terminate()
            process.wait(timeout=10)


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10.0
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"nginx did not start: {log.read_text()}") from None
            time.sleep(0.02)


@contextlib.contextmanager
def hanging_ports(count: int) -> Iterator[list[int]]:
    """Listening sockets that are never accepted from: the kernel completes the handshake,
    no byte ever comes back."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sock.listen(64)
            sockets.append(sock)
        yield [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


# --- the measured side ------------------------------------------------------------------


def run_worker(ports: list[int], loop: str, timeout: float) -> dict[str, float]:
    """One cold round in this process (the child side), run as ``opsdash check`` runs a single
    round (no cyclic collection: opsdash.launch); returns the figures."""
    start_process = time.perf_counter()
    gc.disable()
    from opsdash.engine import run_round
    from opsdash.plan import build_plan
    from opsdash.registry.model import Registry
    from opsdash.resources import Resources, event_loop_factory

    registry = Registry.from_data(
        {
            "version": 1,
            "platform": "bench",
            "defaults": {"timeout": timeout, "concurrency": CONCURRENCY},
            "services": {f"svc-{i}": {"url": f"http://127.0.0.1:{p}"} for i, p in enumerate(ports)},
        }
    )
    specs = build_plan(registry)

    async def main() -> tuple[float, float, dict[str, int]]:
        async with Resources(concurrency=CONCURRENCY) as resources:
            before = _cpu()
            round_ = await run_round(specs, resources, concurrency=CONCURRENCY)
            cpu = _cpu() - before
        counts: dict[str, int] = {}
        for result in round_.results:
            counts[str(result.status)] = counts.get(str(result.status), 0) + 1
        return round_.duration_ms / 1000.0, cpu, counts

    factory = event_loop_factory() if loop == "uvloop" else asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        wall, cpu, counts = runner.run(main())
    return {
        "probes": len(specs),
        "round_s": wall,
        "cpu_ms_per_probe": cpu / len(specs) * 1000.0,
        "process_s": time.perf_counter() - start_process,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        **{f"n_{status}": count for status, count in counts.items()},
    }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def opsdash_round(ports: list[int], loop: str, timeout: float = 3.0) -> dict[str, float]:
    """Run one cold round in a fresh interpreter; its figures plus the whole process's wall."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bench.http_round", "--worker", loop, str(timeout)],
        input=json.dumps(ports),
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    figures: dict[str, float] = json.loads(done.stdout)
    figures["command_s"] = time.perf_counter() - start
    return figures


def write_registry(ports: list[int], directory: str, timeout: float = 3.0) -> Path:
    """A registry of one service per port (health + ready), as ``opsdash check`` reads it."""
    path = Path(directory, "services.yaml")
    lines = [
        "version: 1",
        "platform: bench",
        "defaults:",
        f"  timeout: {timeout:g}s",
        f"  concurrency: {CONCURRENCY}",
        "services:",
    ]
    for i, port in enumerate(ports):
        lines += [f"  svc-{i}:", f"    url: http://127.0.0.1:{port}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def command_round(registry: Path) -> dict[str, float]:
    """``opsdash check --json -r registry`` as a user runs it: wall time from process start to
    exit, the child's CPU and peak RSS, and the statuses of its JSON document."""
    opsdash = Path(sys.executable).with_name("opsdash")
    argv = [str(opsdash)] if opsdash.exists() else [sys.executable, "-m", "opsdash"]
    argv += ["check", "--json", "-r", str(registry)]
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.DEVNULL, cwd=Path(__file__).resolve().parent.parent
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        document = json.loads(out.read())
    counts: dict[str, int] = {}
    for check in document["checks"]:
        counts[check["status"]] = counts.get(check["status"], 0) + 1
    return {
        "command_s": wall,
        "exit_code": process.returncode,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "max_rss_mb": usage.ru_maxrss / 1024.0,
        **{f"n_{name}": count for name, count in counts.items()},
    }


def curl_round(urls: list[str]) -> float:
    """Wall time of curl fetching ``urls``, 64 at a time."""
    with tempfile.NamedTemporaryFile("w", suffix=".curl") as config:
        config.write("".join(f'url = "{url}"\noutput = "/dev/null"\n' for url in urls))
        config.flush()
        start = time.perf_counter()
        subprocess.run(
            [
                "curl",
                "--silent",
                "--parallel",
                "--parallel-max",
                str(CONCURRENCY),
                "-K",
                config.name,
            ],
            check=True,
            stderr=subprocess.DEVNULL,  # curl's parallel mode prints progress even when silent
        )
        return time.perf_counter() - start


# --- the report -------------------------------------------------------------------------


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="services (2 probes each)")
    parser.add_argument("--runs", type=int, default=5, help="alternating runs of each side")
    parser.add_argument("--loop", choices=("uvloop", "asyncio", "both"), default="both")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        ports = json.loads(sys.stdin.read())
        print(json.dumps(run_worker(ports, args.worker[0], float(args.worker[1]))))
        return

    loops = ("uvloop", "asyncio") if args.loop == "both" else (args.loop,)
    print(f"# {args.n} services = {2 * args.n} probes, concurrency {CONCURRENCY}")
    with nginx(args.n) as ports, tempfile.TemporaryDirectory(prefix="opsdash-bench-") as tmp:
        registry = write_registry(ports, tmp)
        urls = [f"http://127.0.0.1:{p}/{path}" for p in ports for path in ("health", "ready")]
        curl_round(urls)  # warm nginx and the page cache once
        command_round(registry)  # and the command's .pyc files
        curl_times: list[float] = []
        commands: list[dict[str, float]] = []
        rounds: dict[str, list[dict[str, float]]] = {loop: [] for loop in loops}
        for _ in range(args.runs):
            curl_times.append(curl_round(urls))
            commands.append(command_round(registry))
            for loop in loops:
                curl_times.append(curl_round(urls))
                rounds[loop].append(opsdash_round(ports, loop))
    curl = statistics.median(curl_times)
    print(
        f"curl            wall {curl:.3f} s (median of {len(curl_times)}; "
        f"{min(curl_times):.3f}-{max(curl_times):.3f})"
    )
    command = statistics.median(f["command_s"] for f in commands)
    print(
        f"opsdash check --json  command {command:.3f} s = {command / curl:.2f}x curl "
        f"({min(f['command_s'] for f in commands):.3f}-"
        f"{max(f['command_s'] for f in commands):.3f}); "
        f"CPU {statistics.median(f['cpu_s'] for f in commands):.3f} s; "
        f"peak RSS {max(f['max_rss_mb'] for f in commands):.0f} MB; "
        f"ok {min(f.get('n_ok', 0) for f in commands):.0f}/{2 * args.n}; "
        f"exit {max(f['exit_code'] for f in commands):.0f}"
    )
    for loop, runs in rounds.items():
        wall = statistics.median(f["round_s"] for f in runs)
        process = statistics.median(f["command_s"] for f in runs)
        cpu = statistics.median(f["cpu_ms_per_probe"] for f in runs)
        rss = max(f["max_rss_mb"] for f in runs)
        ok = min(f.get("n_ok", 0) for f in runs)
        print(
            f"opsdash {loop:8s} round {wall:.3f} s = {wall / curl:.2f}x curl "
            f"({min(f['round_s'] for f in runs):.3f}-{max(f['round_s'] for f in runs):.3f}); "
            f"whole process {process:.3f} s = {process / curl:.2f}x; "
            f"CPU {cpu:.3f} ms/probe; peak RSS {rss:.0f} MB; ok {ok:.0f}/{2 * args.n}"
        )

    timeout = 2.0
    print(f"# 50 services, 10 of which never answer; deadline {timeout:g}s")
    with (
        nginx(40) as ports,
        hanging_ports(10) as hanging,
        tempfile.TemporaryDirectory(prefix="opsdash-bench-") as tmp,
    ):
        for loop in loops:
            figures = opsdash_round(ports + hanging, loop, timeout)
            verdict = "ok" if figures["round_s"] <= timeout + 0.5 else "TOO SLOW"
            print(
                f"opsdash {loop:8s} round {figures['round_s']:.3f} s "
                f"(limit {timeout + 0.5:.1f} s: {verdict}); "
                f"ok {figures.get('n_ok', 0):.0f}, crit {figures.get('n_crit', 0):.0f}"
            )
        figures = command_round(write_registry(ports + hanging, tmp, timeout))
        print(
            f"opsdash check --json  command {figures['command_s']:.3f} s (process start to "
            f"exit); ok {figures.get('n_ok', 0):.0f}, crit {figures.get('n_crit', 0):.0f}, "
            f"exit {figures['exit_code']:.0f}"
        )


if __name__ == "__main__":
    main()
