"""Access history: who was in a group, and which accounts and groups a person had, at a past moment.

Only changes are kept, where they happen: a member added to or removed from a group
(``MembershipChange``), an account that became active or inactive, was removed or came
back, or changed owner (``AccountChange``), a group removed or back (``GroupChange``). Each
is written in the same transaction as the change it records, by extraction (a changed
group's members are compared with those stored before they are replaced) and by the
actions' outcomes (``provisioning.action_types``, through the functions below). A first
read writes none: a group or an account did not exist before its ``first_seen_at``.

The state at a moment ``t`` is the current state with every change after ``t`` undone: for
each member (or account, or group) the first change after ``t`` says what it was before
(``members_as_of``, ``person_accounts_as_of``). Before the integration's
``history_since`` (the end of its first successful extraction) nothing is known.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from console.core.errors import InvalidInput
from integrations.models import (
    AccountChange,
    ChangeSource,
    GroupChange,
    Integration,
    MembershipChange,
    TargetGroup,
    TargetMembership,
    TargetUser,
)

AS_OF_HELP = (
    "A past date (YYYY-MM-DD: the end of that day) or date and time (ISO 8601): the state then. "
    "A future one is refused (400)."
)
CHUNK = 500

# An account's state as the history keeps it: active, removed from the application, owner's id.
AccountState = tuple[bool, bool, int | None]


# --- the moment asked for --------------------------------------------------------------------


def as_of_parse(value: str | None, *, field_name: str = "as_of", now: dt.datetime | None = None) -> dt.datetime | None:
    """The moment ``value`` names, or None where it is empty. A date alone is the end of that day
    (the console's time zone); today's is now. Unreadable, or later than now: InvalidInput."""
    text = (value or "").strip()
    if not text:
        return None
    now = now or timezone.now()
    moment: dt.datetime | None = None
    day: dt.date | None = None
    try:
        day = parse_date(text)
        if day is not None:
            moment = dt.datetime.combine(day, dt.time.max)
        else:
            moment = parse_datetime(text.replace(" ", "T", 1) if "T" not in text else text)
    except ValueError:
        moment = None
    if moment is None:
        raise InvalidInput(
            f"{field_name} must be a date (YYYY-MM-DD) or a date and time (ISO 8601, e.g. 2026-03-01T09:30:00Z); "
            f"{text[:40]!r} is neither.",
            field_name,
        )
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_current_timezone())
    if day is not None and moment > now and day == timezone.localdate(now):
        return now  # today: as things stand
    if moment > now:
        raise InvalidInput(f"{field_name} is in the future: choose today or an earlier date.", field_name)
    return moment


@dataclass
class Known:
    """What the history can say at a moment: ``since`` None where no extraction has succeeded yet."""

    at: dt.datetime
    since: dt.datetime | None
    current: bool = False  # the state now: known whatever the history holds

    @property
    def known(self) -> bool:
        return self.current or (self.since is not None and self.at >= self.since)

    @property
    def words(self) -> str:
        if self.since is None and self.current:
            return "No extraction has succeeded yet: the history starts with the first."
        if self.since is None:
            return "History starts with the first successful extraction; none has finished yet, so nothing is known."
        when = timezone.localtime(self.since).strftime("%Y-%m-%d %H:%M")
        if self.known or self.current:
            return f"History starts on {when} (the first successful extraction)."
        return f"History starts on {when} (the first successful extraction); before that nothing is known."


# --- writing -------------------------------------------------------------------------------------


def history_started(*, integration: Integration, at: dt.datetime) -> None:
    """The integration's history is complete from ``at`` on (its first successful extraction's end)."""
    Integration.all_objects.filter(pk=integration.pk, history_since__isnull=True).update(history_since=at)


def membership_changes_record(
    *,
    integration_id: int,
    changes: Iterable[tuple[int, str, int | None, bool]],
    source: str,
    at: dt.datetime | None = None,
    run_id: int | None = None,
    action_id: int | None = None,
) -> int:
    """Record (group id, member remote id, account id or None, added) changes; returns how many."""
    at = at or timezone.now()
    rows = [
        MembershipChange(
            integration_id=integration_id,
            group_id=group_id,
            member_remote_id=member,
            user_id=user_id,
            added=added,
            at=at,
            source=source,
            run_id=run_id,
            action_id=action_id,
        )
        for group_id, member, user_id, added in changes
    ]
    MembershipChange.objects.bulk_create(rows, batch_size=5000)
    return len(rows)


def account_states(accounts: QuerySet[TargetUser]) -> dict[int, AccountState]:
    """Each account's (active, removed, owner id) by its key, in one read."""
    return {
        pk: (active, removed_at is not None, owner_id)
        for pk, active, removed_at, owner_id in accounts.values_list("pk", "active", "removed_at", "owner_id")
    }


