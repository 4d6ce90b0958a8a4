"""Carrying out an action: exactly the SCIM calls of DESIGN.md, safe to run twice.

A worker claims a queued action with a conditional update, so only one runs it. Every
call it makes is logged (secrets never are: the Authorization header is not part of the
log, and credential-like attributes are redacted). Creation looks before it leaps and
adopts on 409, so a worker killed between the POST and the record leaves no duplicate:
the next attempt finds the account and updates it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from integrations.models import Integration, TargetGroup, TargetMembership, TargetUser
from integrations.scim_client import (
    CallRecord,
    ScimBadRequest,
    ScimBadResponse,
    ScimClient,
    ScimClientError,
    ScimConflict,
    ScimNotFound,
    ScimTransient,
    escape_filter_value,
)
from integrations.services import fingerprint, target_user_fields
from provisioning.models import Action, ActionEvent, ActionState, ActionType, ScimCall, lease_expired
from provisioning.throttle import paced, running_count, running_locked

logger = logging.getLogger(__name__)

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BODY_LIMIT = 4000
SECRET_KEYS = {"password", "token", "secret", "authorization"}


@dataclass
class Outcome:
    action: Action | None
    retry_in: float | None = None
    routing: dict[str, Any] = field(default_factory=dict)  # where to send the task again


class NoLongerAllowed(Exception):
    """The integration's settings changed after the action was requested and now forbid it."""


def _still_allowed(action: Action) -> None:
    integration = action.integration
    if not integration.enabled:
        raise NoLongerAllowed(f"{integration.name} was disabled after this action was requested.")
    if not integration.provisioning_enabled:
        raise NoLongerAllowed(f"Provisioning was turned off for {integration.name} after this action was requested.")
    if action.action_type == ActionType.DELETE_IDENTITY and not integration.supports_hard_delete:
        raise NoLongerAllowed(f"{integration.name} no longer allows hard delete: deprovision the account instead.")


class LeaseLost(Exception):
    """This worker's claim on the action ended (it was reclaimed): it must stop at once."""


