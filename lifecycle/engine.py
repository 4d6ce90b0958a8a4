"""What a policy wants for some people, compared with what the application shows, as actions.

The engine is state-based: for each person it works out the account and the birthright
groups the policy wants now, and asks only for the difference, leaving out whatever an
action still in flight will do. Evaluating the same people twice therefore asks for nothing
the second time, which is what makes the consumer safe to run again after a crash.

The actions go through the same path as an admin's: approval policies, the mass-change
threshold (many deprovisions become one batch, held whole past the limit), leavers first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Max, Q, Subquery
from django.utils import timezone

from console.accounts.models import IdentityEvent, Person
from console.core.db import ids_q
from integrations.models import Integration, OwnerSource, TargetGroup, TargetMembership, TargetUser
from lifecycle.models import (
    BirthrightMapping,
    Grant,
    LeavingScope,
    LifecyclePolicy,
    MappingState,
    PlannedChange,
    PolicyMode,
)
from lifecycle.scope import mapping_people, mapping_text, people_in_scope
from provisioning.batches import batch_request, mass_change_reason
from provisioning.models import IN_FLIGHT_STATES, Action, ActionState, ActionType
from provisioning.services import Cause, action_request, actions_sent_together
from provisioning.transformers import UserMapping, user_mapping

SYNC = ActionType.SYNC_IDENTITIES.value
MEMBERS = ActionType.MANAGE_RELATIONSHIPS.value
DEPROVISION = ActionType.DEPROVISION_IDENTITY.value

EVENT_WORDS = {
    IdentityEvent.Kind.CREATED: "joined",
    IdentityEvent.Kind.UPDATED: "changed",
    IdentityEvent.Kind.DEACTIVATED: "was deactivated",
    IdentityEvent.Kind.REACTIVATED: "was reactivated",
    IdentityEvent.Kind.DELETED: "was deleted",
    IdentityEvent.Kind.JOINED_TEAM: "joined a team",
    IdentityEvent.Kind.LEFT_TEAM: "left a team",
}


def event_text(event: IdentityEvent | None) -> str:
    if event is None:
        return "(the policy was applied to everyone it concerns)"
    words = EVENT_WORDS.get(event.kind, event.kind)  # type: ignore[call-overload]
    if event.team_name and event.kind in (IdentityEvent.Kind.JOINED_TEAM, IdentityEvent.Kind.LEFT_TEAM):
        words = f"{words.removesuffix('a team')}team {event.team_name}"
    via = " over SCIM" if event.source == "scim" else ""
    return f"{words}{via} (identity event {event.pk})"


@dataclass
class Wanted:
    """The changes the policy wants in one integration, by kind, each with its cause."""

    syncs: dict[int, Cause] = field(default_factory=dict)  # person -> why
    deprovisions: dict[int, Cause] = field(default_factory=dict)  # account -> why
    # group -> account remote id -> (person, why)
    adds: dict[int, dict[str, tuple[int, Cause]]] = field(default_factory=lambda: defaultdict(dict))
    removes: dict[int, dict[str, tuple[int, Cause]]] = field(default_factory=lambda: defaultdict(dict))
    grants: dict[tuple[int, int], tuple[int, ...]] = field(default_factory=dict)  # (person, group) -> mappings
    ungrants: set[tuple[int, int]] = field(default_factory=set)
    # The people read to work this out, by id: asking for their syncs does not read them again.
    people: dict[int, Person] = field(default_factory=dict, repr=False)

    def __bool__(self) -> bool:
        return bool(self.syncs or self.deprovisions or self.adds or self.removes or self.grants or self.ungrants)


@dataclass
class Picture:
    """What the console knows of these people in one integration, read in a few queries."""

    people: dict[int, Person]
    in_scope: set[int]
    account: dict[int, TargetUser]  # person -> their one account (people with several are left alone)
    member_of: set[tuple[str, int]]  # (account remote id, group pk)
    grants: dict[tuple[int, int], Grant]
    desired: dict[int, dict[int, list[int]]]  # person -> group pk -> mappings granting it
    busy: set[tuple[Any, ...]]  # ("sync", person) / ("deprovision", account pk) / ("add"|"remove", group, remote id)
    groups: dict[int, TargetGroup]
    mappings: dict[int, BirthrightMapping]  # the mappings in effect, by id
    last_synced: dict[int, dict[str, Any]]  # person -> the user their last successful sync sent


# --- the rules, shared with what reads them (reconciliation's drift) ------------------------------


def mappings_in_effect(integration: Integration) -> dict[int, BirthrightMapping]:
    """The integration's active mappings, by id, with their team and groups (three queries)."""
    return {
        mapping.pk: mapping
        for mapping in BirthrightMapping.objects.filter(integration=integration, state=MappingState.ACTIVE)
        .select_related("team")
        .prefetch_related("groups")
    }


