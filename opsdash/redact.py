"""Keeping passwords and tokens out of every output, log line and error message.

Two tools: :func:`redact_url` masks the password of a URL or DSN before it is shown as a
target, and :class:`Redactor` scrubs known secret values out of any text a probe or a library
produced (exception messages love to quote a DSN).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, unquote, unquote_plus, urlsplit, urlunsplit

from opsdash.records import dataclass

MASK = "***"

# Header values that are never secret; every other header value is treated as one.
_PLAIN_HEADERS = frozenset({"accept", "content-type", "user-agent", "host", "accept-encoding"})
# Query parameters whose values are secrets (``?token=...``, ``?password=...``).
_SECRET_PARAMS = ("pass", "token", "secret", "key", "auth", "signature", "sig")


def redact_url(url: str) -> str:
    """``url`` with the password of its userinfo and secret query values masked, in place:
    ``redis://:redis@redis:6379`` reads ``redis://:***@redis:6379`` (a password that is also
    the scheme or the host must not mask those)."""
    if "@" not in url and "?" not in url:
        return url  # no userinfo, no query: nothing to mask (and no parse: planning calls this)
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    netloc, query = parts.netloc, parts.query
    if password:
        userinfo, _, hosts = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:{MASK}@{hosts}"
    if query:
        query = "&".join(_masked_pair(pair) for pair in query.split("&"))
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _masked_pair(pair: str) -> str:
    name, equals, value = pair.partition("=")
    secret = value and any(marker in unquote_plus(name).lower() for marker in _SECRET_PARAMS)
    return f"{name}{equals}{MASK}" if secret else pair


def url_secrets(url: str) -> list[str]:
    """The secret parts of a URL or DSN: its password and secret-looking query values."""
    secrets: list[str] = []
    if "@" not in url and "?" not in url:
        return secrets  # no userinfo, no query: no secret (and no parse per planned check)
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return secrets
    if password:
        secrets.append(password)
        # Sent as Basic auth (opsdash.httpclient): a server echoing its header leaks this form.
        credentials = f"{unquote(parts.username or '')}:{unquote(password)}".encode()
        secrets.append(base64.b64encode(credentials).decode("ascii"))
    for name, value in parse_qsl(parts.query):
        if value and any(marker in name.lower() for marker in _SECRET_PARAMS):
            secrets.append(value)
    return secrets


def header_secrets(headers: Mapping[str, str]) -> list[str]:
    """The header values to hide: all but a few plainly harmless ones."""
    secrets = [value for name, value in headers.items() if name.lower() not in _PLAIN_HEADERS]
    # "Bearer abc" leaks "abc" when a library quotes only the token.
    secrets += [value.split(" ", 1)[1] for value in secrets if " " in value]
    return secrets


@dataclass(frozen=True, slots=True)
class Redactor:
    """Replaces each known secret in a text by ``***``."""

    secrets: tuple[str, ...] = ()

    @classmethod
    def of(cls, secrets: Iterable[str]) -> Redactor:
        """A redactor for these secrets; short or empty values are ignored (they would mask
        ordinary words), longest first so that a secret containing another is masked whole."""
        unique = {secret for secret in secrets if len(secret) >= 3}
        return cls(tuple(sorted(unique, key=len, reverse=True)))

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text
