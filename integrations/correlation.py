"""Accounts tied to people: the matching rules, the links actions make, and an admin's choice.

Each account (``TargetUser``) belongs to at most one person (``owner``). After every
extraction :func:`integration_correlate` re-decides the links its rules made, set-based: for
each rule the integration uses, in order (externalId, then userName, then email), one join
of the integration's accounts with the people finds every matching pair; an account takes
the first rule that finds anybody for it. An account two people match, or a person several
accounts match, is a conflict (``CorrelationConflict``): nothing is linked until an admin
chooses (:func:`target_user_owner_set`). The rules never undo an admin's choice, nor an
account an action made or found for its person (:func:`target_users_link_by_action`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Case, IntegerField, Q, Value, When
from django.http import HttpRequest
from django.utils import timezone

from console.audit.services import audit_record
from console.core.bulk import update_rows
from console.core.errors import InvalidInput, NotFound
from integrations.history import account_changes_record, account_states
from integrations.models import (
    CORRELATION_RULES,
    FIXED_OWNER_SOURCES,
    AccountChange,
    ChangeSource,
    CorrelationConflict,
    ExtractionRun,
    Integration,
    OwnerSource,
    TargetUser,
)

WRITE_CHUNK = 1000

# Each rule: the account's key and the person's key, as SQL. The account's is the expression
# of an index leading with the integration (TargetUser.Meta): PostgreSQL hashes one side;
# SQLite, told the order by CROSS JOIN, probes that index for each person.
_RULE_KEYS = {
    "externalId": ("t.external_id", "p.external_id"),
    "userName": ("UPPER(t.user_name)", "UPPER(p.username)"),
    "email": ("LOWER(t.email)", "LOWER(p.email)"),
}
_RULE_COLUMNS = {"externalId": ("external_id", "external_id"), "userName": ("user_name", "username")}


@dataclass(frozen=True)
class Correlation:
    """What one correlation changed."""

    linked: int
    unlinked: int
    conflicts: int


def correlation_rules_problems(rules: Any) -> list[InvalidInput]:
    """What is wrong with ``rules`` as an integration's ``correlation_rules``."""
    if not isinstance(rules, list) or not all(isinstance(rule, str) for rule in rules):
        return [InvalidInput("The correlation rules are a list of rule names.", "correlation_rules")]
    unknown = [rule for rule in rules if rule not in CORRELATION_RULES]
    if unknown:
        known = ", ".join(CORRELATION_RULES)
        return [InvalidInput(f"Unknown rule {unknown[0]!r}: the rules are {known}.", "correlation_rules")]
    return []


def _pairs(integration: Integration, rule: str) -> Iterator[tuple[int, int]]:
    """Every (account, person) the rule matches among the accounts whose link the rules decide: one join."""
    account_key, person_key = _RULE_KEYS[rule]
    account_column, person_column = _RULE_COLUMNS.get(rule, ("email", "email"))
    accounts = TargetUser._meta.db_table
    people = get_user_model()._meta.db_table
    fixed = ", ".join(["%s"] * len(FIXED_OWNER_SOURCES))
    sql = f"""
        SELECT t.id, p.id FROM {people} p CROSS JOIN {accounts} t
         WHERE {account_key} = {person_key} AND t.integration_id = %s AND t.removed_at IS NULL
           AND t.{account_column} <> '' AND p.{person_column} <> ''
           AND (t.owner_id IS NULL OR t.owner_source NOT IN ({fixed}))
    """  # noqa: S608 - table and column names are the models', values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, [integration.pk, *FIXED_OWNER_SOURCES])
        while rows := cursor.fetchmany(WRITE_CHUNK):
            yield from rows


