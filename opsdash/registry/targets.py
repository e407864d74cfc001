"""Parsing and checking the addresses and patterns custom checks name: ``HOST:PORT``, host
names, regexes, JSON paths, HTTP status ranges and DNS answers.

A leaf module (stdlib only): the registry validates with these at load time, so that a bad
host, port, regex or a condition that can never match is a ``file:line`` error, and the probes
parse with the same functions at run time. Each raises ``ValueError`` with a message that says
what was expected; the loader adds file, line and key.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
# As text: re compiles each on first use (only registries with these expectations need them).
_STATUS_CLASS = r"(?i)^([1-5])xx$"
_STATUS_RANGE = r"^(\d{3})\s*-\s*(\d{3})$"
_PATH_PART = r"""\.([A-Za-z_$][\w$-]*)|\[(\d+)\]|\[["']([^"']*)["']\]"""
JsonPath = tuple[str | int, ...]


def check_hostname(value: str) -> str:
    """``value`` if it is a DNS name or an IP address (a trailing dot is allowed)."""
    host = value.strip("[]")
    try:
        ipaddress.ip_address(host)
        return value
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise ValueError(f"expected a host name or an IP address; found {value!r}")
    return value


def parse_host_port(value: str, *, default_port: int | None = None) -> tuple[str, int]:
    """``db.internal:5432`` -> ("db.internal", 5432); ``[::1]:443`` for IPv6. With
    ``default_port``, the port may be left out."""
    text = value.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else rest
    elif text.count(":") > 1:  # a bare IPv6 address: no port
        host, port_text = text, ""
    else:
        host, _, port_text = text.partition(":")
    example = "HOST:PORT such as db.internal:5432"
    if not port_text:
        if default_port is None:
            raise ValueError(f"expected {example}; found {value!r}")
        port = default_port
    elif not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"expected a port from 1 to 65535 in {example}; found {value!r}")
    else:
        port = int(port_text)
    try:
        check_hostname(host)
    except ValueError:
        raise ValueError(f"expected {example}; found {value!r} (bad host)") from None
    return host, port


def url_host(url: str) -> str:
    """The host of ``url`` (``ValueError`` without one)."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        host = None
    if not host:
        raise ValueError(f"expected a URL with a host; found {url!r}")
    return host


def check_regex(pattern: str) -> str:
    """``pattern`` if it compiles as a Python regex."""
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"expected a regular expression; {error} in {pattern!r}") from None
    return pattern


def parse_json_path(path: str) -> JsonPath:
    """``$.checks[0].status`` -> ("checks", 0, "status"); ``$`` is the whole document.
    Keys with dots or spaces are written ``$["a.b"]``."""
    if not path.startswith("$"):
        raise ValueError(
            f"expected a JSON path such as $.status or $.checks[0].name; found {path!r}"
        )
    parts: list[str | int] = []
    position = 1
    while position < len(path):
        match = re.compile(_PATH_PART).match(path, position)
        if match is None:
            raise ValueError(
                f"expected a JSON path such as $.status or $.checks[0].name; found {path!r}"
                f" (cannot read it from {path[position:]!r})"
            )
        name, index, quoted = match.groups()
        parts.append(int(index) if index is not None else name if name is not None else quoted)
        position = match.end()
    return tuple(parts)


def parse_status_range(value: object) -> tuple[str, int, int]:
    """A status condition as written, and its inclusive range: ``200``, ``"2xx"``,
    ``"200-299"``. Codes outside 100-599 can never be answered, so they are errors."""
    text = str(value).strip()
    if isinstance(value, bool):
        low = high = -1
    elif isinstance(value, int) or text.isdigit():
        low = high = int(text)
    elif match := re.match(_STATUS_CLASS, text):
        low = int(match.group(1)) * 100
        high, text = low + 99, text.lower()
    elif match := re.match(_STATUS_RANGE, text):
        low, high = int(match.group(1)), int(match.group(2))
    else:
        raise ValueError(
            f"expected a status code (200), a class (2xx) or a range (200-299); found {value!r}"
        )
    if not (100 <= low <= 599 and 100 <= high <= 599):
        raise ValueError(f"can never match: HTTP status codes run from 100 to 599; found {value!r}")
    if low > high:
        raise ValueError(f"can never match: the range {text} is empty")
    return text, low, high


def normalise_answer(record_type: str, value: str) -> str:
    """A DNS answer as compared: an address in its canonical spelling, a name in lower case
    without the trailing dot. Raises when ``value`` can never be a ``record_type`` answer."""
    if record_type == "CNAME":
        check_hostname(value)
        return value.lower().rstrip(".")
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(
            f"can never match: {value!r} is not an IP address ({record_type} record)"
        ) from None
    wanted = 4 if record_type == "A" else 6
    if address.version != wanted:
        raise ValueError(
            f"can never match: {value} is an IPv{address.version} address;"
            f" an {record_type} record holds IPv{wanted}"
        )
    return str(address)
