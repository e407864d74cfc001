"""The server certificate of an ``https://`` service: expiry, issuer, subject, and why
verification failed.

Two sources: the ``ssl.SSLObject`` of the connection a request used (a verified connection
decodes its certificate itself), and, when verification failed or is off, the certificate's DER
bytes decoded with ``cryptography`` (imported only then). :func:`fetch_unverified` makes a
separate handshake without verification to read the certificate of a server that failed
verification, so that the error can name the issuer and subject.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from opsdash.errors import exception_chain
from opsdash.figures import CertificateFigures
from opsdash.lazy_ssl import load_ssl, loaded_ssl
from opsdash.records import dataclass

if TYPE_CHECKING:
    import ssl

# RFC 4514 short names of the attributes ``getpeercert()`` spells out.
_SHORT_NAMES = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "stateOrProvinceName": "ST",
    "localityName": "L",
    "domainComponent": "DC",
    "emailAddress": "E",
}


@dataclass(frozen=True, slots=True)
class Certificate:
    """What opsdash reports about a server certificate."""

    subject: str
    issuer: str
    not_after: datetime

    def seconds_left(self, now: datetime | None = None) -> float:
        """Seconds until expiry (negative once expired)."""
        return (self.not_after - (now or datetime.now(UTC))).total_seconds()

    def figures(self, now: datetime | None = None) -> CertificateFigures:
        """The certificate's figures of an HTTP check."""
        return CertificateFigures(
            cert_days_left=round(self.seconds_left(now) / 86400.0, 1),
            cert_expires_at=self.not_after,
            cert_subject=self.subject,
            cert_issuer=self.issuer,
        )


def from_ssl_object(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> Certificate | None:
    """The peer certificate of a TLS connection, verified or not; ``None`` without one."""
    if ssl_object is None:
        return None
    decoded = ssl_object.getpeercert()
    if decoded:
        return _from_decoded(decoded)
    # Without verification OpenSSL does not decode the certificate: only its bytes are given.
    der = ssl_object.getpeercert(binary_form=True)
    return from_der(der) if der else None


def _from_decoded(decoded: dict[str, Any]) -> Certificate | None:
    not_after = decoded.get("notAfter")
    if not isinstance(not_after, str):
        return None
    import ssl  # loaded already: the certificate came over a TLS connection

    expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), UTC)
    return Certificate(_name(decoded.get("subject", ())), _name(decoded.get("issuer", ())), expires)


def _name(rdns: Any) -> str:
    """``getpeercert()``'s nested tuples as an RFC 4514 string (most specific part first)."""
    parts = [
        f"{_SHORT_NAMES.get(key, key)}={value}" for rdn in reversed(rdns) for key, value in rdn
    ]
    return ",".join(parts)


def from_der(der: bytes) -> Certificate | None:
    """Decode a DER certificate; ``None`` if it cannot be decoded or cryptography is missing."""
    try:
        from cryptography import x509
    except ImportError:  # pragma: no cover - cryptography is a dependency
        return None
    try:
        certificate = x509.load_der_x509_certificate(der)
        return Certificate(
            certificate.subject.rfc4514_string(),
            certificate.issuer.rfc4514_string(),
            certificate.not_valid_after_utc,
        )
    except ValueError:
        return None


def find_ssl_error(exc: BaseException) -> ssl.SSLError | None:
    """The ``ssl.SSLError`` behind ``exc`` (httpx wraps it), if any."""
    ssl = loaded_ssl()
    if ssl is None:
        return None
    return next((e for e in exception_chain(exc) if isinstance(e, ssl.SSLError)), None)


@functools.cache
def _unverified_context() -> ssl.SSLContext:
    """A context that reads a certificate without trusting it (built once: it costs ms)."""
    load_ssl()
    import ssl  # here: a process that makes no TLS connection never loads it

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def fetch_unverified(host: str, port: int) -> Certificate | None:
    """The certificate ``host:port`` presents, read over a handshake without verification.

    Used only to describe a failed verification; the caller's deadline bounds it. Any failure
    gives ``None``: the verification error is what gets reported either way.
    """
    try:
        _, writer = await asyncio.open_connection(
            host, port, ssl=_unverified_context(), server_hostname=host
        )
    except OSError:
        return None
    try:
        return from_ssl_object(writer.get_extra_info("ssl_object"))
    finally:
        writer.transport.abort()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
