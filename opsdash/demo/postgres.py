"""A real, throwaway PostgreSQL for the demo, holding the tables of migration 019.

Where the binaries come from, in order (the first that exists wins):

1. the machine's PostgreSQL (``initdb`` on ``PATH``, or Debian's ``/usr/lib/postgresql/*/bin``);
2. the ``pgserver`` wheel, when it is installed (``pip install pgserver``: it ships the
   binaries). Only its binaries are used: its own start-up, run as root, adds a system user
   and loosens the permissions of every parent directory, which a demo must not do.

PostgreSQL refuses to run as root; as root the cluster belongs to the ``postgres`` user
(``runuser -u postgres``), and without such a user there is no server. With no binaries
either, :func:`start_postgres` returns the reason, and the demo runs without PostgreSQL and
says so: there is no stand-in, because a fake could not be told from a real audit.

The cluster lives in a temp dir, on a free loopback port, with ``fsync`` off (the demo keeps
nothing) and ``max_connections = 20`` so that the story can bring it near saturation with a
dozen idle connections. :meth:`DemoPostgres.apply` plays the story's PostgreSQL scenes: the
extra connections, and the migration-019 index a rollback drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import socket
import tempfile
from collections.abc import Sequence
from pathlib import Path

import asyncpg

from opsdash.records import dataclass

MAX_CONNECTIONS = 20
DATABASE = "platform"
START_TIMEOUT = 30.0

# migration 019-add-performance-indexes.sql, on tables shaped like the platform's
SCHEMA = """
CREATE TABLE payments (id bigserial PRIMARY KEY, student_id bigint NOT NULL,
    status text NOT NULL, amount_cents integer NOT NULL, created_at timestamptz DEFAULT now());
CREATE TABLE tutoring_sessions (id bigserial PRIMARY KEY, student_id bigint NOT NULL,
    trainer_id bigint NOT NULL, status text NOT NULL, scheduled_date date NOT NULL,
    scheduled_time time NOT NULL);
CREATE TABLE trainer_allocations (id bigserial PRIMARY KEY, student_id bigint NOT NULL,
    trainer_id bigint NOT NULL, course_id bigint NOT NULL, status text NOT NULL);
CREATE TABLE student_course_purchases (id bigserial PRIMARY KEY, student_id bigint NOT NULL,
    course_id bigint NOT NULL, created_at timestamptz DEFAULT now());
CREATE INDEX idx_payments_student_status_created
    ON payments (student_id, status, created_at DESC);
CREATE INDEX idx_sessions_student_status_date_time
    ON tutoring_sessions (student_id, status, scheduled_date ASC, scheduled_time ASC);
CREATE INDEX idx_sessions_trainer_date ON tutoring_sessions (trainer_id, scheduled_date);
CREATE INDEX idx_allocations_student_status_course
    ON trainer_allocations (student_id, status, course_id);
CREATE INDEX idx_allocations_trainer_status ON trainer_allocations (trainer_id, status);
CREATE INDEX idx_purchases_student_created
    ON student_course_purchases (student_id, created_at DESC);
"""

# The index the story's rollback drops and the re-run migration creates again.
DROPPED_INDEX = "idx_sessions_trainer_status"
CREATE_DROPPED = (
    f"CREATE INDEX IF NOT EXISTS {DROPPED_INDEX} ON tutoring_sessions (trainer_id, status)"
)

EXPECT_INDEXES: dict[str, list[str]] = {
    "payments": ["idx_payments_student_status_created"],
    "tutoring_sessions": [
        "idx_sessions_student_status_date_time",
        "idx_sessions_trainer_date",
        DROPPED_INDEX,
    ],
    "trainer_allocations": [
        "idx_allocations_student_status_course",
        "idx_allocations_trainer_status",
    ],
    "student_course_purchases": ["idx_purchases_student_created"],
}


@dataclass(frozen=True, slots=True)
class Binaries:
    """Where ``initdb`` and ``pg_ctl`` are, and who must run them."""

    bin_dir: Path
    source: str
    """"the machine" or "pgserver" (for the demo's banner)."""
    run_as: str | None
    """A user to run them as (``postgres`` when we are root), or None for ourselves."""


def find_binaries() -> Binaries | str:
    """The PostgreSQL binaries to use, or why there are none."""
    run_as: str | None = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run PostgreSQL as"
        run_as = "postgres"
    initdb = shutil.which("initdb")
    if initdb is None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major)
        initdb = found[-1] if found else None
    if initdb is not None:
        return Binaries(Path(os.path.realpath(initdb)).parent, "the machine", run_as)
    try:
        from pgserver import _commands  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return "no PostgreSQL binaries (install PostgreSQL, or `pip install pgserver`)"
    return Binaries(Path(_commands.POSTGRES_BIN_PATH), "pgserver", run_as)