def account_states_by_key(*, integration_id: int, pks: list[int]) -> dict[int, AccountState]:
    """``account_states`` of the accounts ``pks``, read in chunks."""
    found: dict[int, AccountState] = {}
    for start in range(0, len(pks), CHUNK):
        found.update(account_states(TargetUser.objects.filter(pk__in=pks[start : start + CHUNK])))
    return found


def account_changes_record(
    *,
    integration_id: int,
    before: Mapping[int, AccountState],
    after: Mapping[int, AccountState],
    source: str,
    at: dt.datetime | None = None,
    run_id: int | None = None,
    action_id: int | None = None,
) -> int:
    """Record each account found in both whose state differs; returns how many."""
    at = at or timezone.now()
    rows = [
        AccountChange(
            integration_id=integration_id,
            target_user_id=pk,
            at=at,
            source=source,
            run_id=run_id,
            action_id=action_id,
            active_before=old[0],
            removed_before=old[1],
            owner_before_id=old[2],
            active_after=new[0],
            removed_after=new[1],
            owner_after_id=new[2],
        )
        for pk, old in before.items()
        if (new := after.get(pk)) is not None and new != old
    ]
    AccountChange.objects.bulk_create(rows, batch_size=5000)
    return len(rows)


def accounts_changed(
    accounts: QuerySet[TargetUser],
    change: Any,
    *,
    integration_id: int,
    source: str,
    at: dt.datetime | None = None,
    run_id: int | None = None,
    action_id: int | None = None,
) -> Any:
    """Call ``change()`` (which writes to ``accounts``) and record how each of them changed.

    For a handful of accounts (an action's): their states are read before and after."""
    before = account_states(accounts)
    result = change()
    if before:
        after = account_states(TargetUser.objects.filter(pk__in=list(before)))
        account_changes_record(
            integration_id=integration_id,
            before=before,
            after=after,
            source=source,
            at=at,
            run_id=run_id,
            action_id=action_id,
        )
    return result


def group_members_changed(
    *,
    group: TargetGroup,
    members: Iterable[str],
    change: Any,
    source: str,
    action_id: int | None = None,
    at: dt.datetime | None = None,
) -> Any:
    """Call ``change()`` (which writes ``group``'s memberships of ``members``) and record who came
    and went among ``members`` (only they are read, before and after: a large group costs no more)."""
    rows = TargetMembership.objects.filter(group=group, member_remote_id__in=list(members))
    before = dict(rows.values_list("member_remote_id", "user_id"))
    result = change()
    after = dict(rows.values_list("member_remote_id", "user_id"))
    changes = [(group.pk, m, u, False) for m, u in before.items() if m not in after]
    changes += [(group.pk, m, u, True) for m, u in after.items() if m not in before]
    membership_changes_record(
        integration_id=group.integration_id, changes=changes, source=source, at=at, action_id=action_id
    )
    return result


def memberships_removed(
    memberships: QuerySet[TargetMembership], *, source: str, action_id: int | None = None
) -> list[tuple[int, str, int | None]]:
    """Delete ``memberships`` and record each as a removal; returns what was removed."""
    rows = list(memberships.values_list("integration_id", "group_id", "member_remote_id", "user_id"))
    memberships.delete()
    at = timezone.now()
    by_integration: dict[int, list[tuple[int, str, int | None, bool]]] = {}
    for integration_id, group_id, member, user_id in rows:
        by_integration.setdefault(integration_id, []).append((group_id, member, user_id, False))
    for integration_id, changes in by_integration.items():
        membership_changes_record(
            integration_id=integration_id, changes=changes, source=source, at=at, action_id=action_id
        )
    return [(group_id, member, user_id) for _, group_id, member, user_id in rows]


def group_changes_record(
    *, integration_id: int, group_ids: Iterable[int], removed: bool, at: dt.datetime, run_id: int | None = None
) -> None:
    """Record the groups ``group_ids`` as removed (or back) at ``at``, by an extraction."""
    GroupChange.objects.bulk_create(
        [
            GroupChange(
                integration_id=integration_id,
                group_id=pk,
                removed=removed,
                at=at,
                source=ChangeSource.EXTRACTION,
                run_id=run_id,
            )
            for pk in group_ids
        ],
        batch_size=CHUNK,
    )


# --- reading ---------------------------------------------------------------------------------------


@dataclass
class Member:
    """One member of a group at a moment: its remote id, and its account where the console read one."""

    member_remote_id: str
    account: TargetUser | None


