"""A process that imported asyncio with ssl held back (``opsdash check`` on a plain-HTTP
registry, :mod:`opsdash.lazy_ssl`) still makes TLS connections when a check needs one: an
``https://`` service, and an ``http://`` one that redirects to ``https://``."""

from __future__ import annotations

import asyncio
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


async def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The command in a fresh interpreter, while this test's loop serves its requests."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, *argv,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return subprocess.CompletedProcess(argv, process.returncode, out.decode(), err.decode())
