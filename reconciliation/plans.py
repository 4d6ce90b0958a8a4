"""Plans: the open drift of an integration turned into actions, then applied by an approver.

A plan has one item per proposed action, each with the SCIM requests it would send: its
action type's dry run (``provisioning.planning``: the real executor against the console's
picture of the application), and how long the whole takes at the integration's rate limit.
Applying ticked items requests ordinary actions (approval policies, workers and call logs as
for anyone's), one batch per action type, so each batch keeps one type as ``Batch`` has it,
is decided whole when held and is undone by ``batch_undo``. The whole application of a plan
is checked against the mass-change limits before any action is made: past them, every batch
of it is held whole for approval. Orphans are deleted only when an approver ticks each one.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.request import Request

from console.accounts.models import Person
from console.accounts.permissions import Perm
from console.audit.services import audit_record
from console.core.errors import ConsoleError, InvalidInput, Refused
from integrations.catalog import per_second
from integrations.models import Integration
from provisioning.batches import mass_change_reason
from provisioning.models import IN_FLIGHT_STATES, Action, ActionType, Batch
from provisioning.planning import duration_text, plan_for
from provisioning.services import (
    Cause,
    action_request,
    actions_sent_together,
    approval_required,
    require_an_approver,
)
from reconciliation.models import DriftCategory, DriftItem, Plan, PlanItem

SYNC = ActionType.SYNC_IDENTITIES.value
MEMBERS = ActionType.MANAGE_RELATIONSHIPS.value
DEPROVISION = ActionType.DEPROVISION_IDENTITY.value
DELETE = ActionType.DELETE_IDENTITY.value

logger = logging.getLogger(__name__)

# What resolves each category (an orphan: a delete where the integration allows hard delete).
REMEDY_WORDS = {
    DriftCategory.MISSING: "sync the person (creates the account)",
    DriftCategory.ORPHAN: "delete the account (where hard delete is allowed), else deprovision it",
    DriftCategory.SHOULD_BE_INACTIVE: "deprovision the account",
    DriftCategory.SHOULD_BE_ACTIVE: "sync the person (reactivates the account)",
    DriftCategory.ATTRIBUTE: "sync the person (sends only what differs)",
    DriftCategory.MISSING_MEMBERSHIP: "add the account to the group",
    DriftCategory.UNEXPLAINED_MEMBERSHIP: "remove the account from the group",
}


def categories_from(value: Any, field: str = "categories") -> list[str]:
    """The categories named, in the order of ``DriftCategory``; all of them for ``None``."""
    if value is None:
        return list(DriftCategory.values)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput("Give the categories as a list of names.", field=field)
    unknown = [v for v in value if v not in DriftCategory.values]
    if unknown:
        raise InvalidInput(
            f"Unknown drift categor{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)}: choose from "
            f"{', '.join(DriftCategory.values)}.",
            field=field,
        )
    if not value:
        raise InvalidInput("Choose at least one category.", field=field)
    return [c for c in DriftCategory.values if c in value]


# --- making a plan -----------------------------------------------------------------------------


def _member_remote_id(item: DriftItem) -> str:
    if item.target_user is not None:
        return item.target_user.remote_id
    return item.key.split(":", 2)[2] if item.key.count(":") >= 2 else ""


def remedy(integration: Integration, item: DriftItem) -> dict[str, Any]:
    """The action that resolves a drift item, as ``action_request``'s keyword arguments."""
    category = item.category
    if category in (DriftCategory.MISSING, DriftCategory.SHOULD_BE_ACTIVE, DriftCategory.ATTRIBUTE):
        person = item.person or (item.target_user.owner if item.target_user is not None else None)
        return {"action_type": SYNC, "person": person}
    if category == DriftCategory.ORPHAN:
        kind = DELETE if integration.supports_hard_delete else DEPROVISION
        return {"action_type": kind, "target_user": item.target_user}
    if category == DriftCategory.SHOULD_BE_INACTIVE:
        return {"action_type": DEPROVISION, "target_user": item.target_user}
    op = "add" if category == DriftCategory.MISSING_MEMBERSHIP else "remove"
    return {"action_type": MEMBERS, "target_group": item.group, "parameters": {op: [_member_remote_id(item)]}}


