"""Drift: where an application disagrees with what the console's policies want of it.

:func:`drift_compute` reads, in a few set-based queries, what the console knows of one
integration (its accounts and their owners, the people its lifecycle policy covers, the
birthright mappings, the memberships of the groups the console manages, the access requests
and the actions still in flight) and decides with the lifecycle engine's own rules
(``lifecycle.engine``) what disagrees. The open items are then stored in one transaction:
an item seen before keeps when it was first seen, an item that no longer drifts is deleted.
See docs/reconciliation.md.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from django.db.models.base import ModelState
from django.utils import timezone

from console.accounts.models import Person
from integrations.models import (
    CorrelationConflict,
    ExtractionRun,
    Integration,
    TargetMembership,
    TargetUser,
)
from lifecycle.engine import (
    SYNC,
    deprovisions_on_leaving_scope,
    in_flight_work,
    is_leaver,
    mapping_groups,
    mappings_in_effect,
)
from lifecycle.models import Grant, LifecyclePolicy, PolicyMode, SensitiveGroup
from lifecycle.scope import mapping_people, mapping_text, people_in_scope, scope_text
from provisioning.action_types.sync_identity import changed_operations
from provisioning.models import AccessRequest, Action, ActionState
from provisioning.transformers import IDENTITY_ATTRIBUTES, TransformerError, user_mapping
from reconciliation.models import DriftCategory, DriftItem, DriftRun
from reconciliation.signals import drift_computed

logger = logging.getLogger(__name__)

CHUNK = 1000  # accounts read whole (resource and owner) at a time, for attribute drift; rows written at a time


@dataclass
class Found:
    """The drift of one integration as computed: items by (category, key), and what was left out."""

    items: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    left_out: Counter[str] = field(default_factory=Counter)

    def add(
        self,
        category: str,
        key: str,
        rule: str,
        *,
        target_user: int | None = None,
        person: int | None = None,
        group: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        self.items[(category, key)] = {
            "target_user_id": target_user,
            "person_id": person,
            "group_id": group,
            "rule": rule[:500],
            "detail": detail or {},
        }

    def in_flight(self, busy: set[tuple[Any, ...]], change: tuple[Any, ...]) -> bool:
        """Whether an action in flight already makes ``change``: then it is counted as left out, not reported."""
        if change in busy:
            self.left_out["in_flight"] += 1
            return True
        return False


@dataclass(frozen=True)
class Account:
    """An account as the computation needs it (one row of one query; the resource is read later)."""

    pk: int
    remote_id: str
    user_name: str
    active: bool
    owner_id: int | None
    owner_source: str
    owner_name: str | None
    owner_left: bool
    owner_deleted: bool


def drift_compute(
    integration: Integration, *, trigger: str = DriftRun.Trigger.ON_DEMAND, extraction_run: ExtractionRun | None = None
) -> DriftRun:
    """Compute the integration's drift, store its open items and the run; send ``drift_computed``.

    One computation of an integration at a time: the run is created ``running`` first, and a
    second one while it runs is not computed but recorded ``skipped``, with the running one named
    in words (``drift_running`` lets a caller wait instead). A failure is recorded on the run
    (``failed``, with the error) and the items stored before stay as they were; it is not
    raised, so the worker that called this carries on.
    """
    drift_lost_release(integration)
    try:
        with transaction.atomic():
            run = DriftRun.objects.create(
                integration=integration, trigger=trigger, extraction_run=extraction_run, status=DriftRun.Status.RUNNING
            )
    except IntegrityError:  # drift_run_one_running: another computation holds the integration
        return _skipped(integration, trigger=trigger, extraction_run=extraction_run)
    try:
        with transaction.atomic():
            found = drift_find(integration)
            now = timezone.now()
            run.counts = _store(integration, found, now)
            run.left_out = {reason: n for reason, n in found.left_out.items() if n}
            run.status = DriftRun.Status.SUCCEEDED
            run.finished_at = timezone.now()
            run.save(update_fields=["status", "counts", "left_out", "finished_at"])
            transaction.on_commit(lambda: drift_computed.send(sender=Integration, drift_run=run))
    except Exception as exc:
        logger.exception("drift computation of integration %s failed", integration.pk)
        run.status = DriftRun.Status.FAILED
        run.error = f"{type(exc).__name__}: {exc}"[:5000]
        run.counts = stored_counts(integration)
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "error", "counts", "finished_at"])
    return run


def drift_running(integration: Integration) -> DriftRun | None:
    """The integration's computation running now, if one is (not one taken for lost)."""
    since = timezone.now() - timedelta(seconds=settings.DRIFT_LEASE_SECONDS)
    return (
        DriftRun.objects.filter(integration=integration, status=DriftRun.Status.RUNNING, started_at__gte=since)
        .order_by("-started_at")
        .first()
    )


