"""Shared clients: one HTTP client and one client per datastore, created once and closed cleanly.

Probes receive a :class:`Resources` and ask it for what they need. Datastore clients are made
on first use by the probe module that knows the library (``shared(key, create, close)``), so
this module imports no driver and ``opsdash check`` on a services-only registry loads none.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from opsdash import __version__
from opsdash.deadline import ProbeDeadlines
from opsdash.httpclient import HttpClient, HttpxWire
from opsdash.transport import LeanTransport, Wire

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")

USER_AGENT = f"opsdash/{__version__}"
MAX_REDIRECTS = 5
DEFAULT_HEADERS = {
    "User-Agent": USER_AGENT,
    "Accept": "application/json, text/plain;q=0.9, */*;q=0.5",
    # Health bodies are small; compression would only cost CPU and open a bomb's door.
    "Accept-Encoding": "identity",
}


def make_http_client(wire: Wire) -> HttpClient:
    """The one HTTP client of a process (a second one for ``tls_verify: false``).

    Deadlines are not set here: the harness enforces a total deadline per probe, which
    per-operation timeouts cannot (a server dripping a byte a second defeats them).
    """
    return HttpClient(wire, headers=DEFAULT_HEADERS, max_redirects=MAX_REDIRECTS)


def make_transport(
    *, concurrency: int = 64, verify: bool = True, keepalive: int | None = None
) -> LeanTransport:
    """The production wire of :func:`make_http_client`: requests in flight bounded to twice
    the round's concurrency; idle keep-alive connections to ``keepalive`` (default: as many),
    which ``serve`` raises to cover every service so that each round reuses the last one's
    connections."""
    return LeanTransport(
        verify=verify,
        max_connections=concurrency * 2,
        max_keepalive=keepalive if keepalive is not None else concurrency * 2,
        keepalive_expiry=30.0,
    )


def pool_for(checks: int, *, concurrency: int) -> int:
    """Idle keep-alive connections for a process that runs rounds again and again (``serve``,
    the dashboard, ``check --wait``): one per check, so that every round reuses the previous
    one's connections (at 1,000 services the default 128 made 98% of probes reconnect); at
    most half the file descriptors the process may open."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = soft // 2 if soft != resource.RLIM_INFINITY else 1 << 16
    return max(concurrency * 2, min(checks, ceiling))


def as_wire(transport: Wire | httpx.AsyncBaseTransport) -> Wire:
    """``transport`` as a wire: an httpx transport (respx, ``httpx.MockTransport``: tests) runs
    under :class:`~opsdash.httpclient.HttpxWire`, below the same client as production."""
    if isinstance(transport, LeanTransport):
        return transport
    if hasattr(transport, "handle_async_request"):
        return HttpxWire(cast("httpx.AsyncBaseTransport", transport))
    return transport  # another Wire (a test's own)


UVLOOP_FROM = 200
"""Checks in a round from which uvloop's event loop is worth loading: importing it costs about
5 ms, and it saves some 25-30 us a probe (``bench/README.md``), so a small ``check`` (CI's ten
services) is done sooner on asyncio's own loop."""


def event_loop_factory(checks: int | None = None) -> Callable[[], asyncio.AbstractEventLoop]:
    """The event loop to run opsdash on: uvloop's when installed, else asyncio's; asyncio's
    too for a one-shot round of fewer than :data:`UVLOOP_FROM` ``checks``.

    uvloop halves the cost of connections and callbacks (a 1,000-service round: see
    ``bench/README.md``). Commands use it through :func:`run_async`.
    """
    if checks is not None and checks < UVLOOP_FROM:
        return asyncio.new_event_loop
    try:
        import uvloop  # here: only the rounds large enough to repay its import load it
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def run_async(coroutine: Coroutine[Any, Any, T], *, checks: int | None = None) -> T:
    """Run ``coroutine`` to the end on opsdash's event loop (:func:`event_loop_factory`): every
    command that runs probes goes through here (``checks``: how many a one-shot round runs,
    when the caller knows: it picks the loop).

    The value is handed out beside the main task, not as its result: on its way out,
    ``asyncio.Runner`` restores the SIGINT handler, and Python 3.11's ``signal`` module then
    builds the repr of that handler, which holds the main task, which holds its result: for a
    round of 2,000 results, two full reprs of every result (40-70 ms at 1,000 services)."""
    box: list[T] = []

    async def main() -> None:
        box.append(await coroutine)

    with asyncio.Runner(loop_factory=event_loop_factory(checks)) as runner:
        runner.run(main())
    return box[0]


class Resources:
    """Everything probes share during a process's life. Use as an async context manager."""

    def __init__(
        self,
        *,
        concurrency: int = 64,
        http_transport: Wire | httpx.AsyncBaseTransport | None = None,
        keepalive: int | None = None,
        state_path: Path | None = None,
    ) -> None:
        self._concurrency = concurrency
        self._keepalive = keepalive
        self._http_transport = None if http_transport is None else as_wire(http_transport)
        self._clients: dict[bool, HttpClient] = {}
        self.state_path = state_path
        """The alerting state file a command was given (``--state``): heartbeat checks read
        their beats from it; ``None`` for the default."""
        self._memo: dict[Hashable, object] = {}
        self._shared: dict[str, tuple[Any, Callable[[Any], Awaitable[None]]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.deadlines = ProbeDeadlines()
        """The running probes' deadlines (the harness sets one per probe run)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def http(self, *, verify: bool = True) -> HttpClient:
        """The shared HTTP client (a second one, made on demand, for ``tls_verify: false``):
        every HTTP reader goes through it."""
        client = self._clients.get(verify)
        if client is None:
            wire = self._http_transport or make_transport(
                concurrency=self._concurrency, verify=verify, keepalive=self._keepalive
            )
            client = self._clients[verify] = make_http_client(wire)
        return client

    def memo(self, key: Hashable, create: Callable[[], T]) -> T:
        """The value stored under ``key``, made by ``create`` on first use and kept for the
        life of these resources (e.g. something parsed once, used every round)."""
        try:
            return cast(T, self._memo[key])
        except KeyError:
            value = self._memo[key] = create()
            return value

    async def shared(
        self,
        key: str,
        create: Callable[[], Awaitable[T]],
        close: Callable[[T], Awaitable[None]],
    ) -> T:
        """The client stored under ``key``, created by ``create`` on first use.

        Concurrent first uses wait for one creation. ``close`` runs at :meth:`aclose`.
        """
        if key in self._shared:
            return cast(T, self._shared[key][0])
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self._shared:
                client = await create()
                self._shared[key] = (client, cast(Callable[[Any], Awaitable[None]], close))
        return cast(T, self._shared[key][0])

    async def discard(self, key: str) -> None:
        """Close and forget the client under ``key`` (after it proved broken)."""
        entry = self._shared.pop(key, None)
        if entry is not None:
            client, close = entry
            with contextlib.suppress(Exception):
                await close(client)

    async def aclose(self) -> None:
        """Close every client; safe to call twice."""
        for key in list(self._shared):
            await self.discard(key)
        clients, self._clients = list(self._clients.values()), {}
        wires = {id(client.wire): client.wire for client in clients}
        for wire in wires.values():
            await wire.aclose()