def _subject(item: DriftItem, how: dict[str, Any]) -> str:
    if how.get("person") is not None:
        return str(how["person"].username)
    user = item.target_user.user_name if item.target_user is not None else _member_remote_id(item) or item.key
    if how.get("target_group") is not None:
        verb = "add to" if item.category == DriftCategory.MISSING_MEMBERSHIP else "remove from"
        return f"{user}: {verb} {how['target_group'].display_name}"
    return user


def _planned(integration: Integration, plan: Plan, item: DriftItem) -> PlanItem:
    how = remedy(integration, item)
    row = PlanItem(
        plan=plan,
        drift_item=item,
        category=item.category,
        key=item.key,
        rule=item.rule[:500],
        action_type=how["action_type"],
        subject=_subject(item, how)[:300],
        person=how.get("person"),
        target_user=how.get("target_user"),
        target_group=how.get("target_group"),
        parameters=how.get("parameters") or {},
    )
    try:
        steps = plan_for(integration=integration, **how)
        row.requests = [step.as_dict() for step in steps]
    except ConsoleError as exc:
        row.problem = str(exc)
    except (KeyError, TypeError, ValueError) as exc:  # a drift item missing what its remedy needs
        row.problem = f"The drift item does not name what its action needs ({exc})."
    return row


def _fill(integration: Integration, plan: Plan, items: list[DriftItem]) -> tuple[int, int]:
    """Plan ``items`` into ``plan``: their rows stored; answers (rows, SCIM requests)."""
    rows = [_planned(integration, plan, item) for item in items]
    PlanItem.objects.bulk_create(rows)
    # Every request sent counts against the limit, look-ups too (a step that sends nothing aside).
    return len(rows), sum(1 for row in rows for step in row.requests if step.get("method") != "—")


def _drift_of(integration: Integration, categories: list[str]) -> QuerySet[DriftItem]:
    return DriftItem.objects.filter(integration=integration, category__in=categories).select_related(
        "person", "target_user", "target_user__owner", "group"
    )


def plan_create(
    *,
    actor: Person | None,
    integration: Integration,
    categories: list[str] | None = None,
    request: HttpRequest | Request | None = None,
    automatic: bool = False,
    skip: set[tuple[str, str]] | None = None,
) -> Plan:
    """A plan of the integration's open drift in these categories (all by default); sends nothing.

    More than ``PLAN_BACKGROUND_AFTER`` drift items: the plan is answered "being made", and a
    worker makes its items (``plan_build``). Auto-remediation (``automatic``, already on a
    worker) always makes it here. ``skip``: the (category, key) of drift items left out
    (auto-remediation's, already asked for).
    """
    chosen = categories_from(categories)
    latest = integration.drift_runs.order_by("-started_at", "-id").first()
    fields: dict[str, Any] = {
        "integration": integration,
        "created_by": actor,
        "drift_run": latest,
        "categories": chosen,
        "automatic": automatic,
        "rate_per_second": integration.rate_limit_per_second,
        "burst": integration.rate_limit_burst,
    }
    if not automatic:
        count = _drift_of(integration, chosen).count()
        if count > settings.PLAN_BACKGROUND_AFTER:
            return _plan_queue(actor=actor, fields=fields, count=count, request=request)
    items = [
        item
        for item in _drift_of(integration, chosen).order_by("category", "id")
        if not skip or (item.category, item.key) not in skip
    ]
    with transaction.atomic():
        plan = Plan.objects.create(**fields)
        made, plan.requests = _fill(integration, plan, items)
        plan.planned = plan.expected = made
        plan.save(update_fields=["requests", "planned", "expected"])
        audit_record(
            verb="plan.created",
            actor=actor,
            target=plan,
            request=request,
            details={
                "integration": integration.pk,
                "categories": chosen,
                "items": made,
                "requests": plan.requests,
                **({"automatic": True} if automatic else {}),
            },
        )
    return plan


def _plan_queue(
    *, actor: Person | None, fields: dict[str, Any], count: int, request: HttpRequest | Request | None
) -> Plan:
    from reconciliation.tasks import plan_build_task

    with transaction.atomic():
        plan = Plan.objects.create(**fields, state=Plan.State.MAKING, expected=count)
        audit_record(
            verb="plan.requested",
            actor=actor,
            target=plan,
            request=request,
            details={"integration": plan.integration_id, "categories": plan.categories, "drift_items": count},
        )
        plan_id = plan.pk
        transaction.on_commit(lambda: plan_build_task.delay(plan_id=plan_id))
    return plan