def mapping_groups(mapping: BirthrightMapping) -> list[TargetGroup]:
    """The groups a mapping grants that the application still has (a removed group grants nothing)."""
    return [g for g in mapping.groups.all() if g.removed_at is None]


def in_flight_work(integration: Integration, among: Q | None = None) -> set[tuple[Any, ...]]:
    """What actions still in flight will do, which the policy must not ask for again:
    ``("sync", person)``, ``("deprovision", account pk)``, ``("add"|"remove", group pk, remote id)``.
    ``among`` narrows the actions read (all of the integration's in flight, without it)."""
    busy: set[tuple[Any, ...]] = set()
    in_flight = Action.objects.filter(integration=integration, state__in=IN_FLIGHT_STATES)
    if among is not None:
        in_flight = in_flight.filter(among)
    for action in in_flight.only("action_type", "person_id", "target_user_id", "target_group_id", "parameters"):
        if action.action_type == SYNC and action.person_id:
            busy.add(("sync", action.person_id))
        elif action.action_type in (DEPROVISION, ActionType.DELETE_IDENTITY) and action.target_user_id:
            busy.add(("deprovision", action.target_user_id))
        elif action.action_type == MEMBERS and action.target_group_id:
            for op in ("add", "remove"):
                for remote_id in action.parameters.get(op) or []:
                    busy.add((op, action.target_group_id, str(remote_id)))
    return busy


def is_leaver(is_active: bool, removed_at: Any) -> bool:
    """Deactivated or deleted (over SCIM or locally): their active accounts are deprovisioned, whatever the scope."""
    return not is_active or removed_at is not None


def deprovisions_on_leaving_scope(policy: LifecyclePolicy, owner_source: str) -> bool:
    """Whether leaving the policy's scope deprovisions this account: only where the policy says so,
    and never an account an admin linked by hand (otherwise only the birthright groups go)."""
    return policy.on_leaving_scope == LeavingScope.DEPROVISION and owner_source != OwnerSource.MANUAL


def _picture(policy: LifecyclePolicy, person_ids: set[int]) -> Picture:
    integration = policy.integration
    # The ids as ranges where they run on (a burst's people do): see ids_q.
    people = {person.pk: person for person in Person.objects.filter(ids_q("pk", person_ids))}
    in_scope = set(people_in_scope(policy).filter(ids_q("pk", person_ids)).values_list("pk", flat=True))
    owned: dict[int, list[TargetUser]] = defaultdict(list)
    for user in TargetUser.objects.filter(
        ids_q("owner_id", person_ids), integration=integration, removed_at__isnull=True
    ):
        owned[user.owner_id].append(user)  # type: ignore[index]
    account = {pk: users[0] for pk, users in owned.items() if len(users) == 1}
    remote_ids = [user.remote_id for user in account.values()]
    member_of = set(
        TargetMembership.objects.filter(integration=integration, member_remote_id__in=remote_ids).values_list(
            "member_remote_id", "group_id"
        )
    )
    grants = {
        (g.person_id, g.group_id): g
        for g in Grant.objects.filter(ids_q("person_id", person_ids), group__integration=integration)
    }
    desired: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    groups: dict[int, TargetGroup] = {}
    mappings = mappings_in_effect(integration)
    for mapping in mappings.values():
        mapped = mapping_groups(mapping)
        if not mapped:
            continue
        for group in mapped:
            groups[group.pk] = group
        for pk in mapping_people(mapping).filter(pk__in=in_scope).values_list("pk", flat=True):
            for group in mapped:
                desired[pk][group.pk].append(mapping.pk)
    groups.update(TargetGroup.objects.in_bulk({g.group_id for g in grants.values()} - set(groups)))
    account_pks = [user.pk for user in account.values()]
    busy = in_flight_work(
        integration, ids_q("person_id", person_ids) | ids_q("target_user_id", account_pks) | Q(action_type=MEMBERS)
    )
    synced = Action.objects.filter(
        ids_q("person_id", person_ids), integration=integration, action_type=SYNC, state=ActionState.SUCCEEDED
    )
    latest = synced.values("person_id").annotate(last=Max("pk")).values("last")  # each person's last sync only
    last_synced = {
        person_pk: (parameters or {}).get("user") or {}
        for person_pk, parameters in Action.objects.filter(pk__in=Subquery(latest)).values_list(
            "person_id", "parameters"
        )
    }
    return Picture(people, in_scope, account, member_of, grants, desired, busy, groups, mappings, last_synced)


