"""Every speed target of issue 12, each against its reference measured in the same run.

    make bench                        # .venv/bin/python -m bench
    .venv/bin/python -m bench --quick # fewer runs, smaller scale points (a few minutes)

Whole-process figures are wall time from ``fork`` to exit (``os.wait4``, with the child's CPU
and peak RSS). Each command alternates with its reference, several times, and the medians are
compared: the machine is shared, so a ratio measured in one run is what means something.
Needs nginx and curl (``bench/http_round.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.http_round import CONCURRENCY, curl_round, hanging_ports, nginx, write_registry

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Figure:
    """One target: the measured figure, its reference, and the verdict."""

    name: str
    measured: str
    reference: str
    ratio: float | None
    limit: str
    met: bool

    def line(self) -> str:
        verdict = "met" if self.met else "NOT MET"
        ratio = "" if self.ratio is None else f" = {self.ratio:.2f}x"
        return (
            f"{self.name:<44} {self.measured}{ratio} (ref {self.reference}; {self.limit}) {verdict}"
        )


# --- measuring processes -----------------------------------------------------------------


def _opsdash() -> list[str]:
    script = Path(sys.executable).with_name("opsdash")
    return [str(script)] if script.exists() else [sys.executable, "-m", "opsdash"]


@dataclass
class Run:
    wall: float
    cpu: float
    rss_mb: float
    code: int
    stdout: bytes


# Users' installs have bytecode (pip compiles it); a session or CI that sets
# PYTHONDONTWRITEBYTECODE would make every run compile opsdash from source instead.
_CHILD_ENV = {
    name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"
}


def run(argv: Sequence[str], stdin: bytes | None = None) -> Run:
    """Run ``argv`` to its end: wall time, CPU, peak RSS, exit code, output."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        process = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            cwd=ROOT,
            env=_CHILD_ENV,
        )
        if stdin is not None:
            assert process.stdin is not None
            process.stdin.write(stdin)
            process.stdin.close()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        return Run(
            wall,
            usage.ru_utime + usage.ru_stime,
            usage.ru_maxrss / 1024.0,
            process.returncode,
            out.read(),
        )


def alternate(sides: dict[str, Callable[[], float]], runs: int) -> dict[str, float]:
    """Medians of ``runs`` alternating calls of each side (after one warm-up call each)."""
    for side in sides.values():
        side()
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(runs):
        for name, side in sides.items():
            samples[name].append(side())
    return {name: statistics.median(values) for name, values in samples.items()}


def _ok_count(output: bytes) -> int:
    document = json.loads(output)
    return sum(1 for check in document["checks"] if check["status"] == "ok")


# --- the targets ---------------------------------------------------------------------------


def check_vs_curl(services: int, runs: int) -> Figure:
    """``opsdash check --json`` over ``services`` services (2 probes each) against curl."""
    with nginx(services) as ports, tempfile.TemporaryDirectory(prefix="opsdash-bench-") as tmp:
        registry = write_registry(ports, tmp)
        urls = [f"http://127.0.0.1:{p}/{path}" for p in ports for path in ("health", "ready")]
        oks: list[int] = []

        def command() -> float:
            done = run([*_opsdash(), "check", "--json", "-r", str(registry)])
            oks.append(_ok_count(done.stdout))
            return done.wall

        curls: list[float] = []

        def curl() -> float:
            curls.append(curl_round(urls))
            return curls[-1]

        walls: list[float] = []

        def opsdash() -> float:
            walls.append(command())
            return walls[-1]

        medians = alternate({"curl": curl, "opsdash": opsdash}, runs)
    ratio = medians["opsdash"] / medians["curl"]
    # Loopback connects stall (1 s SYN retries) when the shared machine's ephemeral ports run
    # low: the fastest runs of each side are the interference-free comparison.
    fastest = min(walls) / min(curls)
    return Figure(
        f"check --json, {services:,} services, whole process",
        f"{medians['opsdash']:.3f} s (ok {min(oks)}/{2 * services}; fastest runs {fastest:.2f}x)",
        f"curl --parallel-max {CONCURRENCY} {medians['curl']:.3f} s, "
        f"{min(curls):.3f}-{max(curls):.3f}",
        ratio,
        "<= 2.0x",
        ratio <= 2.0,
    )


def import_hooks() -> list[str]:
    """The import hooks a .pth file put on ``sys.meta_path`` (setuptools' editable finder):
    every interpreter start of this venv runs them, ``python -c pass`` included."""
    return [
        type(hook).__name__ if not isinstance(hook, type) else hook.__name__
        for hook in sys.meta_path
        if (getattr(hook, "__module__", "") or "").startswith("__editable__")
    ]


