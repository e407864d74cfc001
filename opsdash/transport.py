"""HTTP/1.1 on the wire: asyncio protocols, httptools' parser and a keep-alive pool per origin.

This is the lower half of opsdash's one HTTP path (:mod:`opsdash.httpclient` is the upper
half: redirects, auth, decoding, caps). A :class:`Wire` sends one request and hands back the
response's head with its body still to be read; :class:`LeanTransport` is the production wire,
and a test injects another (``opsdash.httpclient.HttpxWire`` runs respx/MockTransport under
the same client), so every consumer runs the same code above this line.

Why not httpx's client: httpx costs ~110 ms to import and ~0.1 ms of CPU per request for its
Request/Response objects, and h11 ~50 us per response; httptools (llhttp, in C) parses one in
~1.5 us. Figures in ``bench/README.md``.

What a caller can rely on:

- **Cancellation is clean.** Whatever is awaited (connect, TLS handshake, head, body) can be
  cancelled by the caller's deadline; the connection is then aborted, never pooled.
- **Closing a response discards the rest unread.** A body not read to its end aborts the
  connection instead of draining it.
- **Bounded memory and CPU.** The socket stops being read when more than :data:`_HIGH_WATER`
  body bytes wait unread; a response head is at most :data:`MAX_HEAD` bytes and
  :data:`MAX_HEADERS` fields; at most :data:`MAX_INTERIM` ``1xx`` answers may precede the
  real one (an endless ``100 Continue`` stream fails at once instead of burning the deadline).
- **TLS** uses one :class:`ssl.SSLContext` per transport (building one costs milliseconds); the
  peer certificate is ``response.network_stream.get_extra_info("ssl_object")``.

Errors carry httpx's class names (``ConnectError``, ``ReadError``, ``RemoteProtocolError``...) so
that :func:`opsdash.errors.classify` words them alike, with the socket-level exception as
``__cause__``.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections import OrderedDict, deque
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol, cast
from urllib.parse import quote, urlsplit

import httptools

from opsdash.lazy_ssl import load_ssl, loaded_ssl
from opsdash.records import dataclass

if TYPE_CHECKING:
    import ssl

_HIGH_WATER = 256 * 1024
"""Unread body bytes buffered before the socket stops being read."""
_LOW_WATER = 64 * 1024
MAX_HEAD = 64 * 1024
"""Bytes of status line and headers a response may take (llhttp itself sets no limit)."""
MAX_HEADERS = 256
MAX_INTERIM = 8
"""``1xx`` answers (100 Continue, 103 Early Hints) accepted before the real answer."""
_FRAMING = frozenset({"content-length", "transfer-encoding"})

Origin = tuple[str, str, int]
"""``(scheme, host, port)``: connections are pooled per origin."""


# --- errors (named as httpx names them: errors.classify matches class names) ----------------


class HttpError(Exception):
    """Any failure of an HTTP exchange."""


class ConnectError(HttpError):
    """The connection (TCP, DNS, TLS handshake) could not be made."""


class ReadError(HttpError):
    """The connection broke while the response was being read."""


class RemoteProtocolError(HttpError):
    """The server answered something that is not HTTP/1.1 (or not within the limits)."""


class ServerDisconnected(RemoteProtocolError):
    """The server closed the connection before sending a complete response."""


class LocalProtocolError(HttpError):
    """The request itself cannot be sent as asked (a line break in a header...)."""


class UnsupportedProtocol(HttpError):
    """A URL whose scheme is not ``http`` or ``https``."""


class InvalidURL(HttpError):
    """A URL that cannot be parsed."""


# --- URLs and requests ---------------------------------------------------------------------

_PATH_SAFE = "/%:@!$&'()*+,;=-._~?"


@dataclass(frozen=True, slots=True)
class Url:
    """A parsed ``http``/``https`` URL: what the wire needs, and the credentials it carried."""

    text: str
    """As given."""
    scheme: str
    host: str
    port: int
    target: str
    """Path and query, percent-encoded where needed; ``/`` when empty."""
    host_header: str
    """``host[:port]`` as the URL names it, without credentials."""
    username: str | None = None
    password: str | None = None

    @property
    def origin(self) -> Origin:
        """The pool key of this URL."""
        return (self.scheme, self.host, self.port)

    @property
    def shown(self) -> str:
        """The URL without credentials."""
        return f"{self.scheme}://{self.host_header}{self.target}"


_SIMPLE_URL = re.compile(
    r"(https?)://([A-Za-z0-9.-]+)(?::([0-9]{1,5}))?(/[A-Za-z0-9._~/:!$&'()*+,;=-]*)?"
)
"""An ASCII ``http(s)://host[:port][/path]`` whose path needs no quoting: most URLs a registry
names. No credentials, query, fragment, brackets or percent signs (those take the full parse)."""


def parse_url(text: str) -> Url:
    """``text`` parsed; :class:`UnsupportedProtocol` or :class:`InvalidURL` when it is not an
    absolute ``http``/``https`` URL."""
    simple = _SIMPLE_URL.fullmatch(text)
    if simple is not None:
        scheme, host_text, port_text, path = simple.groups()
        port = int(port_text) if port_text else None
        if port is None or port <= 65535:
            netloc = f"{host_text}:{port_text}" if port_text is not None else host_text
            return Url(
                text=text,
                scheme=scheme,
                host=host_text.lower(),
                port=port or (443 if scheme == "https" else 80),
                target=path or "/",
                host_header=netloc,
            )
    return _parse_any_url(text)


def _parse_any_url(text: str) -> Url:
    """:func:`parse_url` for every URL (what ``urlsplit`` takes apart, IDNA hosts, quoting)."""
    try:
        parts = urlsplit(text)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        raise InvalidURL(f"invalid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsupportedProtocol(f"unsupported URL scheme {parts.scheme!r}")
    if not host:
        raise InvalidURL("URL without a host")
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        host = host.encode("idna").decode("ascii")
    netloc = parts.netloc.rpartition("@")[2]
    try:
        netloc.encode("ascii")
    except UnicodeEncodeError:
        netloc = f"{host}:{port}" if port is not None else host
    target = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=_PATH_SAFE)
    username = password = None
    if "@" in parts.netloc:
        from urllib.parse import unquote

        username = unquote(parts.username or "")
        password = unquote(parts.password or "")
    return Url(
        text=text,
        scheme=scheme,
        host=host,
        port=port or (443 if scheme == "https" else 80),
        target=target,
        host_header=netloc,
        username=username,
        password=password,
    )


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP/1.1 request, serialised once (it may be sent every round)."""

    method: str
    url: Url
    headers: tuple[tuple[str, str], ...]
    """As sent, ``Host`` first."""
    body: bytes
    head: bytes
    """Request line and headers, as written to the socket."""


