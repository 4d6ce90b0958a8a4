"""Requesting actions and moving them through their states: the only way they change.

Every transition is a conditional update (``state = expected``), so two people or two
workers racing for the same action cannot both win; every one is recorded on the
action's timeline and in the audit log.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.request import Request

from console.accounts.models import Person
from console.accounts.permissions import Perm
from console.audit.services import audit_record
from console.core.bulk import create_objects, insert_rows
from integrations.models import Integration, TargetGroup, TargetUser
from provisioning.action_types import action_type_of
from provisioning.action_types.base import Checked
from provisioning.errors import ActionRefused, require
from provisioning.models import (
    TRANSITIONS,
    Action,
    ActionEvent,
    ActionState,
    ActionType,
    ApprovalPolicy,
    Batch,
)

VERBS = {
    ActionState.APPROVED: "approve",
    ActionState.REJECTED: "reject",
    ActionState.CANCELLED: "cancel",
    ActionState.QUEUED: "queue",
    ActionState.RUNNING: "start",
    ActionState.SUCCEEDED: "finish",
    ActionState.FAILED: "fail",
}


def approval_required(integration: Integration, action_type: str) -> bool:
    policy = ApprovalPolicy.objects.filter(integration=integration, action_type=action_type).first()
    if policy is not None:
        return policy.requires_approval
    return action_type in ActionType.values and action_type_of(action_type).approval_by_default


def user_payload_for(person: Person) -> dict[str, Any]:
    """The SCIM user a console person stands for (the default attribute mapping)."""
    payload: dict[str, Any] = {"userName": person.username, "active": True}
    if person.external_id:
        payload["externalId"] = person.external_id
    name = {
        key: value
        for key, value in (
            ("givenName", person.given_name),
            ("familyName", person.family_name),
            ("formatted", person.formatted_name or person.full_name),
        )
        if value
    }
    if name:
        payload["name"] = name
    if person.display_name or person.full_name:
        payload["displayName"] = person.display_name or person.full_name
    if person.email:
        payload["emails"] = [{"value": person.email, "type": "work", "primary": True}]
    for key, value in (("title", person.title), ("locale", person.locale), ("timezone", person.timezone)):
        if value:
            payload[key] = value
    return payload


@dataclass(frozen=True)
class ActionTarget:
    """What one action of a request is about (a person, an account, a group), its parameters, and
    why it exists when automation asks for it."""

    person: Person | None = None
    target_user: TargetUser | None = None
    target_group: TargetGroup | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    cause: Cause | None = None

    @property
    def name(self) -> str:
        """Who or what, as a refusal names it."""
        if self.target_user is not None:
            return self.target_user.user_name
        if self.person is not None:
            return self.person.username
        return self.target_group.display_name if self.target_group is not None else "?"


def actions_validate(*, integration: Integration, action_type: str, targets: Sequence[ActionTarget]) -> list[Checked]:
    """Refuse what cannot be done, before anything is queued: each target's subject and clean
    parameters, or why it is refused, in order (nothing raised).

    What the targets share is checked once, and the type reads what its checks need once for
    them all (``ActionKind.validate_many``), not once a target.
    """
    shared: ActionRefused | None = None
    try:
        require(integration.enabled, f"{integration.name} is disabled.", "integration")
        require(
            integration.provisioning_enabled,
            f"Provisioning is not enabled for {integration.name} (Enable usage for Provisioning).",
            "integration",
        )
    except ActionRefused as exc:
        shared = exc
    try:
        kind = action_type_of(action_type)
    except ValueError:
        kind = None
    checked: list[Checked | None] = []
    for target in targets:
        refusal = shared
        for name, row in (("target_user", target.target_user), ("target_group", target.target_group)):
            if refusal is None and row is not None and row.integration_id != integration.pk:
                refusal = ActionRefused(f"That {name.split('_')[1]} is in another integration.", name)
        if refusal is None and kind is None:
            refusal = ActionRefused(f"Unknown action type {action_type!r}.", "action_type")
        checked.append(refusal)
    valid = [target for target, refusal in zip(targets, checked, strict=True) if refusal is None]
    if valid and kind is not None:
        results = iter(kind.validate_each(integration, valid))
        return [next(results) if refusal is None else refusal for refusal in checked]
    return [refusal for refusal in checked if refusal is not None]


def _validated(
    *,
    integration: Integration,
    action_type: str,
    person: Person | None,
    target_user: TargetUser | None,
    target_group: TargetGroup | None,
    parameters: dict[str, Any],
) -> tuple[str, dict[str, Any]]:
    """One target's subject and clean parameters (``actions_validate``); its refusal raised."""
    target = ActionTarget(person=person, target_user=target_user, target_group=target_group, parameters=parameters)
    (checked,) = actions_validate(integration=integration, action_type=action_type, targets=[target])
    if isinstance(checked, ActionRefused):
        raise checked
    return checked


