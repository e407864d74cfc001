"""DNS lookups: ``A``, ``AAAA`` and ``CNAME`` records, checked against expected answers.

Without ``server:``, ``A`` and ``AAAA`` go through the system's resolver (``getaddrinfo`` on
the event loop's executor, so ``/etc/hosts`` and the site's resolver rules apply, as they do
for the services themselves). A ``CNAME`` is not visible through ``getaddrinfo``, and a
``server:`` is asked directly: both use a one-question query over UDP (RFC 1035, a few dozen
lines below; no dependency for three record types), to the given server or the first
``nameserver`` of ``/etc/resolv.conf``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
import socket
import struct
from pathlib import Path

from opsdash.figures import DnsFigures
from opsdash.records import dataclass
from opsdash.registry.targets import normalise_answer
from opsdash.resources import Resources
from opsdash.results import ErrorType, Observation, ProbeFailure
from opsdash.status import Status

RECORD_TYPES = {"A": 1, "AAAA": 28, "CNAME": 5}
_RCODES = {1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
_MAX_REPLY = 4096
RESOLV_CONF = Path("/etc/resolv.conf")
_SHOWN_ANSWERS = 5


@dataclass(frozen=True, slots=True)
class DnsTarget:
    """What to ask, and of whom."""

    name: str
    record_type: str = "A"
    expect: tuple[str, ...] = ()
    """Normalised (:func:`~opsdash.registry.targets.normalise_answer`)."""
    server: tuple[str, int] | None = None


async def probe_dns(resources: Resources, target: DnsTarget) -> Observation:
    """Look the name up and judge the answers."""
    server = target.server
    if server is None and target.record_type != "CNAME":
        answers = await _system_lookup(target.name, target.record_type)
    else:
        server = server or _system_nameserver()
        answers = await query(server, target.name, target.record_type)
    shown_server = None if server is None else f"{server[0]}:{server[1]}"
    found = {normalise_answer(target.record_type, answer) for answer in answers}
    missing = tuple(answer for answer in target.expect if answer not in found)
    figures = DnsFigures(target.record_type, tuple(answers), shown_server, missing)
    listed = ", ".join(answers[:_SHOWN_ANSWERS]) + (" …" if len(answers) > _SHOWN_ANSWERS else "")
    if not answers:
        return Observation(Status.CRIT, f"no {target.record_type} record", figures)
    if missing:
        summary = f"{', '.join(missing)} not in the answer (got {listed})"
        return Observation(Status.CRIT, summary, figures)
    return Observation(Status.OK, f"{target.record_type} {listed}", figures)


async def _system_lookup(name: str, record_type: str) -> list[str]:
    family = socket.AF_INET if record_type == "A" else socket.AF_INET6
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(name, None, family=family, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        if error.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)):
            return []  # the name, or this family of it, does not exist: judged as no record
        raise ProbeFailure(ErrorType.DNS, f"DNS lookup failed: {error.strerror}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _system_nameserver() -> tuple[str, int]:
    """The first ``nameserver`` of ``/etc/resolv.conf``."""
    with contextlib.suppress(OSError):
        for line in RESOLV_CONF.read_text(encoding="utf-8", errors="replace").splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] == "nameserver":
                with contextlib.suppress(ValueError):
                    return str(ipaddress.ip_address(words[1].split("%")[0])), 53
    raise ProbeFailure(ErrorType.CONFIG, f"no nameserver in {RESOLV_CONF}: set server:")


# --- a one-question DNS client (RFC 1035) ---------------------------------------------------


def encode_query(query_id: int, name: str, record_type: str) -> bytes:
    """A recursive query for ``name``'s ``record_type`` records."""
    header = struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0)  # RD set, one question
    labels = b"".join(
        bytes([len(part)]) + part
        for part in (p.encode("idna") for p in name.rstrip(".").split("."))
    )
    return header + labels + b"\x00" + struct.pack("!HH", RECORD_TYPES[record_type], 1)


def _read_name(message: bytes, offset: int) -> tuple[str, int]:
    """A (possibly compressed) name at ``offset``, and the offset after it."""
    labels: list[str] = []
    end: int | None = None
    for _ in range(128):  # bounds a pointer loop in a hostile reply
        length = message[offset]
        if length == 0:
            return ".".join(labels), end if end is not None else offset + 1
        if length & 0xC0 == 0xC0:
            pointer = struct.unpack_from("!H", message, offset)[0] & 0x3FFF
            end = end if end is not None else offset + 2
            offset = pointer
            continue
        labels.append(message[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    raise ValueError("name compression loop")


def decode_answers(message: bytes, query_id: int, record_type: str) -> list[str]:
    """The ``record_type`` answers of a reply (addresses or names); raises
    :class:`ProbeFailure` for an error code or a malformed reply."""
    try:
        reply_id, flags, questions, answers = struct.unpack_from("!HHHH", message, 0)
        if reply_id != query_id or not flags & 0x8000:
            raise ValueError("not the reply to our query")
        rcode = flags & 0x000F
        if rcode == 3:
            return []  # NXDOMAIN: judged as no record
        if rcode:
            name = _RCODES.get(rcode, f"rcode {rcode}")
            raise ProbeFailure(ErrorType.DNS, f"the name server answered {name}")
        offset = 12
        for _ in range(questions):
            _, offset = _read_name(message, offset)
            offset += 4
        wanted = RECORD_TYPES[record_type]
        found: list[str] = []
        for _ in range(answers):
            _, offset = _read_name(message, offset)
            rtype, _rclass, _ttl, length = struct.unpack_from("!HHIH", message, offset)
            offset += 10
            data = message[offset : offset + length]
            if rtype == wanted == 1 and length == 4:
                found.append(str(ipaddress.IPv4Address(data)))
            elif rtype == wanted == 28 and length == 16:
                found.append(str(ipaddress.IPv6Address(data)))
            elif rtype == wanted == 5:
                found.append(_read_name(message, offset)[0])
            offset += length
        return found
    except (struct.error, IndexError, ValueError) as error:
        raise ProbeFailure(ErrorType.PROTOCOL, f"malformed DNS reply ({error})") from None


class _OneReply(asyncio.DatagramProtocol):
    """Waits for the first datagram that answers our query id."""

    def __init__(self, query_id: int) -> None:
        self.query_id = query_id
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        ours = len(data) >= 2 and struct.unpack_from("!H", data)[0] == self.query_id
        if ours and not self.reply.done():
            self.reply.set_result(data[:_MAX_REPLY])

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc)


async def query(server: tuple[str, int], name: str, record_type: str) -> list[str]:
    """Ask ``server`` over UDP; the deadline is the harness's (a silent server costs it)."""
    query_id = secrets.randbelow(0x10000)
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _OneReply(query_id), remote_addr=server
    )
    try:
        transport.sendto(encode_query(query_id, name, record_type))
        try:
            reply = await protocol.reply
        except ConnectionRefusedError:
            raise ProbeFailure(
                ErrorType.REFUSED, f"no name server on {server[0]}:{server[1]}"
            ) from None
    finally:
        transport.close()
    # A truncated reply (TC) is judged on the answers that fit: enough for expected ones.
    return decode_answers(reply, query_id, record_type)