def _attributes_changed(mapping: UserMapping, person: Person, last_sent: dict[str, Any] | None) -> bool:
    """Whether the account would get something new: the transformers' user for the person now
    differs from what their last sync sent (or nothing was ever sent)."""
    from provisioning.transformers import TransformerError

    if not last_sent:
        return True
    try:
        return mapping.payload(person) != last_sent
    except TransformerError:
        return True  # the sync will refuse, and say why, on the action


def wanted_for(
    policy: LifecyclePolicy,
    person_ids: Iterable[int],
    events: dict[int, IdentityEvent] | None = None,
    *,
    accounts: bool = True,
) -> Wanted:
    """The changes the policy wants for these people now. ``events``: the latest event of each,
    which explains the change (none: the policy is applied to everyone in scope). Without
    ``accounts``, only the groups (after a joiner's sync, which made the account)."""
    events = events or {}
    ids = set(person_ids)
    wanted = Wanted()
    if not ids:
        return wanted
    if not accounts and not _groups_may_change(policy, ids):
        return wanted  # only groups are asked for, and no mapping or grant could change any
    picture = _picture(policy, ids)
    wanted.people = picture.people
    name = policy.integration.name
    read: list[UserMapping] = []

    def mapping() -> UserMapping:
        """The integration's transformers, read once a pass (for movers' attributes), with what
        they read of these people."""
        if not read:
            read.append(user_mapping(policy.integration))
            read[0].read_ahead(picture.people.values())
        return read[0]

    for pk in sorted(ids):
        person = picture.people.get(pk)
        if person is None:
            continue
        event = events.get(pk)
        why = f"{person.username} {event_text(event)}"

        def cause(text: str, mappings: Iterable[int] = (), event: IdentityEvent | None = event) -> Cause:
            return Cause(
                text=text, event_id=event.pk if event else None, policy_id=policy.pk, mapping_ids=tuple(mappings)
            )

        account = picture.account.get(pk)
        leaver = is_leaver(person.is_active, person.removed_at)
        if not accounts and (leaver or pk not in picture.in_scope):
            # Only the groups of people in scope: a leaver (or someone who left scope) since the
            # sync this follows is the consumer's to handle, with the event that made them one.
            continue
        if leaver:
            if account is not None and account.active and ("deprovision", account.pk) not in picture.busy:
                wanted.deprovisions[account.pk] = cause(f"Leaver: {why}; the lifecycle policy of {name} deprovisions")
            wanted.ungrants |= {key for key in picture.grants if key[0] == pk}
            continue
        if pk not in picture.in_scope:
            # Only a change can take someone out of scope; applying the policy to everyone
            # leaves the people it never covered alone.
            if event is None or account is None or not account.active:
                continue
            if deprovisions_on_leaving_scope(policy, account.owner_source) and (
                ("deprovision", account.pk) not in picture.busy
            ):
                wanted.deprovisions[account.pk] = cause(
                    f"Out of scope: {why}, and is no longer covered by the lifecycle policy of {name}"
                )
                wanted.ungrants |= {key for key in picture.grants if key[0] == pk}
            else:
                _ungrant_all(wanted, picture, pk, account, cause(f"Out of scope: {why}; birthright groups removed"))
            continue
        # In scope: an account, active and up to date, and the birthright groups.
        if accounts and ("sync", pk) not in picture.busy:
            if account is None:
                wanted.syncs[pk] = cause(f"Joiner: {why}; the lifecycle policy of {name} creates the account")
            elif not account.active:
                wanted.syncs[pk] = cause(f"Re-hire: {why}; the lifecycle policy of {name} reactivates the account")
            elif (
                event is not None
                and event.kind == IdentityEvent.Kind.UPDATED
                and _attributes_changed(mapping(), person, picture.last_synced.get(pk))
            ):
                wanted.syncs[pk] = cause(f"Mover: {why}; the account follows the person's attributes")
        if account is None:
            continue  # groups follow once the account exists (the sync's success brings the person back)
        desired = picture.desired.get(pk, {})
        for group_pk, mapping_ids in desired.items():
            key = (pk, group_pk)
            member = (account.remote_id, group_pk) in picture.member_of
            if member:
                if key in picture.grants and sorted(picture.grants[key].mapping_ids) != sorted(mapping_ids):
                    wanted.grants[key] = tuple(mapping_ids)  # still granted, now by these mappings
                continue
            if ("add", group_pk, account.remote_id) in picture.busy:
                continue
            granted_by = "; ".join(mapping_text(picture.mappings[m]) for m in mapping_ids)
            wanted.adds[group_pk][account.remote_id] = (
                pk,
                cause(f"Birthright: {granted_by} → {picture.groups[group_pk].display_name} ({why})", mapping_ids),
            )
            wanted.grants[key] = tuple(mapping_ids)
        for key, grant in picture.grants.items():
            if key[0] != pk or key[1] in desired:
                continue
            group_pk = key[1]
            wanted.ungrants.add(key)
            if (account.remote_id, group_pk) in picture.member_of and (
                ("remove", group_pk, account.remote_id) not in picture.busy
            ):
                wanted.removes[group_pk][account.remote_id] = (
                    pk,
                    cause(
                        f"Mover: {why}; no birthright mapping grants {picture.groups[group_pk].display_name} any more",
                        grant.mapping_ids,
                    ),
                )
    return wanted


