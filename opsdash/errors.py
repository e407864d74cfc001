"""Mapping any exception a probe lets out to an ``error.type`` and a plain summary.

The harness calls :func:`classify` on whatever escaped a probe. The exception and its causes
(``__cause__``, ``__context__``) are searched for the most telling one, because HTTP clients and
drivers wrap the socket error that says what really happened::

    TimeoutError, ssl.SSLError / ssl.SSLCertVerificationError, socket.gaierror,
    ConnectionRefusedError, ConnectionResetError / BrokenPipeError / ConnectionAbortedError,
    httpx.TooManyRedirects / httpx.RemoteProtocolError / httpx.DecodingError,
    driver auth errors (asyncpg, redis, pymongo), recognised by class name,
    driver connection-loss and timeout errors (asyncpg, redis, pymongo), by class name,
    pymongo.errors.ServerSelectionTimeoutError, by the text it quotes, else as a timeout.

Library classes are matched by name so that this module imports no driver.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING

from opsdash.lazy_ssl import loaded_ssl
from opsdash.results import ErrorType, ProbeError

if TYPE_CHECKING:
    import ssl

# Driver exceptions recognised by class name (the driver is imported only by its probe).
_BY_CLASS_NAME: dict[str, ErrorType] = {
    # asyncpg
    "InvalidPasswordError": ErrorType.AUTH,
    "InvalidAuthorizationSpecificationError": ErrorType.AUTH,
    "InvalidCatalogNameError": ErrorType.CONFIG,
    "TooManyConnectionsError": ErrorType.PROTOCOL,
    "CannotConnectNowError": ErrorType.REFUSED,
    "ConnectionDoesNotExistError": ErrorType.RESET,
    "ConnectionFailureError": ErrorType.RESET,
    "AdminShutdownError": ErrorType.RESET,
    "CrashShutdownError": ErrorType.RESET,
    "ClientConfigurationError": ErrorType.CONFIG,  # e.g. sslrootcert missing
    # redis-py
    "AuthenticationError": ErrorType.AUTH,
    "AuthenticationWrongNumberOfArgsError": ErrorType.AUTH,
    "AuthorizationError": ErrorType.AUTH,
    "NoPermissionError": ErrorType.AUTH,
    "TimeoutError": ErrorType.TIMEOUT,  # redis.exceptions.TimeoutError is no builtin one
    # pymongo (ServerSelectionTimeoutError is judged by its text first: see below)
    "NetworkTimeout": ErrorType.TIMEOUT,
    "ExecutionTimeout": ErrorType.TIMEOUT,
    # opsdash.transport: the server hung up before a full response (a reset in all but name)
    "ServerDisconnected": ErrorType.RESET,
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

# Consulted only when neither the types nor the text of the chain said more: pymongo's
# ServerSelectionTimeoutError quotes the last connection error ("Connection refused") in its
# text, which is more telling than its class.
_BY_CLASS_NAME_LAST: dict[str, tuple[ErrorType, str]] = {
    "ServerSelectionTimeoutError": (ErrorType.TIMEOUT, "no suitable server answered in time"),
    "WaitQueueTimeoutError": (ErrorType.TIMEOUT, "no free connection in the pool in time"),
}

# Plain words for classes whose own message is technical.
_CLASS_SUMMARY = {
    "ServerDisconnected": "connection closed by the server before a complete response",
    "TooManyRedirects": "too many redirects",
}

_SUMMARY = {
    ErrorType.REFUSED: "connection refused",
    ErrorType.DNS: "DNS lookup failed",
    ErrorType.RESET: "connection reset by peer",
    ErrorType.TIMEOUT: "timed out",
    # Driver auth messages differ and may quote the user; the plain reason is enough.
    ErrorType.AUTH: "authentication failed",
}


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, then its causes, without looping on a cycle."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _type_of(exc: BaseException) -> ErrorType | None:
    # Order matters: SSLCertVerificationError is an OSError subclass of ValueError too.
    ssl = loaded_ssl()
    if ssl is not None and isinstance(exc, ssl.SSLError | ssl.CertificateError):
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
    ssl = loaded_ssl()
    if ssl is not None and isinstance(exc, ssl.SSLError):
        return f"TLS error: {verify_reason(exc)}"
    reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    return f"TLS error: {reason}"


# OpenSSL X509_V_ERR_* codes and the plain words an on-call engineer wants to read.
_VERIFY_REASONS = {
    9: "certificate not yet valid",
    10: "certificate expired",
    18: "self-signed certificate",
    19: "self-signed certificate in the chain",
    20: "unknown issuer",
    21: "unknown issuer",
    62: "hostname mismatch",
    64: "IP address mismatch",
}


def verify_reason(error: ssl.SSLError) -> str:
    """Why TLS failed, in plain words: ``certificate expired``, ``unknown issuer``..."""
    ssl = loaded_ssl()
    if ssl is not None and isinstance(error, ssl.SSLCertVerificationError):
        # verify_code/verify_message are set by a handshake, not by every constructor.
        reason = _VERIFY_REASONS.get(getattr(error, "verify_code", None) or 0)
        if reason is not None:
            return reason
        if getattr(error, "verify_message", None):
            return str(error.verify_message)
    return str(getattr(error, "reason", None) or error).lower().replace("_", " ")


def classify(exc: BaseException) -> ProbeError:
    """The ``error`` of a probe that raised ``exc``: its type and a plain message."""
    chain = list(exception_chain(exc))
    for candidate in chain:
        error_type = _type_of(candidate)
        if error_type is None:
            continue
        if error_type is ErrorType.TLS:
            return ProbeError(error_type, _tls_message(candidate))
        for cls in type(candidate).__mro__:
            if cls.__name__ in _CLASS_SUMMARY:
                return ProbeError(error_type, _CLASS_SUMMARY[cls.__name__])
        if error_type in _SUMMARY:
            return ProbeError(error_type, _SUMMARY[error_type])
        # A recognised error speaks for itself ('database "x" does not exist'); the class name
        # is kept only for the unrecognised, where it is the best clue there is.
        return ProbeError(error_type, _first_line(candidate) or _describe(candidate))
    text = " ".join(str(candidate) for candidate in chain).lower()
    for marker, error_type in _BY_MESSAGE:
        if marker in text:
            if error_type is ErrorType.TLS:
                return ProbeError(error_type, _tls_text_message(text))
            message = _SUMMARY.get(error_type) or _describe(exc)
            return ProbeError(error_type, message)
    for candidate in chain:
        for cls in type(candidate).__mro__:
            if cls.__name__ in _BY_CLASS_NAME_LAST:
                return ProbeError(*_BY_CLASS_NAME_LAST[cls.__name__])
    return ProbeError(ErrorType.INTERNAL, _describe(exc))


# pymongo quotes the ssl module's error inside a long text (with the topology description):
# "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer
# certificate (_ssl.c:1006) ...". Keep the reason, drop the rest. Patterns, not compiled
# here: `re` compiles (and caches) them on the first TLS failure, not on every start-up.
_TLS_VERIFY_REASON = r"certificate verify failed: ([^(\]'\"]+)"
_TLS_SSL_CODE = r"\[ssl: ([a-z_]+)\]"


def _tls_text_message(text: str) -> str:
    """A plain TLS summary from an error text that only quotes the ssl module's error."""
    if match := re.search(_TLS_VERIFY_REASON, text):
        return f"TLS error: {match.group(1).strip()}"
    if match := re.search(_TLS_SSL_CODE, text):
        return f"TLS error: {match.group(1).replace('_', ' ')}"
    return "TLS error: handshake failed"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _describe(exc: BaseException) -> str:
    text = _first_line(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