# Drift items a worker plans (and stores, and counts on the plan) at a time.
BUILD_CHUNK = 200
# A worker making a plan renews its lease at each chunk (a chunk takes a few seconds); another
# delivery of the task takes the making over only once the lease is this old.
BUILD_LEASE_SECONDS = 300


def _build_claim(plan_id: int) -> Any:
    """Take the making of the plan (the time of the lease taken), or None: not being made, or
    another worker holds a live lease on it."""
    now = timezone.now()
    expired = Q(building_at__isnull=True) | Q(building_at__lt=now - timedelta(seconds=BUILD_LEASE_SECONDS))
    taken = Plan.objects.filter(expired, pk=plan_id, state=Plan.State.MAKING).update(building_at=now)
    return now if taken else None


def plan_build(*, plan_id: int) -> None:
    """Make the items of a plan "being made", a chunk at a time (the page shows how far), then
    mark it ready. Safe to run twice: the worker making it holds a lease, renewed at each chunk;
    a second delivery while it lives does nothing, and one after a worker was lost part-way makes
    the items again from the start (the lost worker's chunks are not written: its lease is gone).
    A failure is recorded on the plan, in words, and its items removed; the drift items are those
    open when the worker starts."""
    lease = _build_claim(plan_id)
    if lease is None:
        return
    plan = Plan.objects.select_related("integration", "created_by").get(pk=plan_id)
    integration = plan.integration

    def renewed() -> bool:
        """Whether the lease is still this worker's; renewed if so (call inside a transaction)."""
        nonlocal lease
        mine = Plan.objects.select_for_update().filter(pk=plan.pk, state=Plan.State.MAKING, building_at=lease)
        if not mine.exists():
            return False
        lease = timezone.now()
        mine.update(building_at=lease)
        return True

    try:
        with transaction.atomic():
            if not renewed():
                return
            PlanItem.objects.filter(plan=plan).delete()
        ids = list(_drift_of(integration, plan.categories).order_by("category", "id").values_list("id", flat=True))
        made = requests = 0
        for start in range(0, len(ids), BUILD_CHUNK):
            wanted = ids[start : start + BUILD_CHUNK]
            found = _drift_of(integration, plan.categories).in_bulk(wanted)  # one resolved since is left out
            with transaction.atomic():
                if not renewed():
                    return  # deleted, or taken over after this worker's lease ran out
                rows, sent = _fill(integration, plan, [found[i] for i in wanted if i in found])
                made, requests = made + rows, requests + sent
                Plan.objects.filter(pk=plan.pk).update(planned=made, requests=requests, expected=len(ids))
        with transaction.atomic():
            if not renewed():
                return
            Plan.objects.filter(pk=plan.pk).update(
                state=Plan.State.READY, planned=made, requests=requests, expected=len(ids), building_at=None
            )
            audit_record(
                verb="plan.created",
                actor=plan.created_by,
                target=plan,
                details={
                    "integration": integration.pk,
                    "categories": plan.categories,
                    "items": made,
                    "requests": requests,
                    "background": True,
                },
            )
    except Exception as exc:  # any failure is the plan's, in words; the worker carries on
        logger.exception("plan build failed", extra={"plan": plan.pk, "integration": integration.pk})
        plan_build_failed(plan_id=plan.pk, reason=f"{type(exc).__name__}: {exc}")


def plan_build_failed(*, plan_id: int, reason: str) -> None:
    """Record that a plan could not be made, and why; its partial items are removed."""
    with transaction.atomic():
        PlanItem.objects.filter(plan_id=plan_id).delete()
        failed = Plan.objects.filter(pk=plan_id, state=Plan.State.MAKING).update(
            state=Plan.State.FAILED,
            planned=0,
            requests=0,
            building_at=None,
            error=f"The plan could not be made: {reason}"[:2000],
        )
        plan = Plan.objects.filter(pk=plan_id).first() if failed else None
        if plan is not None:
            audit_record(verb="plan.failed", actor=None, target=plan, details={"reason": reason[:500]})