def _groups_may_change(policy: LifecyclePolicy, person_ids: set[int]) -> bool:
    return groups_may_change(policy.integration_id, person_ids)


def groups_may_change(integration_id: int, person_ids: Iterable[int]) -> bool:
    """Whether a mapping in effect or a grant of these people could change a group membership: a
    joiner's follow-up (groups only) in an integration with neither has nothing to do, and
    costs two small queries instead of a whole picture (or a message to a worker)."""
    mapped = BirthrightMapping.objects.filter(integration_id=integration_id, state=MappingState.ACTIVE)
    granted = Grant.objects.filter(ids_q("person_id", person_ids), group__integration_id=integration_id)
    return mapped.exists() or granted.exists()


def _ungrant_all(wanted: Wanted, picture: Picture, pk: int, account: TargetUser, why: Cause) -> None:
    for key in [key for key in picture.grants if key[0] == pk]:
        wanted.ungrants.add(key)
        group_pk = key[1]
        if (account.remote_id, group_pk) in picture.member_of and (
            ("remove", group_pk, account.remote_id) not in picture.busy
        ):
            wanted.removes[group_pk][account.remote_id] = (pk, why)


# --- carrying it out ---------------------------------------------------------------------------


def _first_cause(items: dict[str, tuple[int, Cause]]) -> Cause:
    causes = [cause for _, cause in items.values()]
    first = causes[0]
    if len(causes) == 1:
        return first
    return Cause(
        text=f"{first.text} and {len(causes) - 1} more",
        event_id=first.event_id,
        policy_id=first.policy_id,
        mapping_ids=tuple(sorted({m for c in causes for m in c.mapping_ids})),
    )


def wanted_apply(policy: LifecyclePolicy, wanted: Wanted) -> dict[str, int]:
    """Ask for the wanted changes (on), or record them as the plan (simulate). Call inside the
    transaction that moves the policy's cursor: the actions and the cursor commit together."""
    counts = {"syncs": len(wanted.syncs), "deprovisions": len(wanted.deprovisions)}
    counts["adds"] = sum(len(v) for v in wanted.adds.values())
    counts["removes"] = sum(len(v) for v in wanted.removes.values())
    if policy.mode == PolicyMode.SIMULATE:
        _record_plan(policy, wanted)
        return counts
    if policy.mode != PolicyMode.ON:
        return counts
    integration = policy.integration
    groups = TargetGroup.objects.in_bulk([*wanted.adds, *wanted.removes])
    with actions_sent_together():
        _request_each(integration, SYNC, people=wanted.syncs, known=wanted.people)
        _request_each(integration, DEPROVISION, accounts=wanted.deprovisions)
        for op, changes in (("add", wanted.adds), ("remove", wanted.removes)):
            for group_pk, members in changes.items():
                if not members:
                    continue
                action_request(
                    actor=None,
                    integration=integration,
                    action_type=MEMBERS,
                    target_group=groups[group_pk],
                    parameters={op: sorted(members)},
                    cause=_first_cause(members),
                )
    # One statement each: a burst's grants are written together, and ended together.
    Grant.objects.bulk_create(
        [
            Grant(person_id=person_pk, group_id=group_pk, mapping_ids=list(mapping_ids))
            for (person_pk, group_pk), mapping_ids in wanted.grants.items()
        ],
        update_conflicts=True,
        unique_fields=["person", "group"],
        update_fields=["mapping_ids"],
    )
    ended = Q()
    for person_pk, group_pk in wanted.ungrants - set(wanted.grants):
        ended |= Q(person_id=person_pk, group_id=group_pk)
    if ended:
        Grant.objects.filter(ended).delete()
    return counts


