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
from dataclasses import replace
from typing import Any, Literal

from opsdash.alertstate.store import CheckState, Group, Silence
from opsdash.alertstate.view import incident_silence, silenced
from opsdash.formats import iso_at
from opsdash.incidents import AFFECTED_TYPES, Incident
from opsdash.plan import CheckSpec
from opsdash.records import dataclass
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
    types: Mapping[str, str] | None = None,
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
        # the same names split by component type, as the summary counts them
        "affected_by_type": {
            t: [n for n in group.affected if (types or {}).get(n) == t] for t in AFFECTED_TYPES
        },
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


@dataclass(frozen=True, slots=True)
class _Run:
    """What every step of :func:`decide` reads: this run's inputs, looked up once."""

    platform: str
    specs: Mapping[str, CheckSpec]
    every_spec: Sequence[CheckSpec]
    silences: Sequence[Silence]
    alerts: Alerts
    now: float
    by_cause: Mapping[str, Incident]
    summaries: Mapping[str, str]
    types: Mapping[str, str]
    """Each component's type (``service``, ``worker``, ``datastore``)."""

    def tags_of(self, members: Sequence[CheckState]) -> frozenset[str]:
        return frozenset(tag for m in members for tag in _tags(self.specs.get(m.id)))


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
    """Advance every check with this round's ``results`` and decide what to notify.

    The steps: advance each check (:func:`_advance_all`); gather the firing checks by group;
    then per group, close it with a ``resolved`` when no check fires any more
    (:func:`_resolution`), else open or update it from its incident (:func:`_opened`), find
    the silences covering its checks (:func:`_covering`) and notify for the loud ones
    (:func:`_notify`), or report what a silence held back."""
    run = _Run(
        platform=platform,
        specs=specs,
        every_spec=list(specs.values()),
        silences=silences,
        alerts=alerts,
        now=now,
        by_cause={each.cause: each for each in incidents},
        summaries={result.id: result.summary for result in results},
        types={spec.component: spec.component_type for spec in specs.values()},
    )
    new_states = _advance_all(results, incidents, states, policy, now)
    # Checks not run this time (deselected) keep their state and their group.
    members_of = _firing_by_group({**states, **new_states})

    saved: list[Group] = []
    closed: list[str] = []
    notifications: list[Notification] = []
    held: list[Held] = []
    for key in sorted(set(groups) | set(members_of)):
        members = members_of.get(key, [])
        group = groups.get(key)
        if not members:
            assert group is not None
            closed.append(key)
            resolved = _resolution(group, states, new_states, run)
            if resolved is not None:
                notifications.append(resolved)
            continue
        incident = run.by_cause.get(key)
        group = _opened(key, group, incident, members, now)
        covering = _covering(incident, members, run)
        loud = [m for m in members if covering.get(m.id) is None]
        if loud:
            group, notification = _notify(group, loud, members, covering, run)
            if notification is not None:
                notifications.append(notification)
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


def _advance_all(
    results: Sequence[CheckResult],
    incidents: Sequence[Incident],
    states: Mapping[str, CheckState],
    policy: Policy,
    now: float,
) -> dict[str, CheckState]:
    """Each run check's new state; one that starts firing joins the group of the incident
    that explains it (its cause), or its component's when none does."""
    incident_of: dict[str, Incident] = {}
    for each in incidents:
        for check_id in each.checks:
            incident_of.setdefault(check_id, each)
    new_states: dict[str, CheckState] = {}
    for result in results:
        state = advance(states.get(result.id), result, at=now, policy=policy)
        if state.firing and state.group_key is None:
            explained = incident_of.get(result.id)
            state = replace(state, group_key=explained.cause if explained else result.component)
        new_states[result.id] = state
    return new_states


def _firing_by_group(states: Mapping[str, CheckState]) -> dict[str, list[CheckState]]:
    """The firing checks of each group."""
    members_of: dict[str, list[CheckState]] = {}
    for state in states.values():
        if state.firing and state.group_key is not None:
            members_of.setdefault(state.group_key, []).append(state)
    return members_of


def _resolution(
    group: Group,
    states: Mapping[str, CheckState],
    new_states: Mapping[str, CheckState],
    run: _Run,
) -> Notification | None:
    """The ``resolved`` of a group none of whose checks fires any more: about the checks that
    fired in it before this run; none when the group never notified (it was held back)."""
    if group.notified_status is None:
        return None
    former = [
        new_states[check_id]
        for check_id, state in states.items()
        if state.firing and state.group_key == group.key and check_id in new_states
    ]
    payload = _payload(
        "resolved",
        group,
        Status.OK,
        former,
        run.summaries,
        platform=run.platform,
        now=run.now,
        types=run.types,
    )
    return Notification(
        "resolved", group, group.notified_status, tuple(former), run.tags_of(former), payload
    )


def _opened(
    key: str,
    group: Group | None,
    incident: Incident | None,
    members: Sequence[CheckState],
    now: float,
) -> Group:
    """The group as it stands now: opened from its incident (or its component's checks), or
    the open one with the incident's current summary, affected components and notes."""
    if group is None:
        return Group(
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
    if incident is None:
        return group
    return replace(
        group,
        summary=incident.summary,
        affected=incident.affected.names,
        notes=incident.notes,
        kind=incident.kind.value,
    )


def _covering(
    incident: Incident | None, members: Sequence[CheckState], run: _Run
) -> dict[str, Silence | None]:
    """The silence covering each member. A silence on the incident's cause holds back the
    whole incident, dependants included; otherwise each silenced check is held back alone."""
    specs = run.specs
    on_cause = incident_silence(incident, run.every_spec, run.silences) if incident else None
    return {
        m.id: on_cause or silenced(m.id, specs[m.id].component, specs[m.id].tags, run.silences)
        for m in members
        if m.id in specs
    }


def _notify(
    group: Group,
    loud: Sequence[CheckState],
    members: Sequence[CheckState],
    covering: Mapping[str, Silence | None],
    run: _Run,
) -> tuple[Group, Notification | None]:
    """``firing`` when the group's loud checks are worse than what it last notified (or it
    never did), a ``reminder`` once ``repeat_interval`` has passed since, else nothing; the
    group with what it notified."""
    status = worst(m.alert_status or m.status for m in loud)
    notified = group.notified_status
    kind: NotificationKind
    if notified is None or status.severity > notified.severity:
        kind = "firing"
        group = replace(group, notified_status=status, last_notified=run.now)
    elif (
        group.last_notified is not None
        and run.now - group.last_notified >= run.alerts.repeat_interval
    ):
        kind = "reminder"
        group = replace(group, last_notified=run.now)
    else:
        return group, None
    payload = _payload(
        kind,
        group,
        status,
        members,
        run.summaries,
        platform=run.platform,
        now=run.now,
        types=run.types,
        silenced_ids=frozenset(k for k, v in covering.items() if v),
    )
    return group, Notification(kind, group, status, tuple(members), run.tags_of(members), payload)


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
