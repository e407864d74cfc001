"""Throwaway Prometheus and Alertmanager (Debian's binaries) on free loopback ports, with
their storage in temp dirs, and the command-line tools beside them (promtool, amtool).

Like :mod:`tests.servers`: readiness is polled (``/-/ready``), a missing binary skips the test
with the reason locally and fails it under CI (``OPSDASH_REQUIRE_SERVERS=1``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.servers import ServerUnavailable, _ProcessServer

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "opsdash-rules.yml"
ALERTMANAGER_CONFIG = DEPLOY / "prometheus" / "alertmanager.yml"


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (held open together, so that they differ;
    :func:`tests.servers.free_port` twice may give the same one)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def binary(*names: str) -> str:
    """The first of ``names`` on PATH (or in /usr/bin), else :class:`ServerUnavailable`."""
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/sbin")
        if found:
            return found
    raise ServerUnavailable(f"{' / '.join(names)} is not installed (Debian package needed)")


class _Daemon(_ProcessServer):
    """A server process whose readiness is an HTTP GET answering 200."""

    ready_path = "/-/ready"

    def __init__(self) -> None:
        super().__init__()
        self.log = self.dir / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        """Start the process and wait until it says it is ready."""
        if self.running:
            return
        with self.log.open("ab") as log:
            self._spawn(
                self.argv(),
                ready=self._ready,
                what=type(self).__name__,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
            )

    def _ready(self) -> bool:
        process = self._process
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}:\n{self.log_tail()}")
        try:
            return httpx.get(self.url + self.ready_path, timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def api(self, path: str, **params: str) -> Any:
        """GET ``/api/v1/<path>``'s ``data`` (an error answer raises, with Prometheus' error)."""
        answer = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10).json()
        if answer.get("status") != "success":
            raise AssertionError(f"{path} {params}: {answer}")
        return answer["data"]


class PrometheusServer(_Daemon):
    """``prometheus`` with ``config`` (a prometheus.yml text), a 1s evaluation interval."""

    def __init__(self, config: str) -> None:
        self.binary = binary("prometheus")
        super().__init__()
        self.config = self.dir / "prometheus.yml"
        self.config.write_text(config)

    def argv(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1h",
            "--log.level=warn",
        ]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        data = self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result

    def poll(self, what: str, condition: Any, *, timeout: float) -> Any:
        """Poll ``condition()`` until it returns something truthy (bounded); return it."""
        deadline = time.monotonic() + timeout
        while True:
            found = condition()
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout:g}s\n{self.log_tail()}")
            time.sleep(0.2)


class AlertmanagerServer(_Daemon):
    """``prometheus-alertmanager`` on a free port, no clustering, storage in a temp dir."""

    def __init__(self, config: Path) -> None:
        self.binary = binary("prometheus-alertmanager", "alertmanager")
        self.config = config
        super().__init__()

    def argv(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.config}",
            f"--storage.path={self.dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]
