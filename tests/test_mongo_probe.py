"""MongoDB check over the real wire protocol: mockupdb answering as a server does, and a real
``mongod`` when one is on PATH (never in CI here: that test skips)."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trustme
from mockupdb import MockupDB
from pymongo.errors import NetworkTimeout, OperationFailure, ServerSelectionTimeoutError

from opsdash.errors import classify
from opsdash.harness import run_probe
from opsdash.plan import CheckSpec, build_plan
from opsdash.probes.mongo import judge_mongo
from opsdash.registry.model import MongoDatastore, Registry
from opsdash.resources import Resources
from opsdash.results import CheckResult, ErrorType, ProbeError
from opsdash.status import Status
from tests.servers import MongodServer, refused_port

# What a MongoDB 7.0 server says about itself in every handshake and ``hello``.
WIRE = {"maxWireVersion": 21, "minWireVersion": 0, "maxBsonObjectSize": 16 * 1024 * 1024}
NOW = datetime(2026, 1, 25, 3, 0, 0, tzinfo=UTC)


def spec_for(uri: str, *, timeout: str = "2s") -> CheckSpec:
    """The planned check of one datastore named ``mongo``."""
    registry = Registry.from_data(
        {
            "version": 1,
            "platform": "test",
            "defaults": {"timeout": timeout},
            "datastores": {"mongo": {"kind": "mongo", "uri": uri}},
        }
    )
    (spec,) = build_plan(registry)
    return spec


def shown(result: CheckResult) -> str:
    """Everything of a result a user could see, as one text."""
    return json.dumps(asdict(result), default=str)


@pytest.fixture
async def resources() -> AsyncIterator[Resources]:
    async with Resources() as shared:
        yield shared


def mock_server(
    hello: Mapping[str, Any],
    *,
    server_status: Mapping[str, Any] | None = None,
    repl_status: Mapping[str, Any] | None = None,
    auth_fails: bool = False,
) -> MockupDB:
    """A mockupdb server answering the handshake, ``hello``, ``ping``, ``serverStatus`` and
    ``replSetGetStatus`` as a MongoDB 7.0 server with ``hello`` would."""
    server = MockupDB(auto_ismaster={**WIRE, **hello})
    server.autoresponds("hello", **WIRE, **hello)
    server.autoresponds("ping")
    server.autoresponds(
        "serverStatus",
        **(server_status or {"version": "7.0.5", "connections": {"current": 12, "available": 807}}),
    )
    if repl_status is not None:
        server.autoresponds("replSetGetStatus", **repl_status)
    if auth_fails:
        server.autoresponds("saslStart", ok=0, code=18, codeName="AuthenticationFailed",
                            errmsg="Authentication failed.")  # fmt: skip
    server.run()
    return server


@pytest.fixture
def mongo_mock() -> Iterator[list[MockupDB]]:
    """Collects the mock servers a test starts, and stops them."""
    servers: list[MockupDB] = []
    yield servers
    for server in servers:
        server.stop()


def uri_of(server: MockupDB, userinfo: str = "") -> str:
    # directConnection: talk to this member, as a probe pointed at one host must.
    return f"mongodb://{userinfo}127.0.0.1:{server.port}/?directConnection=true"


def member(name: str, state: str, optime: datetime, **extra: Any) -> dict[str, Any]:
    return {"name": name, "stateStr": state, "health": 1, "optimeDate": optime, **extra}


async def test_standalone_primary(mongo_mock: list[MockupDB], resources: Resources) -> None:
    server = mock_server({"isWritablePrimary": True})
    mongo_mock.append(server)

    result = await run_probe(spec_for(uri_of(server)), resources)

    assert result.status is Status.OK, result.summary
    assert result.summary == "MongoDB 7.0.5 standalone; 12 connections (807 available)"
    assert result.details["connections_current"] == 12
    assert result.details["connections_available"] == 807
    assert result.details["ping_ms"] > 0


async def test_replica_set_primary_with_a_lagging_and_a_dead_member(
    mongo_mock: list[MockupDB], resources: Resources
) -> None:
    members = [
        member("a:27017", "PRIMARY", NOW, self=True),
        member("b:27017", "SECONDARY", NOW - timedelta(seconds=42), pingMs=1),
        member("c:27017", "(not reachable/healthy)", NOW, health=0),
    ]
    server = mock_server(
        {"isWritablePrimary": True, "setName": "rs0", "hosts": ["a:27017", "b:27017"]},
        repl_status={"set": "rs0", "members": members},
    )
    mongo_mock.append(server)

    result = await run_probe(spec_for(uri_of(server)), resources)

    # lag 42s >= 30s: warn; a member down: warn
    assert result.status is Status.WARN
    assert result.summary == (
        "MongoDB 7.0.5 primary of rs0; 12 connections (807 available); lag 42s; "
        "member down: c:27017"
    )
    assert result.details["replication_lag_s"] == 42.0
    assert [m["state"] for m in result.details["members"]] == [
        "PRIMARY",
        "SECONDARY",
        "(not reachable/healthy)",
    ]


async def test_secondary_far_behind_is_crit(
    mongo_mock: list[MockupDB], resources: Resources
) -> None:
    members = [
        member("a:27017", "PRIMARY", NOW),
        member("b:27017", "SECONDARY", NOW - timedelta(seconds=400), self=True),
    ]
    server = mock_server(
        {"isWritablePrimary": False, "secondary": True, "setName": "rs0", "primary": "a:27017"},
        repl_status={"set": "rs0", "members": members},
    )
    mongo_mock.append(server)

    result = await run_probe(spec_for(uri_of(server)), resources)

    assert result.status is Status.CRIT
    assert result.summary == (
        "MongoDB 7.0.5 secondary of rs0; 12 connections (807 available); lag 400s"
    )
    assert result.details["role"] == "secondary"
    assert result.details["replication_lag_s"] == 400.0


async def test_no_server_is_refused_within_the_deadline(resources: Resources) -> None:
    spec = spec_for(f"mongodb://127.0.0.1:{refused_port()}/?directConnection=true", timeout="1s")
    loop = asyncio.get_running_loop()
    start = loop.time()

    result = await run_probe(spec, resources)

    assert result.status is Status.CRIT
    assert result.error is not None and result.error.type is ErrorType.REFUSED
    assert result.summary == "connection refused"
    assert loop.time() - start <= 1.1


async def test_a_timeout_override_still_reports_refused(resources: Resources) -> None:
    """``check --timeout 1s`` over a registry saying 10s: pymongo is told the 1 s deadline."""
    registry = Registry.from_data(
        {
            "version": 1,
            "platform": "test",
            "defaults": {"timeout": "10s"},
            "datastores": {
                "mongo": {
                    "kind": "mongo",
                    "uri": f"mongodb://127.0.0.1:{refused_port()}/?directConnection=true",
                }
            },
        }
    )
    (spec,) = build_plan(registry, timeout=1.0)

    result = await run_probe(spec, resources)

    assert result.error is not None
    assert result.error.type is ErrorType.REFUSED
    assert result.latency_ms is not None and result.latency_ms <= 1100


async def test_authentication_failure_hides_the_password(
    mongo_mock: list[MockupDB], resources: Resources
) -> None:
    server = mock_server({"isWritablePrimary": True}, auth_fails=True)
    mongo_mock.append(server)

    result = await run_probe(spec_for(uri_of(server, "monitor:Mongo-Secret-5@")), resources)

    assert result.status is Status.CRIT
    assert result.error is not None and result.error.type is ErrorType.AUTH
    assert result.summary == "authentication failed"
    assert "Mongo-Secret-5" not in shown(result)
    assert "monitor:***@" in result.target


def test_judge_without_monitor_role_still_reports_hello() -> None:
    datastore = MongoDatastore(kind="mongo", uri="mongodb://h")
    hello = {"secondary": True, "setName": "rs0"}  # and no primary known

    observation = judge_mongo(datastore, 0.5, hello, {}, None, ["serverStatus"])

    assert observation.status is Status.CRIT
    assert observation.summary == "MongoDB secondary of rs0; no primary"
    assert observation.details["unreadable"] == ["serverStatus"]


async def test_real_mongod(mongod_server: MongodServer, resources: Resources) -> None:
    result = await run_probe(spec_for(mongod_server.uri), resources)

    assert result.status is Status.OK, result.summary
    assert result.summary.startswith("MongoDB ")
    assert " standalone; " in result.summary
    assert result.details["connections_current"] >= 1

    mongod_server.stop()
    try:
        down = await run_probe(spec_for(mongod_server.uri, timeout="1s"), resources)
        assert down.status is Status.CRIT
        assert down.error is not None and down.error.type is ErrorType.REFUSED
    finally:
        mongod_server.start()
    assert (await run_probe(spec_for(mongod_server.uri), resources)).status is Status.OK


@pytest.mark.parametrize(
    ("exc", "error_type", "summary"),
    [
        (
            ServerSelectionTimeoutError(
                "db.example:27017: [Errno -2] Name or service not known (configured timeouts: "
                "connectTimeoutMS: 20000.0ms), Timeout: 2.49s, Topology Description: <...>"
            ),
            ErrorType.DNS,
            "DNS lookup failed",
        ),
        (
            ServerSelectionTimeoutError(
                'No replica set members match selector "Primary()", Timeout: 2.49s'
            ),
            ErrorType.TIMEOUT,
            "no suitable server answered in time",
        ),
        (NetworkTimeout("127.0.0.1:27017: timed out"), ErrorType.TIMEOUT, "timed out"),
        (OperationFailure("Authentication failed.", 18), ErrorType.AUTH, "authentication failed"),
    ],
)
def test_pymongo_errors_get_plain_reasons(
    exc: Exception, error_type: ErrorType, summary: str
) -> None:
    assert classify(exc) == ProbeError(error_type, summary)


async def test_untrusted_server_certificate_is_a_tls_error(resources: Resources) -> None:
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0, ssl=context)
    async with server:
        port = server.sockets[0].getsockname()[1]
        uri = f"mongodb://127.0.0.1:{port}/?tls=true&directConnection=true"
        result = await run_probe(spec_for(uri, timeout="1s"), resources)

    assert result.status is Status.CRIT
    assert result.error is not None and result.error.type is ErrorType.TLS
    # pymongo's long text (with its topology description) comes down to the reason.
    assert result.summary == "TLS error: unable to get local issuer certificate"
