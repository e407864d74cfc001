"""MongoDB check (pymongo's AsyncMongoClient): ping, ``hello``, ``serverStatus`` and, on a
replica set, ``replSetGetStatus``.

One check per ``kind: mongo`` datastore, id ``<name>``, through the datastore's shared client
(:func:`opsdash.probes.clients.mongo_client`). Every command runs inside ``pymongo.timeout()``
set a little under the check's deadline (:func:`~opsdash.probes.clients.mongo_budget`), so
that server selection and socket waits give up with pymongo's own reason ("Connection
refused", a DNS failure...) before the harness's deadline would hide it behind a bare timeout.

Commands go to the primary when there is one, else to any member (``primaryPreferred``): a set
without a primary must be reported as such, not as "no server". ``serverStatus`` and
``replSetGetStatus`` need the ``clusterMonitor`` role; without it the check still reports
what ``hello`` says and notes what it could not read.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from opsdash.deadline import time_left
from opsdash.figures import MongoFigures, MongoMember
from opsdash.probe_plan import Planned
from opsdash.probes.clients import load_mongo, mongo_budget, mongo_client
from opsdash.redact import redact_url
from opsdash.registry.model import MongoDatastore, Registry
from opsdash.resources import Resources
from opsdash.results import Observation
from opsdash.status import Status, worst

if TYPE_CHECKING:
    from pymongo.asynchronous.database import AsyncDatabase

KIND = "mongo"
_NOT_AUTHORISED = 13


def plan(name: str, datastore: MongoDatastore, registry: Registry) -> Iterator[Planned]:
    """The checks of one mongo datastore (just the one)."""
    load_mongo()
    timeout = datastore.timeout or registry.defaults.timeout

    async def call(resources: Resources) -> Observation:
        # The harness's deadline (a --timeout override included) bounds pymongo's own waits.
        return await probe_mongo(resources, name, datastore, timeout=time_left(timeout))

    yield Planned(None, KIND, redact_url(datastore.uri), call, heavy_start=True)


async def probe_mongo(
    resources: Resources, name: str, datastore: MongoDatastore, *, timeout: float
) -> Observation:
    """ping, hello, serverStatus, and replSetGetStatus on a replica set member."""
    import pymongo
    from pymongo.errors import OperationFailure

    client = await mongo_client(resources, name, datastore, timeout=timeout)
    admin: AsyncDatabase[dict[str, Any]] = client.get_database(
        "admin", read_preference=pymongo.ReadPreference.PRIMARY_PREFERRED
    )
    unreadable: list[str] = []
    with pymongo.timeout(mongo_budget(timeout)):
        start = time.perf_counter()
        await admin.command("ping")
        ping_ms = (time.perf_counter() - start) * 1000.0
        hello = await admin.command("hello")
        try:
            server_status: Mapping[str, Any] = await admin.command(
                {"serverStatus": 1, "repl": 0, "metrics": 0, "locks": 0, "wiredTiger": 0}
            )
        except OperationFailure as exc:
            if exc.code != _NOT_AUTHORISED:
                raise
            server_status, unreadable = {}, ["serverStatus"]
        repl_status: Mapping[str, Any] | None = None
        if hello.get("setName"):
            try:
                repl_status = await admin.command("replSetGetStatus")
            except OperationFailure as exc:
                if exc.code != _NOT_AUTHORISED:
                    raise
                unreadable.append("replSetGetStatus")
    return judge_mongo(datastore, ping_ms, hello, server_status, repl_status, unreadable)


def judge_mongo(
    datastore: MongoDatastore,
    ping_ms: float,
    hello: Mapping[str, Any],
    server_status: Mapping[str, Any],
    repl_status: Mapping[str, Any] | None,
    unreadable: Sequence[str] = (),
) -> Observation:
    """The verdict on the answers of the four commands (a pure function, for tests)."""
    set_name = hello.get("setName")
    if hello.get("isWritablePrimary") or hello.get("ismaster"):
        role = "primary" if set_name else "standalone"
    elif hello.get("secondary"):
        role = "secondary"
    elif hello.get("arbiterOnly"):
        role = "arbiter"
    else:
        role = "other"
    version = server_status.get("version")
    connections = server_status.get("connections") or {}
    current, available = connections.get("current"), connections.get("available")

    head = f"MongoDB {version}" if version else "MongoDB"
    head += f" {role}" + (f" of {set_name}" if set_name else "")
    statuses = [Status.OK]
    parts = [head]
    if current is not None:
        parts.append(f"{current} connections ({available} available)")
    lag: float | None = None
    members: tuple[MongoMember, ...] | None = None
    if set_name and role != "primary" and not hello.get("primary"):
        statuses.append(Status.CRIT)
        parts.append("no primary")
    if repl_status is not None:
        members = _members(repl_status)
        lags = [m.lag_s for m in members if m.lag_s is not None]
        if role == "secondary":
            lags = [m.lag_s for m in members if m.self and m.lag_s is not None]
        if lags:
            lag = max(lags)
            lag_status = datastore.replication_lag.judge(lag)
            statuses.append(lag_status)
            if lag_status is not Status.OK or role == "secondary":
                parts.append(f"lag {lag:.0f}s")
        down = [str(m.name) for m in members if not m.healthy]
        if down:
            statuses.append(Status.WARN)
            parts.append(f"member{'s' if len(down) > 1 else ''} down: {', '.join(down)}")
    figures = MongoFigures(
        version=None if version is None else str(version),
        role=role,
        set_name=None if set_name is None else str(set_name),
        ping_ms=round(ping_ms, 2),
        connections_current=current,
        connections_available=available,
        replication_lag_s=lag,
        members=members,
        unreadable=tuple(unreadable) or None,
    )
    return Observation(worst(statuses), "; ".join(parts), figures)


def _members(repl_status: Mapping[str, Any]) -> tuple[MongoMember, ...]:
    """Each member's name, state, health and lag behind the primary (heartbeat data)."""
    raw = repl_status.get("members") or []
    primary_optime = next(
        (m.get("optimeDate") for m in raw if m.get("stateStr") == "PRIMARY"), None
    )
    members: list[MongoMember] = []
    for member in raw:
        optime = member.get("optimeDate")
        lag: float | None = None
        if (
            member.get("stateStr") == "SECONDARY"
            and isinstance(optime, datetime)
            and isinstance(primary_optime, datetime)
        ):
            # Heartbeat data is seconds stale and may read negative briefly.
            lag = round(max((primary_optime - optime).total_seconds(), 0.0), 1)
        ping = member.get("pingMs")
        members.append(
            MongoMember(
                name=member.get("name"),
                state=member.get("stateStr"),
                healthy=member.get("health", 1) == 1,
                self=bool(member.get("self")),
                lag_s=lag,
                ping_ms=float(ping) if isinstance(ping, int | float) else None,
            )
        )
    return tuple(members)