@dataclass
class GroupAsOf:
    """A group's members at ``known.at`` (or now); ``existed`` False before it was first read,
    ``removed`` True while it was gone from the application."""

    group: TargetGroup
    known: Known
    existed: bool
    removed: bool
    members: list[Member] = field(default_factory=list)
    counted: bool = True  # False where the members were not gathered (``with_members``)

    @property
    def words(self) -> str:
        """What the list shows, in words."""
        when = timezone.localtime(self.known.at).strftime("%Y-%m-%d %H:%M")
        if not self.known.known:
            return f"As of {when}: unknown. {self.known.words}"
        if not self.existed:
            first = timezone.localtime(self.group.first_seen_at).strftime("%Y-%m-%d %H:%M")
            return f"As of {when}: the group had not been read yet (first read on {first}). {self.known.words}"
        if self.removed:
            return f"As of {when}: the group was gone from the application, so it had no members. {self.known.words}"
        if not self.counted:
            return f"As of {when}: the members then. {self.known.words}"
        count = len(self.members)
        return f"As of {when}: {count} member{'s' if count != 1 else ''}. {self.known.words}"


def _history_since(integration_id: int) -> dt.datetime | None:
    return Integration.all_objects.filter(pk=integration_id).values_list("history_since", flat=True).first()


def _undone(current: dict[str, Any], changes: Iterable[tuple[str, bool, Any]]) -> dict[str, Any]:
    """``current`` (member -> account id) with ``changes`` after the moment undone, oldest first:
    the first change of each member says whether it was there before."""
    then = dict(current)
    settled: set[str] = set()
    for member, added, user_id in changes:
        if member in settled:
            continue
        settled.add(member)
        if added:
            then.pop(member, None)
        else:
            then[member] = current.get(member, user_id)
    return then


def members_as_of(*, group: TargetGroup, at: dt.datetime | None = None, with_members: bool = True) -> GroupAsOf:
    """``group``'s members at ``at`` (None: now), each with its account where known, by remote id.

    Without ``with_members``, only whether it was known, existed and was removed then."""
    moment = at or timezone.now()
    known = Known(moment, _history_since(group.integration_id), current=at is None)
    if at is not None and not known.known:
        return GroupAsOf(group, known, existed=False, removed=False)
    removed = group.removed_at is not None
    existed = True
    if at is not None:
        existed = group.first_seen_at <= at
        first_group_change = GroupChange.objects.filter(group=group, at__gt=at).order_by("at", "id").first()
        if first_group_change is not None:
            removed = not first_group_change.removed
        else:
            removed = group.removed_at is not None and group.removed_at <= at
    if not existed:
        return GroupAsOf(group, known, existed=False, removed=False)
    if removed or not with_members:
        return GroupAsOf(group, known, existed=True, removed=removed, counted=removed)
    current = dict(TargetMembership.objects.filter(group=group).values_list("member_remote_id", "user_id"))
    if at is not None:
        later = (
            MembershipChange.objects.filter(group=group, at__gt=at)
            .order_by("at", "id")
            .values_list("member_remote_id", "added", "user_id")
        )
        current = _undone(current, later.iterator(chunk_size=2000))
    accounts: dict[int, TargetUser] = {}
    ids = [pk for pk in current.values() if pk is not None]
    for start in range(0, len(ids), CHUNK):
        accounts.update(TargetUser.objects.in_bulk(ids[start : start + CHUNK]))
    members = [Member(m, accounts.get(u) if u is not None else None) for m, u in current.items()]
    members.sort(key=member_sort_key)
    return GroupAsOf(group, known, existed=True, removed=False, members=members)


def member_sort_key(member: Member) -> list[str]:
    """The order of a group's members (by user name, those without an account last, then by
    remote id, unique in a group): the API pages them by it."""
    return [member.account.user_name.lower() if member.account else "~", member.member_remote_id]


def member_accounts_then(*, group: TargetGroup, state: GroupAsOf) -> QuerySet[TargetUser]:
    """The accounts that were members of ``group`` at ``state``'s moment, as a queryset (for the
    group page's table: sorted, counted and exported as the members now are).

    A member is one then where the first change of it after the moment is a removal, or
    where nothing changed since and it is a member now."""
    now_in = TargetMembership.objects.filter(group=group).values("user_id")
    if not (state.known.known and state.existed) or state.removed:
        return TargetUser.objects.none()
    at = state.known.at
    later = MembershipChange.objects.filter(group=group, at__gt=at)
    first_after = (
        later.filter(Q(member_remote_id=OuterRef("remote_id")) | Q(user_id=OuterRef("pk")))
        .order_by("at", "id")
        .values("added")[:1]
    )
    return (
        TargetUser.objects.filter(integration_id=group.integration_id)
        .filter(
            Q(pk__in=now_in) | Q(remote_id__in=later.values("member_remote_id")) | Q(pk__in=later.values("user_id"))
        )
        .annotate(first_change_after=Subquery(first_after))
        .filter(Q(first_change_after=False) | Q(first_change_after__isnull=True, pk__in=now_in))
    )


