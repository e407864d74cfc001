"""What the alerting state says, for display: silences in force, flapping checks, marks.

Read-only: nothing here writes, creates or moves the state file. The dashboard and ``check``
read it through :class:`AlertView`; ``opsdash alert`` (:mod:`opsdash.alerting`) writes it.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from opsdash.alertstate.store import Silence, default_state_path, open_readonly
from opsdash.results import CheckResult


@dataclass(frozen=True, slots=True)
class AlertMark:
    """What the alerting state says about one check, for display next to its status."""

    firing: bool
    """``opsdash alert`` has fired for it (past ``failure_threshold``) and it has not resolved."""
    flapping: bool
    """Its status changed more than ``flapping.changes`` times in its last ``window`` runs."""
    since: float
    """When its current status began, as the alert runs saw it (seconds since the epoch)."""


def read_silences(path: Path | None = None, *, now: float | None = None) -> list[Silence]:
    """The silences in force (soonest to end first); empty when there is no state file."""
    store = open_readonly(path or default_state_path())
    if store is None:
        return []
    with store:
        return store.silences(now=time.time() if now is None else now)


def read_marks(path: Path | None = None) -> dict[str, AlertMark]:
    """Firing and flapping markers by check id; empty when there is no state file."""
    store = open_readonly(path or default_state_path())
    if store is None:
        return {}
    with store:
        return {
            check_id: AlertMark(state.firing, state.flapping, state.since)
            for check_id, state in store.check_states().items()
        }


def silenced(
    check_id: str, component: str, tags: Sequence[str], silences: Sequence[Silence]
) -> Silence | None:
    """The silence covering a check (by id, component, tag, or a glob), if any."""
    for silence in silences:
        matcher = silence.matcher
        if (
            matcher in tags
            or fnmatch.fnmatchcase(check_id, matcher)
            or fnmatch.fnmatchcase(component, matcher)
        ):
            return silence
    return None


@dataclass(frozen=True, slots=True)
class AlertView:
    """What the alerting state says, read once: silences in force and the checks that flap."""

    silences: tuple[Silence, ...] = ()
    flapping: frozenset[str] = frozenset()

    @classmethod
    def read(cls, path: Path | None = None, *, now: float | None = None) -> AlertView:
        """The view of the state file (empty when there is none); one read-only connection."""
        store = open_readonly(path or default_state_path())
        if store is None:
            return cls()
        with store:
            silences = store.silences(now=time.time() if now is None else now)
            return cls(tuple(silences), store.flapping())

    def mark(
        self, results: Sequence[CheckResult], tags: Mapping[str, Sequence[str]]
    ) -> list[CheckResult]:
        """``results`` with ``details.silenced`` (reason, until) and ``details.flapping`` where
        they apply. ``tags`` maps check ids to their tags (silences may name a tag)."""
        if not self.silences and not self.flapping:
            return list(results)
        marked: list[CheckResult] = []
        for result in results:
            extra: dict[str, object] = {}
            silence = silenced(result.id, result.component, tags.get(result.id, ()), self.silences)
            if silence is not None:
                extra["silenced"] = {
                    "reason": silence.reason,
                    "until": silence.expires_at.isoformat(timespec="seconds"),
                }
            if result.id in self.flapping:
                extra["flapping"] = True
            marked.append(result.with_details(**extra) if extra else result)
        return marked


def mark_results(
    results: Sequence[CheckResult],
    tags: Mapping[str, Sequence[str]],
    path: Path | None = None,
) -> list[CheckResult]:
    """``results`` marked with what the alerting state at ``path`` says (see
    :meth:`AlertView.mark`): ``check`` shows planned work and unstable checks this way."""
    return AlertView.read(path).mark(results, tags)
