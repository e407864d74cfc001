"""A stand-in MongoDB for the demo: a secondary of a two-member replica set, on the wire protocol.

It is not a database: it stores nothing and answers only what a health probe sends —
the handshake (``hello``/``isMaster``, as ``OP_QUERY`` or ``OP_MSG``), ``ping``,
``serverStatus`` and ``replSetGetStatus`` — and refuses other commands with
``CommandNotFound``. It plays the secondary member of set ``demo-rs``; its replication lag
is whatever the story says (``lag_s``), reported the way ``mongod`` does it: as the distance
between the primary's and its own ``optimeDate`` in ``replSetGetStatus``.

Clients connect with ``directConnection=true`` (``.uri``): the primary it names does not
exist, and discovery must not go looking for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

import bson

OP_REPLY = 1
OP_QUERY = 2004
OP_MSG = 2013
_HEADER = struct.Struct("<iiii")
_MAX_MESSAGE = 48_000_000
SET_NAME = "demo-rs"
PRIMARY = "mongo-primary.demo:27017"
VERSION = "7.0.5"


class FakeMongo:
    """An ``OP_MSG`` responder on 127.0.0.1 (``.port``, ``.uri``) playing a lagging secondary."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._port = 0
        self._clients: set[asyncio.StreamWriter] = set()
        self._connection_ids = itertools.count(1)
        self._request_ids = itertools.count(1)
        self.lag_s = 0.0
        """How far this secondary is behind the primary (set by the story)."""

    @property
    def port(self) -> int:
        """The port it listens on."""
        return self._port

    @property
    def me(self) -> str:
        """This member's host:port, as ``hello`` names it."""
        return f"127.0.0.1:{self._port}"

    @property
    def uri(self) -> str:
        """``mongodb://127.0.0.1:<port>/?directConnection=true``."""
        return f"mongodb://127.0.0.1:{self._port}/?directConnection=true"

    async def start(self) -> None:
        """Listen on a free port."""
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self._port)
            self._port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._clients):
            writer.transport.abort()

    # --- the commands -------------------------------------------------------------------

    def answer(self, command: dict[str, Any], connection_id: int) -> dict[str, Any]:
        """The reply document to one command document."""
        name = next(iter(command), "")
        lowered = name.lower()
        if lowered in ("hello", "ismaster"):
            return self._hello(connection_id, legacy=lowered == "ismaster")
        if lowered == "ping":
            return {"ok": 1.0}
        if lowered == "serverstatus":
            return {
                "host": self.me,
                "version": VERSION,
                "process": "mongod",
                "connections": {"current": len(self._clients), "available": 838},
                "ok": 1.0,
            }
        if lowered == "replsetgetstatus":
            return self._repl_status()
        if lowered in ("endsessions", "buildinfo", "getparameter"):
            return {"version": VERSION, "ok": 1.0}
        return {
            "ok": 0.0,
            "errmsg": f"no such command: '{name[:40]}' (demo mongo)",
            "code": 59,
            "codeName": "CommandNotFound",
        }

    def _hello(self, connection_id: int, *, legacy: bool) -> dict[str, Any]:
        writable = "ismaster" if legacy else "isWritablePrimary"
        return {
            "helloOk": True,
            writable: False,
            "secondary": True,
            "setName": SET_NAME,
            "setVersion": 1,
            "hosts": [PRIMARY, self.me],
            "primary": PRIMARY,
            "me": self.me,
            "maxBsonObjectSize": 16 * 1024 * 1024,
            "maxMessageSizeBytes": _MAX_MESSAGE,
            "maxWriteBatchSize": 100_000,
            "localTime": datetime.now(UTC),
            "logicalSessionTimeoutMinutes": 30,
            "connectionId": connection_id,
            "minWireVersion": 0,
            "maxWireVersion": 21,
            "readOnly": False,
            "ok": 1.0,
        }

    def _repl_status(self) -> dict[str, Any]:
        now = datetime.now(UTC).replace(microsecond=0)
        behind = now - timedelta(seconds=round(self.lag_s))
        return {
            "set": SET_NAME,
            "date": now,
            "myState": 2,
            "members": [
                {"_id": 0, "name": PRIMARY, "health": 1.0, "state": 1, "stateStr": "PRIMARY",
                 "optimeDate": now, "pingMs": 1},
                {"_id": 1, "name": self.me, "health": 1.0, "state": 2, "stateStr": "SECONDARY",
                 "optimeDate": behind, "self": True},
            ],
            "ok": 1.0,
        }  # fmt: skip

    # --- the wire -----------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        connection_id = next(self._connection_ids)
        try:
            while True:
                header = await reader.readexactly(_HEADER.size)
                length, request_id, _, op_code = _HEADER.unpack(header)
                if not _HEADER.size < length <= _MAX_MESSAGE:
                    break
                body = await reader.readexactly(length - _HEADER.size)
                reply = self._reply(op_code, body, request_id, connection_id)
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, bson.errors.BSONError):
            pass
        finally:
            self._clients.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _reply(
        self, op_code: int, body: bytes, request_id: int, connection_id: int
    ) -> bytes | None:
        if op_code == OP_QUERY:
            # flags, full collection name (cstring), skip, limit, then the query document
            end = body.index(b"\x00", 4)
            command = bson.decode(body[end + 9 :])
            document = bson.encode(self.answer(_unwrap(command), connection_id))
            payload = struct.pack("<iqii", 0, 0, 0, 1) + document
            return self._message(OP_REPLY, request_id, payload)
        if op_code == OP_MSG:
            # flag bits, then sections; kind 0 is the command (a checksum may trail: ignored)
            if body[4] != 0:
                return None
            size = struct.unpack_from("<i", body, 5)[0]
            command = bson.decode(body[5 : 5 + size])
            document = bson.encode(self.answer(command, connection_id))
            return self._message(OP_MSG, request_id, struct.pack("<IB", 0, 0) + document)
        return None

    def _message(self, op_code: int, response_to: int, payload: bytes) -> bytes:
        header = _HEADER.pack(
            _HEADER.size + len(payload), next(self._request_ids), response_to, op_code
        )
        return header + payload


def _unwrap(query: dict[str, Any]) -> dict[str, Any]:
    """A legacy query may wrap its command in ``$query`` (with a read preference)."""
    inner = query.get("$query")
    return inner if isinstance(inner, dict) else query