def _python_pass() -> float:
    return run([sys.executable, "-c", "pass"]).wall


def check_small(runs: int) -> Figure:
    """10 services, whole process, against a bare interpreter start."""
    with nginx(10) as ports, tempfile.TemporaryDirectory(prefix="opsdash-bench-") as tmp:
        registry = write_registry(ports, tmp)
        medians = alternate(
            {
                "python": _python_pass,
                "opsdash": lambda: run([*_opsdash(), "check", "--json", "-r", str(registry)]).wall,
            },
            runs,
        )
    ratio = medians["opsdash"] / medians["python"]
    return Figure(
        "check --json, 10 services, whole process",
        f"{medians['opsdash'] * 1000:.0f} ms",
        f"python -c pass {medians['python'] * 1000:.0f} ms",
        ratio,
        "<= 4x",
        ratio <= 4.0,
    )


def help_vs_python(runs: int) -> Figure:
    medians = alternate(
        {"python": _python_pass, "opsdash": lambda: run([*_opsdash(), "--help"]).wall}, runs
    )
    ratio = medians["opsdash"] / medians["python"]
    return Figure(
        "opsdash --help",
        f"{medians['opsdash'] * 1000:.0f} ms",
        f"python -c pass {medians['python'] * 1000:.0f} ms",
        ratio,
        "<= 2x",
        ratio <= 2.0,
    )


FLOORS = {
    "--help": "import click, click_default_group",
    "check": (
        "import sys; sys.modules['ssl'] = None; import asyncio; del sys.modules['ssl']; "
        "import json, click, click_default_group, opsdash.lazy_yaml, httptools"
    ),
}
"""What a command must import whatever opsdash's own code does: ``--help`` the CLI library;
``check``, before its first probe, also the event loop (with socket, concurrent.futures,
logging and subprocess; without ssl, as ``check`` imports it on a plain-HTTP registry:
opsdash/lazy_ssl.py), YAML (as opsdash imports it, its patterns compiled on first use:
opsdash/lazy_yaml.py) and the HTTP parser. Each floor ends as opsdash's one-shot
commands do, with ``os._exit`` (no interpreter teardown)."""


def _floor(imports: str) -> Callable[[], float]:
    return lambda: run([sys.executable, "-c", f"{imports}; import os; os._exit(0)"]).wall


def import_floors(runs: int) -> list[Figure]:
    """The start-up that the stack alone costs, against a bare interpreter: reference lines
    (always "met"), to read the start-up targets against on the machine at hand."""
    sides: dict[str, Callable[[], float]] = {"python": _python_pass}
    for command, imports in FLOORS.items():
        sides[command] = _floor(imports)
    medians = alternate(sides, runs)
    return [
        Figure(
            f"import floor of {command} (no opsdash code)",
            f"{medians[command] * 1000:.0f} ms",
            f"python -c pass {medians['python'] * 1000:.0f} ms",
            medians[command] / medians["python"],
            "reference only",
            True,
        )
        for command in FLOORS
    ]


def first_probe(runs: int) -> Figure:
    """Process start to the first probe's connection reaching a loopback listener."""
    samples: list[float] = []
    for _ in range(runs):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port = listener.getsockname()[1]
        accepted: list[float] = []

        def accept(sock: socket.socket = listener, seen: list[float] = accepted) -> None:
            connection, _ = sock.accept()
            seen.append(time.perf_counter())
            connection.close()

        with tempfile.TemporaryDirectory(prefix="opsdash-bench-") as tmp:
            registry = write_registry([port], tmp, timeout=1.0)
            thread = threading.Thread(target=accept, daemon=True)
            thread.start()
            start = time.perf_counter()
            run([*_opsdash(), "check", "--json", "-r", str(registry)])
            thread.join(timeout=5)
        listener.close()
        if accepted:
            samples.append(accepted[0] - start)
    figure = statistics.median(samples) * 1000
    return Figure(
        "first probe out after process start",
        f"{figure:.0f} ms",
        "80 ms",
        None,
        "<= 80 ms",
        figure <= 80,
    )