def drift_lost_release(integration: Integration) -> int:
    """Fail the integration's computations running longer than ``DRIFT_LEASE_SECONDS``: their worker
    was lost, and they must not hold the integration's lock for ever."""
    since = timezone.now() - timedelta(seconds=settings.DRIFT_LEASE_SECONDS)
    return DriftRun.objects.filter(
        integration=integration, status=DriftRun.Status.RUNNING, started_at__lt=since
    ).update(
        status=DriftRun.Status.FAILED,
        finished_at=timezone.now(),
        error=f"Lost: still running after {settings.DRIFT_LEASE_SECONDS} seconds (its worker stopped); "
        "the items stored before stay as they were.",
    )


def _skipped(integration: Integration, *, trigger: str, extraction_run: ExtractionRun | None) -> DriftRun:
    running = drift_running(integration)
    if running is not None:
        started = timezone.localtime(running.started_at).strftime("%Y-%m-%d %H:%M:%S")
        why = (
            f"Skipped: computation {running.pk} of {integration.name}, started {started}, was still running; "
            "its result stands."
        )
    else:
        why = f"Skipped: another computation of {integration.name} was running; its result stands."
    now = timezone.now()
    logger.info(
        "drift computation skipped", extra={"integration": integration.pk, "running": getattr(running, "pk", None)}
    )
    return DriftRun.objects.create(
        integration=integration,
        trigger=trigger,
        extraction_run=extraction_run,
        status=DriftRun.Status.SKIPPED,
        started_at=now,
        finished_at=now,
        counts=stored_counts(integration),
        error=why,
    )


def stored_counts(integration: Integration) -> dict[str, int]:
    """The integration's open items per category, every category present."""
    counts = dict(
        DriftItem.objects.filter(integration=integration)
        .values_list("category")
        .annotate(n=Count("id"))
        .values_list("category", "n")
    )
    return {category: counts.get(category, 0) for category in DriftCategory.values}


# --- storing ------------------------------------------------------------------------------------


def _store(integration: Integration, found: Found, now: Any) -> dict[str, int]:
    """The integration's items become ``found``'s: upserted by (category, key), keeping
    ``first_seen_at``; the others deleted. Call inside a transaction."""
    stored = DriftItem.objects.filter(integration=integration)
    gone = [
        pk for pk, category, key in stored.values_list("pk", "category", "key") if (category, key) not in found.items
    ]
    for start in range(0, len(gone), CHUNK):
        DriftItem.objects.filter(pk__in=gone[start : start + CHUNK]).delete()
    DriftItem.objects.bulk_create(
        [
            DriftItem(integration=integration, category=category, key=key, first_seen_at=now, last_seen_at=now, **item)
            for (category, key), item in found.items.items()
        ],
        batch_size=CHUNK,
        update_conflicts=True,
        unique_fields=["integration", "category", "key"],
        update_fields=["target_user", "person", "group", "rule", "detail", "last_seen_at"],
    )
    counts = Counter(category for category, _ in found.items)
    return {category: counts.get(category, 0) for category in DriftCategory.values}


# --- finding ------------------------------------------------------------------------------------