def build_request(
    method: str, url: Url, headers: list[tuple[str, str]], body: bytes = b""
) -> Request:
    """A request of ``method`` on ``url``: ``Host`` added first, ``Content-Length`` when there
    is a body; a name or value with a line break in it is refused (it would smuggle a header
    or a request in)."""
    sent = [("Host", url.host_header), *headers]
    if body or method not in ("GET", "HEAD"):
        sent.append(("Content-Length", str(len(body))))
    lines = [f"{method} {url.target} HTTP/1.1\r\n"]
    for name, value in sent:
        lines.append(f"{name}: {value}\r\n")
    lines.append("\r\n")
    text = "".join(lines)
    expected = len(sent) + 2
    if text.count("\n") != expected or text.count("\r") != expected:
        for name, value in sent:
            if "\r" in name + value or "\n" in name + value:
                raise LocalProtocolError(f"invalid header {name!r}: line break in it")
        raise LocalProtocolError("invalid request target: line break in it")
    try:
        head = text.encode("ascii")
    except UnicodeEncodeError:
        head = text.encode("utf-8")
    return Request(method, url, tuple(sent), body, head)


# --- the wire -------------------------------------------------------------------------------


class NetworkStream:
    """The response's connection, reduced to what callers read from it:
    ``get_extra_info("ssl_object" | "peername" | "sockname" | ...)``."""

    __slots__ = ("_transport",)

    def __init__(self, transport: asyncio.BaseTransport | None) -> None:
        self._transport = transport

    def get_extra_info(self, name: str) -> Any:
        """As :meth:`asyncio.BaseTransport.get_extra_info` (``server_addr`` is the peer)."""
        if self._transport is None:
            return None
        if name == "server_addr":
            name = "peername"
        return self._transport.get_extra_info(name)


class Response(Protocol):
    """A response whose head has arrived; its body is read with :meth:`read_chunk`."""

    status_code: int
    reason: str
    headers: list[tuple[str, str]]
    """As received, names in lower case."""

    @property
    def network_stream(self) -> NetworkStream | None:
        """The connection (``None`` for a mocked one)."""

    async def read_chunk(self) -> bytes:
        """The next part of the (still encoded) body; ``b""`` at its end."""

    @property
    def complete(self) -> bool:
        """The whole body has been read (or handed out)."""

    def close(self) -> None:
        """Give the connection back: pooled when the body was read to its end, else dropped
        with the rest unread. Synchronous, so a cancellation cannot skip it."""


