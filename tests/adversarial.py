"""Misbehaving HTTP servers on loopback, for tests: each is an async context manager that
yields a :class:`Server` (its base URL and what it observed).

``serve(handler)`` runs any handler; the named ones are the cases a health probe meets in the
wild: a server that accepts and never answers, drips a byte a second, streams a gigabyte,
redirects forever, resets the connection, or answers a fixed response (garbage JSON, an HTML
500 page, an echo of the request). A port that refuses: :func:`tests.servers.refused_port`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Server"], Awaitable[None]]


@dataclass
class Server:
    """A running test server: where it is and what it saw."""

    host: str = "127.0.0.1"
    port: int = 0
    scheme: str = "http"
    requests: list[bytes] = field(default_factory=list)
    """The head (request line and headers) of every request received."""
    bytes_sent: int = 0
    connections: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    """Set each time a client connection ends (the client went away or we closed it)."""

    @property
    def url(self) -> str:
        """Base URL, without a trailing slash."""
        return f"{self.scheme}://{self.host}:{self.port}"


async def read_head(reader: asyncio.StreamReader) -> bytes:
    """The request line and headers (up to the blank line)."""
    return await reader.readuntil(b"\r\n\r\n")


@contextlib.asynccontextmanager
async def serve(
    handler: Handler, *, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1"
) -> AsyncIterator[Server]:
    """Run ``handler`` for every connection on a free loopback port."""
    server = Server(host=host, scheme="https" if tls else "http")
    tasks: set[asyncio.Task[None]] = set()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.connections += 1
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer, server)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError):
            pass  # the client went away: that is what most of these tests provoke
        except asyncio.CancelledError:
            pass  # the server is shutting down
        finally:
            writer.transport.abort()
            server.closed.set()
            tasks.discard(task)

    listener = await asyncio.start_server(on_connect, host, 0, ssl=tls)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await listener.wait_closed()


def response_bytes(
    status: int, reason: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    """A complete HTTP/1.1 response with a Content-Length."""
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def fixed(
    status: int, reason: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> Handler:
    """Answers every request with the same response (keep-alive)."""
    payload = response_bytes(status, reason, body, headers)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
        while True:
            s.requests.append(await read_head(reader))
            writer.write(payload)
            s.bytes_sent += len(payload)
            await writer.drain()

    return handle


def echo(status: int = 401, reason: str = "Unauthorized") -> Handler:
    """Answers with the request head as its body, as a careless error page does."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
        head = await read_head(reader)
        s.requests.append(head)
        body = b"rejected request:\n" + head
        writer.write(response_bytes(status, reason, body, {"Content-Type": "text/plain"}))
        await writer.drain()

    return handle


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
    s.requests.append(await read_head(reader))
    await reader.read()  # until the client gives up; never a byte back


async def _drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
    s.requests.append(await read_head(reader))
    for byte in response_bytes(200, "OK", b'{"status":"ok"}' * 10):
        writer.write(bytes([byte]))
        s.bytes_sent += 1
        await writer.drain()
        await asyncio.sleep(1.0)  # the server's behaviour under test, not synchronisation


GIGABYTE = 1024**3


async def _gigabyte(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
    s.requests.append(await read_head(reader))
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n")
    writer.write(f"Content-Length: {GIGABYTE}\r\n\r\n".encode())
    chunk = b"x" * (256 * 1024)
    while s.bytes_sent < GIGABYTE:
        writer.write(chunk)
        s.bytes_sent += len(chunk)
        await writer.drain()


async def _redirect_loop(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server
) -> None:
    while True:
        head = await read_head(reader)
        s.requests.append(head)
        path = head.split(b" ", 2)[1]
        target = b"/b" if path != b"/b" else b"/a"
        writer.write(response_bytes(302, "Found", b"", {"Location": target.decode()}))
        await writer.drain()


async def _reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
    s.requests.append(await read_head(reader))
    sock = writer.get_extra_info("socket")
    # SO_LINGER with a zero timeout turns close() into a TCP RST.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def silent() -> contextlib.AbstractAsyncContextManager[Server]:
    """Accepts, reads the request, never answers."""
    return serve(_silent)


def drip() -> contextlib.AbstractAsyncContextManager[Server]:
    """Answers a valid response one byte a second."""
    return serve(_drip)


def gigabyte() -> contextlib.AbstractAsyncContextManager[Server]:
    """Answers 200 with a 1 GiB body, as fast as the client reads."""
    return serve(_gigabyte)


def redirect_loop() -> contextlib.AbstractAsyncContextManager[Server]:
    """Redirects /a to /b and everything else to /a, forever."""
    return serve(_redirect_loop)


def reset() -> contextlib.AbstractAsyncContextManager[Server]:
    """Reads the request, then resets the connection."""
    return serve(_reset)


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` until true; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
