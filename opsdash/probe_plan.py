"""What a probe module hands the planner: the types every probe kind shares.

A leaf below the probes: each probe module imports :class:`Planned` and :func:`bind` from here,
and :mod:`opsdash.plan` imports the probe modules (through its name -> planner table), so the
dependency runs one way only. Every planner has the one signature :data:`Planner`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from opsdash.records import dataclass
from opsdash.results import CheckResult, Observation
from opsdash.status import Status

if TYPE_CHECKING:
    from opsdash.registry.model import LatencyThresholds, Registry
    from opsdash.resources import Resources

ProbeCall = Callable[["Resources"], Awaitable[Observation]]
Derive = Callable[[CheckResult, Sequence[CheckResult]], CheckResult]
"""Re-judges a fresh result with the check's earlier results (oldest first): rates, growth."""
ComponentType = Literal["service", "worker", "datastore"]


@dataclass(frozen=True, slots=True)
class Planned:
    """What a probe module contributes for one check of a registry entry."""

    check: str | None
    """The part after the dot in the id; ``None`` for a datastore's main check (id = name)."""
    kind: str
    target: str
    probe: ProbeCall
    judge_latency: bool = True
    """Whether the registry's latency thresholds apply (not to a queue count, say)."""
    derive: Derive | None = None
    """For checks whose verdict needs history (DLQ growth, retry rates)."""
    timeout: float | None = None
    interval: float | None = None
    latency: LatencyThresholds | None = None
    """The check's own settings (custom checks), over its entry's and the defaults."""
    tags: tuple[str, ...] = ()
    """Tags of this check, added to its entry's."""
    failure_status: Status = Status.CRIT
    """The status of a run that got no answer to judge (timeout, refused...): crit, or
    unknown for a Nagios plugin (the convention: a plugin that cannot run cannot decide)."""
    heavy_start: bool = False
    """Whether starting the probe costs the event loop milliseconds (a datastore driver's
    connection set-up: DSN parsing, an SSL context, a handshake's callbacks): a round starts
    such checks after the light ones, a few per loop turn (:mod:`opsdash.engine`). A planner
    that sets it also imports its driver when it plans, so that no round pays for the import."""


Planner = Callable[[str, Any, "Registry"], Iterable[Planned]]
"""``plan(name, entry, registry)``: the checks one registry entry gets from one probe kind
(none when the entry does not use it). ``entry`` is the entry's model (a ``Service``, a
``Worker``, a datastore): typed ``Any`` here so that each planner can name its own."""


def bind(probe: Callable[..., Awaitable[Observation]], *args: object) -> ProbeCall:
    """``probe`` with its arguments after the shared resources bound: a ``Planned.probe``.

    The call hands out ``probe``'s own awaitable rather than awaiting it in a coroutine of its
    own: a probe's task resumes through each coroutine frame it awaits in, every wake-up."""

    def call(resources: Resources) -> Awaitable[Observation]:
        return probe(resources, *args)

    call.__qualname__ = f"{probe.__qualname__}(bound)"
    return call


def join_url(base: str, path: str) -> str:
    """``base`` + ``path`` with exactly one slash between them; a full URL ``path`` wins."""
    if "://" in path:
        return path
    return base.rstrip("/") + "/" + path.lstrip("/")