def action_request(
    *,
    actor: Person | None,
    integration: Integration,
    action_type: str,
    person: Person | None = None,
    target_user: TargetUser | None = None,
    target_group: TargetGroup | None = None,
    parameters: dict[str, Any] | None = None,
    request: HttpRequest | Request | None = None,
    batch: Batch | None = None,
    hold: str = "",
    reason: str = "",
    cause: Cause | None = None,
) -> Action:
    """Create an action: waiting for approval, or queued for the workers at once.

    ``hold`` names why it must wait for approval whatever its policy (a mass change); ``reason``
    is the requester's, given when they confirmed, kept in the audit event; ``cause`` is why an
    automated action exists (its identity event, policy and mappings). The same path as a
    batch's actions (``actions_create``), for one.
    """
    target = ActionTarget(
        person=person, target_user=target_user, target_group=target_group, parameters=parameters or {}, cause=cause
    )
    (checked,) = actions_validate(integration=integration, action_type=action_type, targets=[target])
    if isinstance(checked, ActionRefused):
        raise checked
    needs_approval = bool(hold) or approval_required(integration, action_type)
    # A person is told at once when nobody could approve what they ask (a batch was checked
    # once, as a whole). Automation (no actor) is not refused: a leaver's deprovision waits for
    # an approver rather than being lost, and the approvals panel says none exists.
    if needs_approval and batch is None and actor is not None:
        require_an_approver(actor, integration, action_type, hold)
    (action,) = actions_create(
        actor=actor,
        integration=integration,
        action_type=action_type,
        targets=[(target, checked)],
        needs_approval=needs_approval,
        request=request,
        batch=batch,
        hold=hold,
        reason=reason,
    )
    return action


EVENT_FIELDS = ["action_id", "at", "from_state", "to_state", "actor_id", "note"]


def actions_create(
    *,
    actor: Person | None,
    integration: Integration,
    action_type: str,
    targets: Sequence[tuple[ActionTarget, tuple[str, dict[str, Any]]]],
    needs_approval: bool,
    request: HttpRequest | Request | None = None,
    batch: Batch | None = None,
    hold: str = "",
    reason: str = "",
) -> list[Action]:
    """Make the actions of targets already checked (``actions_validate``: each with its subject
    and clean parameters), after the approval checks: waiting for approval or queued.

    The actions, their first timeline rows and their audit events are written a statement each,
    however many; the queued ones are sent once the transaction commits (together, inside
    ``actions_sent_together``). ``action_request`` is this for one.
    """
    from console.audit.services import audit_event, audit_record_many

    kind = action_type_of(action_type)
    state = ActionState.PENDING_APPROVAL if needs_approval else ActionState.QUEUED
    now = timezone.now()
    expires_at = now + timedelta(hours=settings.ACTION_APPROVAL_EXPIRY_HOURS) if needs_approval else None
    actions = [
        Action(
            integration=integration,
            action_type=action_type,
            state=state,
            requested_by=actor,
            person=target.person,
            target_user=target.target_user,
            target_group=target.target_group,
            subject=subject[:300],
            batch=batch,
            parameters=clean,
            cause=target.cause.as_json() if target.cause else {},
            cause_event_id=target.cause.event_id if target.cause else None,
            priority=kind.priority,
            created_at=now,
            expires_at=expires_at,
        )
        for target, (subject, clean) in targets
    ]
    if not actions:
        return []
    with transaction.atomic():
        create_objects(actions)
        actor_id = actor.pk if actor is not None else None
        insert_rows(
            ActionEvent, EVENT_FIELDS, [[a.pk, now, "", state.value, actor_id, hold or "requested"] for a in actions]
        )
        audit_record_many(
            [
                audit_event(
                    verb="action.requested",
                    actor=actor,
                    target=action,
                    request=request,
                    details={
                        "type": action_type,
                        "integration": integration.pk,
                        "subject": subject,
                        "state": action.state,
                        **({"reason": reason} if reason else {}),
                        **({"cause": target.cause.text} if target.cause else {}),
                    },
                )
                for action, (target, (subject, _)) in zip(actions, targets, strict=True)
            ]
        )
        if state == ActionState.QUEUED:
            _enqueue_on_commit(*actions)
    return actions