def plan_state_words(plan: Plan) -> str:
    """Where the making of the plan is, in words."""
    if plan.state == Plan.State.MAKING:
        sign = plan.building_at or plan.created_at
        if sign < timezone.now() - timedelta(seconds=BUILD_LEASE_SECONDS):
            since = timezone.localtime(sign).strftime("%Y-%m-%d %H:%M")
            return (
                f"Being made, but no worker has worked on it since {since} ({plan.planned} of {plan.expected} "
                "drift items planned): the workers may be stopped. It goes on when a worker takes its task "
                "again; a new plan can be made meanwhile."
            )
        if not plan.planned:
            return f"Being made by a worker: {plan.expected} drift items to plan; it starts shortly."
        return f"Being made by a worker: {plan.planned} of {plan.expected} drift items planned."
    if plan.state == Plan.State.FAILED:
        return plan.error or "The plan could not be made."
    return f"Ready: {plan.planned} items." if plan.planned else "Ready."


# --- what is already being done ------------------------------------------------------------------


def in_flight(integration: Integration) -> set[tuple[Any, ...]]:
    """What the integration's actions in flight (waiting, queued, running) already do, whoever
    asked for them (lifecycle automation's leaver deprovision, an admin's sync, a plan): keys
    as ``remedy_key`` makes them. One query."""
    busy: set[tuple[Any, ...]] = set()
    for action in Action.objects.filter(integration=integration, state__in=IN_FLIGHT_STATES).only(
        "action_type", "person_id", "target_user_id", "target_group_id", "parameters"
    ):
        if action.action_type == SYNC and action.person_id:
            busy.add((SYNC, action.person_id))
        elif action.action_type in (DEPROVISION, DELETE) and action.target_user_id:
            busy.add((DEPROVISION, action.target_user_id))
        elif action.action_type == MEMBERS and action.target_group_id:
            for op in ("add", "remove"):
                for remote_id in (action.parameters or {}).get(op) or []:
                    busy.add((op, action.target_group_id, str(remote_id)))
    return busy


def remedy_key(
    *,
    action_type: str,
    person: Any = None,
    target_user: Any = None,
    target_group: Any = None,
    parameters: dict[str, Any] | None = None,
) -> tuple[Any, ...]:
    """What an action does, as ``in_flight`` keys it (a deprovision and a delete alike)."""
    if action_type == SYNC:
        return (SYNC, getattr(person, "pk", None))
    if action_type in (DEPROVISION, DELETE):
        return (DEPROVISION, getattr(target_user, "pk", None))
    for op, members in (parameters or {}).items():
        if members:
            return (op, getattr(target_group, "pk", None), str(members[0]))
    return (action_type,)


# --- what a plan says --------------------------------------------------------------------------


def plan_duration(plan: Plan) -> dict[str, Any]:
    """How long the plan's requests take at the integration's rate limit (as it was when planned).

    The limit is shared by every worker, so the requests take ``requests / rate``; the burst
    lets the first ``burst`` go at once when no other work has used it, so at best
    ``(requests - burst) / rate``.
    """
    rate = max(plan.rate_per_second, 0.001)
    seconds = plan.requests / rate
    best = max(0, plan.requests - plan.burst) / rate
    if not plan.requests:
        text = "No request to send."
    else:
        text = (
            f"{plan.requests} SCIM request{'s' if plan.requests != 1 else ''}: about "
            f"{duration_text(seconds)} at {per_second(rate)} requests/s, the integration's rate limit"
        )
        if plan.burst:
            at_best = "at once" if best == 0 else f"about {duration_text(best)}"
            text += f"; {at_best} if its burst of {plan.burst} is unused"
        text += "."
    return {
        "requests": plan.requests,
        "rate_per_second": plan.rate_per_second,
        "burst": plan.burst,
        "seconds": math.ceil(seconds * 10) / 10,
        "seconds_with_burst": math.ceil(best * 10) / 10,
        "text": text,
    }


STALE = "stale: the drift was resolved since the plan was made"
IN_FLIGHT = "already being done: an action in flight does it"


