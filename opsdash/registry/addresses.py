"""What the registry's addresses must be before anything connects: ports in 1-65535, and the
database a MongoDB URI names.

A port outside the range is not rejected by every client: 106538 wrapped to 41002 and a
different service answered ``ok``. Checked once, at load, so ``validate`` names the line.
"""

from __future__ import annotations

import re

MAX_PORT = 65535

_AUTHORITY_END = re.compile(r"[/?#]")
# As text: re compiles it on first use (keyword DSNs only).
_KEYWORD_PORT = r"(?:^|\s)port\s*=\s*'?([^\s']*)"


def _authority_hosts(url: str) -> list[str]:
    """The ``host[:port]`` parts of a URL's authority (several for ``mongodb://a,b/``)."""
    _, separator, rest = url.partition("://")
    if not separator:
        return []
    authority = _AUTHORITY_END.split(rest, maxsplit=1)[0]
    hosts = authority.rpartition("@")[2]
    return [host for host in hosts.split(",") if host]


def _port_of(host: str) -> str:
    if host.startswith("["):  # [::1]:8080
        after = host.partition("]")[2]
        return after[1:] if after.startswith(":") else ""
    return host.rpartition(":")[2] if ":" in host else ""


def port_problem(address: str) -> str | None:
    """Why a port in ``address`` (a URL, or a libpq ``key=value`` DSN) cannot work, or
    ``None``. A missing port is fine: the scheme's default applies."""
    if "://" in address:
        ports = [_port_of(host) for host in _authority_hosts(address)]
    else:
        ports = re.findall(_KEYWORD_PORT, address)
    for port in ports:
        if port == "":
            continue
        if not port.isdigit():
            # Not quoted: a password with an unescaped ``/`` lands here, and must not show.
            return f"expected a port number in 1-{MAX_PORT} after the host"
        if not 1 <= int(port) <= MAX_PORT:
            return f"expected a port in 1-{MAX_PORT}; found {int(port)}"
    return None


def check_port(address: str) -> str:
    """``address`` unchanged, or :class:`ValueError` naming its impossible port."""
    problem = port_problem(address)
    if problem is not None:
        raise ValueError(problem)
    return address


def mongo_database(uri: str) -> str | None:
    """The database a MongoDB URI names (``mongodb://host/db``), or ``None``."""
    _, separator, rest = uri.partition("://")
    if not separator:
        return None
    from urllib.parse import unquote

    return unquote(_path_of(rest)) or None


def _path_of(rest: str) -> str:
    match = _AUTHORITY_END.search(rest)
    if match is None or match.group() != "/":
        return ""
    return re.split(r"[?#]", rest[match.end() :], maxsplit=1)[0]
