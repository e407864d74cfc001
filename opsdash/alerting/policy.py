"""When a check fires, resolves or flaps, and which notifications a run produces.

Pure functions over the stored state and one round's results; :mod:`opsdash.alerting.run`
does the I/O around them.

Per check (thresholds from ``defaults``):

- it *fires* after ``failure_threshold`` consecutive failing runs (any status but ok), and
  *resolves* after ``success_threshold`` consecutive ok runs;
- it *flaps* when its status changed more than ``flapping.changes`` times over its last
  ``flapping.window`` runs; it stops flapping at half that (hysteresis, so that the flapping
  marker does not itself flap). A flapping check fires once (even if it never failed twice in
  a row) and does not resolve while it flaps: one page, not one per flap.

Per incident: firing checks are grouped by the incident that explains them (its cause), so
"redis unreachable; 6 services not ready, 1 worker failing" is one notification. A check stays
in the group it fired in until it resolves. A group notifies when it opens, when it gets worse
(warn -> crit), as a reminder every ``repeat_interval`` while open, and when its last check
resolves. A silence on the incident's cause holds back the whole group (its dependants
included); a silence on one check holds back only that check (it neither opens nor escalates
the group, and the payload marks it ``silenced``).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from opsdash.alertstate.store import CheckState, Group, Silence
from opsdash.alertstate.view import incident_silence, silenced
from opsdash.formats import iso_at
from opsdash.incidents import Incident
from opsdash.plan import CheckSpec
from opsdash.registry.model import Alerts, Defaults
from opsdash.results import CheckResult
from opsdash.status import Status, worst

NotificationKind = Literal["firing", "resolved", "reminder"]
SCHEMA = "opsdash.alert/v1"

_LETTER = {Status.OK: "o", Status.WARN: "w", Status.CRIT: "c", Status.UNKNOWN: "u"}


@dataclass(frozen=True, slots=True)
class Policy:
    """The thresholds of the state machine."""

    failure_threshold: int = 2
    success_threshold: int = 1
    flap_changes: int = 4
    flap_window: int = 10

    @classmethod
    def of(cls, defaults: Defaults) -> Policy:
        """The policy the registry's ``defaults`` describe."""
        return cls(
            defaults.failure_threshold,
            defaults.success_threshold,
            defaults.flapping.changes,
            defaults.flapping.window,
        )


def changes_in(recent: str) -> int:
    """How many times the status changed along ``recent`` (one letter per run)."""
    return sum(1 for before, after in itertools.pairwise(recent) if before != after)


def advance(
    previous: CheckState | None, result: CheckResult, *, at: float, policy: Policy
) -> CheckState:
    """The check's state after one more run with ``result``."""
    status = result.status
    if previous is None:
        previous = CheckState(result.id, status, at, 0, 0, "", False, False, None, None)
    failing = status.failing
    fail_streak = previous.fail_streak + 1 if failing else 0
    ok_streak = 0 if failing else previous.ok_streak + 1
    # window runs hold up to ``window`` changes when the run before the window is kept too.
    recent = (previous.recent + _LETTER[status])[-(policy.flap_window + 1) :]
    changes = changes_in(recent)
    if previous.flapping:
        flapping = changes > policy.flap_changes // 2
    else:
        flapping = changes > policy.flap_changes
    firing = previous.firing
    if not firing and (fail_streak >= policy.failure_threshold or flapping):
        firing = True
    elif firing and not flapping and ok_streak >= policy.success_threshold:
        firing = False
    if failing:
        alert_status: Status | None = status
    else:
        alert_status = previous.alert_status if firing else None
    return CheckState(
        id=result.id,
        status=status,
        since=previous.since if status is previous.status and previous.recent else at,
        fail_streak=fail_streak,
        ok_streak=ok_streak,
        recent=recent,
        firing=firing,
        flapping=flapping,
        alert_status=alert_status,
        group_key=(previous.group_key or None) if firing and previous.firing else None,
    )


# --- silences -----------------------------------------------------------------------------


# --- notifications ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notification:
    """One message about one alert group."""

    kind: NotificationKind
    group: Group
    status: Status
    """The group's status: what routes match on (for ``resolved``, the status it had)."""
    members: tuple[CheckState, ...]
    tags: frozenset[str]
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Held:
    """A notification a silence held back (reported on stderr)."""

    group: Group
    silences: tuple[Silence, ...]


@dataclass(frozen=True, slots=True)
class Decision:
    """What one run decided: new states, groups to save and close, messages to send."""

    states: tuple[CheckState, ...]
    groups: tuple[Group, ...]
    closed: tuple[str, ...]
    notifications: tuple[Notification, ...]
    held: tuple[Held, ...]


