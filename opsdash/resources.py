"""Shared clients: one HTTP client and one client per datastore, created once and closed cleanly.

Probes receive a :class:`Resources` and ask it for what they need. Datastore clients are made
on first use by the probe module that knows the library (``shared(key, create, close)``), so
this module imports no driver and ``opsdash check`` on a services-only registry loads none.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from types import TracebackType
from typing import Any, Self, TypeVar, cast

import httpx

from opsdash import __version__
from opsdash.transport import LeanTransport

T = TypeVar("T")

USER_AGENT = f"opsdash/{__version__}"
MAX_REDIRECTS = 5


def make_http_client(transport: httpx.AsyncBaseTransport) -> httpx.AsyncClient:
    """The one HTTP client of a process (a second one for ``tls_verify: false``).

    Deadlines are not set here: the harness enforces a total deadline per probe, which httpx's
    per-operation timeouts cannot (a server dripping a byte a second defeats them).

    The transport is :class:`~opsdash.transport.LeanTransport`, not httpx's default: httpcore's
    pool costs milliseconds of CPU per request once a round spans hundreds of origins (measured
    in ``bench/http_round.py``; :func:`make_transport`), or the transport a test injects
    (respx, MockTransport).
    """
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(None),
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        headers={
            "User-Agent": USER_AGENT,
            "Accept": "application/json, text/plain;q=0.9, */*;q=0.5",
            # Health bodies are small; compression would only cost CPU and open a bomb's door.
            "Accept-Encoding": "identity",
        },
        trust_env=False,
    )


def make_transport(*, concurrency: int = 64, verify: bool = True) -> LeanTransport:
    """The production transport of :func:`make_http_client`: requests in flight and idle
    keep-alive connections both bounded to twice the round's concurrency."""
    return LeanTransport(
        verify=verify,
        max_connections=concurrency * 2,
        max_keepalive=concurrency * 2,
        keepalive_expiry=30.0,
    )


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """The event loop to run opsdash on: uvloop's when installed, else asyncio's.

    uvloop halves the cost of connections and callbacks (a 1,000-service round: see
    ``bench/README.md``). Commands use it through :func:`run_async`.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to the end on opsdash's event loop (:func:`event_loop_factory`): every
    command that runs probes goes through here."""
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(coroutine)


class Resources:
    """Everything probes share during a process's life. Use as an async context manager."""

    def __init__(
        self,
        *,
        concurrency: int = 64,
        http_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._concurrency = concurrency
        self._http_transport = http_transport
        self._clients: dict[bool, httpx.AsyncClient] = {}
        self._transports: dict[bool, httpx.AsyncBaseTransport] = {}
        self._memo: dict[Hashable, object] = {}
        self._shared: dict[str, tuple[Any, Callable[[Any], Awaitable[None]]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def http(self, *, verify: bool = True) -> httpx.AsyncClient:
        """The shared HTTP client (a second one, made on demand, for ``tls_verify: false``)."""
        client = self._clients.get(verify)
        if client is None:
            client = self._clients[verify] = make_http_client(self._transport(verify=verify))
        return client

    def lean_transport(self, *, verify: bool = True) -> LeanTransport | None:
        """The :class:`LeanTransport` under :meth:`http`, for callers that skip the client's
        request/response objects (the HTTP probe's direct path); ``None`` when an injected
        transport (respx, MockTransport) must see every request through the client."""
        self.http(verify=verify)
        transport = self._transports.get(verify)
        return transport if isinstance(transport, LeanTransport) else None

    def memo(self, key: Hashable, create: Callable[[], T]) -> T:
        """The value stored under ``key``, made by ``create`` on first use and kept for the
        life of these resources (e.g. a request serialised once, sent every round)."""
        try:
            return cast(T, self._memo[key])
        except KeyError:
            value = self._memo[key] = create()
            return value

    def _transport(self, *, verify: bool) -> httpx.AsyncBaseTransport:
        transport = self._http_transport or make_transport(
            concurrency=self._concurrency, verify=verify
        )
        self._transports[verify] = transport
        return transport

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
        for client in clients:
            await client.aclose()