def _redacted(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: ("[redacted]" if any(s in k.lower() for s in SECRET_KEYS) else _redacted(v)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _cut(text: str) -> str:
    return text if len(text) <= BODY_LIMIT else text[:BODY_LIMIT] + f"… ({len(text)} characters in all)"


def _recorder(action: Action, attempt: int) -> Any:
    def record(call: CallRecord) -> None:
        response_text = call.response_text
        with contextlib.suppress(ValueError):  # not JSON: kept as text
            response_text = json.dumps(_redacted(json.loads(response_text)), indent=1) if response_text else ""
        ScimCall.objects.create(
            action=action,
            attempt=attempt,
            at=datetime.fromtimestamp(call.started_at, tz=UTC),
            method=call.method,
            url=call.url[:1000],
            status=call.status,
            duration_ms=call.duration_ms,
            request_body=_cut(json.dumps(_redacted(call.request_body), indent=1)) if call.request_body else "",
            response_body=_cut(response_text),
            error=call.error[:2000],
        )

    return record


BUSY_RETRY_SECONDS = 1.0


@dataclass
class Claim:
    action: Action | None
    busy: bool = False  # the integration has no free slot now: try again shortly
    routing: dict[str, Any] = field(default_factory=dict)


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(action_id: int) -> Claim:
    """Take a queued action (or one whose worker's lease expired) for this worker.

    Under the integration's lock: nothing runs while it is quarantined; no more than its
    maximum concurrency runs at once across all workers; a deprovision waiting for the same
    integration takes the last free slot before other work. The claim is a lease with a
    token: the worker renews it as it goes, and its writes count only while it holds it.
    """
    from console.audit.services import audit_record
    from provisioning.services import action_routing

    now = timezone.now()
    claimable = (
        Q(state=ActionState.QUEUED, next_attempt_at__isnull=True)
        | Q(state=ActionState.QUEUED, next_attempt_at__lte=now)
        | lease_expired(now)
    )
    with transaction.atomic():
        # Locked until the claim commits, so what is read here is what the claim changes.
        action = next(
            iter(
                Action.objects.select_for_update(of=("self",))
                .filter(claimable, pk=action_id)
                .select_related("integration")
                .order_by()
            ),
            None,
        )
        if action is None:
            return Claim(None)
        integration = action.integration
        if integration.quarantined_at is not None:
            return Claim(None)  # waits; resuming the integration queues it again
        slots = max(1, integration.max_concurrency)
        if running_count(integration, excluding=action.pk) >= slots:  # a first look, unlocked: nothing written
            return Claim(None, busy=True, routing=action_routing(action))
        from_state = action.state
        claimed_fields = {
            "state": ActionState.RUNNING,
            "started_at": now,
            "attempts": action.attempts + 1,
            "attempts_total": action.attempts_total + 1,
            "next_attempt_at": None,
            "lease_token": uuid.uuid4().hex,
            "lease_expires_at": now + timedelta(seconds=settings.ACTION_LEASE_SECONDS),
            "updated_at": now,
        }
        if not Action.objects.filter(claimable, pk=action_id, state=from_state).update(**claimed_fields):
            return Claim(None)
        for name, value in claimed_fields.items():
            setattr(action, name, value)
        note = f"attempt {action.attempts} on {_worker_name()}"
        if from_state == ActionState.RUNNING:
            note += " (reclaimed: the worker that ran it stopped renewing its lease)"
        ActionEvent.objects.create(action=action, from_state=from_state, to_state=ActionState.RUNNING, note=note)
        audit_record(
            verb=f"action.{ActionState.RUNNING}",
            target=action,
            details={
                "from": from_state,
                "to": ActionState.RUNNING.value,
                "attempt": action.attempts,
                "worker": _worker_name(),
                "note": note,
            },
        )
        # The integration's lock comes last and is held only for this count and the commit:
        # every claim of the integration passes through it, one at a time, so what it spans
        # bounds how many actions a second the workers can start (taken first, it spanned the
        # whole claim and held the workers to a hundred or so). Over the limit, the claim is
        # undone.
        running = running_locked(integration, excluding=action.pk)
        if running >= slots or _yields_to_a_leaver(action, running):
            transaction.set_rollback(True)
            return Claim(None, busy=True, routing=action_routing(action))
    return Claim(action)


def lease_renew(action: Action) -> None:
    """Extend this worker's claim; if it is no longer this worker's, stop (``LeaseLost``)."""
    expires = timezone.now() + timedelta(seconds=settings.ACTION_LEASE_SECONDS)
    renewed = Action.objects.filter(pk=action.pk, state=ActionState.RUNNING, lease_token=action.lease_token).update(
        lease_expires_at=expires
    )
    if not renewed:
        raise LeaseLost(f"action {action.pk} is no longer held by this worker")
    action.lease_expires_at = expires


def lease_running_low(action: Action) -> bool:
    """Whether less than two thirds of this worker's lease remain, by its own clock.

    Another worker can take an action over only once its lease has run out, so while
    most of it remains nobody else holds the action and a request may go without a
    renewal first; a worker that stalled (a long pause, a hung connection) finds its lease
    low, renews, and learns there whether it lost the claim before it sends anything.
    """
    if action.lease_expires_at is None:
        return True
    remaining = (action.lease_expires_at - timezone.now()).total_seconds()
    return remaining < settings.ACTION_LEASE_SECONDS * 2 / 3


def _yields_to_a_leaver(candidate: Action, running: int) -> bool:
    """With one slot left (``running`` others hold the rest), a ready deprovision of the same integration goes first."""
    if candidate.action_type == ActionType.DEPROVISION_IDENTITY:
        return False
    integration = candidate.integration
    if running + 1 < max(1, integration.max_concurrency):
        return False
    return (
        Action.objects.filter(
            integration=integration, state=ActionState.QUEUED, action_type=ActionType.DEPROVISION_IDENTITY
        )
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now()))
        .exists()
    )


def _before_each_request(action: Action) -> Any:
    """Wait for the integration's rate limit, then renew the lease if it runs low, before the request goes."""
    pace = paced(action.integration)

    def before_request() -> None:
        pace()
        if lease_running_low(action):
            lease_renew(action)

    return before_request