def integration_correlate(*, integration: Integration, run: ExtractionRun | None = None) -> Correlation:
    """Re-decide the links the integration's rules make, and its conflicts, in one transaction.

    Each owner that changes is recorded (``integrations.history``), except the first owner of
    an account first read by ``run`` (the extraction that asks): its history starts linked, so a
    first read writes no row per account.
    """
    rules = [rule for rule in CORRELATION_RULES if rule in (integration.correlation_rules or [])]
    accounts = TargetUser.objects.filter(integration=integration)
    fixed = accounts.filter(owner__isnull=False, owner_source__in=FIXED_OWNER_SOURCES, removed_at__isnull=True)
    taken = set(fixed.values_list("owner_id", flat=True))  # people whose account here is settled

    found: dict[int, tuple[str, set[int]]] = {}  # account -> the first rule that matched, and whom
    for rule in rules:
        candidates: dict[int, set[int]] = defaultdict(set)
        for account_id, person_id in _pairs(integration, rule):
            if account_id not in found and person_id not in taken:
                candidates[account_id].add(person_id)
        found.update({account_id: (rule, people) for account_id, people in candidates.items()})

    accounts_of: dict[int, list[int]] = defaultdict(list)
    for account_id, (_, people) in found.items():
        if len(people) == 1:
            accounts_of[next(iter(people))].append(account_id)
    links = {
        account_ids[0]: (person_id, found[account_ids[0]][0])
        for person_id, account_ids in accounts_of.items()
        if len(account_ids) == 1
    }
    conflicts = {
        (account_id, person_id): rule
        for account_id, (rule, people) in found.items()
        if account_id not in links
        for person_id in people
    }

    in_conflict = len({account_id for account_id, _ in conflicts})
    now = timezone.now()
    with transaction.atomic():
        current = {
            pk: (owner_id, source)
            # A removed account keeps the owner it had: the person's page shows it as removed.
            for pk, owner_id, source in accounts.exclude(owner_source__in=FIXED_OWNER_SOURCES)
            .filter(owner__isnull=False, removed_at__isnull=True)
            .values_list("pk", "owner_id", "owner_source")
        }
        changed = [
            (pk, [person_id, rule, now])
            for pk, (person_id, rule) in links.items()
            if current.get(pk) != (person_id, rule)
        ]
        gone = [pk for pk in current if pk not in links]
        _owner_changes_recorded(
            integration,
            {pk: links[pk][0] for pk, _ in changed},
            gone,
            run,
            now,
        )
        update_rows(TargetUser, ["owner", "owner_source", "owner_linked_at"], changed)
        for start in range(0, len(gone), WRITE_CHUNK):
            TargetUser.objects.filter(pk__in=gone[start : start + WRITE_CHUNK]).update(
                owner=None, owner_source="", owner_linked_at=None
            )
        _conflicts_replace(integration, conflicts, now)
        if changed or gone:
            audit_record(
                verb="integration.correlated",
                target=integration,
                details={"linked": len(changed), "unlinked": len(gone), "conflicts": in_conflict},
            )
    return Correlation(linked=len(changed), unlinked=len(gone), conflicts=in_conflict)


def _owner_changes_recorded(
    integration: Integration,
    linked: dict[int, int],
    unlinked: list[int],
    run: ExtractionRun | None,
    now: Any,
) -> None:
    """Record the owners about to change: ``linked`` (account -> its new owner) and ``unlinked``.
    An account first read by ``run`` and given its first owner is not recorded."""
    pks = [*linked, *unlinked]
    if not pks:
        return
    states: dict[int, tuple[bool, bool, Any]] = {}
    first_seen: dict[int, Any] = {}
    wanted = set(pks)
    since = run.started_at if run is not None else None
    accounts = TargetUser.objects.filter(integration=integration)
    if since is not None:  # an account first read by the run and unowned is not recorded: not read either
        accounts = accounts.filter(Q(owner__isnull=False) | Q(first_seen_at__lt=since))
    # One read of the integration's accounts, whatever the number changed (none on a first read).
    for pk, active, removed_at, owner_id, seen in accounts.values_list(
        "pk", "active", "removed_at", "owner_id", "first_seen_at"
    ):
        if pk in wanted:
            states[pk] = (active, removed_at is not None, owner_id)
            first_seen[pk] = seen
    before: dict[int, tuple[bool, bool, Any]] = {}
    after: dict[int, tuple[bool, bool, Any]] = {}
    for pk, (active, removed, owner) in states.items():
        new_owner = linked.get(pk)
        if pk in linked and owner is None and since is not None and first_seen[pk] >= since:
            continue  # read for the first time by this run: its history starts linked
        before[pk], after[pk] = (active, removed, owner), (active, removed, new_owner)
    account_changes_record(
        integration_id=integration.pk,
        before=before,
        after=after,
        source=ChangeSource.CORRELATION,
        at=now,
        run_id=run.pk if run is not None else None,
    )