@dataclass
class AccountThen:
    """One of a person's accounts at a moment: its state then, and the groups it was in then."""

    account: TargetUser
    active: bool
    groups: list[TargetGroup]

    @property
    def status(self) -> str:
        return "active" if self.active else "inactive"


@dataclass
class PersonAsOf:
    """A person's accounts at ``at``, and what the history of each integration could say then."""

    at: dt.datetime
    accounts: list[AccountThen]
    unknown: list[tuple[Integration, Known]]  # integrations whose history had not started then

    @property
    def words(self) -> str:
        when = timezone.localtime(self.at).strftime("%Y-%m-%d %H:%M")
        count = len(self.accounts)
        text = f"As of {when}: {count} account{'s' if count != 1 else ''}."
        for integration, known in self.unknown:
            text += f" {integration.name}: {known.words}"
        return text


def _state_at(current: AccountState, later: list[AccountChange]) -> AccountState:
    """The account's state at the moment ``later`` (its changes after it, oldest first) begins."""
    if not later:
        return current
    first = later[0]
    return (first.active_before, first.removed_before, first.owner_before_id)


def person_accounts_as_of(*, person_id: int, at: dt.datetime) -> PersonAsOf:
    """The accounts ``person_id`` had at ``at`` in live integrations, each with its state and its
    groups then. An account counts where it had been read, was not removed, and was theirs then."""
    candidates = TargetUser.objects.filter(
        Q(owner_id=person_id)
        | Q(pk__in=AccountChange.objects.filter(owner_before_id=person_id).values("target_user_id"))
        | Q(pk__in=AccountChange.objects.filter(owner_after_id=person_id).values("target_user_id")),
        integration__archived_at__isnull=True,
    ).select_related("integration")
    accounts = list(candidates.order_by("integration__name", "user_name", "id"))
    changes: dict[int, list[AccountChange]] = {}
    for change in AccountChange.objects.filter(target_user_id__in=[a.pk for a in accounts], at__gt=at).order_by(
        "at", "id"
    ):
        changes.setdefault(change.target_user_id, []).append(change)
    kept: list[AccountThen] = []
    unknown: dict[int, tuple[Integration, Known]] = {}
    for account in accounts:
        known = Known(at, account.integration.history_since)
        if not known.known:
            unknown[account.integration_id] = (account.integration, known)
            continue
        if account.first_seen_at > at:
            continue
        active, removed, owner = _state_at(
            (account.active, account.removed_at is not None, account.owner_id), changes.get(account.pk, [])
        )
        if owner != person_id or removed:
            continue
        kept.append(AccountThen(account, active, []))
    _groups_then(kept, at)
    return PersonAsOf(at, kept, list(unknown.values()))


def _groups_then(accounts: list[AccountThen], at: dt.datetime) -> None:
    """Fill each account's groups at ``at``: its memberships now with those changed since undone."""
    for item in accounts:
        account = item.account
        now_in = set(
            TargetMembership.objects.filter(
                integration_id=account.integration_id, member_remote_id=account.remote_id
            ).values_list("group_id", flat=True)
        )
        later = (
            MembershipChange.objects.filter(
                integration_id=account.integration_id, member_remote_id=account.remote_id, at__gt=at
            )
            .order_by("at", "id")
            .values_list("group_id", "added")
        )
        then = set(now_in)
        settled: set[int] = set()
        for group_id, added in later:
            if group_id in settled:
                continue
            settled.add(group_id)
            if added:
                then.discard(group_id)
            else:
                then.add(group_id)
        groups = TargetGroup.objects.filter(pk__in=then, first_seen_at__lte=at)
        removed_then = {
            change.group_id: change.removed
            for change in GroupChange.objects.filter(group_id__in=then, at__gt=at).order_by("-at", "-id")
        }  # the first change after the moment wins (written last)
        item.groups = sorted(
            (
                group
                for group in groups
                if not (
                    (not removed_then[group.pk])
                    if group.pk in removed_then
                    else (group.removed_at is not None and group.removed_at <= at)
                )
            ),
            key=lambda group: (group.display_name.lower(), group.pk),
        )