def _payload(
    kind: NotificationKind,
    group: Group,
    status: Status,
    members: Sequence[CheckState],
    summaries: Mapping[str, str],
    *,
    platform: str,
    now: float,
    silenced_ids: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The JSON body of a notification (schema ``opsdash.alert/v1``): the incident and its
    checks, as webhooks receive it and as the other targets' text is made from."""
    return {
        "schema": SCHEMA,
        "kind": kind,
        "platform": platform,
        "key": group.key,
        "status": status.value,
        "cause": group.cause,
        "incident_kind": group.kind,
        "summary": group.summary,
        "affected": list(group.affected),
        "notes": list(group.notes),
        "flapping": any(member.flapping for member in members),
        "since": iso_at(group.opened_at),
        "at": iso_at(now),
        "checks": [
            {
                "id": member.id,
                "status": member.status.value,
                "summary": summaries.get(member.id, ""),
                "flapping": member.flapping,
                "silenced": member.id in silenced_ids,
            }
            for member in members
        ],
    }


def decide(
    *,
    platform: str,
    results: Sequence[CheckResult],
    incidents: Sequence[Incident],
    specs: Mapping[str, CheckSpec],
    states: Mapping[str, CheckState],
    groups: Mapping[str, Group],
    silences: Sequence[Silence],
    policy: Policy,
    alerts: Alerts,
    now: float,
) -> Decision:
    """Advance every check with this round's ``results`` and decide what to notify."""
    incident_of: dict[str, Incident] = {}
    for each in incidents:
        for check_id in each.checks:
            incident_of.setdefault(check_id, each)
    by_cause = {each.cause: each for each in incidents}
    every_spec = list(specs.values())
    summaries = {result.id: result.summary for result in results}

    new_states: dict[str, CheckState] = {}
    for result in results:
        state = advance(states.get(result.id), result, at=now, policy=policy)
        if state.firing and state.group_key is None:
            explained = incident_of.get(result.id)
            state = replace(state, group_key=explained.cause if explained else result.component)
        new_states[result.id] = state
    # Checks not run this time (deselected) keep their state and their group.
    every_state = {**states, **new_states}

    members_of: dict[str, list[CheckState]] = {}
    for state in every_state.values():
        if state.firing and state.group_key is not None:
            members_of.setdefault(state.group_key, []).append(state)

    saved: list[Group] = []
    closed: list[str] = []
    notifications: list[Notification] = []
    held: list[Held] = []
    for key in sorted(set(groups) | set(members_of)):
        members = members_of.get(key, [])
        group = groups.get(key)
        tags = frozenset(tag for m in members for tag in _tags(specs.get(m.id)))
        if not members:
            assert group is not None
            closed.append(key)
            former = [
                new_states[check_id]
                for check_id, state in states.items()
                if state.firing and state.group_key == key and check_id in new_states
            ]
            if group.notified_status is not None:
                former_tags = frozenset(t for m in former for t in _tags(specs.get(m.id)))
                payload = _payload(
                    "resolved", group, Status.OK, former, summaries, platform=platform, now=now
                )
                notifications.append(
                    Notification(
                        "resolved",
                        group,
                        group.notified_status,
                        tuple(former),
                        former_tags,
                        payload,
                    )
                )
            continue
        incident = by_cause.get(key)
        if group is None:
            group = Group(
                key=key,
                cause=key,
                kind=incident.kind.value if incident else "component",
                summary=incident.summary if incident else _flapping_summary(key, members),
                affected=incident.affected.names if incident else (),
                notes=incident.notes if incident else (),
                opened_at=now,
                notified_status=None,
                last_notified=None,
            )
        elif incident is not None:
            group = replace(
                group,
                summary=incident.summary,
                affected=incident.affected.names,
                notes=incident.notes,
                kind=incident.kind.value,
            )
        # A silence on the incident's cause holds back the whole incident, dependants
        # included; otherwise each silenced check is held back alone.
        on_cause = incident_silence(incident, every_spec, silences) if incident else None
        covering = {
            m.id: on_cause or silenced(m.id, specs[m.id].component, specs[m.id].tags, silences)
            for m in members
            if m.id in specs
        }
        loud = [m for m in members if covering.get(m.id) is None]
        kind: NotificationKind | None = None
        if loud:
            status = worst(m.alert_status or m.status for m in loud)
            notified = group.notified_status
            if notified is None or status.severity > notified.severity:
                kind = "firing"
                group = replace(group, notified_status=status, last_notified=now)
            elif (
                group.last_notified is not None
                and now - group.last_notified >= alerts.repeat_interval
            ):
                kind = "reminder"
                group = replace(group, last_notified=now)
            if kind is not None:
                payload = _payload(
                    kind,
                    group,
                    status,
                    members,
                    summaries,
                    platform=platform,
                    now=now,
                    silenced_ids=frozenset(k for k, v in covering.items() if v),
                )
                notifications.append(
                    Notification(kind, group, status, tuple(members), tags, payload)
                )
        elif group.notified_status is None or _would_escalate(group, members):
            found = {s.id: s for s in covering.values() if s is not None}
            held.append(Held(group, tuple(found.values())))
        saved.append(group)
    return Decision(
        states=tuple(new_states.values()),
        groups=tuple(saved),
        closed=tuple(closed),
        notifications=tuple(notifications),
        held=tuple(held),
    )


def _would_escalate(group: Group, members: Sequence[CheckState]) -> bool:
    status = worst(m.alert_status or m.status for m in members)
    return group.notified_status is not None and status.severity > group.notified_status.severity


def _flapping_summary(key: str, members: Sequence[CheckState]) -> str:
    flapping = [m.id for m in members if m.flapping]
    if flapping:
        return f"{key}: flapping ({', '.join(flapping)})"
    return f"{key}: " + ", ".join(f"{m.id} {m.status}" for m in members)


def _tags(spec: CheckSpec | None) -> tuple[str, ...]:
    return () if spec is None else spec.tags


def route(notification: Notification, alerts: Alerts) -> list[str]:
    """The targets a notification goes to: every route matching its status and (when the
    route names tags) one of its checks' tags; with no routes, every target."""
    if not alerts.routes:
        return sorted(alerts.targets)
    chosen: list[str] = []
    for rule in alerts.routes:
        if notification.status.value not in rule.status:
            continue
        if rule.tags and not notification.tags.intersection(rule.tags):
            continue
        chosen += [t for t in rule.targets if t not in chosen]
    return chosen