def _conflicts_replace(integration: Integration, conflicts: Mapping[tuple[int, int], str], now: Any) -> None:
    """The integration's conflicts become ``conflicts``; one found before keeps when it was found."""
    stored = CorrelationConflict.objects.filter(integration=integration)
    first_found = {(a, p): pk for pk, a, p in stored.values_list("pk", "target_user_id", "person_id")}
    stale = [pk for key, pk in first_found.items() if key not in conflicts]
    for start in range(0, len(stale), WRITE_CHUNK):
        CorrelationConflict.objects.filter(pk__in=stale[start : start + WRITE_CHUNK]).delete()
    CorrelationConflict.objects.bulk_create(
        [
            CorrelationConflict(
                integration=integration, target_user_id=account_id, person_id=person_id, rule=rule, found_at=now
            )
            for (account_id, person_id), rule in conflicts.items()
            if (account_id, person_id) not in first_found
        ],
        batch_size=WRITE_CHUNK,
    )


def target_users_link_by_action(*, links: Mapping[int, int], actions: Mapping[int, int] | None = None) -> None:
    """Tie each account (id) to the person (id) an action made or found it for, in one statement.

    An admin's choice stays; the account's conflicts go, as its owner is now known. Each owner
    that changes is recorded (``integrations.history``), with the action (``actions``: account
    -> action id) that made the link.
    """
    if not links:
        return
    owner = Case(*[When(pk=pk, then=Value(person)) for pk, person in links.items()], output_field=IntegerField())
    now = timezone.now()
    rows = TargetUser.objects.filter(pk__in=list(links)).exclude(owner_source=OwnerSource.MANUAL)
    before = account_states(rows)
    rows.update(owner_id=owner, owner_source=OwnerSource.ACTION, owner_linked_at=now)
    integration_ids = dict(TargetUser.objects.filter(pk__in=list(before)).values_list("pk", "integration_id"))
    AccountChange.objects.bulk_create(
        [
            AccountChange(
                integration_id=integration_ids.get(pk, 0),
                target_user_id=pk,
                at=now,
                source=ChangeSource.ACTION,
                action_id=(actions or {}).get(pk),
                active_before=active,
                active_after=active,
                removed_before=removed,
                removed_after=removed,
                owner_before_id=owner,
                owner_after_id=links[pk],
            )
            for pk, (active, removed, owner) in before.items()
            if owner != links[pk]
        ],
        batch_size=WRITE_CHUNK,
    )
    CorrelationConflict.objects.filter(target_user_id__in=list(links)).delete()


def target_user_owner_set(
    *, user: TargetUser, person_id: int, actor: Any, request: HttpRequest | None = None
) -> TargetUser:
    """An admin's choice of the account's owner: a manual link the rules never undo."""
    person = get_user_model().objects.filter(pk=person_id).first()
    if person is None:
        raise NotFound("There is no such person.", "owner")
    with transaction.atomic():
        locked = TargetUser.objects.select_for_update().get(pk=user.pk)
        before = {"owner": str(locked.owner) if locked.owner_id else None, "owner_source": locked.owner_source}
        before_owner_id = locked.owner_id
        locked.owner = person
        locked.owner_source = OwnerSource.MANUAL
        locked.owner_linked_at = timezone.now()
        locked.save(update_fields=["owner", "owner_source", "owner_linked_at"])
        state = (locked.active, locked.removed_at is not None)
        account_changes_record(
            integration_id=locked.integration_id,
            before={locked.pk: (*state, before_owner_id)},
            after={locked.pk: (*state, person.pk)},
            source=ChangeSource.MANUAL,
            at=locked.owner_linked_at,
        )
        CorrelationConflict.objects.filter(target_user=locked).delete()
        audit_record(
            verb="target_user.owner_set",
            actor=actor,
            target=locked,
            before=before,
            after={"owner": str(person), "owner_source": OwnerSource.MANUAL.value},
            request=request,
        )
    return locked
