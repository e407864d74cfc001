"""Throwaway datastore servers for tests: real binaries, free loopback ports, temp dirs.

Each server is a small object with :meth:`start` and :meth:`stop` (to simulate an outage and a
recovery on the same port) and is used as a context manager that cleans everything up::

    with RedisServer() as redis:            # redis.url -> redis://127.0.0.1:<port>/0
        redis.stop(); ...; redis.start()
        with redis.frozen(): ...            # SIGSTOP: connections open, nothing answers

    with PostgresServer() as pg:            # pg.dsn -> postgresql://postgres@127.0.0.1:<port>/postgres
        with pg.outage(): ...               # stopped inside the block, running again after it

Readiness is polled (a PING, ``pg_ctl -w``), never waited for with a blind sleep. A missing
binary raises :class:`ServerUnavailable`; :func:`unavailable` turns that into ``pytest.skip``,
or ``pytest.fail`` when ``OPSDASH_REQUIRE_SERVERS=1`` (CI) so that a missing server cannot turn
the integration tests into silent skips. ``mongod`` is the exception: it cannot be installed on
the CI image, so it always skips.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn, Self

import pytest

REQUIRE_ENV = "OPSDASH_REQUIRE_SERVERS"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


class ServerUnavailable(RuntimeError):
    """The binaries (or the user) needed to run a throwaway server are missing."""


def unavailable(reason: str, *, required: bool | None = None) -> NoReturn:
    """Skip the test, or fail it when servers are required (``OPSDASH_REQUIRE_SERVERS=1``)."""
    if required is None:
        required = os.environ.get(REQUIRE_ENV) == "1"
    if required:
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def refused_port() -> int:
    """A loopback port whose connections are refused for the whole test.

    A port from :func:`free_port` lies in the kernel's ephemeral range, which ``connect()``
    also draws its source ports from: on a busy machine a probe to it can be the source port
    of some other connection, or connect to itself, and read "reset" or its own request
    instead of "refused". This one lies below that range (where neither ``bind(0)`` nor
    ``connect()`` ever pick), and nothing listens on it now."""
    low = _ephemeral_low()
    for port in random.sample(range(max(1024, low - 8000), low), 64):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port below the ephemeral range")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def wait_until(condition: object, *, timeout: float, what: str, interval: float = 0.02) -> None:
    """Poll ``condition()`` until it is true; raise ``TimeoutError`` naming ``what``."""
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout:g}s")
        time.sleep(interval)


def port_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


class _Server:
    """Shared context-manager plumbing: a temp dir removed at exit, ``stop`` before it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"opsdash-{type(self).__name__.lower()}-"))

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        raise NotImplementedError

    def ensure_running(self) -> None:
        """Start the server if a test left it stopped."""
        if not self.running:
            self.start()

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """Stopped inside the block, running again (same port) after it, even on failure."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def close(self) -> None:
        """Stop the server and remove its directory."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            self._first_start()
        except BaseException:
            self.close()
            raise
        return self

    def _first_start(self, attempts: int = 3) -> None:
        """Start on a new free port when another process took ours between ``free_port()``
        and the start (suites running side by side on one machine); any other failure is
        raised at once."""
        for attempt in range(attempts):
            try:
                self.start()
                return
            except (RuntimeError, TimeoutError):
                if attempt == attempts - 1 or not port_open(self.port):
                    raise
                self.port = free_port()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _ProcessServer(_Server):
    """A server that is one child process: ``running`` while it lives, ``stop`` ends it."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        super().__init__()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _spawn(self, args: list[str], *, ready: object, what: str, **popen: Any) -> None:
        """Start ``args`` and wait until ``ready()``; a server not ready in time is stopped."""
        self._process = subprocess.Popen(args, **popen)
        try:
            wait_until(ready, timeout=START_TIMEOUT, what=what)
        except TimeoutError:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and wait for the process to end."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- Redis ------------------------------------------------------------------------------


class RedisServer(_ProcessServer):
    """A ``redis-server`` without persistence on a free port, optionally with a password."""

    def __init__(self, *, password: str | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServerUnavailable("redis-server is not on PATH")
        self.binary = binary
        self.password = password
        super().__init__()

    @property
    def url(self) -> str:
        """``redis://[:password@]127.0.0.1:<port>/0``."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        if self.running:
            return
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            "--save", "",
            "--appendonly", "no",
            "--logfile", str(self.dir / "redis.log"),
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        self._spawn(
            args,
            ready=self._answers,
            what=f"redis on port {self.port}",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.dir,
        )

    def _answers(self) -> bool:
        process = self._process
        if process is not None and process.poll() is not None:
            log = (self.dir / "redis.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"redis-server exited with {process.returncode}:\n{log}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.5) as sock:
                sock.sendall(b"PING\r\n")
                reply = sock.recv(64)
        except OSError:
            return False
        # A password-protected server answers NOAUTH: it is up all the same.
        return reply.startswith((b"+PONG", b"-NOAUTH"))

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """The server hangs (SIGSTOP) inside the block: connections open, nothing answers."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self._process.send_signal(signal.SIGCONT)


# --- PostgreSQL -------------------------------------------------------------------------


def postgres_bindir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: PATH first, then the newest
    ``/usr/lib/postgresql/*/bin``."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: [int(x) for x in Path(p).parent.name.split(".") if x.isdigit()],
    )
    for candidate in reversed(candidates):
        if (Path(candidate) / "pg_ctl").exists() and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise ServerUnavailable("PostgreSQL binaries (initdb, pg_ctl) not found")


# Only the superuser connects without a password over TCP, so that tests can create roles
# with passwords and see authentication fail for real.
_PG_HBA = """\
local all all trust
host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
"""


class PostgresServer(_Server):
    """A PostgreSQL cluster made by ``initdb`` in a temp dir, served on a free port.

    As root, ``initdb``/``pg_ctl`` refuse to run, so they run as ``postgres`` (``runuser``) on
    a directory owned by that user. The superuser is ``postgres`` (trusted on 127.0.0.1);
    every other role authenticates with SCRAM.
    """

    def __init__(self) -> None:
        self.bindir = postgres_bindir()
        self._as_user: list[str] = []
        self._uid: int | None = None
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                entry = None
            if runuser is None or entry is None:
                raise ServerUnavailable("running as root without runuser or a postgres user")
            self._as_user = [runuser, "-u", "postgres", "--"]
            self._uid, self._gid = entry.pw_uid, entry.pw_gid
        super().__init__()
        if self._uid is not None:
            os.chown(self.dir, self._uid, self._gid)
        self.data = self.dir / "data"
        self._initialised = False
        self._running = False

    @property
    def dsn(self) -> str:
        """The superuser's DSN over TCP."""
        return self.dsn_for("postgres")

    def dsn_for(self, user: str, password: str | None = None, database: str = "postgres") -> str:
        """A DSN for ``user`` (with ``password``) on ``database``."""
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    @property
    def running(self) -> bool:
        return self._running

    def _run(self, *args: str) -> None:
        command = [*self._as_user, *args]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.dir, check=False)
        if done.returncode != 0:
            log = self.dir / "postgres.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed:\n{done.stderr}{done.stdout}{tail}")

    def _initdb(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D", str(self.data),
            "-U", "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )  # fmt: skip
        hba = self.data / "pg_hba.conf"
        hba.write_text(_PG_HBA)
        if self._uid is not None:
            os.chown(hba, self._uid, self._gid)
        self._initialised = True

    def start(self) -> None:
        """Start the server (``initdb`` the first time); ``pg_ctl -w`` polls until it accepts
        connections."""
        if self._running:
            return
        if not self._initialised:
            self._initdb()
        options = (
            f"-k {self.dir} -p {self.port} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c synchronous_commit=off "
            "-c shared_buffers=16MB"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D", str(self.data),
            "-l", str(self.dir / "postgres.log"),
            "-o", options,
            "-w", "-t", str(int(START_TIMEOUT)),
            "start",
        )  # fmt: skip
        self._running = True
        wait_until(lambda: port_open(self.port), timeout=START_TIMEOUT, what="postgres port")

    def stop(self) -> None:
        """Stop the server (fast shutdown: clients are disconnected) and wait for it."""
        if not self._running:
            return
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        self._running = False

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` as the superuser through the unix socket; the output, unaligned."""
        command = [
            *self._as_user,
            str(self.bindir / "psql"),
            "-h", str(self.dir),
            "-p", str(self.port),
            "-U", "postgres",
            "-d", database,
            "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-c", sql,
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr}")
        return done.stdout.strip()


# --- MongoDB ----------------------------------------------------------------------------


class MongodServer(_ProcessServer):
    """A standalone ``mongod`` on a free port (only where one is installed)."""

    def __init__(self) -> None:
        binary = shutil.which("mongod")
        if binary is None:
            raise ServerUnavailable("mongod is not on PATH")
        self.binary = binary
        super().__init__()

    @property
    def uri(self) -> str:
        """``mongodb://127.0.0.1:<port>/?directConnection=true``."""
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self) -> None:
        """Start mongod and wait until its port accepts connections."""
        if self.running:
            return
        (self.dir / "db").mkdir(exist_ok=True)
        args = [
            self.binary,
            "--dbpath", str(self.dir / "db"),
            "--port", str(self.port),
            "--bind_ip", "127.0.0.1",
            "--logpath", str(self.dir / "mongod.log"),
        ]  # fmt: skip
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up() -> bool:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"mongod exited with {self._process.returncode}")
            return port_open(self.port)

        wait_until(up, timeout=START_TIMEOUT, what=f"mongod on port {self.port}")
