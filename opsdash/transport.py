"""A lean HTTP/1.1 transport for httpx, built on asyncio protocols and h11.

Why not httpx's default transport: httpcore's pool scans every connection of every origin for
each request, so a round over a thousand services costs milliseconds of CPU per probe, and its
anyio streams add more on top. A health probe needs little of what it offers (no HTTP/2, no
proxies): this transport keeps one small keep-alive pool per origin and does the rest with
asyncio's protocol callbacks and h11's parser. It plugs under :class:`httpx.AsyncClient`, so
redirects, cookies and respx-based tests keep working through the client API.

The HTTP probe also has a direct path, for the CPU it saves on a thousand-service round:
:func:`prepare_get` serialises a GET once (headers merged as the client merges them) and
:meth:`LeanTransport.fetch` sends it and reads the capped body into a :class:`Fetched`, with no
:class:`httpx.Request`/:class:`httpx.Response` built; redirects are left to the client.

Behaviour a probe relies on:

- **Cancellation is clean.** Whatever is awaited (connect, TLS handshake, headers, body) can be
  cancelled by the caller's deadline; the connection is then aborted, never pooled.
- **Closing a response discards the rest unread.** A body that was not read to its end aborts
  the connection instead of draining it, so a server streaming a gigabyte costs nothing more
  than what was read.
- **Bounded memory.** The protocol stops reading from the socket when more than
  :data:`_HIGH_WATER` bytes wait unread; h11 caps the size of the status line and headers.
- **TLS** uses one :class:`ssl.SSLContext` per transport (building one costs milliseconds); the
  peer certificate is reachable like httpcore's, through the response's ``network_stream``
  extension: ``response.extensions["network_stream"].get_extra_info("ssl_object")``.

Errors are httpx's (``ConnectError``, ``ReadError``, ``RemoteProtocolError``...) with the
socket-level exception as ``__cause__``, so :func:`opsdash.errors.classify` finds the real reason.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import h11
import httpx

_HIGH_WATER = 256 * 1024
"""Unread body bytes buffered before the socket stops being read."""
_LOW_WATER = 64 * 1024

Origin = tuple[bytes, str, int]
"""``(scheme, host, port)``: connections are pooled per origin."""


_END = h11.EndOfMessage()
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
"""The statuses httpx follows when a ``Location`` comes with them."""


class ServerDisconnected(httpx.RemoteProtocolError):
    """The server closed the connection before sending a complete response."""


def request_origin(url: httpx.URL) -> Origin:
    """The pool key of ``url``; only ``http`` and ``https`` are spoken here."""
    scheme = url.raw_scheme
    if scheme not in (b"http", b"https"):
        raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
    return (scheme, url.host, url.port or (443 if scheme == b"https" else 80))


def serialize_head(
    method: bytes, target: bytes, headers: Sequence[tuple[bytes, bytes]]
) -> tuple[bytes, h11.Request]:
    """The bytes of a bodiless request, serialised here rather than by h11 (its validation
    costs more than the rest of a probe), and the h11 event that tells the connection's state
    machine what it needs to frame the response and decide on keep-alive."""
    lines = [method, b" ", target, b" HTTP/1.1\r\n"]
    tracked: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        lines += (name, b": ", value, b"\r\n")
        lowered = name.lower()
        if lowered == b"host" or lowered == b"connection":
            tracked.append((name, value))
    lines.append(b"\r\n")
    head = b"".join(lines)
    # Each line ends with the one CRLF put there: any other CR or LF came with a name, a value
    # or the target, and would let them smuggle a header or a request in.
    lines_expected = len(headers) + 2
    if head.count(b"\n") != lines_expected or head.count(b"\r") != lines_expected:
        for name, value in headers:
            if b"\r" in name + value or b"\n" in name + value:
                raise httpx.LocalProtocolError(f"invalid header {name!r}: line break in it")
        raise httpx.LocalProtocolError(f"invalid request target {target!r}: line break in it")
    return head, h11.Request(method=method, target=target, headers=tracked)


def prepare_get(url: httpx.URL, headers: httpx.Headers) -> PreparedGet:
    """A GET of ``url`` with ``headers`` (the client's merged with the request's, as
    ``AsyncClient.build_request`` merges them), serialised once for :meth:`LeanTransport.fetch`
    to send as often as needed. ``Host`` is added first when missing, as :class:`httpx.Request`
    adds it."""
    origin = request_origin(url)
    raw = headers.raw
    if url.host and "host" not in headers:
        raw = [(b"Host", url.netloc), *raw]
    head, event = serialize_head(b"GET", url.raw_path, raw)
    return PreparedGet(url, origin, head, event)


@dataclass(frozen=True, slots=True)
class PreparedGet:
    """A GET serialised once by :func:`prepare_get`, sent by :meth:`LeanTransport.fetch`."""

    url: httpx.URL
    origin: Origin
    head: bytes
    event: h11.Request


@dataclass(frozen=True, slots=True)
class Fetched:
    """What :meth:`LeanTransport.fetch` read: the head and at most ``max_body`` bytes."""

    status_code: int
    reason: str
    headers: list[tuple[bytes, bytes]]
    """As received, names in lower case."""
    body: bytes
    """As read: up to the end of the chunk that reached ``max_body``; a ``Content-Encoding``
    the server applied anyway is not undone."""
    truncated: bool
    """More body than ``max_body`` was sent (and not read)."""
    redirect: bool
    """A redirect status with a ``Location``: the body was not read."""
    network_stream: NetworkStream

    def header(self, name: bytes) -> str | None:
        """The value of header ``name`` (lower case), repeated ones joined as httpx does."""
        values = [value for key, value in self.headers if key == name]
        if not values:
            return None
        joined = b", ".join(values)
        try:
            return joined.decode("ascii")
        except UnicodeDecodeError:
            try:
                return joined.decode("utf-8")
            except UnicodeDecodeError:
                return joined.decode("iso-8859-1")


def make_ssl_context(verify: bool | ssl.SSLContext = True) -> ssl.SSLContext:
    """A client TLS context: certifi's CAs (or ``$SSL_CERT_FILE``/``$SSL_CERT_DIR``) when
    ``verify`` is true, no verification at all when it is false, or the context given."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify:
        # The environment variables let a site trust its own CA, as curl and httpx do.
        if os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR"):
            context = ssl.create_default_context(
                cafile=os.environ.get("SSL_CERT_FILE") or None,
                capath=os.environ.get("SSL_CERT_DIR") or None,
            )
        else:
            import certifi

            context = ssl.create_default_context(cafile=certifi.where())
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    return context