def action_execute(action_id: int, client: ScimClient | None = None) -> Outcome:
    """Run one attempt of an action. Transient failures come back with when to try again."""
    taken = claim(action_id)
    if taken.action is None:
        return Outcome(None, retry_in=BUSY_RETRY_SECONDS if taken.busy else None, routing=taken.routing)
    action = taken.action
    scim = client or ScimClient(action.integration)
    scim.read_attempts = 1  # retries belong to the action (backoff between attempts, on any worker)
    scim.recorder = _recorder(action, action.attempts_total)
    scim.before_request = _before_each_request(action)
    try:
        _still_allowed(action)
        result = EXECUTORS[ActionType(action.action_type)](action, scim)
    except NoLongerAllowed as exc:  # the console's own settings: not the application's failure
        return Outcome(_finish(action, ActionState.FAILED, error=str(exc)))
    except LeaseLost:
        logger.warning("action lease lost", extra={"action": action.pk, "worker": _worker_name()})
        return Outcome(None)
    except ScimTransient as exc:
        _count_failure(action, str(exc))
        if action.attempts >= settings.ACTION_MAX_ATTEMPTS:
            error = f"{exc} (gave up after {action.attempts} attempts)"
            return Outcome(_finish(action, ActionState.FAILED, error=error))
        delay = exc.retry_after if exc.retry_after is not None else backoff(action.attempts)
        if not _requeue(action, delay, str(exc)):
            return Outcome(None)
        return Outcome(action, retry_in=delay)
    except ScimClientError as exc:
        _count_failure(action, str(exc))
        return Outcome(_finish(action, ActionState.FAILED, error=str(exc)))
    except Exception as exc:
        logger.exception("action crashed", extra={"action": action.pk})
        _count_failure(action, f"internal error: {type(exc).__name__}")
        return Outcome(_finish(action, ActionState.FAILED, error=f"internal error: {type(exc).__name__}"))
    return Outcome(_finish(action, ActionState.SUCCEEDED, result=result))


def _count_failure(action: Action, error: str) -> None:
    """Too many failed attempts in a row quarantine the integration: its actions wait."""
    from console.audit.services import audit_record

    with transaction.atomic():
        Integration.objects.filter(pk=action.integration_id).update(consecutive_failures=F("consecutive_failures") + 1)
        integration = Integration.objects.get(pk=action.integration_id)
        if integration.quarantined_at is None and integration.consecutive_failures >= settings.ACTION_QUARANTINE_AFTER:
            reason = f"{integration.consecutive_failures} failed attempts in a row; the last: {error[:500]}"
            Integration.objects.filter(pk=integration.pk).update(
                quarantined_at=timezone.now(), quarantine_reason=reason
            )
            audit_record(verb="integration.quarantined", target=integration, details={"reason": reason})


def integration_resume(*, actor: Any, integration: Integration, request: Any = None) -> int:
    """An admin lifts the quarantine; the actions that waited are queued again."""
    from console.audit.services import audit_record
    from provisioning.services import _enqueue_on_commit

    with transaction.atomic():
        Integration.objects.filter(pk=integration.pk).update(
            quarantined_at=None, quarantine_reason="", consecutive_failures=0
        )
        audit_record(verb="integration.resumed", actor=actor, target=integration, request=request)
        waiting = list(Action.objects.filter(integration=integration, state=ActionState.QUEUED))
        now = timezone.now()
        for action in waiting:  # each when its backoff is over: sent earlier, it would be dropped
            due = action.next_attempt_at
            _enqueue_on_commit(action, countdown=(due - now).total_seconds() if due else 0)
    return len(waiting)


def backoff(attempt: int) -> float:
    """Exponential backoff with full jitter, capped at ten minutes."""
    import random

    return random.uniform(1, min(600.0, 2.0 * 2 ** (attempt - 1)))  # noqa: S311 - jitter, not a secret


def _held(action: Action) -> Q:
    """The action as this worker claimed it: still running, under this worker's lease."""
    return Q(pk=action.pk, state=ActionState.RUNNING, lease_token=action.lease_token)


def _requeue(action: Action, delay: float, error: str) -> bool:
    """Back to the queue until the backoff is over; ``False`` if the claim was lost meanwhile."""
    from console.audit.services import audit_record
    from provisioning.services import _enqueue_on_commit

    note = f"transient failure, retry in {delay:.0f} s: {error[:300]}"
    with transaction.atomic():
        moved = Action.objects.filter(_held(action)).update(
            state=ActionState.QUEUED,
            last_error=error,
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
            lease_token="",
            lease_expires_at=None,
            updated_at=timezone.now(),
        )
        if not moved:
            logger.warning("action lease lost", extra={"action": action.pk, "worker": _worker_name()})
            return False
        ActionEvent.objects.create(
            action=action, from_state=ActionState.RUNNING, to_state=ActionState.QUEUED, note=note
        )
        audit_record(
            verb=f"action.{ActionState.QUEUED}",
            target=action,
            details={"from": ActionState.RUNNING.value, "to": ActionState.QUEUED.value, "note": note},
        )
        action.state = ActionState.QUEUED
        _enqueue_on_commit(action, countdown=delay)
    return True


