"""A stand-in Redis for the demo: answers the few RESP commands a health probe sends.

It is not a datastore: it stores nothing. It answers ``PING``, ``INFO``, ``CONFIG GET``,
``CLIENT``/``SELECT`` (accepted), ``ECHO``, ``DBSIZE`` and key counts (always 0), and refuses
the rest with ``-ERR``. The demo's story stops it (connections refused, open ones reset) to
play a Redis outage, and starts it again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

MAXMEMORY = 256 * 1024 * 1024


def _bulk(text: str) -> bytes:
    data = text.encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


def _map(pairs: dict[str, str | int], proto: int) -> bytes:
    """A map: RESP3's ``%`` type, or a flat array under RESP2."""
    head = b"%%%d\r\n" % len(pairs) if proto == 3 else b"*%d\r\n" % (2 * len(pairs))
    body = b"".join(
        _bulk(key) + (b":%d\r\n" % value if isinstance(value, int) else _bulk(value))
        for key, value in pairs.items()
    )
    return head + body


class FakeRedis:
    """A RESP responder on 127.0.0.1 (``.port``, ``.url``), stoppable and restartable."""

    def __init__(self, *, memory_pct: float = 41.0) -> None:
        self._server: asyncio.Server | None = None
        self._port = 0
        self._clients: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._started = time.monotonic()
        self.memory_pct = memory_pct

    @property
    def port(self) -> int:
        """The port it listens on (kept across stop and start)."""
        return self._port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self._port}/0"

    @property
    def up(self) -> bool:
        """Whether it accepts connections now."""
        return self._server is not None

    async def start(self) -> None:
        """Listen (again, on the same port)."""
        if self._server is None:
            self._server = await asyncio.start_server(
                self._serve, "127.0.0.1", self._port, reuse_address=True
            )
            self._port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Refuse new connections and reset the open ones: an outage as clients see it."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._clients.values()):
            writer.transport.abort()  # a reset, as clients of a crashed server see it
        await asyncio.gather(*self._clients, return_exceptions=True)

    def info(self) -> str:
        """The ``INFO`` text: the fields a Redis health probe reads."""
        used = int(MAXMEMORY * self.memory_pct / 100)
        fields = {
            "redis_version": "7.2.4",
            "redis_mode": "standalone",
            "uptime_in_seconds": str(int(time.monotonic() - self._started)),
            "connected_clients": str(len(self._clients)),
            "blocked_clients": "0",
            "maxclients": "10000",
            "used_memory": str(used),
            "maxmemory": str(MAXMEMORY),
            "maxmemory_policy": "allkeys-lru",
            "rejected_connections": "0",
            "evicted_keys": "0",
            "role": "master",
            "connected_slaves": "0",
        }
        return "# Demo\r\n" + "".join(f"{key}:{value}\r\n" for key, value in fields.items())

    def answer(self, command: list[str], proto: int = 2) -> bytes:
        """The RESP reply to one command, in protocol version ``proto``."""
        name = command[0].upper() if command else ""
        args = command[1:]
        if name == "HELLO":
            hello: dict[str, str | int] = {
                "server": "redis",
                "version": "7.2.4",
                "proto": proto,
                "id": 1,
                "mode": "standalone",
                "role": "master",
            }
            return _map(hello, proto)
        if name == "PING":
            return _bulk(args[0]) if args else b"+PONG\r\n"
        if name == "INFO":
            return _bulk(self.info())
        if name == "ECHO" and args:
            return _bulk(args[0])
        if name in ("CLIENT", "SELECT", "READONLY"):
            return b"+OK\r\n"
        if name == "CONFIG" and len(args) >= 2 and args[0].upper() == "GET":
            values = {"maxmemory": str(MAXMEMORY), "maxclients": "10000"}
            pattern = args[1].lower()
            return _map({k: v for k, v in values.items() if k == pattern}, proto)
        if name == "DBSIZE":
            return b":42\r\n"
        if name in ("LLEN", "ZCARD", "XLEN", "SCARD", "EXISTS"):
            return b":0\r\n"
        return b"-ERR unknown command '%s' (demo redis)\r\n" % name.encode()[:40]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients[task] = writer
        proto = 2
        try:
            while True:
                command = await self._read_command(reader)
                if command is None:
                    break
                if command and command[0].upper() == "HELLO" and command[1:2] in (["2"], ["3"]):
                    proto = int(command[1])
                writer.write(self.answer(command, proto))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            self._clients.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _read_command(reader: asyncio.StreamReader) -> list[str] | None:
        line = await reader.readline()
        if not line:
            return None
        if not line.startswith(b"*"):
            return line.decode(errors="replace").split()  # an inline command (telnet, nc)
        count = int(line[1:].strip())
        items: list[str] = []
        for _ in range(min(count, 64)):
            size_line = await reader.readline()
            size = int(size_line[1:].strip())
            data = await reader.readexactly(size + 2)
            items.append(data[:-2].decode(errors="replace"))
        return items