@dataclass(frozen=True)
class Cause:
    """Why an automated action exists, as people read it and as keys to what caused it."""

    text: str
    event_id: int | None = None
    policy_id: int | None = None
    mapping_ids: tuple[int, ...] = ()
    plan_id: int | None = None  # a drift plan's item the action applies (reconciliation)

    def as_json(self) -> dict[str, Any]:
        return {
            "text": self.text[:500],
            **({"event": self.event_id} if self.event_id else {}),
            **({"policy": self.policy_id} if self.policy_id else {}),
            **({"mappings": list(self.mapping_ids)} if self.mapping_ids else {}),
            **({"plan": self.plan_id} if self.plan_id else {}),
        }


def require_an_approver(actor: Person | None, integration: Integration, action_type: str, hold: str = "") -> None:
    """Refuse a request that needs an approval nobody could give (see ``provisioning.approvers``)."""
    from provisioning.approvers import NoOtherApprover, refusal

    reason = refusal(requester=actor, integration=integration, action_type=action_type, held=hold)
    if reason:
        raise NoOtherApprover(reason, "action_type")


def action_routing(action: Action) -> dict[str, Any]:
    """Where an action's task message goes, every time it is sent: leavers have their own queue."""
    return {"queue": "leavers" if action_type_of(action.action_type).leaver else "celery"}


@dataclass(frozen=True)
class _Outgoing:
    """One action's task message, waiting for its transaction to commit."""

    action_id: int
    integration_id: int
    queue: str
    countdown: float


_outbox: ContextVar[list[_Outgoing] | None] = ContextVar("action_outbox", default=None)


@contextmanager
def actions_sent_together() -> Iterator[None]:
    """Inside, actions queued are sent at the commit as few task messages, not one each.

    The actions of one integration and queue that are due together go in messages of up to
    ``ACTION_BATCH_SIZE``; a worker claims and runs each message's actions as one batch.
    Savepoints hold: an action queued in a savepoint that rolls back is not sent.
    """
    outbox: list[_Outgoing] = []
    token = _outbox.set(outbox)
    try:
        yield
    finally:
        _outbox.reset(token)
    transaction.on_commit(lambda: _send(outbox))  # after each action's own callback, which fills the outbox


def _send(outgoing: list[_Outgoing]) -> None:
    from provisioning.tasks import actions_execute_task

    due_now: dict[tuple[int, str], list[int]] = {}
    for item in outgoing:
        if item.countdown > 0:  # each after its own backoff
            actions_execute_task.apply_async(([item.action_id],), countdown=item.countdown, queue=item.queue)
        else:
            due_now.setdefault((item.integration_id, item.queue), []).append(item.action_id)
    size = max(1, settings.ACTION_BATCH_SIZE)
    for (_, queue), ids in due_now.items():
        for start in range(0, len(ids), size):
            actions_execute_task.apply_async((ids[start : start + size],), countdown=0.0, queue=queue)


def _enqueue_on_commit(*actions: Action, countdown: float = 0) -> None:
    """Send the actions' tasks once the transaction commits (at once outside one)."""
    items = [_Outgoing(a.pk, a.integration_id, action_routing(a)["queue"], countdown) for a in actions]
    outbox = _outbox.get()
    if outbox is not None:
        transaction.on_commit(lambda: outbox.extend(items))
    else:
        transaction.on_commit(lambda: _send(items))


def action_transition(
    action: Action,
    to_state: str,
    *,
    actor: Person | None = None,
    note: str = "",
    request: HttpRequest | Request | None = None,
    **fields: Any,
) -> Action:
    """Move an action on, if the move is legal and nobody moved it first."""
    from_state = action.state
    if to_state not in TRANSITIONS[ActionState(from_state)]:
        verb = VERBS.get(ActionState(to_state), to_state)
        raise ActionRefused(f"Cannot {verb} an action that is {ActionState(from_state).label.lower()}.")
    with transaction.atomic():
        moved = Action.objects.filter(pk=action.pk, state=from_state).update(
            state=to_state, updated_at=timezone.now(), **fields
        )
        if not moved:
            action.refresh_from_db()
            raise ActionRefused(f"The action changed meanwhile: it is now {action.get_state_display().lower()}.")
        ActionEvent.objects.create(action=action, from_state=from_state, to_state=to_state, actor=actor, note=note)
        audit_record(
            verb=f"action.{to_state}",
            actor=actor,
            target=action,
            request=request,
            details={"from": from_state, "to": to_state, **({"note": note} if note else {})},
        )
        action.refresh_from_db()
        if to_state == ActionState.QUEUED:
            _enqueue_on_commit(action)
    return action