def _finish(action: Action, state: str, *, error: str = "", result: dict[str, Any] | None = None) -> Action | None:
    """The outcome, written only while this worker still holds the claim; else ``None``."""
    from console.audit.services import audit_record

    now = timezone.now()
    final = {
        "state": state,
        "finished_at": now,
        "last_error": error,
        "result": result or {},
        "lease_token": "",
        "lease_expires_at": None,
        "updated_at": now,
        # what the executor found or made in the application (its picture is already updated)
        "target_user_id": action.target_user_id,
        "target_group_id": action.target_group_id,
    }
    with transaction.atomic():
        if not Action.objects.filter(_held(action)).update(**final):
            logger.warning("action lease lost", extra={"action": action.pk, "worker": _worker_name()})
            return None
        if state == ActionState.SUCCEEDED:
            # A success ends a run of failures; with none to end, no worker writes the shared row.
            Integration.objects.filter(pk=action.integration_id, consecutive_failures__gt=0).update(
                consecutive_failures=0
            )
        ActionEvent.objects.create(
            action=action, from_state=ActionState.RUNNING, to_state=state, note=error[:2000] if error else ""
        )
        audit_record(
            verb=f"action.{state}",
            target=action,
            details={"type": action.action_type, "subject": action.subject, **({"error": error} if error else {})},
        )
    for name, value in final.items():
        setattr(action, name, value)
    return action


# --- the SCIM calls of each action type ------------------------------------------------------


def _users(action: Action) -> str:
    return action.integration.users_endpoint.strip("/")


def _groups(action: Action) -> str:
    return action.integration.groups_endpoint.strip("/")


def _find_user(action: Action, scim: ScimClient, desired: dict[str, Any]) -> dict[str, Any] | None:
    """The existing account: by externalId first (a re-hire keeps it), then by userName."""
    for attribute in ("externalId", "userName"):
        value = desired.get(attribute)
        if not value:
            continue
        body = scim.get_json(_users(action), {"filter": f"{attribute} eq {escape_filter_value(str(value))}"})
        for resource in body.get("Resources") or []:
            if isinstance(resource, dict) and resource.get("id"):
                return resource
    return None


def _fetch(scim: ScimClient, path: str) -> dict[str, Any]:
    return scim.get_json(path)


def user_resource(desired: dict[str, Any]) -> dict[str, Any]:
    """A SCIM user body: the core schema and each extension the attributes use."""
    extensions = [key for key in desired if key.startswith("urn:")]
    return {"schemas": [USER_SCHEMA, *extensions], **desired}


def changed_operations(current: dict[str, Any], desired: dict[str, Any]) -> list[dict[str, Any]]:
    """``replace`` operations for the attributes that differ, and only those."""
    operations = []
    for attribute, value in desired.items():
        if attribute.startswith("urn:") and isinstance(value, dict):  # an extension: attribute by attribute
            now_extension = current.get(attribute) or {}
            for part, part_value in value.items():
                if now_extension.get(part) != part_value:
                    operations.append({"op": "replace", "path": f"{attribute}:{part}", "value": part_value})
        elif attribute == "name" and isinstance(value, dict):
            now = current.get("name") or {}
            for part, part_value in value.items():
                if now.get(part) != part_value:
                    operations.append({"op": "replace", "path": f"name.{part}", "value": part_value})
        elif attribute == "emails":
            have = sorted((e.get("value", "").lower(), bool(e.get("primary"))) for e in current.get("emails") or [])
            want = sorted((e.get("value", "").lower(), bool(e.get("primary"))) for e in value)
            if have != want:
                operations.append({"op": "replace", "path": "emails", "value": value})
        elif attribute == "userName":
            if str(current.get("userName", "")).lower() != str(value).lower():
                operations.append({"op": "replace", "path": "userName", "value": value})
        elif current.get(attribute) != value:
            operations.append({"op": "replace", "path": attribute, "value": value})
    return operations