def blocked_items(items: Iterable[PlanItem]) -> dict[int, str]:
    """The items not applied yet that must not be, and why: stale (their drift was resolved since
    the plan was made: no open drift item with the same category and key), or already being done
    by an action in flight (lifecycle automation's, someone's, an earlier plan's). Two queries."""
    rows = [row for row in items if row.action_id is None]
    if not rows:
        return {}
    integration = rows[0].plan.integration
    wanted = Q()
    for row in rows:
        wanted |= Q(category=row.category, key=row.key)
    open_keys = set(
        DriftItem.objects.filter(integration_id=integration.pk).filter(wanted).values_list("category", "key")
    )
    doing = in_flight(integration)
    blocked = {}
    for row in rows:
        if (row.category, row.key) not in open_keys:
            blocked[row.pk] = STALE
        elif _item_key(row) in doing:
            blocked[row.pk] = IN_FLIGHT
    return blocked


def _item_key(item: PlanItem) -> tuple[Any, ...]:
    """The item's action as ``in_flight`` keys it (by ids: no query)."""
    if item.action_type == SYNC:
        return (SYNC, item.person_id)
    if item.action_type in (DEPROVISION, DELETE):
        return (DEPROVISION, item.target_user_id)
    for op, members in (item.parameters or {}).items():
        if members:
            return (op, item.target_group_id, str(members[0]))
    return (item.action_type,)


def item_state(item: PlanItem, blocked: Mapping[int, str]) -> str:
    """The item in words: applied (its action), cannot be applied, stale, already being done, or open."""
    if item.action_id is not None:
        return "applied"
    if item.problem:
        return "cannot be applied"
    return blocked.get(item.pk, "open")


def plan_hold(integration: Integration, counts: dict[str, int]) -> str:
    """Why applying this many actions of each type must wait whole for approval, or ``""``.

    The accounts a plan removes are counted together (deprovisions and deletes), as the
    mass-change limits are about accounts lost, whatever the way.
    """
    removed = counts.get(DEPROVISION, 0) + counts.get(DELETE, 0)
    if removed:
        reason = mass_change_reason(integration, DEPROVISION if counts.get(DEPROVISION) else DELETE, removed)
        if reason:
            return reason
    for action_type, count in counts.items():
        reason = mass_change_reason(integration, action_type, count)
        if reason:
            return reason
    return ""


# The items a plan's page shows of each category; "all of a category" applies the rest too.
ROWS_SHOWN = 200


def plan_categories(plan: Plan, shown: int | None = None) -> list[dict[str, Any]]:
    """The items by category, each with its state (the first ``shown`` of each, when given)."""
    items = list(plan.items.select_related("plan", "action", "action__batch").order_by("category", "id"))
    stale = blocked_items(items)
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        grouped[item.category].append({"item": item, "state": item_state(item, stale)})
    return [
        {
            "category": category,
            "label": DriftCategory(category).label,
            "remedy": REMEDY_WORDS[DriftCategory(category)],
            "rows": grouped[category][:shown] if shown is not None else grouped[category],
            "total": len(grouped[category]),
            "open": sum(1 for row in grouped[category] if row["state"] == "open"),
        }
        for category in DriftCategory.values
        if grouped.get(category)
    ]


def plan_hold_if_all_applied(plan: Plan) -> str:
    """What the page says before the apply: whether applying every open item would be held."""
    items = list(plan.items.select_related("plan").filter(action__isnull=True, problem=""))
    stale = blocked_items(items)
    counts: dict[str, int] = defaultdict(int)
    for item in items:
        if item.pk not in stale:
            counts[item.action_type] += 1
    return plan_hold(plan.integration, counts)


# --- applying it -------------------------------------------------------------------------------