class Wire(Protocol):
    """Sends one request; what :class:`opsdash.httpclient.HttpClient` runs on."""

    async def send(self, request: Request) -> Response:
        """Send ``request`` and return once the head of its final answer has arrived."""

    async def aclose(self) -> None:
        """Close every connection."""


def make_ssl_context(verify: bool | ssl.SSLContext = True) -> ssl.SSLContext:
    """A client TLS context: certifi's CAs (or ``$SSL_CERT_FILE``/``$SSL_CERT_DIR``) when
    ``verify`` is true, no verification at all when it is false, or the context given.
    Loads ssl, if this process has not yet (:mod:`opsdash.lazy_ssl`)."""
    load_ssl()
    import ssl  # here: a process that makes no TLS connection never loads it

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


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection; httptools parses what the socket delivers.

    The parser's callbacks fill in the head of the current answer and queue its body; one
    waiter (the request in flight) is woken when there is something new."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        # the answer being parsed
        self.status_code = 0
        self._reason: list[bytes] = []
        self.headers: list[tuple[str, str]] = []
        self.head_done = False
        self.message_done = False
        self.keep_alive = False
        self._eof_framed = False
        self._framed = False
        """The answer being parsed has a Content-Length or Transfer-Encoding."""
        self._interim = 0
        self._head_bytes = 0
        self.body: deque[bytes] = deque()
        self._buffered = 0

    # --- asyncio callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self.head_done:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(RemoteProtocolError("invalid HTTP response: unexpected protocol upgrade"))
            self.abort()
            return
        except httptools.HttpParserCallbackError as exc:
            self._fail(exc.__context__ or RemoteProtocolError("invalid HTTP response"))
            self.abort()
            return
        except httptools.HttpParserError as exc:
            self._fail(RemoteProtocolError(f"invalid HTTP response: {exc}"))
            self.abort()
            return
        if not self.head_done and self._head_bytes > MAX_HEAD:
            self._fail(RemoteProtocolError(f"response head larger than {MAX_HEAD} bytes"))
            self.abort()
            return
        if self._buffered > _HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        if self.head_done and not self.message_done and self._eof_framed:
            self.message_done = True  # a body framed by the end of the connection
        elif not self.message_done:
            self._fail(ServerDisconnected("server closed the connection mid-response"))
        self.closed = True
        self._wake()
        return None  # let asyncio close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if exc is not None:
            error = ReadError(str(exc) or type(exc).__name__)
            error.__cause__ = exc
            self._fail(error)
        self._wake()

    # --- httptools callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.status_code = 0
        self._reason = []
        self.headers = []
        self._framed = False

    def on_status(self, reason: bytes) -> None:
        self._reason.append(reason)

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self.headers) >= MAX_HEADERS:
            raise RemoteProtocolError(f"more than {MAX_HEADERS} response headers")
        lowered = name.decode("latin-1").lower()
        if lowered in _FRAMING:
            self._framed = True
        self.headers.append((lowered, value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            self._interim += 1
            if self._interim > MAX_INTERIM:
                raise RemoteProtocolError(f"more than {MAX_INTERIM} interim (1xx) responses")
            return
        self.status_code = status
        self.head_done = True
        self._eof_framed = not self._framed and status not in (204, 304)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        self._buffered += len(body)

    def on_message_complete(self) -> None:
        if not self.head_done:
            return  # the end of an interim answer
        self.keep_alive = self._parser.should_keep_alive()
        self.message_done = True

    # --- used by the transport and the response -------------------------------------------

    @property
    def reason(self) -> str:
        return b"".join(self._reason).decode("latin-1")

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def more(self) -> asyncio.Future[None]:
        """A future the next delivery (bytes, end of file, loss) resolves; the error instead
        when the connection has already failed.

        A future, not a coroutine: a probe's task resumes through every coroutine frame it
        awaits in, on each wake-up, and this is awaited at the bottom of all of them."""
        if self._error is not None:
            raise self._error
        if self.closed:
            raise ServerDisconnected("server closed the connection without a full response")
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        return waiter

    async def wait_head(self) -> None:
        while not self.head_done:
            await self.more()

    async def next_chunk(self) -> bytes:
        while True:
            if self.body:
                chunk = self.body.popleft()
                self._buffered -= len(chunk)
                if self._paused and self._buffered < _LOW_WATER and self.transport is not None:
                    self._paused = False
                    self.transport.resume_reading()
                return chunk
            if self.message_done:
                return b""
            await self.more()

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def start_next(self) -> None:
        """Ready for the next request on this connection."""
        self.head_done = self.message_done = False
        self._interim = self._head_bytes = 0
        self.status_code = 0
        self.headers = []

    @property
    def reusable(self) -> bool:
        return (
            not self.closed
            and self._error is None
            and self.message_done
            and self.keep_alive
            and not self.body
        )

    def abort(self) -> None:
        """Drop the connection now, whatever is unread or unsent (no TLS close_notify wait)."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class _Answer:
    """:class:`Response` over a pooled connection."""

    __slots__ = ("_connection", "_pool", "headers", "reason", "status_code")

    def __init__(self, pool: LeanTransport, connection: _Connection) -> None:
        self._pool = pool
        self._connection = connection
        self.status_code = connection.status_code
        self.reason = connection.reason
        self.headers = connection.headers

    @property
    def network_stream(self) -> NetworkStream:
        return NetworkStream(self._connection.transport)

    def read_chunk(self) -> Coroutine[Any, Any, bytes]:
        return self._connection.next_chunk()  # no coroutine of its own around it

    @property
    def complete(self) -> bool:
        connection = self._connection
        return connection.message_done and not connection.body

    def close(self) -> None:
        self._pool.release(self._connection)


class LeanTransport:
    """HTTP/1.1 over asyncio with a small keep-alive pool per origin: the production
    :class:`Wire`.

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
        self.connections_opened = 0
        """Connections made so far (a benchmark's reuse figure)."""
        self.requests_sent = 0

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context of this transport, made on first use."""
        if self._ssl_context is None:
            self._ssl_context = make_ssl_context(self._verify)
        return self._ssl_context

    async def send(self, request: Request) -> Response:
        """Take a slot and a connection, send ``request``, wait for the head of the answer.

        The response owns the slot and the connection afterwards and gives both back when
        closed; on error they are given back here.
        """
        origin = request.url.origin
        data = request.head + request.body if request.body else request.head
        await self._slots.acquire()
        self.requests_sent += 1
        try:
            reused = self._take_idle(origin)
            connection = reused or await self._connect(request.url)
            self._active.add(connection)
            try:
                try:
                    connection.send(data)
                    while not connection.head_done:  # wait_head(), without its frame
                        await connection.more()
                    return _Answer(self, connection)
                except (ServerDisconnected, ReadError):
                    if reused is None:
                        raise
                # The server closed an idle connection as we reused it: once more on a fresh one.
                self._active.discard(connection)
                connection.abort()
                connection = await self._connect(request.url)
                self._active.add(connection)
                connection.send(data)
                await connection.wait_head()
                return _Answer(self, connection)
            except BaseException:
                self._active.discard(connection)
                connection.abort()
                raise
        except BaseException:
            self._slots.release()
            raise

    async def _connect(self, url: Url) -> _Connection:
        tls = url.scheme == "https"
        loop = asyncio.get_running_loop()
        origin = url.origin
        try:
            _, connection = await loop.create_connection(
                lambda: _Connection(origin),
                url.host,
                url.port,
                ssl=self.ssl_context if tls else None,
                server_hostname=url.host if tls else None,
            )
        except OSError as exc:  # refused, DNS (gaierror), TLS (SSLError), unreachable
            raise ConnectError(_reason(exc)) from exc
        self.connections_opened += 1
        return connection

    def _take_idle(self, origin: Origin) -> _Connection | None:
        connections = self._idle.get(origin)
        if not connections:
            return None
        now = time.monotonic()
        while connections:
            connection = connections.pop()
            self._idle_count -= 1
            if not connections:
                del self._idle[origin]
            if not connection.closed and now - connection.idle_since < self._expiry:
                connection.start_next()
                return connection
            connection.abort()
        return None

    def release(self, connection: _Connection) -> None:
        """Pool ``connection`` if it can carry another request, else drop it (unread body
        included)."""
        if connection not in self._active:
            return  # closed twice
        self._active.discard(connection)
        self._slots.release()
        if not connection.reusable:
            connection.abort()
            return
        connection.idle_since = time.monotonic()
        connections = self._idle.get(connection.origin)
        if connections is None:
            connections = self._idle[connection.origin] = []
        else:
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
    ssl = loaded_ssl()
    if ssl is not None and isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verify failed: {exc.verify_message}"
    return str(exc) or type(exc).__name__