def _patch(scim: ScimClient, path: str, operations: list[dict[str, Any]]) -> None:
    scim.request("PATCH", path, json={"schemas": [PATCH_SCHEMA], "Operations": operations})


def _remember_user(action: Action, resource: dict[str, Any]) -> TargetUser:
    """The console's picture of the application, updated at once (one upsert)."""
    fields = {**target_user_fields(resource, fingerprint(resource)), "last_seen_at": timezone.now()}
    user = TargetUser(integration_id=action.integration_id, remote_id=str(resource["id"]), **fields)
    TargetUser.objects.bulk_create(
        [user], update_conflicts=True, unique_fields=["integration", "remote_id"], update_fields=list(fields)
    )
    if user.pk is None:  # a database that does not return the id of an updated row
        user.pk = TargetUser.objects.get(integration_id=action.integration_id, remote_id=user.remote_id).pk
    action.target_user = user  # recorded with the outcome
    return user


def sync_identity(action: Action, scim: ScimClient) -> dict[str, Any]:
    desired = dict(action.parameters["user"])
    found = _find_user(action, scim, desired)
    if found is None:
        try:
            response = scim.request("POST", _users(action), json=user_resource(desired))
        except ScimConflict:
            found = _find_user(action, scim, desired)  # someone made it meanwhile: adopt it
            if found is None:
                raise
        else:
            created = response.json()
            _remember_user(action, created)
            return {"operation": "created", "id": created.get("id")}
    operations = changed_operations(found, desired)
    reactivated = found.get("active") is False
    if operations:
        _patch(scim, f"{_users(action)}/{found['id']}", operations)
        found = _fetch(scim, f"{_users(action)}/{found['id']}")
    _remember_user(action, found)
    return {
        "operation": "reactivated" if reactivated else ("updated" if operations else "unchanged"),
        "id": found["id"],
        "changed": [op["path"] for op in operations],
    }


def manage_relationships(action: Action, scim: ScimClient) -> dict[str, Any]:
    group_id = action.parameters["group_id"]
    add, remove = action.parameters.get("add", []), action.parameters.get("remove", [])
    size = max(1, action.integration.membership_chunk_size)
    path = f"{_groups(action)}/{group_id}"
    requests = 0
    for start in range(0, len(add), size):
        chunk = add[start : start + size]
        _patch(scim, path, [{"op": "add", "path": "members", "value": [{"value": v} for v in chunk]}])
        requests += 1
    for start in range(0, len(remove), size):
        chunk = remove[start : start + size]
        _patch(scim, path, [{"op": "remove", "path": f"members[value eq {escape_filter_value(v)}]"} for v in chunk])
        requests += 1
    group = TargetGroup.objects.filter(integration=action.integration, remote_id=group_id).first()
    if group is not None:
        users = dict(
            TargetUser.objects.filter(integration=action.integration, remote_id__in=add).values_list("remote_id", "pk")
        )
        TargetMembership.objects.bulk_create(
            [
                TargetMembership(integration=action.integration, group=group, member_remote_id=v, user_id=users.get(v))
                for v in add
            ],
            ignore_conflicts=True,
        )
        TargetMembership.objects.filter(group=group, member_remote_id__in=remove).delete()
        TargetGroup.objects.filter(pk=group.pk).update(member_count=group.memberships.count())
    return {"added": len(add), "removed": len(remove), "requests": requests}


def deprovision_identity(action: Action, scim: ScimClient) -> dict[str, Any]:
    user_id = action.parameters["user_id"]
    _patch(scim, f"{_users(action)}/{user_id}", [{"op": "replace", "path": "active", "value": False}])
    memberships = TargetMembership.objects.filter(integration=action.integration, member_remote_id=user_id)
    known = list(memberships.values_list("group__remote_id", flat=True))
    # The application may have added memberships since the last extraction: ask it too,
    # so a leaver keeps no group the console has not seen yet.
    current = _groups_holding(action, scim, user_id, known)
    removed_from = []
    for group_id in dict.fromkeys([*known, *(current or [])]):
        with contextlib.suppress(ScimNotFound):  # the group is gone already
            _patch(
                scim,
                f"{_groups(action)}/{group_id}",
                [{"op": "remove", "path": f"members[value eq {escape_filter_value(user_id)}]"}],
            )
        removed_from.append(group_id)
    memberships.delete()
    TargetUser.objects.filter(integration=action.integration, remote_id=user_id).update(active=False)
    for group in TargetGroup.objects.filter(integration=action.integration, remote_id__in=removed_from):
        TargetGroup.objects.filter(pk=group.pk).update(member_count=group.memberships.count())
    # What undo needs: reactivate, and put the memberships back.
    return {"deactivated": user_id, "removed_from_groups": removed_from}