def _round_cpu_per_probe(count: int, timeout: float, runs: int) -> float:
    """CPU per probe of one cold round over ``count`` services, each in a fresh interpreter
    (bench.http_round's worker), median of ``runs``."""
    samples = []
    with nginx(count) as ports:
        for _ in range(runs):
            done = subprocess.run(
                [sys.executable, "-m", "bench.http_round", "--worker", "uvloop", str(timeout)],
                input=json.dumps(ports),
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            samples.append(float(json.loads(done.stdout)["cpu_ms_per_probe"]))
    return statistics.median(samples)


def linear_cost(points: Sequence[int], runs: int = 3) -> list[Figure]:
    """CPU per probe of the round (median of ``runs`` fresh rounds; and of the whole command)
    at each scale point against the first; peak RSS of the whole command at the largest."""
    per_probe: dict[int, float] = {}
    command_cpu: dict[int, float] = {}
    rss: dict[int, float] = {}
    for count in points:
        per_probe[count] = _round_cpu_per_probe(count, 10.0, runs)
        with nginx(count) as ports, tempfile.TemporaryDirectory(prefix="opsdash-bench-") as tmp:
            registry = write_registry(ports, tmp, timeout=10.0)
            done = run([*_opsdash(), "check", "--json", "-r", str(registry)])
            command_cpu[count] = done.cpu / (2 * count) * 1000
            rss[count] = done.rss_mb
    base = points[0]
    figures = []
    for count in points[1:]:
        ratio = per_probe[count] / per_probe[base]
        figures.append(
            Figure(
                f"round CPU/probe at {count:,} services",
                f"{per_probe[count]:.3f} ms (whole command {command_cpu[count]:.3f} ms)",
                f"{per_probe[base]:.3f} ms at {base:,} (whole command {command_cpu[base]:.3f} ms)",
                ratio,
                "within 10%",
                ratio <= 1.10,
            )
        )
    top = points[-1]
    figures.append(
        Figure(
            f"peak RSS, check --json at {top:,} services",
            f"{rss[top]:.0f} MB",
            "250 MB",
            None,
            "<= 250 MB",
            rss[top] <= 250,
        )
    )
    return figures


def big_registry(path: Path, services: int) -> None:
    """A registry of ``services`` services, as a large platform's looks (~56 bytes each: 94,000
    make the issue's 5 MB file)."""
    lines = ["version: 1", "platform: big", "defaults:", "  timeout: 3s", "services:"]
    for i in range(services):
        address = f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"
        lines += [f"  service-{i}:", f"    url: http://{address}:8080/api"]
    path.write_text("\n".join(lines) + "\n")


def validate_vs_yaml(services: int, runs: int) -> Figure:
    with tempfile.TemporaryDirectory(prefix="opsdash-bench-") as tmp:
        registry = Path(tmp, "services.yaml")
        big_registry(registry, services)
        size = registry.stat().st_size / 1e6
        load = "import yaml,sys; yaml.load(open(sys.argv[1], 'rb'), Loader=yaml.CSafeLoader)"
        medians = alternate(
            {
                "yaml": lambda: run([sys.executable, "-c", load, str(registry)]).wall,
                "opsdash": lambda: run([*_opsdash(), "validate", "-r", str(registry)]).wall,
            },
            runs,
        )
    ratio = medians["opsdash"] / medians["yaml"]
    return Figure(
        f"validate, {size:.1f} MB registry ({services:,} services)",
        f"{medians['opsdash']:.2f} s",
        f"PyYAML CSafeLoader {medians['yaml']:.2f} s (whole process)",
        ratio,
        "<= 3x",
        ratio <= 3.0,
    )


def serve_worker(count: int, rounds: int, interval: float) -> dict[str, float]:
    """In this process: the exporter's scheduler over ``count`` services for ``rounds``
    intervals; connection reuse and CPU per probe after the first round."""
    import uvloop

    from opsdash.exporter import RENDER_EVERY, Exporter
    from opsdash.plan import build_plan
    from opsdash.registry.model import Registry
    from opsdash.resources import Resources, pool_for
    from opsdash.transport import LeanTransport

    ports = json.loads(sys.stdin.read())
    registry = Registry.from_data(
        {
            "version": 1,
            "platform": "bench",
            "defaults": {"timeout": 3.0, "concurrency": CONCURRENCY, "interval": interval},
            "services": {f"svc-{i}": {"url": f"http://127.0.0.1:{p}"} for i, p in enumerate(ports)},
        }
    )
    specs = build_plan(registry)

    async def main() -> dict[str, float]:
        keepalive = pool_for(len(specs), concurrency=CONCURRENCY)
        async with Resources(concurrency=CONCURRENCY, keepalive=keepalive) as resources:
            wire = resources.http().wire
            assert isinstance(wire, LeanTransport)
            exporter = Exporter(registry, specs, resources)
            await exporter.start("127.0.0.1", 0)
            await asyncio.sleep(interval)  # the first round: every connection is new
            opened, sent = wire.connections_opened, wire.requests_sent
            usage = resource.getrusage(resource.RUSAGE_SELF)
            cpu = usage.ru_utime + usage.ru_stime
            await asyncio.sleep(interval * (rounds - 1))
            usage = resource.getrusage(resource.RUSAGE_SELF)
            cpu = usage.ru_utime + usage.ru_stime - cpu
            probes = wire.requests_sent - sent
            reused = 1.0 - (wire.connections_opened - opened) / max(probes, 1)
            # The exporter renders /metrics in the background at most once a second, whatever
            # the probes: its share is estimated from one rendering, timed alone.
            before = time.process_time()
            exporter.live.render()
            render = (time.process_time() - before) * interval * (rounds - 1) / RENDER_EVERY
            await exporter.stop()
        return {
            "reuse": reused,
            "cpu_ms_per_probe": cpu / max(probes, 1) * 1000,
            "render_ms_per_probe": render / max(probes, 1) * 1000,
            "probes": probes,
        }

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


def serve_figures(count: int, rounds: int) -> list[Figure]:
    interval = 2.0
    with nginx(count) as ports:
        done = subprocess.run(
            [sys.executable, "-m", "bench", "--serve-worker", str(count), str(rounds)],
            input=json.dumps(ports),
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
    figures = json.loads(done.stdout)
    share = figures["reuse"] * 100
    cpu = figures["cpu_ms_per_probe"]
    probes = int(figures["probes"])
    return [
        Figure(
            f"serve, {count:,} services: probes reusing a connection",
            f"{share:.1f}% of {probes:,} (rounds 2-{rounds}, every {interval:g}s)",
            "90%",
            None,
            ">= 90%",
            share >= 90,
        ),
        Figure(
            f"serve, {count:,} services: CPU per probe",
            f"{cpu:.3f} ms (of which /metrics rendering, once a second, "
            f"~{figures['render_ms_per_probe']:.3f} ms)",
            "0.15 ms",
            None,
            "<= 0.15 ms",
            cpu <= 0.15,
        ),
    ]


def hanging(runs: int) -> Figure:
    """50 services, 10 of which accept and never answer; deadline 2 s; whole command."""
    timeout = 2.0
    walls = []
    with (
        nginx(40) as ports,
        hanging_ports(10) as stuck,
        tempfile.TemporaryDirectory(prefix="opsdash-bench-") as tmp,
    ):
        registry = write_registry(ports + stuck, tmp, timeout)
        for _ in range(runs):
            walls.append(run([*_opsdash(), "check", "--json", "-r", str(registry)]).wall)
    wall = statistics.median(walls)
    return Figure(
        "50 services, 10 never answer, deadline 2 s",
        f"{wall:.3f} s (deadline + {wall - timeout:.3f} s)",
        f"deadline {timeout:g} s",
        None,
        "<= deadline + 0.15 s",
        wall <= timeout + 0.15,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and scale points")
    parser.add_argument("--only", help="run the targets whose name contains this word")
    parser.add_argument("--serve-worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_worker:
        print(json.dumps(serve_worker(args.serve_worker[0], args.serve_worker[1], 2.0)))
        return
    runs = 3 if args.quick else 7
    scale = (1000, 5000) if args.quick else (1000, 5000, 10000)
    steps: list[tuple[str, Callable[[], list[Figure]]]] = [
        ("floor", lambda: import_floors(runs * 2)),
        ("help", lambda: [help_vs_python(runs * 2)]),
        ("small", lambda: [check_small(runs * 2)]),
        ("first", lambda: [first_probe(runs)]),
        ("curl", lambda: [check_vs_curl(1000, runs)]),
        ("hanging", lambda: [hanging(max(2, runs // 2))]),
        ("serve", lambda: serve_figures(1000, 4 if args.quick else 6)),
        ("linear", lambda: linear_cost(scale)),
        ("validate", lambda: [validate_vs_yaml(94_000, max(2, runs // 2))]),
    ]
    print(f"# opsdash speed targets (issue 12); {'quick' if args.quick else 'full'} run")
    print(f"# {os.cpu_count()} cores; load {os.getloadavg()[0]:.2f}; medians of alternating runs")
    hooks = import_hooks()
    if hooks:
        print(f"# warning: site-packages installs import hooks ({', '.join(hooks)}) that every")
        print("# interpreter start runs: the reference `python -c pass` is inflated by them")
    results: list[Figure] = []
    for name, step in steps:
        if args.only and args.only not in name:
            continue
        for figure in step():
            results.append(figure)
            print(figure.line(), flush=True)
    targets = [figure for figure in results if figure.limit != "reference only"]
    met = sum(figure.met for figure in targets)
    print(f"# {met} of {len(targets)} targets met")