def drift_find(integration: Integration) -> Found:
    """What disagrees in the integration now (nothing is written)."""
    found = Found()
    name = integration.name
    policy = LifecyclePolicy.objects.filter(integration=integration).select_related("pilot_team").first()
    governed = policy is not None and policy.mode != PolicyMode.OFF

    rows = list(
        TargetUser.objects.filter(integration=integration, removed_at__isnull=True)
        .order_by()
        .values_list("pk", "remote_id", "user_name", "active", "owner_id", "owner_source")
    )
    owners = _owner_states({row[4] for row in rows if row[4] is not None})
    accounts = []
    for pk, remote_id, user_name, active, owner_id, owner_source in rows:
        owner_name, owner_left, owner_deleted = owners.get(owner_id, (None, False, False))
        accounts.append(
            Account(
                pk, remote_id, user_name, active, owner_id, owner_source or "", owner_name, owner_left, owner_deleted
            )
        )
    del rows
    # A correlation conflict (an account two people match, or a person several accounts match)
    # is the admin's to resolve first; so is a person who owns several accounts here. The
    # engine leaves them alone, and so does drift: they are counted, not reported.
    conflicts = list(
        CorrelationConflict.objects.filter(integration=integration).values_list("target_user_id", "person_id")
    )
    accounts_in_conflict = {account for account, _ in conflicts}
    owned = Counter(a.owner_id for a in accounts if a.owner_id is not None)
    people_in_conflict = {person for _, person in conflicts} | {person for person, n in owned.items() if n > 1}
    found.left_out["accounts_in_conflict"] = sum(
        1 for a in accounts if a.pk in accounts_in_conflict or a.owner_id in people_in_conflict
    )
    found.left_out["people_in_conflict"] = len(people_in_conflict)
    busy = in_flight_work(integration)

    settled: list[Account] = []  # accounts with one owner, who owns only this one here
    for account in accounts:
        if account.pk in accounts_in_conflict or account.owner_id in people_in_conflict:
            continue
        if account.owner_id is None:
            found.add(
                DriftCategory.ORPHAN,
                f"account:{account.pk}",
                f"No person owns this account: the correlation rules of {name} match nobody and no admin chose "
                "an owner",
                target_user=account.pk,
                detail={"user_name": account.user_name, "active": account.active},
            )
            continue
        settled.append(account)
        if account.owner_left and account.active:
            if found.in_flight(busy, ("deprovision", account.pk)):
                continue
            found.add(
                DriftCategory.SHOULD_BE_INACTIVE,
                f"account:{account.pk}",
                f"Leaver: {account.owner_name} {'was deleted' if account.owner_deleted else 'was deactivated'}; "
                "an account of someone who left is deprovisioned",
                target_user=account.pk,
                person=account.owner_id,
                detail={"user_name": account.user_name, "person": account.owner_name, "reason": "owner_left"},
            )
    if governed:
        assert policy is not None
        _governed(found, policy, settled, accounts, accounts_in_conflict, people_in_conflict, busy)
    return found


def _governed(
    found: Found,
    policy: LifecyclePolicy,
    settled: list[Account],
    accounts: list[Account],
    accounts_in_conflict: set[int],
    people_in_conflict: set[int],
    busy: set[tuple[Any, ...]],
) -> None:
    """The categories a lifecycle policy (simulating or on) decides."""
    integration = policy.integration
    name = integration.name
    scope = scope_text(policy)
    in_scope = set(people_in_scope(policy).values_list("pk", flat=True))

    # Missing: in scope without an account (a joiner's sync). Decided here from the two sets,
    # not by an anti-join: SQLite runs one as a search of the integration's accounts per person.
    owners = {account.owner_id for account in accounts if account.owner_id is not None}
    missing = sorted(in_scope - owners - people_in_conflict)
    names: dict[int, str] = {}
    for start in range(0, len(missing), CHUNK):
        names.update(Person.objects.filter(pk__in=missing[start : start + CHUNK]).values_list("pk", "username"))
    for pk, username in sorted(names.items()):
        if pk in people_in_conflict:
            continue
        if found.in_flight(busy, ("sync", pk)):
            continue
        found.add(
            DriftCategory.MISSING,
            f"person:{pk}",
            f"Lifecycle policy of {name}: {username} is in scope ({scope}) and has no account",
            person=pk,
            detail={"person": username},
        )

    # Leaving scope deprovisions only someone the policy covered (a review leaves alone the
    # people it never covered): someone whose account it synced, or who got birthright groups.
    covered = set(
        Action.objects.filter(
            integration=integration, action_type=SYNC, state=ActionState.SUCCEEDED, cause__policy=policy.pk
        )
        .order_by()
        .values_list("person_id", flat=True)
        .distinct()
    ) | set(Grant.objects.filter(group__integration=integration).values_list("person_id", flat=True).distinct())

    compare: dict[int, int] = {}  # account -> owner
    for account in settled:
        owner = account.owner_id
        assert owner is not None
        if account.owner_left:
            continue
        if owner not in in_scope:
            if not (
                account.active and owner in covered and deprovisions_on_leaving_scope(policy, account.owner_source)
            ):
                continue
            if found.in_flight(busy, ("deprovision", account.pk)):
                continue
            found.add(
                DriftCategory.SHOULD_BE_INACTIVE,
                f"account:{account.pk}",
                f"Out of scope: {account.owner_name} is no longer covered by the lifecycle policy of {name} "
                f"({scope}), which deprovisions on leaving scope",
                target_user=account.pk,
                person=owner,
                detail={"user_name": account.user_name, "person": account.owner_name, "reason": "out_of_scope"},
            )
            continue
        if found.in_flight(busy, ("sync", owner)):
            continue
        if not account.active:
            found.add(
                DriftCategory.SHOULD_BE_ACTIVE,
                f"account:{account.pk}",
                f"Lifecycle policy of {name}: {account.owner_name} is active and in scope ({scope}); the account "
                "is inactive",
                target_user=account.pk,
                person=owner,
                detail={"user_name": account.user_name, "person": account.owner_name},
            )
        else:
            compare[account.pk] = owner
    _attributes(found, integration, compare)
    _memberships(found, policy, settled, accounts, accounts_in_conflict, people_in_conflict, in_scope, busy)