class NetworkStream:
    """What httpcore exposes as the ``network_stream`` response extension, reduced to the one
    method callers use: ``get_extra_info("ssl_object" | "peername" | "sockname" | ...)``."""

    __slots__ = ("_transport",)

    def __init__(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def get_extra_info(self, name: str) -> Any:
        """As :meth:`asyncio.BaseTransport.get_extra_info` (``server_addr`` is the peer)."""
        if name == "server_addr":
            name = "peername"
        return self._transport.get_extra_info(name)


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: h11 parses what the socket delivers into a queue of events."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.h11 = h11.Connection(h11.CLIENT)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._events: deque[h11.Event] = deque()
        self._buffered = 0
        self._paused = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    # --- asyncio callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.h11.receive_data(data)
            self._pull_events()
        except h11.RemoteProtocolError as exc:
            self._fail(httpx.RemoteProtocolError(f"invalid HTTP response: {exc}"))
            self.abort()
            return
        if self._buffered > _HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        try:
            self.h11.receive_data(b"")
            self._pull_events()
        except h11.RemoteProtocolError as exc:
            self._fail(ServerDisconnected(f"server closed the connection mid-response: {exc}"))
        self._wake()
        return None  # let asyncio close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if exc is not None:
            self._fail(httpx.ReadError(str(exc) or type(exc).__name__))
            assert self._error is not None
            self._error.__cause__ = exc
        self._wake()

    # --- used by the transport and the body stream ----------------------------------------

    def take_end(self) -> bool:
        """Consume the end of the message if it is the next event already received."""
        if self._events and isinstance(self._events[0], h11.EndOfMessage):
            self._events.popleft()
            return True
        return False

    def _pull_events(self) -> None:
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            assert isinstance(event, h11.Event)
            if isinstance(event, h11.Data):
                self._buffered += len(event.data)
            self._events.append(event)
            if isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next_event(self) -> h11.Event:
        """The next parsed event; raises when the connection broke first."""
        while not self._events:
            if self._error is not None:
                raise self._error
            if self.closed:
                raise ServerDisconnected("server closed the connection without a full response")
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        event = self._events.popleft()
        if isinstance(event, h11.Data):
            self._buffered -= len(event.data)
            if self._paused and self._buffered < _LOW_WATER and self.transport is not None:
                self._paused = False
                self.transport.resume_reading()
        return event

    def send(self, *events: h11.Event) -> None:
        """Serialise ``events`` and write them out."""
        assert self.transport is not None
        data = b"".join(self.h11.send(event) or b"" for event in events)
        self.transport.write(data)

    def send_head(self, head: bytes, request: h11.Request) -> None:
        """Write a bodiless request serialised by :func:`serialize_head`; h11 is told only
        ``request`` (what it needs to frame the response and decide on keep-alive)."""
        assert self.transport is not None
        self.h11.send(request)
        self.h11.send(_END)
        self.transport.write(head)

    @property
    def reusable(self) -> bool:
        """True when both sides finished a message and the connection may carry another."""
        return (
            not self.closed
            and self._error is None
            and self.h11.our_state is h11.DONE
            and self.h11.their_state is h11.DONE
        )

    def abort(self) -> None:
        """Drop the connection now, whatever is unread or unsent (no TLS close_notify wait)."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class _Body(httpx.AsyncByteStream):
    """A response body read from a connection; closing it returns or drops the connection."""

    def __init__(self, pool: LeanTransport, connection: _Connection) -> None:
        self._pool = pool
        self._connection = connection
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        while not self._done:
            event = await connection.next_event()
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                self._done = True

    async def aclose(self) -> None:
        # Synchronous on purpose: nothing here can be interrupted by a cancellation.
        self._pool.release(self._connection, complete=self._done)


class LeanTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over asyncio with a small keep-alive pool per origin.

    ``max_connections`` bounds the requests in flight (a request waits for a slot, under its
    caller's deadline); ``max_keepalive`` bounds idle connections kept for reuse, at most
    ``max_keepalive_per_origin`` each, dropped after ``keepalive_expiry`` seconds.
    """

    def __init__(
        self,
        *,
        verify: bool | ssl.SSLContext = True,
        max_connections: int = 128,
        max_keepalive: int = 128,
        max_keepalive_per_origin: int = 2,
        keepalive_expiry: float = 30.0,
    ) -> None:
        self._verify = verify
        self._ssl_context: ssl.SSLContext | None = None
        self._slots = asyncio.Semaphore(max_connections)
        self._max_keepalive = max_keepalive
        self._max_per_origin = max_keepalive_per_origin
        self._expiry = keepalive_expiry
        # Idle connections, least recently used first, each origin's list newest last.
        self._idle: OrderedDict[Origin, list[_Connection]] = OrderedDict()
        self._idle_count = 0
        self._active: set[_Connection] = set()

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context of this transport, made on first use."""
        if self._ssl_context is None:
            self._ssl_context = make_ssl_context(self._verify)
        return self._ssl_context

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and return the response with its body still to be read."""
        origin = request_origin(request.url)
        body = b"" if request.method in ("GET", "HEAD") else await request.aread()
        if body:
            event = h11.Request(
                method=request.method, target=request.url.raw_path, headers=request.headers.raw
            )
            connection, response = await self._open(origin, b"", event, body)
        else:
            head, event = serialize_head(
                request.method.encode("ascii"), request.url.raw_path, request.headers.raw
            )
            connection, response = await self._open(origin, head, event, b"")
        assert connection.transport is not None
        return httpx.Response(
            response.status_code,
            headers=list(response.headers),
            stream=_Body(self, connection),
            extensions={
                "http_version": b"HTTP/" + response.http_version,
                "reason_phrase": bytes(response.reason),
                "network_stream": NetworkStream(connection.transport),
            },
        )

    async def fetch(self, prepared: PreparedGet, max_body: int) -> Fetched:
        """GET ``prepared`` and read at most ``max_body`` bytes of the answer.

        The direct path of the HTTP probe: no :class:`httpx.Request`/:class:`httpx.Response`
        is built, which costs more than the rest of a probe. A redirect's body is not read
        (``Fetched.redirect`` is true; following it is the caller's business); an unread rest
        drops the connection. Errors are those of :meth:`handle_async_request`.
        """
        connection, response = await self._open(prepared.origin, prepared.head, prepared.event, b"")
        complete = False
        try:
            assert connection.transport is not None
            # (Iterating h11's Headers goes through Sequence.__getitem__, one call per item.)
            headers = [(name.lower(), value) for name, value in response.headers.raw_items()]
            status = response.status_code
            redirect = status in _REDIRECTS and any(name == b"location" for name, _ in headers)
            chunks: list[bytes] = []
            size = 0
            truncated = False
            while not redirect:
                event = await connection.next_event()
                if type(event) is h11.Data:
                    chunks.append(bytes(event.data))
                    size += len(event.data)
                    if size >= max_body:
                        # A body of exactly max_body bytes is whole only if its end came with it.
                        complete = size == max_body and connection.take_end()
                        truncated = not complete
                        break
                else:  # EndOfMessage or ConnectionClosed
                    complete = True
                    break
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            return Fetched(
                status_code=status,
                reason=bytes(response.reason).decode("ascii", errors="ignore"),
                headers=headers,
                body=body,
                truncated=truncated,
                redirect=redirect,
                network_stream=NetworkStream(connection.transport),
            )
        finally:
            # Synchronous: a cancellation cannot leave the connection or its slot behind.
            self.release(connection, complete=complete)

    async def _open(
        self, origin: Origin, head: bytes, event: h11.Request, body: bytes
    ) -> tuple[_Connection, h11.Response]:
        """Take a slot and a connection, send the request, wait for the response's head.

        The caller owns the slot and the connection afterwards and gives both back with
        :meth:`release`; on error they are given back here.
        """
        await self._slots.acquire()
        try:
            reused = self._take_idle(origin)
            connection = reused or await self._connect(origin)
            self._active.add(connection)
            try:
                try:
                    return connection, await self._roundtrip(connection, head, event, body)
                except (ServerDisconnected, httpx.ReadError):
                    if reused is None:
                        raise
                # The server closed an idle connection as we reused it: once more on a fresh one.
                self._active.discard(connection)
                connection.abort()
                connection = await self._connect(origin)
                self._active.add(connection)
                return connection, await self._roundtrip(connection, head, event, body)
            except BaseException:
                self._active.discard(connection)
                connection.abort()
                raise
        except BaseException:
            self._slots.release()
            raise

    @staticmethod
    async def _roundtrip(
        connection: _Connection, head: bytes, event: h11.Request, body: bytes
    ) -> h11.Response:
        if head:
            connection.send_head(head, event)
        else:
            connection.send(event, h11.Data(data=body), _END)
        while True:
            answer = await connection.next_event()
            if type(answer) is h11.Response:
                return answer
            # 1xx informational answers (100 Continue, 103 Early Hints) precede the real one.

    async def _connect(self, origin: Origin) -> _Connection:
        scheme, host, port = origin
        tls = scheme == b"https"
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                lambda: _Connection(origin),
                host,
                port,
                ssl=self.ssl_context if tls else None,
                server_hostname=host if tls else None,
            )
        except OSError as exc:  # refused, DNS (gaierror), TLS (SSLError), unreachable
            raise httpx.ConnectError(_reason(exc)) from exc
        return connection

    def _take_idle(self, origin: Origin) -> _Connection | None:
        connections = self._idle.get(origin)
        now = time.monotonic()
        while connections:
            connection = connections.pop()
            self._idle_count -= 1
            if not connections:
                del self._idle[origin]
            if not connection.closed and now - connection.idle_since < self._expiry:
                return connection
            connection.abort()
        return None

    def release(self, connection: _Connection, *, complete: bool) -> None:
        """Called when a response is closed: pool the connection if it can carry another
        request, else drop it (unread body included)."""
        if connection not in self._active:
            return  # closed twice
        self._active.discard(connection)
        self._slots.release()
        if not (complete and connection.reusable):
            connection.abort()
            return
        connection.h11.start_next_cycle()
        connection.idle_since = time.monotonic()
        connections = self._idle.setdefault(connection.origin, [])
        self._idle.move_to_end(connection.origin)
        connections.append(connection)
        self._idle_count += 1
        if len(connections) > self._max_per_origin:
            connections.pop(0).abort()
            self._idle_count -= 1
        while self._idle_count > self._max_keepalive:
            _, oldest = next(iter(self._idle.items()))
            oldest.pop(0).abort()
            self._idle_count -= 1
            if not oldest:
                self._idle.popitem(last=False)

    async def aclose(self) -> None:
        """Close every connection, idle or in use."""
        for connections in self._idle.values():
            for connection in connections:
                connection.abort()
        self._idle.clear()
        self._idle_count = 0
        for connection in list(self._active):
            connection.abort()
        self._active.clear()


def _reason(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verify failed: {exc.verify_message}"
    return str(exc) or type(exc).__name__