def _request_each(
    integration: Integration,
    action_type: str,
    *,
    people: dict[int, Cause] | None = None,
    accounts: dict[int, Cause] | None = None,
    known: dict[int, Person] | None = None,
) -> None:
    """One action, or one batch of them, checked against the mass-change threshold: a batch as a
    whole, and deprovisions together with those automation asked for in the last
    ``LIFECYCLE_BURST_WINDOW_SECONDS`` (an identity provider sends a burst of leavers as many
    requests, which may arrive in several passes). ``known``: people already read in this
    transaction (the picture's), not read again."""
    people, accounts, known = people or {}, accounts or {}, known or {}
    if not (people or accounts):
        return
    persons = [known[pk] for pk in people if pk in known]
    if len(persons) < len(people):
        persons += Person.objects.filter(ids_q("pk", [pk for pk in people if pk not in known]))
    persons.sort(key=lambda person: person.username)  # as Person's own ordering reads them
    users = list(TargetUser.objects.filter(ids_q("pk", accounts))) if accounts else []
    hold = _burst_hold(integration, action_type, len(persons) + len(users))
    if len(persons) + len(users) == 1:
        action_request(
            actor=None,
            integration=integration,
            action_type=action_type,
            person=persons[0] if persons else None,
            target_user=users[0] if users else None,
            cause=people.get(persons[0].pk) if persons else accounts.get(users[0].pk),
            hold=hold,
        )
        return
    batch_request(
        actor=None,
        integration=integration,
        action_type=action_type,
        people=persons,
        target_users=users,
        causes={**people, **accounts},
        hold=hold,
    )


def _burst_hold(integration: Integration, action_type: str, count: int) -> str:
    """Why these automated actions must wait for approval, counting the recent ones too; or ``""``."""
    from datetime import timedelta

    from django.conf import settings

    if action_type != DEPROVISION:
        return ""
    window = settings.LIFECYCLE_BURST_WINDOW_SECONDS
    recent = Action.objects.filter(
        integration=integration,
        action_type=DEPROVISION,
        cause_event__isnull=False,
        created_at__gte=timezone.now() - timedelta(seconds=window),
    ).count()
    if not recent:
        return ""  # the batch alone: batch_request checks it as it checks any batch
    reason = mass_change_reason(integration, action_type, recent + count)
    if not reason:
        return ""
    return f"{reason}, counting the {recent} leavers deprovisioned in the last {max(1, window // 60)} minutes"


def _record_plan(policy: LifecyclePolicy, wanted: Wanted) -> None:
    names = dict(Person.objects.filter(pk__in=wanted.syncs).values_list("pk", "username"))
    accounts = {u.pk: u for u in TargetUser.objects.filter(pk__in=wanted.deprovisions)}
    rows = [
        PlannedChange(policy=policy, person_id=pk, action_type=SYNC, subject=names.get(pk, ""), cause=c.text[:500])
        for pk, c in wanted.syncs.items()
    ]
    rows += [
        PlannedChange(
            policy=policy,
            person_id=accounts[pk].owner_id,
            action_type=DEPROVISION,
            subject=accounts[pk].user_name,
            cause=c.text[:500],
        )
        for pk, c in wanted.deprovisions.items()
    ]
    groups = {g.pk: g for g in TargetGroup.objects.filter(pk__in=[*wanted.adds, *wanted.removes])}
    for op, changes in (("add", wanted.adds), ("remove", wanted.removes)):
        for group_pk, members in changes.items():
            for remote_id, (person_pk, c) in members.items():
                rows.append(
                    PlannedChange(
                        policy=policy,
                        person_id=person_pk,
                        action_type=MEMBERS,
                        subject=f"{'add to' if op == 'add' else 'remove from'} {groups[group_pk].display_name}",
                        parameters={"group": groups[group_pk].display_name, op: [remote_id]},
                        cause=c.text[:500],
                    )
                )
    PlannedChange.objects.bulk_create(rows)


def policy_apply_to(policy: LifecyclePolicy, person_ids: Iterable[int], events: dict[int, IdentityEvent]) -> Wanted:
    """Evaluate and carry out, in one transaction."""
    with transaction.atomic():
        wanted = wanted_for(policy, person_ids, events)
        wanted_apply(policy, wanted)
    return wanted
