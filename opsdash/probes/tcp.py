"""TCP and TLS endpoints: a connect (its time is the figure), optionally bytes sent and bytes
expected back; and, for ``tls:``, the certificate the endpoint presents.

Connection failures are raised and worded by :func:`opsdash.errors.classify` (refused, DNS,
reset); the harness owns the deadline, so a server that accepts and never answers costs the
probe's deadline. What is read while waiting for ``expect`` is capped at :data:`MAX_ANSWER`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
import time

from opsdash.errors import verify_reason
from opsdash.figures import TcpFigures, TlsFigures
from opsdash.probes import tls
from opsdash.records import dataclass, field
from opsdash.registry.model import RemainingThresholds
from opsdash.resources import Resources
from opsdash.results import ErrorType, Observation, ProbeFailure
from opsdash.status import Status
from opsdash.transport import make_ssl_context

MAX_ANSWER = 16 * 1024
EXCERPT = 200
_POSTGRES_SSL_REQUEST = struct.pack("!ii", 8, 80877103)


@dataclass(frozen=True, slots=True)
class TcpTarget:
    """Where to connect, and the optional exchange."""

    host: str
    port: int
    send: bytes | None = None
    expect: bytes | None = None


def excerpt(data: bytes) -> str:
    """What a server sent, printable and short: it never reaches a terminal raw."""
    text = " ".join(data.decode("utf-8", errors="replace").split())  # lines become one
    text = "".join(c if c.isprintable() else "·" for c in text)
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.transport.abort()  # no lingering FIN handshake: the probe is done with it
    with contextlib.suppress(Exception):
        await writer.wait_closed()


async def probe_tcp(resources: Resources, target: TcpTarget) -> Observation:
    """Connect; send and expect when asked to."""
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection(target.host, target.port, limit=MAX_ANSWER)
    connect_ms = round((time.perf_counter() - start) * 1000.0, 1)
    try:
        if target.send:
            writer.write(target.send)
            await writer.drain()
        if target.expect is None:
            return Observation(Status.OK, f"connected in {connect_ms:g} ms", TcpFigures(connect_ms))
        answer = await _read_until(reader, target.expect)
    finally:
        await _close(writer)
    figures = TcpFigures(connect_ms, excerpt(answer))
    if target.expect in answer:
        return Observation(
            Status.OK, f"connected in {connect_ms:g} ms; answer as expected", figures
        )
    wanted = excerpt(target.expect)
    got = f"got {excerpt(answer)!r}" if answer else "the server sent nothing before closing"
    return Observation(Status.CRIT, f"expected {wanted!r} in the answer; {got}", figures)


async def _read_until(reader: asyncio.StreamReader, expected: bytes) -> bytes:
    """Read until ``expected`` shows up, the server closes, or :data:`MAX_ANSWER` is read."""
    data = b""
    while expected not in data and len(data) < MAX_ANSWER:
        chunk = await reader.read(MAX_ANSWER - len(data))
        if not chunk:
            break
        data += chunk
    return data


@dataclass(frozen=True, slots=True)
class TlsTarget:
    """A TLS endpoint and how to judge its certificate."""

    host: str
    port: int
    server_name: str
    verify: bool = True
    starttls: str | None = None
    cert_expiry: RemainingThresholds = field(default_factory=RemainingThresholds)


async def probe_tls(resources: Resources, target: TlsTarget) -> Observation:
    """Handshake (verifying unless told not to) and judge the certificate's expiry."""
    context = resources.memo(
        ("tls-context", target.verify), lambda: make_ssl_context(target.verify)
    )
    try:
        writer = await _handshake(target, context)
    except ssl.SSLError as error:
        raise await _failure(target, error) from None
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        certificate = tls.from_ssl_object(ssl_object)
        version = ssl_object.version() if ssl_object is not None else None
    finally:
        await _close(writer)
    if certificate is None:
        raise ProbeFailure(ErrorType.TLS, "the server presented no certificate")
    return judge_certificate(certificate, target.cert_expiry, version)


def judge_certificate(
    certificate: tls.Certificate, limits: RemainingThresholds, version: str | None = None
) -> Observation:
    """Days left against ``limits``; the issuer is always named."""
    left = certificate.seconds_left()
    figures = TlsFigures(certificate=certificate.figures(), tls_version=version)
    days = left / 86400.0
    when = f"expired {-days:.1f} days ago" if days < 0 else f"expires in {days:.1f} days"
    summary = f"certificate {when} (issuer {certificate.issuer})"
    return Observation(limits.judge(left), summary, figures)


async def _handshake(target: TlsTarget, context: ssl.SSLContext) -> asyncio.StreamWriter:
    if target.starttls != "postgres":
        _, writer = await asyncio.open_connection(
            target.host, target.port, ssl=context, server_hostname=target.server_name
        )
        return writer
    # PostgreSQL speaks TLS only after an SSLRequest answered with "S".
    reader, writer = await asyncio.open_connection(target.host, target.port)
    try:
        writer.write(_POSTGRES_SSL_REQUEST)
        await writer.drain()
        answer = await reader.read(1)
        if answer != b"S":
            raise ProbeFailure(ErrorType.TLS, "the PostgreSQL server does not offer TLS")
        await writer.start_tls(context, server_hostname=target.server_name)
    except BaseException:
        await _close(writer)
        raise
    return writer


async def _failure(target: TlsTarget, error: ssl.SSLError) -> ProbeFailure:
    """A handshake failure with its reason and, when verification failed, the certificate."""
    reason = verify_reason(error)
    message = f"TLS error: {reason}"
    figures = TlsFigures(tls_error=reason)
    if isinstance(error, ssl.SSLCertVerificationError) and target.starttls is None:
        certificate = await tls.fetch_unverified(target.host, target.port)
        if certificate is not None:
            message += f" (issuer {certificate.issuer}; subject {certificate.subject})"
            figures = TlsFigures(certificate=certificate.figures(), tls_error=reason)
    return ProbeFailure(ErrorType.TLS, message, figures)