def _selected(plan: Plan, item_ids: Any, categories: Any) -> list[PlanItem]:
    if (item_ids is None) == (categories is None):
        raise InvalidInput("Name the items to apply, or the categories (all of their open items).", field="items")
    items = plan.items.select_related("plan", "person", "target_user", "target_group")
    if item_ids is not None:
        if not isinstance(item_ids, list) or not item_ids:
            raise InvalidInput("Give the items as a list of their ids.", field="items")
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in item_ids):
            raise InvalidInput("Give each item by its id (a whole number).", field="items")
        found = {row.pk: row for row in items.filter(pk__in=item_ids)}
        unknown = sorted(set(item_ids) - set(found))
        if unknown:
            raise InvalidInput(f"Not items of plan {plan.pk}: {', '.join(map(str, unknown[:10]))}.", field="items")
        chosen = [found[i] for i in sorted(set(item_ids))]
        stale = blocked_items(chosen)
        problems = []
        for row in chosen:
            state = item_state(row, stale)
            if state != "open":
                problems.append(
                    f"item {row.pk} ({row.subject}) is {state}" + (f": {row.problem}" if row.problem else "")
                )
        if problems:
            raise InvalidInput("Nothing was applied: " + "; ".join(problems[:10]) + ".", field="items")
        return chosen
    chosen_categories = categories_from(categories)
    rows = list(items.filter(category__in=chosen_categories, action__isnull=True, problem=""))
    if any(row.deletes for row in rows):
        raise InvalidInput(
            "Orphans are deleted only when an approver ticks each one: name those items in items, not by category.",
            field="categories",
        )
    stale = blocked_items(rows)
    rows = [row for row in rows if row.pk not in stale]
    if not rows:
        raise InvalidInput("Nothing to apply: no open item in those categories.", field="categories")
    return rows


def plan_apply(
    *,
    actor: Person | None,
    plan: Plan,
    item_ids: list[int] | None = None,
    categories: list[str] | None = None,
    request: HttpRequest | Request | None = None,
    reason: str = "",
) -> list[Batch]:
    """Request the chosen items' actions: one batch per action type, checked whole first.

    ``actor`` None is the system (auto-remediation). A person must be an approver. The
    mass-change limits are checked before any action is made; past them every batch of this
    application is held whole for approval. Items are claimed under a lock, so two approvers
    applying the same item at once request it once.
    """
    if actor is not None and not actor.has_console_permission(Perm.APPROVE):
        raise Refused("Only approvers (admins) apply a plan.")
    if plan.state != Plan.State.READY:
        raise Refused(f"Plan {plan.pk} cannot be applied: {plan_state_words(plan)}")
    integration = plan.integration
    with transaction.atomic(), actions_sent_together():
        Plan.objects.select_for_update().filter(pk=plan.pk).first()  # one application of a plan at a time
        chosen = _selected(plan, item_ids, categories)
        by_type: dict[str, list[PlanItem]] = defaultdict(list)
        for row in chosen:
            by_type[row.action_type].append(row)
        hold = plan_hold(integration, {kind: len(rows) for kind, rows in by_type.items()})
        if actor is not None:
            for kind in by_type:
                if hold or approval_required(integration, kind):
                    require_an_approver(actor, integration, kind, hold)
        now = timezone.now()
        batches = []
        for kind, rows in by_type.items():
            batch = Batch.objects.create(
                integration=integration, action_type=kind, requested_by=actor, held_reason=hold
            )
            batches.append(batch)
            for row in rows:
                row.action = action_request(
                    actor=actor,
                    integration=integration,
                    action_type=kind,
                    person=row.person,
                    target_user=row.target_user,
                    target_group=row.target_group,
                    parameters=row.parameters,
                    request=request,
                    batch=batch,
                    hold=hold,
                    reason=reason,
                    cause=Cause(
                        text=f"Plan {plan.pk}, {DriftCategory(row.category).label.lower()}: {row.rule or row.key}",
                        plan_id=plan.pk,
                    ),
                )
                row.applied_at = now
                row.applied_by = actor
            PlanItem.objects.bulk_update(rows, ["action", "applied_at", "applied_by"])
            audit_record(
                verb="batch.requested",
                actor=actor,
                target=batch,
                request=request,
                details={"type": kind, "count": len(rows), "plan": plan.pk, **({"held": hold} if hold else {})},
            )
        audit_record(
            verb="plan.applied",
            actor=actor,
            target=plan,
            request=request,
            details={
                "items": [row.pk for row in chosen],
                "batches": [b.pk for b in batches],
                **({"held": hold} if hold else {}),
                **({"reason": reason} if reason else {}),
                **({"by": "the system"} if actor is None else {}),
            },
        )
    return batches


def plans_of(integration: Integration) -> QuerySet[Plan]:
    return Plan.objects.filter(integration=integration).select_related("created_by")
