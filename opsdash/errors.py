"""Mapping any exception a probe lets out to an ``error.type`` and a plain summary.

The harness calls :func:`classify` on whatever escaped a probe. The exception and its causes
(``__cause__``, ``__context__``) are searched for the most telling one, because HTTP clients and
drivers wrap the socket error that says what really happened::

    TimeoutError, ssl.SSLError / ssl.SSLCertVerificationError, socket.gaierror,
    ConnectionRefusedError, ConnectionResetError / BrokenPipeError / ConnectionAbortedError,
    httpx.TooManyRedirects / httpx.RemoteProtocolError / httpx.DecodingError,
    driver auth errors (asyncpg, redis, pymongo), recognised by class name.

Library classes are matched by name so that this module imports no driver.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

from opsdash.results import ErrorType, ProbeError

# Driver exceptions recognised by class name (the driver is imported only by its probe).
_BY_CLASS_NAME: dict[str, ErrorType] = {
    # asyncpg
    "InvalidPasswordError": ErrorType.AUTH,
    "InvalidAuthorizationSpecificationError": ErrorType.AUTH,
    "InvalidCatalogNameError": ErrorType.CONFIG,
    "TooManyConnectionsError": ErrorType.PROTOCOL,
    "CannotConnectNowError": ErrorType.REFUSED,
    # redis-py
    "AuthenticationError": ErrorType.AUTH,
    "AuthenticationWrongNumberOfArgsError": ErrorType.AUTH,
    "AuthorizationError": ErrorType.AUTH,
    "NoPermissionError": ErrorType.AUTH,
    # httpx
    "TooManyRedirects": ErrorType.PROTOCOL,
    "RemoteProtocolError": ErrorType.PROTOCOL,
    "LocalProtocolError": ErrorType.PROTOCOL,
    "DecodingError": ErrorType.PROTOCOL,
    "UnsupportedProtocol": ErrorType.CONFIG,
    "InvalidURL": ErrorType.CONFIG,
}

# When nothing in the chain has a telling type, the message may still say it.
_BY_MESSAGE: tuple[tuple[str, ErrorType], ...] = (
    ("connection refused", ErrorType.REFUSED),
    ("connect call failed", ErrorType.REFUSED),
    ("name or service not known", ErrorType.DNS),
    ("nodename nor servname", ErrorType.DNS),
    ("temporary failure in name resolution", ErrorType.DNS),
    ("no address associated", ErrorType.DNS),
    ("getaddrinfo failed", ErrorType.DNS),
    ("certificate verify failed", ErrorType.TLS),
    ("ssl", ErrorType.TLS),
    ("connection reset", ErrorType.RESET),
    ("server disconnected", ErrorType.RESET),
    ("connection closed", ErrorType.RESET),
    ("authentication failed", ErrorType.AUTH),
    ("auth failed", ErrorType.AUTH),
    ("timed out", ErrorType.TIMEOUT),
)

_SUMMARY = {
    ErrorType.REFUSED: "connection refused",
    ErrorType.DNS: "DNS lookup failed",
    ErrorType.RESET: "connection reset by peer",
    ErrorType.TIMEOUT: "timed out",
}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, then its causes, without looping on a cycle."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _type_of(exc: BaseException) -> ErrorType | None:
    # Order matters: SSLCertVerificationError is an OSError subclass of ValueError too.
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return ErrorType.TLS
    if isinstance(exc, socket.gaierror):
        return ErrorType.DNS
    if isinstance(exc, ConnectionRefusedError):
        return ErrorType.REFUSED
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return ErrorType.RESET
    if isinstance(exc, TimeoutError):
        return ErrorType.TIMEOUT
    for cls in type(exc).__mro__:
        if cls.__name__ in _BY_CLASS_NAME:
            return _BY_CLASS_NAME[cls.__name__]
    return None


def _tls_message(exc: BaseException) -> str:
    # verify_message is set by the ssl module's handshake, not by every constructor.
    verify_message = getattr(exc, "verify_message", None)
    if isinstance(exc, ssl.SSLCertVerificationError) and verify_message:
        return f"TLS error: {verify_message}"
    reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    return f"TLS error: {reason}"


def classify(exc: BaseException) -> ProbeError:
    """The ``error`` of a probe that raised ``exc``: its type and a plain message."""
    chain = list(_chain(exc))
    for candidate in chain:
        error_type = _type_of(candidate)
        if error_type is None:
            continue
        if error_type is ErrorType.TLS:
            return ProbeError(error_type, _tls_message(candidate))
        if error_type in _SUMMARY:
            return ProbeError(error_type, _SUMMARY[error_type])
        return ProbeError(error_type, _describe(candidate))
    text = " ".join(str(candidate) for candidate in chain).lower()
    for marker, error_type in _BY_MESSAGE:
        if marker in text:
            message = _SUMMARY.get(error_type) or _describe(exc)
            return ProbeError(error_type, message)
    return ProbeError(ErrorType.INTERNAL, _describe(exc))


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