def _major(path: str) -> int:
    with contextlib.suppress(ValueError):
        return int(Path(path).parent.parent.name)
    return 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DemoPostgres:
    """One running throwaway cluster (``.dsn``); :meth:`close` stops it and removes it."""

    def __init__(self, binaries: Binaries, directory: Path, port: int) -> None:
        self.binaries = binaries
        self.dir = directory
        self.port = port
        self._control: asyncpg.Connection | None = None
        self._extra: list[asyncpg.Connection] = []
        self._index_dropped = False

    @property
    def dsn(self) -> str:
        """``postgresql://postgres@127.0.0.1:<port>/platform``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def source(self) -> str:
        """Where its binaries came from."""
        return self.binaries.source

    async def _run(self, tool: str, *args: str) -> None:
        command: Sequence[str] = [str(self.binaries.bin_dir / tool), *args]
        if self.binaries.run_as:
            command = ["runuser", "-u", self.binaries.run_as, "--", *command]
        # stderr to a file, not a pipe: the server pg_ctl leaves running could inherit a pipe
        # and keep it open, and reading it to its end would then wait for the server to stop.
        errors = self.dir / f"{tool}.err"
        with errors.open("wb") as sink:
            process = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.DEVNULL, stdout=sink, stderr=sink
            )
            try:
                await asyncio.wait_for(process.wait(), START_TIMEOUT)
            except TimeoutError:
                process.kill()
                raise RuntimeError(f"{tool} did not finish within {START_TIMEOUT:g}s") from None
        if process.returncode != 0:
            text = errors.read_text(errors="replace").strip().splitlines()[-1:] or ["failed"]
            raise RuntimeError(f"{tool}: {text[0][:200]}")

    async def start(self) -> None:
        """initdb, start, create the database and the migration-019 tables."""
        data = self.dir / "data"
        await self._run(
            "initdb", "-N", "-A", "trust", "-U", "postgres", "-E", "UTF8", "-D", str(data)
        )
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
            f" -c max_connections={MAX_CONNECTIONS} -c superuser_reserved_connections=3"
        )
        await self._run(
            "pg_ctl", "-D", str(data), "-w", "-l", str(self.dir / "log"), "-o", options, "start"
        )
        admin = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres")
        try:
            await admin.execute(f"CREATE DATABASE {DATABASE}")
        finally:
            await admin.close()
        self._control = await asyncpg.connect(self.dsn)
        await self._control.execute(SCHEMA + CREATE_DROPPED)

    async def apply(self, *, extra_connections: int, index_dropped: bool) -> None:
        """Hold ``extra_connections`` idle connections; drop or re-create the story's index."""
        while len(self._extra) > extra_connections:
            await self._extra.pop().close()
        while len(self._extra) < extra_connections:
            self._extra.append(await asyncpg.connect(self.dsn))
        if index_dropped != self._index_dropped and self._control is not None:
            sql = f"DROP INDEX IF EXISTS {DROPPED_INDEX}" if index_dropped else CREATE_DROPPED
            await self._control.execute(sql)
            self._index_dropped = index_dropped

    async def close(self) -> None:
        """Close our connections, stop the server at once, remove its directory."""
        for connection in [*self._extra, self._control]:
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.close(timeout=2)
        self._extra.clear()
        self._control = None
        try:
            if (self.dir / "data" / "postmaster.pid").exists():
                await self._run(
                    "pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop"
                )
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def prepare_postgres() -> DemoPostgres | str:
    """A cluster not started yet (its directory made, its port chosen: its DSN is known), or
    why there can be none."""
    binaries = find_binaries()
    if isinstance(binaries, str):
        return binaries
    directory = Path(tempfile.mkdtemp(prefix="opsdash-demo-pg-"))
    if binaries.run_as:
        entry = pwd.getpwnam(binaries.run_as)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    return DemoPostgres(binaries, directory, _free_port())


async def start_prepared(server: DemoPostgres) -> str:
    """Start a prepared cluster: "" once it runs, else why not (it is then cleaned up)."""
    try:
        await server.start()
    except (OSError, RuntimeError, TimeoutError, asyncpg.PostgresError) as exc:
        await server.close()
        return f"PostgreSQL did not start ({exc})"
    except BaseException:
        await server.close()
        raise
    return ""


async def start_postgres(*, attempts: int = 3) -> DemoPostgres | str:
    """A running demo cluster, or why there is none (the demo then runs without it).

    A free port can be taken by another process between the look-up and the server's bind
    (a busy machine, tests in parallel): a failed start is tried again on a new port."""
    reason = ""
    for _ in range(attempts):
        server = prepare_postgres()
        if isinstance(server, str):
            return server
        reason = await start_prepared(server)
        if not reason:
            return server
    return reason
