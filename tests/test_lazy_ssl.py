"""A process that imported asyncio with ssl held back (``opsdash check`` on a plain-HTTP
registry, :mod:`opsdash.lazy_ssl`) still makes TLS connections when a check needs one: an
``https://`` service, an ``http://`` one that redirects to ``https://``, and the datastore
drivers' TLS (asyncpg's and redis-py's handshakes go through the event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path

import trustme

from tests import adversarial

ROOT = Path(__file__).resolve().parent.parent

# The child holds ssl back before anything else loads asyncio, says that it did, then runs
# the command as a user would.
_CHILD = textwrap.dedent(
    """
    import sys
    from opsdash.lazy_ssl import import_asyncio
    import_asyncio()
    import asyncio.sslproto
    print("held back" if asyncio.sslproto.ssl is None else "loaded", file=sys.stderr)
    from opsdash.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


async def test_https_and_a_redirect_to_it_work_after_ssl_was_held_back(tmp_path: Path) -> None:
    ca = trustme.CA(organization_name="opsdash test CA")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", common_name="127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    answer = adversarial.fixed(200, "OK", b'{"status":"pass"}')
    async with adversarial.serve(answer, tls=server_context) as secure:
        moved = adversarial.fixed(301, "Moved", b"", {"Location": secure.url + "/health"})
        async with adversarial.serve(moved) as plain:
            registry = tmp_path / "services.yaml"
            registry.write_text(
                "version: 1\nplatform: t\nservices:\n"
                f"  secure: {{url: '{secure.url}', ready: false}}\n"
                f"  moved: {{url: '{plain.url}', ready: false}}\n"
            )
            env = {**os.environ, "SSL_CERT_FILE": str(ca_file)}
            child = await _run(["check", "--json", "-r", str(registry)], env)
    assert child.stderr.startswith("held back"), child.stderr
    document = json.loads(child.stdout)
    results = {check["id"]: check for check in document["checks"]}
    assert results["secure.health"]["status"] == "ok", results["secure.health"]
    assert results["moved.health"]["status"] == "ok", results["moved.health"]
    assert results["moved.health"]["details"]["redirects"] == 1
    assert results["secure.health"]["details"]["cert_days_left"] > 14
    assert child.returncode == 0


async def test_the_drivers_handshakes_run_after_ssl_was_held_back(tmp_path: Path) -> None:
    """asyncpg (``sslmode=verify-full``) and redis-py (``rediss://``) against servers whose
    certificate they must not trust: each check fails with the verification's own reason,
    which only a handshake that really ran can give."""
    server_ca, other_ca = trustme.CA(), trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ca.issue_cert("127.0.0.1").configure_cert(context)
    root = tmp_path / "root.crt"
    other_ca.cert_pem.write_to_path(str(root))

    async def postgres_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(8)  # PostgreSQL's SSLRequest
        writer.write(b"S")
        await writer.drain()
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await writer.start_tls(context)
        writer.close()

    async def redis_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await reader.read(1)
        writer.close()

    postgres = await asyncio.start_server(postgres_tls, "127.0.0.1", 0)
    redis = await asyncio.start_server(redis_tls, "127.0.0.1", 0, ssl=context)
    async with postgres, redis:
        pg_port = postgres.sockets[0].getsockname()[1]
        redis_port = redis.sockets[0].getsockname()[1]
        registry = tmp_path / "services.yaml"
        registry.write_text(
            "version: 1\nplatform: t\ndatastores:\n"
            f"  db: {{kind: postgres, dsn: 'postgresql://u@127.0.0.1:{pg_port}/x"
            f"?sslmode=verify-full&sslrootcert={root}'}}\n"
            f"  cache: {{kind: redis, url: 'rediss://127.0.0.1:{redis_port}/0'}}\n"
        )
        child = await _run(
            ["check", "--json", "--timeout", "5s", "-r", str(registry)], {**os.environ}
        )
    assert child.stderr.startswith("held back"), child.stderr
    results = {check["id"]: check for check in json.loads(child.stdout)["checks"]}
    for check_id in ("db", "cache"):
        assert results[check_id]["error"]["type"] == "tls", results[check_id]
        # "handshake failed" is all a process whose asyncio has no ssl can say
        assert results[check_id]["summary"] == "TLS error: unknown issuer", results[check_id]


async def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The command in a fresh interpreter, while this test's loop serves its requests."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, *argv,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return subprocess.CompletedProcess(argv, process.returncode, out.decode(), err.decode())