def _groups_holding(action: Action, scim: ScimClient, user_id: str, known: list[str]) -> list[str] | None:
    """Ids of the groups the application says hold ``user_id``; None where it cannot say.

    Filtering on members is optional in SCIM, so a refusal, a missing Groups endpoint or an
    answer that is not SCIM leaves the console's picture (``known``) to stand, and so does a
    server that ignores the filter (it answers every group the console knows of).
    """
    query = {"filter": f"members.value eq {escape_filter_value(user_id)}", "excludedAttributes": "members"}
    try:
        found = [
            str(resource["id"])
            for page in scim.pages(_groups(action), params=query)
            for resource in page
            if isinstance(resource, dict) and resource.get("id")
        ]
    except (ScimBadRequest, ScimNotFound, ScimBadResponse):
        return None
    every_group = TargetGroup.objects.filter(integration=action.integration, removed_at__isnull=True).count()
    if len(known) < every_group <= len(found):
        return None
    return found


def delete_identity(action: Action, scim: ScimClient) -> dict[str, Any]:
    user_id = action.parameters["user_id"]
    try:
        scim.request("DELETE", f"{_users(action)}/{user_id}")
        outcome = "deleted"
    except ScimNotFound:
        outcome = "already gone"
    TargetMembership.objects.filter(integration=action.integration, member_remote_id=user_id).delete()
    TargetUser.objects.filter(integration=action.integration, remote_id=user_id).update(removed_at=timezone.now())
    return {"operation": outcome, "id": user_id}


def create_entitlement(action: Action, scim: ScimClient) -> dict[str, Any]:
    name = action.parameters["display_name"]
    query = {"filter": f"displayName eq {escape_filter_value(name)}", "excludedAttributes": "members"}
    existing = [r for r in scim.get_json(_groups(action), query).get("Resources") or [] if isinstance(r, dict)]
    operation = "adopted"
    if existing:
        resource = existing[0]
    else:
        try:
            resource = scim.request(
                "POST", _groups(action), json={"schemas": [GROUP_SCHEMA], "displayName": name}
            ).json()
            operation = "created"
        except ScimConflict:
            found = [r for r in scim.get_json(_groups(action), query).get("Resources") or [] if isinstance(r, dict)]
            if not found:
                raise
            resource = found[0]
    group, _ = TargetGroup.objects.update_or_create(
        integration=action.integration,
        remote_id=str(resource["id"]),
        defaults={
            "display_name": str(resource.get("displayName", name))[:255],
            "resource": resource,
            "content_hash": fingerprint(resource),
            "last_seen_at": timezone.now(),
            "removed_at": None,
        },
    )
    action.target_group = group  # recorded with the outcome
    return {"operation": operation, "id": resource["id"]}


EXECUTORS = {
    ActionType.SYNC_IDENTITIES: sync_identity,
    ActionType.MANAGE_RELATIONSHIPS: manage_relationships,
    ActionType.DEPROVISION_IDENTITY: deprovision_identity,
    ActionType.DELETE_IDENTITY: delete_identity,
    ActionType.CREATE_ENTITLEMENT: create_entitlement,
}


def actions_recover() -> int:
    """Queue again what a vanished worker left running, and retries whose message was lost."""
    from provisioning.services import _enqueue_on_commit

    now = timezone.now()
    stale = now - timedelta(seconds=settings.ACTION_LEASE_SECONDS)
    waiting = Action.objects.filter(
        lease_expired(now)
        | Q(state=ActionState.QUEUED, next_attempt_at__lt=now - timedelta(seconds=60))
        | Q(state=ActionState.QUEUED, next_attempt_at__isnull=True, updated_at__lt=stale)
    )
    count = 0
    with transaction.atomic():
        for action in waiting:
            _enqueue_on_commit(action)
            count += 1
    return count
