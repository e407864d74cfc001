"""Shared fixtures: throwaway datastore servers (see ``tests/servers.py``), and ``utc_zone``
for the dashboard tests (``pytestmark = pytest.mark.usefixtures("utc_zone")``).

``redis_server`` and ``postgres_server`` start once per session; a test that stops one must
start it again before it ends (``with server.outage(): ...`` does that, even on failure).
``redis_factory`` makes function-scoped extra instances (with a password, or to stop without
touching the shared one).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from tests.servers import (
    MongodServer,
    PostgresServer,
    RedisServer,
    ServerUnavailable,
    unavailable,
)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A throwaway Redis for the whole session (``.url``, ``.stop()``, ``.start()``)."""
    try:
        server = RedisServer()
    except ServerUnavailable as exc:
        unavailable(str(exc))
    with server:
        yield server


@pytest.fixture
def redis_factory() -> Iterator[Callable[..., RedisServer]]:
    """Start extra Redis servers for one test: ``redis_factory(password="s3cret")``."""
    started: list[RedisServer] = []

    def make(*, password: str | None = None) -> RedisServer:
        try:
            server = RedisServer(password=password)
        except ServerUnavailable as exc:
            unavailable(str(exc))
        started.append(server)
        return server.__enter__()

    yield make
    for server in started:
        server.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL for the whole session (``.dsn``, ``.psql()``, ``.outage()``)."""
    try:
        server = PostgresServer()
    except ServerUnavailable as exc:
        unavailable(str(exc))
    with server:
        yield server


@pytest.fixture(scope="session")
def mongod_server() -> Iterator[MongodServer]:
    """A real mongod, only where one is installed: always a skip otherwise (even in CI)."""
    try:
        server = MongodServer()
    except ServerUnavailable as exc:
        unavailable(str(exc), required=False)
    with server:
        yield server


@pytest.fixture(autouse=True)
def _private_state_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep every test away from the user's real alerting state (~/.local/state/opsdash)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state-home")))
    monkeypatch.delenv("OPSDASH_STATE", raising=False)


@pytest.fixture
def utc_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Times on screen are local: pin the zone so the dashboard reads the same everywhere."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
