"""ssl loads with the first TLS connection, not with asyncio.

asyncio imports :mod:`ssl` when it loads, whether or not the process will open a TLS
connection: the module and OpenSSL's libraries are about a twentieth of a 10-service
``opsdash check`` (the check CI runs after every deploy), and a registry of plain ``http://``
services needs none of it. So ``check`` and ``alert`` import asyncio through
:func:`import_asyncio` (:func:`opsdash.commands.common.selected_specs`, before the plan's
modules load it), which holds ssl back while asyncio loads (asyncio's modules catch the
ImportError and note that ssl is missing), and every place that makes TLS possible asks for
:func:`load_ssl` first:

- :func:`opsdash.transport.make_ssl_context`, behind every ``https://`` request (a redirect
  from ``http://`` included), TLS checks and STARTTLS;
- the probes' driver loaders (:mod:`opsdash.probes.clients`): asyncpg, redis-py and pymongo
  open their TLS connections through the event loop.

:func:`load_ssl` imports ssl and gives asyncio's modules what they would have had, the module
and the one name they derive from it. In a process that imported asyncio the ordinary way (the
dashboard, ``serve``, the tests, uvloop's loop) both are no-ops. ``tests/test_lazy_ssl.py``
runs an ``https://`` probe, a redirect to one, and asyncpg's and redis-py's handshakes in a
process that held ssl back.
"""

from __future__ import annotations

import sys
from types import ModuleType


def import_asyncio() -> None:
    """Import asyncio now, without ssl if neither is loaded yet."""
    if "asyncio" in sys.modules or "ssl" in sys.modules:
        return
    sys.modules["ssl"] = None  # type: ignore[assignment]  # "import ssl" raises ImportError
    try:
        import asyncio  # noqa: F401
    finally:
        del sys.modules["ssl"]


def load_ssl() -> None:
    """Import ssl now if need be, and make asyncio able to use it."""
    import ssl
    from asyncio import base_events, selector_events, sslproto

    if vars(sslproto).get("ssl") is None:  # asyncio was imported by import_asyncio()
        for module in (base_events, selector_events, sslproto):
            vars(module)["ssl"] = ssl
        # The one name sslproto derives from ssl when it loads.
        vars(sslproto)["SSLAgainErrors"] = (ssl.SSLWantReadError, ssl.SSLSyscallError)


def loaded_ssl() -> ModuleType | None:
    """The ssl module if this process has loaded it, else ``None``: until it is loaded, no
    exception can be one of its errors."""
    return sys.modules.get("ssl")