def action_approve(
    *, actor: Person, action: Action, comment: str = "", request: HttpRequest | Request | None = None
) -> Action:
    """An admin approves; the action is queued at once. Nobody approves their own request.

    Approving and queueing are one transaction, and the task message goes at its commit: an
    action is never left approved but unqueued by a crash between the two.
    """
    require(actor.has_console_permission(Perm.APPROVE), "Only approvers (admins) approve actions.")
    require(action.requested_by_id != actor.pk, "You cannot approve your own request; another approver must.")
    with transaction.atomic():
        action_transition(
            action,
            ActionState.APPROVED,
            actor=actor,
            note=comment,
            request=request,
            decided_by=actor,
            decision_comment=comment,
        )
        return action_transition(action, ActionState.QUEUED, actor=actor, note="queued after approval", request=request)


def action_reject(
    *, actor: Person, action: Action, comment: str = "", request: HttpRequest | Request | None = None
) -> Action:
    require(actor.has_console_permission(Perm.APPROVE), "Only approvers (admins) reject actions.")
    require(action.requested_by_id != actor.pk, "You cannot decide your own request; cancel it instead.")
    require(bool(comment.strip()), "Say why the action is rejected.", "comment")
    return action_transition(
        action,
        ActionState.REJECTED,
        actor=actor,
        note=comment,
        request=request,
        decided_by=actor,
        decision_comment=comment,
        finished_at=timezone.now(),
    )


def action_cancel(*, actor: Person, action: Action, request: HttpRequest | Request | None = None) -> Action:
    require(
        action.requested_by_id == actor.pk or actor.has_console_permission(Perm.APPROVE),
        "Only the requester or an approver cancels an action.",
    )
    return action_transition(
        action, ActionState.CANCELLED, actor=actor, note="cancelled", request=request, finished_at=timezone.now()
    )


def action_retry(*, actor: Person, action: Action, request: HttpRequest | Request | None = None) -> Action:
    """Queue a failed action again with a fresh set of attempts (and backoff); its history stays."""
    return action_transition(
        action,
        ActionState.QUEUED,
        actor=actor,
        note=f"retry requested after {action.attempts} attempts",
        request=request,
        last_error="",
        attempts=0,
        next_attempt_at=None,
    )


def actions_expire() -> int:
    """Pending actions past their time are cancelled, with the reason on their timeline."""
    expired = 0
    for action in Action.objects.filter(state=ActionState.PENDING_APPROVAL, expires_at__lt=timezone.now()):
        try:
            action_transition(action, ActionState.CANCELLED, note="expired without a decision")
            expired += 1
        except ActionRefused:
            continue
    return expired


def approval_policies_of(integration: Integration) -> list[dict[str, Any]]:
    """Each action type with whether it needs approval in this integration, and whether by default."""
    rows = dict(ApprovalPolicy.objects.filter(integration=integration).values_list("action_type", "requires_approval"))
    return [
        {
            "action_type": action_type.value,
            "label": action_type.label,
            "requires_approval": rows.get(action_type.value, action_type_of(action_type).approval_by_default),
            "default": action_type.value not in rows,
        }
        for action_type in ActionType
    ]


def approval_policy_set(
    *, actor: Person, integration: Integration, action_type: str, requires_approval: bool, request: Any = None
) -> None:
    if action_type not in ActionType.values:
        raise ActionRefused(f"Unknown action type {action_type!r}.", "action_type")
    before = approval_required(integration, action_type)
    ApprovalPolicy.objects.update_or_create(
        integration=integration, action_type=action_type, defaults={"requires_approval": requires_approval}
    )
    if before != requires_approval:
        audit_record(
            verb="approval_policy.changed",
            actor=actor,
            target=integration,
            request=request,
            before={action_type: "approval" if before else "automatic"},
            after={action_type: "approval" if requires_approval else "automatic"},
        )