def _attributes(found: Found, integration: Integration, owner_of: dict[int, int]) -> None:
    """Attribute drift: what the integration's transformers set differs from the account as read.

    The accounts are read whole (resource and owner) a chunk at a time; the difference is the
    sync's own (``changed_operations``), so an item is exactly what a sync would send."""
    make = user_mapping(integration).payload
    name = integration.name
    for user_pk, user_name, resource, person in _accounts_with_owners(owner_of):
        try:
            wanted = make(person)
        except TransformerError:
            found.left_out["transformer_errors"] += 1  # the sync would refuse, and say why
            continue
        resource = resource or {}
        if _as_wanted(resource, wanted):
            continue
        differs = [
            {"path": op["path"], "application": _read(resource, op["path"]), "wanted": op["value"]}
            for op in changed_operations(resource, wanted)
            if op["path"] != "active"
        ]
        if not differs:
            continue
        paths = ", ".join(d["path"] for d in differs)
        found.add(
            DriftCategory.ATTRIBUTE,
            f"account:{user_pk}",
            f"Transformers of {name}: {person.username}'s account differs in {paths}",
            target_user=user_pk,
            person=person.pk,
            detail={"attributes": differs, "user_name": user_name, "person": person.username},
        )


def _as_wanted(resource: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """True when the resource holds every wanted attribute as it is wanted (equal values), for
    which ``changed_operations`` finds nothing to change; False sends the account to it. Most
    accounts agree, and this is a fraction of its time. Emails and the user name are taken here
    only as strings, where its case-folding cannot fail."""
    for attribute, value in wanted.items():
        if resource.get(attribute) != value:
            return False
        if attribute == "userName" and not isinstance(value, str):
            return False
        if attribute == "emails" and not all(
            isinstance(email, dict) and isinstance(email.get("value", ""), str) for email in value
        ):
            return False
    return True


# The person's columns the transformers may read (``IDENTITY_ATTRIBUTES``; ``manager`` is its id).
_OWNER_FIELDS = ["id", *(f.name for f in Person._meta.concrete_fields if f.name in IDENTITY_ATTRIBUTES)]


def _owner_ranges(person_pks: Iterable[int]) -> Iterator[tuple[int, int, set[int]]]:
    """The people, a thousand at a time in id order: (first id, last id, the ids).

    Each chunk is read by a range of ids (two parameters), not by a list of a thousand: the
    database driver's handling of long parameter lists was a fifth of the time on PostgreSQL.
    A range reads at most every person once over all chunks."""
    ordered = sorted(person_pks)
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start : start + CHUNK]
        yield chunk[0], chunk[-1], set(chunk)


def _owner_states(person_pks: set[int]) -> dict[int, tuple[str, bool, bool]]:
    """Each owner's user name, whether they left, whether they were deleted.

    Not joined with the accounts: right after an extraction the planner may not know the
    accounts' table yet, and a join it misjudged took minutes on PostgreSQL."""
    states = {}
    for first, last, wanted in _owner_ranges(person_pks):
        for pk, username, is_active, removed_at in Person.objects.filter(pk__gte=first, pk__lte=last).values_list(
            "pk", "username", "is_active", "removed_at"
        ):
            if pk in wanted:
                states[pk] = (username, is_leaver(is_active, removed_at), removed_at is not None)
    return states


