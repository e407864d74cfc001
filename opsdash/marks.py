"""Marks the alerting state puts on a snapshot: silences in force and checks that flap.

A leaf module: results, their JSON object and the snapshot all refer to marks, and none of
them may import the alerting state (:mod:`opsdash.alertstate` builds the marks).
"""

from __future__ import annotations

from datetime import datetime

from opsdash.records import dataclass


@dataclass(frozen=True, slots=True)
class SilenceMark:
    """A silence in force, as the faces show it next to what it holds back."""

    matcher: str
    reason: str
    until: datetime


@dataclass(frozen=True, slots=True)
class CheckMark:
    """What ``opsdash alert``'s state says about one check: marks on the snapshot, never
    edits to its result."""

    silence: SilenceMark | None = None
    """The silence covering the check itself (by id, component, tag or glob)."""
    flapping: bool = False
    """Its status changed more than ``flapping.changes`` times in its last ``window`` runs."""
