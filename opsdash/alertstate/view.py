"""What the alerting state says, for display: silences in force, flapping checks, marks.

Read-only: nothing here writes, creates or moves the state file. The dashboard and ``check``
read it through :class:`AlertView`; ``opsdash alert`` (:mod:`opsdash.alerting`) writes it.
"""

from __future__ import annotations

import fnmatch
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from opsdash.alertstate.store import Silence, default_state_path, open_readonly
from opsdash.incidents import Incident
from opsdash.marks import CheckMark, SilenceMark
from opsdash.plan import CheckSpec
from opsdash.records import dataclass
from opsdash.state import Snapshot


def read_silences(path: Path | None = None, *, now: float | None = None) -> list[Silence]:
    """The silences in force (soonest to end first); empty when there is no state file."""
    store = open_readonly(path or default_state_path())
    if store is None:
        return []
    with store:
        return store.silences(now=time.time() if now is None else now)


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


def incident_silence(
    incident: Incident, specs: Sequence[CheckSpec], silences: Sequence[Silence]
) -> Silence | None:
    """The silence on ``incident``'s cause, which holds back the whole incident (its
    dependants included): one covering the cause by name, tag, or one of the cause's own
    checks the incident explains."""
    if not silences:
        return None
    own = [spec for spec in specs if spec.component == incident.cause]
    tags = tuple(dict.fromkeys(tag for spec in own for tag in spec.tags))
    candidates = [incident.cause]
    candidates += [spec.id for spec in own if spec.id in incident.checks]
    for check_id in candidates:
        found = silenced(check_id, incident.cause, tags, silences)
        if found is not None:
            return found
    return None


def silence_mark(silence: Silence) -> SilenceMark:
    """How the faces show ``silence``."""
    return SilenceMark(silence.matcher, silence.reason, silence.expires_at)


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

    def check_marks(self, specs: Sequence[CheckSpec]) -> dict[str, CheckMark]:
        """The marks of every check of ``specs`` that has one (built once per read: the
        dashboard reuses the same objects until the next read)."""
        if not self.silences and not self.flapping:
            return {}
        marks: dict[str, CheckMark] = {}
        for spec in specs:
            silence = silenced(spec.id, spec.component, spec.tags, self.silences)
            flapping = spec.id in self.flapping
            if silence is not None or flapping:
                mark = None if silence is None else silence_mark(silence)
                marks[spec.id] = CheckMark(mark, flapping)
        return marks

    def incident_silences(
        self, incidents: Sequence[Incident], specs: Sequence[CheckSpec]
    ) -> dict[str, SilenceMark]:
        """The silenced incidents, by cause."""
        found: dict[str, SilenceMark] = {}
        for incident in incidents:
            silence = incident_silence(incident, specs, self.silences)
            if silence is not None:
                found[incident.cause] = silence_mark(silence)
        return found

    def apply(
        self,
        snapshot: Snapshot,
        specs: Sequence[CheckSpec],
        marks: Mapping[str, CheckMark] | None = None,
    ) -> Snapshot:
        """``snapshot`` with this view's marks (``marks``: :meth:`check_marks`, when the caller
        keeps them)."""
        if not self.silences and not self.flapping:
            return snapshot
        return snapshot.with_marks(
            self.check_marks(specs) if marks is None else marks,
            self.incident_silences(snapshot.incidents, specs),
        )


STATE_PROBLEMS = (sqlite3.Error, OSError, ValueError, OverflowError)
"""What reading a damaged, foreign or unreadable state file can raise."""


def mark_snapshot(
    snapshot: Snapshot,
    specs: Sequence[CheckSpec],
    path: Path | None = None,
    *,
    warn: Callable[[str], None] | None = None,
) -> Snapshot:
    """``snapshot`` marked with what the alerting state at ``path`` says (see
    :class:`AlertView`): ``check`` shows planned work and unstable checks this way.

    The state is an extra: when it cannot be read the snapshot comes back unmarked and
    ``warn`` is told why (``check`` must report on the platform whatever the state file is)."""
    try:
        return AlertView.read(path).apply(snapshot, specs)
    except STATE_PROBLEMS as exc:
        if warn is not None:
            warn(f"alerting state not read ({type(exc).__name__}: {exc}); no silence marks")
        return snapshot