def _accounts_with_owners(owner_of: dict[int, int]) -> Iterator[tuple[int, str, dict[str, Any], Person]]:
    """Each account's id, user name and resource, with its owner (``owner_of``: account → owner),
    a thousand owners at a time: their columns (by a range of ids), their managers' names and
    their accounts (by the accounts' ids), one query each, no join.

    The owners are made from their columns without the model's ``__init__`` (which, with the
    converters of columns nobody reads here, was two thirds of the time), holding the fields the
    transformers may read and their manager's user name."""
    accounts_of: dict[int, list[int]] = defaultdict(list)
    for account, owner in owner_of.items():
        accounts_of[owner].append(account)
    for first, last, wanted in _owner_ranges(accounts_of):
        people = {}
        for values in Person.objects.filter(pk__gte=first, pk__lte=last).values_list(*_OWNER_FIELDS):
            if values[0] not in wanted:
                continue
            person = Person.__new__(Person)
            person.__dict__.update(zip(_OWNER_FIELDS, values, strict=True))
            person.__dict__["manager_id"] = person.__dict__.pop("manager")
            person._state = ModelState()
            person._state.adding = False
            people[person.pk] = person
        managers = sorted({person.manager_id for person in people.values() if person.manager_id is not None})
        names: dict[int, str] = {}
        for start in range(0, len(managers), CHUNK):
            names.update(Person.objects.filter(pk__in=managers[start : start + CHUNK]).values_list("pk", "username"))
        for person in people.values():
            if person.manager_id is not None:
                manager = Person.__new__(Person)
                manager.__dict__.update(id=person.manager_id, username=names.get(person.manager_id, ""))
                manager._state = ModelState()
                person._state.fields_cache["manager"] = manager
        # The accounts by their ids: a range of owners is no plan for SQLite, which reads every
        # account of the integration through its (integration, …) indexes for each chunk.
        chunk = [account for owner in sorted(people) for account in accounts_of[owner]]
        if connection.vendor == "postgresql":
            users: Iterable[tuple[int, str, Any, int | None]] = _accounts_read(chunk)
        else:
            users = (
                TargetUser.objects.filter(pk__in=chunk)
                .values_list("pk", "user_name", "resource", "owner_id")
                .order_by()
            )
        for pk, user_name, resource, owner_id in users:
            if owner_id in people:
                yield pk, user_name, resource, people[owner_id]


def _accounts_read(pks: list[int]) -> Iterator[tuple[int, str, Any, int | None]]:
    """PostgreSQL: the accounts' ids, user names, resources and owners, by one array of ids.

    Not the ORM's list of a thousand parameters (whose client-side handling was a fifth of the
    time), and each resource as its text, decoded by orjson (the driver's decoding, by the
    standard library, was a fifth too); the standard library for what orjson refuses (NaN,
    integers past 64 bits), so each resource reads as it always did."""
    table = connection.ops.quote_name(TargetUser._meta.db_table)
    sql = f"SELECT id, user_name, resource::text, owner_id FROM {table} WHERE id = ANY(%s)"  # noqa: S608 - the model's table
    with connection.cursor() as cursor:
        cursor.execute(sql, [pks])
        for pk, user_name, text, owner_id in cursor.fetchall():
            if text is None:
                resource = None
            else:
                try:
                    resource = orjson.loads(text)
                except orjson.JSONDecodeError:
                    resource = json.loads(text)
            yield pk, user_name, resource, owner_id


def _read(resource: dict[str, Any], path: str) -> Any:
    """The application's value at a path of ``changed_operations`` (``title``, ``name.givenName``,
    ``urn:…:User:department``)."""
    if path.startswith("urn:"):
        urn, _, part = path.rpartition(":")
        return (resource.get(urn) or {}).get(part)
    if "." in path:
        head, _, part = path.partition(".")
        return (resource.get(head) or {}).get(part)
    return resource.get(path)


