"""What the DLQ and worker-metrics sources share: capped HTTP reads, dotted JSON paths,
numbers, and the one exception that means "an answer, but nothing to judge in it".

Error handling of the sources, in one picture::

    Unjudgeable          -> the probe returns an ``unknown`` Observation with a plain summary
                            (garbage body, missing path, not a number, no such series)
    ProbeFailure(CONFIG) -> ``unknown`` with an error (404, wrong key type, bad query)
    ProbeFailure(AUTH)   -> ``crit`` (credentials refused)
    ProbeFailure(PROTOCOL) / anything else -> ``crit`` via the harness's classification
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, TypeVar

from opsdash.httpclient import HttpClient
from opsdash.records import dataclass
from opsdash.registry.model import MongoDatastore, PostgresDatastore, RedisDatastore, Registry
from opsdash.results import ErrorType, ProbeFailure


class Unjudgeable(Exception):
    """The source answered, but with nothing the check can judge (the message says why)."""


class MissingPath(Unjudgeable):
    """A dotted path leads nowhere in the JSON answer."""


@dataclass(frozen=True, slots=True)
class Body:
    """An HTTP answer read within a size cap."""

    status_code: int
    content_type: str
    content: bytes

    @property
    def text(self) -> str:
        """The body as text (UTF-8; undecodable bytes replaced)."""
        return self.content.decode("utf-8", errors="replace")


async def fetch(
    client: HttpClient,
    url: str,
    *,
    max_body: int,
    headers: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    what: str = "answer",
) -> Body:
    """GET ``url`` through the one HTTP client and read at most ``max_body`` decoded bytes.

    Non-2xx answers raise :class:`ProbeFailure`: 401/403 as ``auth``, 404 as ``config`` (the
    registry names something that is not there), others as ``protocol``. A body over the cap
    is :class:`Unjudgeable`: reading on would let one endpoint eat the process's memory.
    """
    answer = await client.get(url, max_body=max_body, headers=headers, auth=auth)
    code = answer.status_code
    if not 200 <= code < 300:
        reason = f"{code} {answer.reason}".strip()
        if code in (401, 403):
            raise ProbeFailure(ErrorType.AUTH, f"{reason}: credentials refused")
        if code == 404:
            raise ProbeFailure(ErrorType.CONFIG, f"{reason}: no {what} at this URL")
        raise ProbeFailure(ErrorType.PROTOCOL, f"{reason} instead of the {what}")
    if answer.truncated:
        raise Unjudgeable(f"{what} larger than {max_body} bytes; not read")
    return Body(code, answer.header("content-type") or "", answer.body)


def parse_json(body: Body, what: str = "answer") -> Any:
    """The JSON document in ``body``; :class:`Unjudgeable` when it is not JSON."""
    try:
        return json.loads(body.content)
    except (ValueError, UnicodeDecodeError):
        snippet = body.text[:60].strip().replace("\n", " ")
        raise Unjudgeable(f"{what} is not JSON: {snippet!r}") from None


async def load_json(body: Body, what: str = "answer") -> Any:
    """:func:`parse_json`, off the event loop when the body is large."""
    from opsdash.offload import parse_off_loop

    return await parse_off_loop(len(body.content), parse_json, body, what)


def dotted(document: Any, path: str) -> Any:
    """The value at a dotted ``path`` (``queues.dlq.depth``, ``items.0.count``) in
    ``document``; list items are addressed by index. :class:`Unjudgeable` names the first
    part that is missing (:class:`MissingPath`)."""
    value = document
    walked: list[str] = []
    for part in path.split("."):
        walked.append(part)
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif (
            isinstance(value, list)
            and part.lstrip("-").isdigit()
            and -len(value) <= int(part) < len(value)
        ):
            value = value[int(part)]
        else:
            raise MissingPath(f"no {'.'.join(walked)!r} in the JSON answer")
    return value


def as_number(value: Any, what: str) -> float:
    """``value`` as a finite float: a JSON number or a numeric string (some exporters quote
    big counters). Booleans, NaN and infinities are :class:`Unjudgeable`."""
    if isinstance(value, bool):
        raise Unjudgeable(f"{what} is {json.dumps(value)}, not a number")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str | bytes):
        text = value.decode() if isinstance(value, bytes) else value
        try:
            number = float(text)
        except ValueError:
            raise Unjudgeable(f"{what} is {text[:40]!r}, not a number") from None
    else:
        raise Unjudgeable(f"{what} is {type(value).__name__}, not a number")
    if not math.isfinite(number):
        raise Unjudgeable(f"{what} is {number}, not a finite number")
    return number


def text(value: Any) -> str:
    """A Redis reply (bytes or str) as text."""
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


D = TypeVar("D", RedisDatastore, PostgresDatastore, MongoDatastore)


def registry_datastore(registry: Registry, name: str, kind: type[D]) -> D:
    """The registry datastore ``name``, which must be a ``kind`` (the registry's reference
    check reports a wrong one at load time; guarded here anyway)."""
    found = registry.datastores.get(name)
    if not isinstance(found, kind):
        raise ValueError(f"datastore {name!r} is not a {kind.__name__}")
    return found


def redis_error(exc: Exception, key: str, kind: str) -> ProbeFailure:
    """A Redis error answer about ``key``: the wrong type is the registry's mistake."""
    message = str(exc)
    if "WRONGTYPE" in message:
        return ProbeFailure(ErrorType.CONFIG, f"key {key!r} does not hold a {kind}")
    return ProbeFailure(ErrorType.PROTOCOL, f"Redis error on {key!r}: {message}")