def _memberships(
    found: Found,
    policy: LifecyclePolicy,
    settled: list[Account],
    accounts: list[Account],
    accounts_in_conflict: set[int],
    people_in_conflict: set[int],
    in_scope: set[int],
    busy: set[tuple[Any, ...]],
) -> None:
    """Missing and unexplained memberships, in the groups the console manages: those an active
    mapping names, and those marked sensitive."""
    integration = policy.integration
    mappings = mappings_in_effect(integration)
    groups = {}
    desired: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))  # person -> group -> mappings
    for mapping in mappings.values():
        mapped = mapping_groups(mapping)
        if not mapped:
            continue
        for group in mapped:
            groups[group.pk] = group
        for pk in mapping_people(mapping).values_list("pk", flat=True):
            if pk in in_scope:
                for group in mapped:
                    desired[pk][group.pk].append(mapping.pk)
    sensitive = {
        s.group_id: s.group
        for s in SensitiveGroup.objects.filter(
            group__integration=integration, group__removed_at__isnull=True
        ).select_related("group")
    }
    for pk, group in sensitive.items():
        groups.setdefault(pk, group)
    if not groups:
        return
    members: set[tuple[int, str]] = set()
    for chunk in _chunks(sorted(groups), 500):
        members.update(
            TargetMembership.objects.filter(integration=integration, group_id__in=chunk)
            .order_by()
            .values_list("group_id", "member_remote_id")
        )
    requested = set(
        AccessRequest.objects.filter(
            integration=integration,
            operation=AccessRequest.Operation.ADD,
            state=AccessRequest.State.APPROVED,
            target_group_id__in=list(groups),
        ).values_list("target_user_id", "target_group_id")
    )
    grants = {
        (person, group): mapping_ids
        for person, group, mapping_ids in Grant.objects.filter(group_id__in=list(groups)).values_list(
            "person_id", "group_id", "mapping_ids"
        )
    }
    texts = {pk: mapping_text(m) for pk, m in mappings.items()}

    def granted_by(mapping_ids: Iterable[int]) -> str:
        return "; ".join(f"mapping {m}: {texts.get(m, 'removed')}" for m in mapping_ids)

    # Missing: a mapping grants the owner a group the account is not in (the engine's add).
    for account in settled:
        owner = account.owner_id
        if account.owner_left or owner not in desired:
            continue
        for group_pk, mapping_ids in desired[owner].items():
            if (group_pk, account.remote_id) in members:
                continue
            if found.in_flight(busy, ("add", group_pk, account.remote_id)):
                continue
            group = groups[group_pk]
            found.add(
                DriftCategory.MISSING_MEMBERSHIP,
                f"membership:{group_pk}:{account.remote_id}",
                f"Birthright: {granted_by(mapping_ids)} → {group.display_name}",
                target_user=account.pk,
                person=owner,
                group=group_pk,
                detail={
                    "user_name": account.user_name,
                    "person": account.owner_name,
                    "group": group.display_name,
                    "mappings": list(mapping_ids),
                },
            )

    # Unexplained: a member of a managed group no mapping grants and no access request asked for.
    by_remote = {a.remote_id: a for a in accounts}
    for group_pk, remote_id in sorted(members):
        member = by_remote.get(remote_id)
        if member is None:
            continue  # not an account read from the application (a nested group, or one since removed)
        account = member
        if account.pk in accounts_in_conflict or account.owner_id in people_in_conflict:
            continue
        owner = account.owner_id
        if owner is not None and group_pk in desired.get(owner, {}):
            continue
        if (account.pk, group_pk) in requested:
            continue
        if found.in_flight(busy, ("remove", group_pk, remote_id)):
            continue
        group = groups[group_pk]
        ended = grants.get((owner, group_pk)) if owner is not None else None
        if ended is not None:
            rule = (
                f"Granted by {granted_by(ended)}, which no longer grants {group.display_name} to {account.owner_name}"
            )
        else:
            why = "marked sensitive" if group_pk in sensitive else "named by a birthright mapping"
            rule = (
                f"No birthright mapping grants {group.display_name} to {account.owner_name or account.user_name} "
                f"and no access request asked for it ({group.display_name} is {why})"
            )
        found.add(
            DriftCategory.UNEXPLAINED_MEMBERSHIP,
            f"membership:{group_pk}:{remote_id}",
            rule,
            target_user=account.pk,
            person=owner,
            group=group_pk,
            detail={"user_name": account.user_name, "person": account.owner_name, "group": group.display_name},
        )


def _chunks(values: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
