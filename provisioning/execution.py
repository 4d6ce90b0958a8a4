"""Carrying out an action: exactly the SCIM calls of DESIGN.md, safe to run twice.

A worker claims a queued action with a conditional update, so only one runs it. Every
call it makes is logged (secrets never are: the Authorization header is not part of the
log, and credential-like attributes are redacted). Creation looks before it leaps and
adopts on 409, so a worker killed between the POST and the record leaves no duplicate:
the next attempt finds the account and updates it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from console.bulk import insert_rows, update_rows_returning, upsert_objects
from console.web.redaction import integration_redactor, redact
from integrations import dialect
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
from integrations.services import fingerprint, stored_group_resource, target_user_fields
from provisioning.dialect_forms import (
    ChangeNotMade,
    add_members,
    member_values,
    remove_members,
    replace_attributes,
    set_active,
)
from provisioning.lookups import AmbiguousMatch, Listing, cannot_filter, find_resource, find_user, matches
from provisioning.models import Action, ActionEvent, ActionState, ActionType, ScimCall, lease_expired
from provisioning.throttle import reserve_many, running_count, running_locked, slots_to_reserve

logger = logging.getLogger(__name__)

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
BODY_LIMIT = 4000


@dataclass
class Outcome:
    action: Action | None
    retry_in: float | None = None
    routing: dict[str, Any] = field(default_factory=dict)  # where to send the task again

    @property
    def busy(self) -> bool:
        """Not run: the integration had no free slot. The caller sends it again shortly."""
        return self.action is None and bool(self.retry_in)


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


def _cut(text: str) -> str:
    return text if len(text) <= BODY_LIMIT else text[:BODY_LIMIT] + f"… ({len(text)} characters in all)"


# Columns of the rows a batch writes, by attribute name.
EVENT_FIELDS = ["action_id", "at", "from_state", "to_state", "actor_id", "note"]
CALL_FIELDS = [
    "action_id",
    "attempt",
    "at",
    "method",
    "url",
    "status",
    "duration_ms",
    "request_body",
    "response_body",
    "error",
]


def _logged_call(call: CallRecord) -> list[Any]:
    """One SCIM call's log columns after ``action_id`` and ``attempt`` (``CALL_FIELDS``):
    secrets removed (secret-looking keys, and the integration's credentials in any form:
    console/web/redaction.py), then long bodies cut.

    Bodies are kept as compact JSON (the encoder's C path; the action page indents them).
    """
    scrub = call.redactor.text
    response_text = call.response_text
    with contextlib.suppress(ValueError):  # not JSON: kept as text
        response_text = json.dumps(redact(json.loads(response_text))) if response_text else ""
    return [
        datetime.fromtimestamp(call.started_at, tz=UTC),
        call.method,
        scrub(call.url)[:1000],
        call.status,
        call.duration_ms,
        _cut(scrub(json.dumps(redact(call.request_body)))) if call.request_body else "",
        _cut(scrub(response_text)),
        scrub(call.error)[:2000],
    ]


BUSY_RETRY_SECONDS = 1.0


@dataclass
class Claim:
    action: Action | None
    busy: bool = False  # the integration has no free slot now: try again shortly
    routing: dict[str, Any] = field(default_factory=dict)


@dataclass
class BatchClaim:
    """What one claim took: actions of one integration, held under one lease token."""

    actions: list[Action]  # in the order they run
    busy: list[int] = field(default_factory=list)  # found no free slot: try again shortly
    routing: dict[str, Any] = field(default_factory=dict)


@functools.cache
def _host() -> str:
    return socket.gethostname()


def _worker_name() -> str:
    return f"{_host()}:{os.getpid()}"


def claim(action_id: int) -> Claim:
    """Take one queued action (or one whose worker's lease expired): :func:`claim_batch` of one."""
    taken = claim_batch([action_id])
    return Claim(taken.actions[0] if taken.actions else None, busy=bool(taken.busy), routing=taken.routing)


def claim_batch(action_ids: Sequence[int]) -> BatchClaim:
    """Take queued actions of one integration (or ones whose worker's lease expired) for this worker.

    The actions are claimed together, under one lease token, and run one after another: the
    claim holds one of the integration's concurrency slots however many actions it takes.
    Under the integration's lock: nothing runs while it is quarantined; no more claims run
    at once than its maximum concurrency, across all workers; a deprovision waiting for the
    same integration takes the last free slot before other work. The lease is renewed as
    the worker goes, and its writes count only while it holds it. Actions that are not
    claimable (finished, not yet due, running under a live lease) are left alone.
    """
    from console.audit.services import audit_event, audit_record_many
    from provisioning.services import action_routing

    now = timezone.now()
    claimable = (
        Q(state=ActionState.QUEUED, next_attempt_at__isnull=True)
        | Q(state=ActionState.QUEUED, next_attempt_at__lte=now)
        | lease_expired(now)
    )
    with transaction.atomic():
        # Locked until the claim commits (in one order, so two claims cannot deadlock), so
        # what is read here is what the claim changes.
        found = list(Action.objects.select_for_update().filter(claimable, pk__in=list(action_ids)).order_by("pk"))
        if not found:
            return BatchClaim([])
        integration = Integration.all_objects.get(pk=found[0].integration_id)  # its credentials decrypted once
        others = [a.pk for a in found if a.integration_id != integration.pk]  # sent apart: another claim takes them
        found = sorted((a for a in found if a.integration_id == integration.pk), key=lambda a: (a.priority, a.pk))
        for action in found:
            action.integration = integration
        routing = action_routing(found[0])
        if integration.quarantined_at is not None:
            return BatchClaim([], busy=others, routing=routing)  # they wait; resuming the integration queues them
        slots = max(1, integration.max_concurrency)
        ids = [a.pk for a in found]
        everyone = ids + others
        if running_count(integration, excluding=ids) >= slots:  # a first look, unlocked: nothing written
            return BatchClaim([], busy=everyone, routing=routing)
        lease = {
            "state": ActionState.RUNNING,
            "started_at": now,
            "next_attempt_at": None,
            "lease_token": uuid.uuid4().hex,
            "lease_expires_at": now + timedelta(seconds=settings.ACTION_LEASE_SECONDS),
            "updated_at": now,
        }
        claimed = Action.objects.filter(claimable, pk__in=ids).update(
            attempts=F("attempts") + 1, attempts_total=F("attempts_total") + 1, **lease
        )
        if claimed != len(ids):  # a database without row locks: another worker took some first
            ours = set(Action.objects.filter(pk__in=ids, lease_token=lease["lease_token"]).values_list("pk", flat=True))
            found = [a for a in found if a.pk in ours]
        events, audits = [], []
        worker = _worker_name()
        for action in found:
            from_state = action.state
            for name, value in lease.items():
                setattr(action, name, value)
            action.attempts += 1
            action.attempts_total += 1
            note = f"attempt {action.attempts} on {worker}"
            if len(found) > 1:
                note += f" (one of {len(found)} claimed together)"
            if from_state == ActionState.RUNNING:
                note += " (reclaimed: the worker that ran it stopped renewing its lease)"
            events.append([action.pk, now, from_state, ActionState.RUNNING.value, None, note])
            audits.append(
                audit_event(
                    verb=f"action.{ActionState.RUNNING}",
                    target=action,
                    details={
                        "from": from_state,
                        "to": ActionState.RUNNING.value,
                        "attempt": action.attempts,
                        "worker": worker,
                        "note": note,
                    },
                )
            )
        insert_rows(ActionEvent, EVENT_FIELDS, events)
        audit_record_many(audits)
        # The integration's lock comes last and is held only for this count and the commit:
        # every claim of the integration passes through it, one at a time, so what it spans
        # bounds how many claims a second the workers can make (taken first, it spanned the
        # whole claim). Over the limit, the claim is undone.
        running = running_locked(integration, excluding=ids)
        if not found or running >= slots or _yields_to_a_leaver(found, running):
            transaction.set_rollback(True)
            return BatchClaim([], busy=everyone if found else others, routing=routing)
    return BatchClaim(found, busy=others, routing=routing)


def lease_renew(action: Action) -> set[int]:
    """Extend this worker's claim (every action held under the action's lease token).

    Returns the ids still held; if ``action`` is no longer among them (another worker
    reclaimed it), stop: ``LeaseLost``.
    """
    expires = timezone.now() + timedelta(seconds=settings.ACTION_LEASE_SECONDS)
    with transaction.atomic():
        held = set(
            Action.objects.select_for_update()
            .filter(state=ActionState.RUNNING, lease_token=action.lease_token)
            .values_list("pk", flat=True)
        )
        if held:
            Action.objects.filter(pk__in=held).update(lease_expires_at=expires)
    if action.pk not in held:
        raise LeaseLost(f"action {action.pk} is no longer held by this worker")
    action.lease_expires_at = expires
    return held


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


def _yields_to_a_leaver(claimed: list[Action], running: int) -> bool:
    """With one slot left (``running`` others hold the rest), a ready deprovision of the same
    integration goes before a claim of other work."""
    others = [a for a in claimed if a.action_type != ActionType.DEPROVISION_IDENTITY]
    if not others:
        return False
    integration = others[0].integration
    if running + 1 < max(1, integration.max_concurrency):
        return False
    return (
        Action.objects.filter(
            integration=integration, state=ActionState.QUEUED, action_type=ActionType.DEPROVISION_IDENTITY
        )
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now()))
        .exists()
    )


class BatchRun:
    """A worker's run of what one claim took: the lease they share, and what waits to be written.

    Successes, the accounts they leave and the log of every call are written together, at
    most ``ACTION_WRITE_SECONDS`` apart and before anything else is written for the batch (a
    failure, a retry), so the database sees them in the order they happened. A worker
    killed mid-batch loses at most that much of the log; its actions are claimed again
    once its lease runs out, and the accounts it made are found and adopted.
    """

    def __init__(self, actions: list[Action]) -> None:
        self.actions = actions
        self.held = {a.pk for a in actions}
        self.calls: list[list[Any]] = []  # rows of CALL_FIELDS
        self.succeeded: list[tuple[Action, dict[str, Any]]] = []
        self.accounts: dict[int, dict[str, Any]] = {}  # action id -> the resource it leaves
        self.lookups: dict[tuple[str, str], dict[str, Any] | None] = {}  # (attribute, value) -> account or none
        self.listing = Listing()  # lists read whole, for an application that cannot filter
        self.written_at = time.monotonic()
        self.slots: deque[float] = deque()  # when each request slot reserved ahead may be used (monotonic)

    def recorder(self, *actions: Action) -> Any:
        """What the SCIM client calls after each request: the call goes in each action's log."""

        def record(call: CallRecord) -> None:
            logged = _logged_call(call)
            self.calls.extend([a.pk, a.attempts_total, *logged] for a in actions)

        return record

    def before_each_request(self, action: Action) -> Any:
        """Wait for the integration's rate limit, then renew the lease if it runs low, before the request goes.

        What waits to be written is written before a wait for the rate limit: the time is
        spent anyway, and the action's page shows its calls while it waits.
        """

        def before_request() -> None:
            if not self.slots:  # the next few of the integration's rate limit, this worker's alone
                now = time.monotonic()
                waits = reserve_many(action.integration, slots_to_reserve(action.integration))
                self.slots.extend(now + wait for wait in waits)
            until = self.slots.popleft()
            if until > time.monotonic():
                self.write()
                time.sleep(max(0.0, until - time.monotonic()))
            if lease_running_low(action):
                self.held = lease_renew(action)
                for other in self.actions:
                    other.lease_expires_at = action.lease_expires_at

        return before_request

    def remember_user(self, action: Action, resource: dict[str, Any]) -> None:
        """The console's picture of the application, updated with the action's outcome."""
        self.accounts[action.pk] = resource

    def success(self, action: Action, result: dict[str, Any]) -> None:
        self.succeeded.append((action, result))
        if time.monotonic() - self.written_at >= settings.ACTION_WRITE_SECONDS:
            self.write()

    def write(self) -> None:
        """Write what waits, in one transaction. A success whose claim was lost meanwhile is
        not written (its action stays running, as the worker that took it over has it)."""
        self.written_at = time.monotonic()
        if not (self.succeeded or self.calls or self.accounts):
            return
        with transaction.atomic():
            if self.accounts:
                _remember_users(self.actions, self.accounts)
            if self.succeeded:
                self._write_successes()
            insert_rows(ScimCall, CALL_FIELDS, self.calls)
        self.calls, self.succeeded, self.accounts = [], [], {}

    def _write_successes(self) -> None:
        from console.audit.services import audit_event, audit_record_many

        ids = [action.pk for action, _ in self.succeeded]
        token = self.succeeded[0][0].lease_token
        now = timezone.now()
        final = {
            "state": ActionState.SUCCEEDED,
            "finished_at": now,
            "last_error": "",
            "lease_token": "",
            "lease_expires_at": None,
            "updated_at": now,
        }
        # Only while this worker holds the claim: one statement writes and says which it wrote.
        still = update_rows_returning(
            Action,
            [*final, "result", "target_user", "target_group"],
            # with what the executor found or made in the application (its picture is already updated)
            [(a.pk, [*final.values(), result, a.target_user_id, a.target_group_id]) for a, result in self.succeeded],
            scope={"state": ActionState.RUNNING, "lease_token": token},
        )
        for action, _ in self.succeeded:
            if action.pk not in still:
                logger.warning("action lease lost", extra={"action": action.pk, "worker": _worker_name()})
        done = [(action, result) for action, result in self.succeeded if action.pk in still]
        self.held -= set(ids)
        if not done:
            return
        # A success ends a run of failures; with none to end, no worker writes the shared row.
        Integration.objects.filter(pk=done[0][0].integration_id, consecutive_failures__gt=0).update(
            consecutive_failures=0
        )
        events, audits = [], []
        for action, result in done:
            for name, value in final.items():
                setattr(action, name, value)
            action.result = result
            events.append([action.pk, now, ActionState.RUNNING.value, ActionState.SUCCEEDED.value, None, ""])
            audits.append(
                audit_event(
                    verb=f"action.{ActionState.SUCCEEDED}",
                    target=action,
                    details={"type": action.action_type, "subject": action.subject},
                )
            )
        insert_rows(ActionEvent, EVENT_FIELDS, events)
        audit_record_many(audits)

    def release(self, action: Action) -> None:
        """The action's outcome was written apart (a failure, a retry): it is no longer this run's."""
        self.held.discard(action.pk)


def _remember_users(actions: list[Action], resources: dict[int, dict[str, Any]]) -> None:
    """Upsert the accounts actions found or made, in one statement, and point each action at its own."""
    by_action = {a.pk: a for a in actions}
    integration_id = actions[0].integration_id
    now = timezone.now()
    rows: dict[str, TargetUser] = {}  # one row per account, though two actions may touch it
    for resource in resources.values():
        fields = {**target_user_fields(resource, fingerprint(resource)), "last_seen_at": now}
        rows[str(resource["id"])] = TargetUser(integration_id=integration_id, remote_id=str(resource["id"]), **fields)
    upsert_objects(
        list(rows.values()),
        unique_fields=["integration", "remote_id"],
        update_fields=[*target_user_fields({}, ""), "last_seen_at"],
    )
    for action_id, resource in resources.items():
        by_action[action_id].target_user = rows[str(resource["id"])]  # recorded with the outcome


def action_execute(action_id: int, client: ScimClient | None = None) -> Outcome:
    """Run one attempt of one action (:func:`actions_execute` of one)."""
    return actions_execute([action_id], client)[0]


def actions_execute(action_ids: Sequence[int], client: ScimClient | None = None) -> list[Outcome]:
    """Claim the actions and run one attempt of each, one after another.

    Returns an outcome for each id: ``action`` None where it was not run (busy ones come
    with when to try again); transient failures come back with when they retry.
    """
    taken = claim_batch(action_ids)
    outcomes = {pk: Outcome(None, retry_in=BUSY_RETRY_SECONDS, routing=taken.routing) for pk in taken.busy}
    if taken.actions:
        run = BatchRun(taken.actions)
        scim = client or ScimClient(taken.actions[0].integration)
        scim.read_attempts = 1  # retries belong to the action (backoff between attempts, on any worker)
        if len(taken.actions) > 1:
            _look_up_users_together(run, scim)
        for action in taken.actions:
            outcomes[action.pk] = _attempt(run, action, scim)
        run.write()
        for action in taken.actions:
            if action.state == ActionState.RUNNING:  # a success whose claim was lost before it was written
                outcomes[action.pk] = Outcome(None)
    return [outcomes.get(pk, Outcome(None)) for pk in action_ids]


def _attempt(run: BatchRun, action: Action, scim: ScimClient) -> Outcome:
    """One attempt of one action of the run. A success is written with the run's next write."""
    if action.pk not in run.held:  # another worker took it over while this one ran the batch
        return Outcome(None)
    scim.recorder = run.recorder(action)
    scim.before_request = run.before_each_request(action)
    try:
        _still_allowed(action)
        result = EXECUTORS[ActionType(action.action_type)](action, scim, run)
    except LeaseLost:
        logger.warning("action lease lost", extra={"action": action.pk, "worker": _worker_name()})
        run.release(action)
        return Outcome(None)
    except Exception as exc:
        run.write()  # what went before is written first
        run.release(action)
        return _failed(action, exc)
    run.success(action, result)
    return Outcome(action)  # running until the run writes it


def _failed(action: Action, exc: Exception) -> Outcome:
    """Write the outcome of an attempt that raised: a retry after a backoff, or a failure."""
    # Whatever the application answered, its credentials are not kept (the client struck them out already).
    error = integration_redactor(action.integration).text(str(exc))
    if isinstance(exc, NoLongerAllowed):  # the console's own settings: not the application's failure
        return Outcome(_finish(action, ActionState.FAILED, error=error))
    if isinstance(exc, ScimTransient):
        _count_failure(action, error)
        if action.attempts >= settings.ACTION_MAX_ATTEMPTS:
            error = f"{error} (gave up after {action.attempts} attempts)"
            return Outcome(_finish(action, ActionState.FAILED, error=error))
        delay = exc.retry_after if exc.retry_after is not None else backoff(action.attempts)
        if not _requeue(action, delay, error):
            return Outcome(None)
        return Outcome(action, retry_in=delay)
    if isinstance(exc, ScimClientError):
        _count_failure(action, error)
        return Outcome(_finish(action, ActionState.FAILED, error=error))
    logger.error("action crashed", exc_info=exc, extra={"action": action.pk})
    _count_failure(action, f"internal error: {type(exc).__name__}")
    return Outcome(_finish(action, ActionState.FAILED, error=f"internal error: {type(exc).__name__}"))


def _count_failure(action: Action, error: str) -> None:
    """Too many failed attempts in a row quarantine the integration: its actions wait."""
    from console.audit.services import audit_record

    with transaction.atomic():
        Integration.objects.filter(pk=action.integration_id).update(consecutive_failures=F("consecutive_failures") + 1)
        integration = Integration.all_objects.get(pk=action.integration_id)
        if integration.quarantined_at is None and integration.consecutive_failures >= settings.ACTION_QUARANTINE_AFTER:
            last = integration_redactor(integration).text(error)[:500]
            reason = f"{integration.consecutive_failures} failed attempts in a row; the last: {last}"
            Integration.objects.filter(pk=integration.pk).update(
                quarantined_at=timezone.now(), quarantine_reason=reason
            )
            audit_record(verb="integration.quarantined", target=integration, details={"reason": reason})


def integration_resume(*, actor: Any, integration: Integration, request: Any = None) -> int:
    """An admin lifts the quarantine; the actions that waited are queued again."""
    from console.audit.services import audit_record
    from provisioning.services import _enqueue_on_commit, actions_sent_together

    with transaction.atomic(), actions_sent_together():
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

    if error:  # stored, shown and audited: without the integration's credentials, whoever wrote it
        error = integration_redactor(action.integration).text(error)
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


def _lookup_key(attribute: str, value: str) -> tuple[str, str]:
    """How a look-up is remembered: ``userName`` is not case-exact in SCIM, ``externalId`` is."""
    return attribute, value.lower() if attribute == "userName" else value


def _find_user(
    action: Action, scim: ScimClient, desired: dict[str, Any], run: BatchRun | None = None
) -> dict[str, Any] | None:
    """The existing account: by externalId first (a re-hire keeps it), then by userName.

    What the run's combined look-up settled is taken from it; the rest is asked for, and
    only an account that matches what was asked is ever returned (``provisioning.lookups``).
    """

    def settled(attribute: str, value: str) -> tuple[bool, dict[str, Any] | None]:
        key = _lookup_key(attribute, value)
        if run is None or key not in run.lookups:
            return False, None
        found = run.lookups[key]
        if found is AMBIGUOUS:
            raise AmbiguousMatch(
                f"several accounts in the application have {attribute} {escape_filter_value(value)}; "
                "the console will not choose one. Remove the duplicate in the application, then retry."
            )
        return True, found

    return find_user(scim, desired, endpoint=_users(action), listing=run.listing if run else None, settled=settled)


LOOKUP_FILTER_CHARACTERS = 2000  # a combined look-up's filter stays under this: its URL within any server's limit
AMBIGUOUS: dict[str, Any] = {"id": "(several)"}  # a combined look-up found more than one account for a clause


def _look_up_users_together(run: BatchRun, scim: ScimClient) -> None:
    """Look for the accounts of a batch's syncs together, instead of once or twice each.

    One filter joins the syncs' ``externalId eq`` and ``userName eq`` clauses with ``or``
    (RFC 7644, 3.4.2.2), and the answer settles each clause: the account that matches it, or
    none. A server that refuses the filter, answers short (``totalResults`` above what it
    sent), or sends an account that matches no clause (it ignored the filter) settles
    nothing, and each sync then looks for itself, as it does alone (and the profile learns
    that ``or`` is not to be used).
    """
    integration = run.actions[0].integration
    if cannot_filter(integration) or dialect.refused(integration, "filter_or"):
        return
    syncs = [a for a in run.actions if a.action_type == ActionType.SYNC_IDENTITIES]
    for chunk, clauses in _lookup_chunks(syncs):
        if len(clauses) < 2:
            continue
        query = " or ".join(f"{attribute} eq {escape_filter_value(value)}" for attribute, value in clauses)
        scim.recorder = run.recorder(*chunk)  # the look-up is in each one's log
        scim.before_request = run.before_each_request(chunk[0])
        try:
            body = scim.get_json(_users(chunk[0]), {"filter": query, "count": str(max(100, len(clauses)))})
        except ScimBadRequest as refusal:
            scim.learn("filter_or", False, f"{_users(chunk[0])}: {refusal}")
            return
        except (ScimClientError, LeaseLost):
            continue
        settled = _settled(clauses, body)
        if settled is None:
            scim.learn(
                "filter_or",
                False,
                f"{_users(chunk[0])}: a filter joined with or was answered with "
                "accounts that match none of its clauses",
            )
            return
        run.lookups.update(settled)


def _lookup_chunks(syncs: list[Action]) -> Iterator[tuple[list[Action], list[tuple[str, str]]]]:
    """The syncs in runs whose joined clauses stay under ``LOOKUP_FILTER_CHARACTERS``, with those clauses."""
    chunk: list[Action] = []
    clauses: list[tuple[str, str]] = []
    length = 0
    for action in syncs:
        user = action.parameters.get("user") or {}
        own = [(attribute, str(value)) for attribute in ("externalId", "userName") if (value := user.get(attribute))]
        size = sum(len(attribute) + len(value) + 12 for attribute, value in own)  # ' eq "…"', ' or ', escapes
        if chunk and length + size > LOOKUP_FILTER_CHARACTERS:
            yield chunk, sorted(set(clauses))
            chunk, clauses, length = [], [], 0
        chunk.append(action)
        clauses.extend(own)
        length += size
    if chunk:
        yield chunk, sorted(set(clauses))


def _settled(clauses: list[tuple[str, str]], body: dict[str, Any]) -> dict[tuple[str, str], Any] | None:
    """What a combined look-up's answer says of each clause, or None if it cannot be trusted.

    Two accounts that match one clause settle it as ``AMBIGUOUS``: the sync is refused.
    """
    resources = [r for r in body.get("Resources") or [] if isinstance(r, dict) and r.get("id")]
    total = body.get("totalResults")
    if not isinstance(total, int) or total > len(resources):
        return None
    settled: dict[tuple[str, str], Any] = {_lookup_key(attribute, value): None for attribute, value in clauses}
    for resource in resources:
        hits = [
            key
            for attribute in ("externalId", "userName")
            if isinstance(resource.get(attribute), str)
            and (key := _lookup_key(attribute, resource[attribute])) in settled
            and matches(resource, attribute, key[1] if attribute == "externalId" else resource[attribute])
        ]
        if not hits:
            return None  # not what was asked for: the server ignored the filter
        for key in hits:
            earlier = settled[key]
            if earlier is not None and str(earlier.get("id")) != str(resource["id"]):
                settled[key] = AMBIGUOUS
            elif earlier is None:
                settled[key] = resource
    return settled


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


def _subject_matches(found: dict[str, Any], desired: dict[str, Any]) -> bool:
    """Whether an account is the subject's: its externalId, or else its userName, is the desired one."""
    if desired.get("externalId") and matches(found, "externalId", str(desired["externalId"])):
        return True
    return bool(desired.get("userName")) and matches(found, "userName", str(desired["userName"]))


def sync_identity(action: Action, scim: ScimClient, run: BatchRun) -> dict[str, Any]:
    desired = dict(action.parameters["user"])
    found = _find_user(action, scim, desired, run)
    if found is None:
        try:
            response = scim.request("POST", _users(action), json=user_resource(desired))
        except ScimConflict:
            run.listing.forget(_users(action))  # someone made it meanwhile: read afresh, then adopt it
            found = _find_user(action, scim, desired)
            if found is None:
                raise
        else:
            created = response.json()
            run.remember_user(action, created)
            return {"operation": "created", "id": created.get("id")}
    if not _subject_matches(found, desired):  # the look-ups return only matches: this is a guard
        raise AmbiguousMatch(f"the account {found.get('id')} found for {desired.get('userName')} is not theirs")
    path = f"{_users(action)}/{found['id']}"
    reactivated = found.get("active") is False and desired.get("active", True) is not False
    if reactivated:
        # A re-hire: active on its own first, so an attribute the application refuses never blocks it.
        set_active(scim, path, True)
        found = {**found, "active": True}
    operations = changed_operations(found, desired)
    replace_attributes(scim, path, operations)
    if operations or reactivated:
        found = _fetch(scim, path)
        if reactivated and found.get("active") is False:
            raise ChangeNotMade(f"{path}: the application answered success but the account is still inactive")
    run.remember_user(action, found)
    return {
        "operation": "reactivated" if reactivated else ("updated" if operations else "unchanged"),
        "id": found["id"],
        "changed": [op["path"] for op in operations],
    }


def manage_relationships(action: Action, scim: ScimClient, run: BatchRun) -> dict[str, Any]:
    group_id = action.parameters["group_id"]
    add, remove = action.parameters.get("add", []), action.parameters.get("remove", [])
    size = max(1, action.integration.membership_chunk_size)
    path = f"{_groups(action)}/{group_id}"
    requests = 0
    for start in range(0, len(add), size):
        add_members(scim, path, member_values(scim, add[start : start + size], _users(action)))
        requests += 1
    for start in range(0, len(remove), size):
        remove_members(scim, path, member_values(scim, remove[start : start + size], _users(action)))
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


def deprovision_identity(action: Action, scim: ScimClient, run: BatchRun) -> dict[str, Any]:
    user_id = action.parameters["user_id"]
    set_active(scim, f"{_users(action)}/{user_id}", False)
    memberships = TargetMembership.objects.filter(integration=action.integration, member_remote_id=user_id)
    known = list(memberships.values_list("group__remote_id", flat=True))
    (reference,) = member_values(scim, [user_id], _users(action))
    # The application may have added memberships since the last extraction: ask it too,
    # so a leaver keeps no group the console has not seen yet.
    current = _groups_holding(action, scim, reference, known)
    removed_from = []
    for group_id in dict.fromkeys([*known, *(current or [])]):
        with contextlib.suppress(ScimNotFound):  # the group is gone already
            remove_members(scim, f"{_groups(action)}/{group_id}", [reference])
        removed_from.append(group_id)
    memberships.delete()
    TargetUser.objects.filter(integration=action.integration, remote_id=user_id).update(active=False)
    for group in TargetGroup.objects.filter(integration=action.integration, remote_id__in=removed_from):
        TargetGroup.objects.filter(pk=group.pk).update(member_count=group.memberships.count())
    # What undo needs: reactivate, and put the memberships back.
    return {"deactivated": user_id, "removed_from_groups": removed_from}


def _groups_holding(action: Action, scim: ScimClient, reference: str, known: list[str]) -> list[str] | None:
    """Ids of the groups the application says hold ``reference``; None where it cannot say.

    Filtering on members is optional in SCIM, so a refusal, a missing Groups endpoint or an
    answer that is not SCIM leaves the console's picture (``known``) to stand, and so does a
    server that ignores the filter (it answers a group that does not list the member, or
    every group the console knows of).
    """
    integration = action.integration
    if cannot_filter(integration) or dialect.refused(integration, "filter_members"):
        return None
    query = {"filter": f"members.value eq {escape_filter_value(reference)}"}
    trusted = dialect.value(integration, "filter_members") is True
    if trusted:  # known to filter: the members themselves need not come (a group may hold 50,000)
        query["excludedAttributes"] = "members"
    try:
        groups = [
            resource
            for page in scim.pages(_groups(action), params=query)
            for resource in page
            if isinstance(resource, dict) and resource.get("id")
        ]
    except (ScimBadRequest, ScimNotFound, ScimBadResponse) as refusal:
        if isinstance(refusal, ScimBadRequest):
            scim.learn("filter_members", False, f"{_groups(action)}: {refusal}")
        return None
    listed = [g for g in groups if isinstance(g.get("members"), list)]
    if any(all(str(m.get("value")) != reference for m in g["members"] if isinstance(m, dict)) for g in listed):
        scim.learn("filter_members", False, f"{_groups(action)}: answered groups that do not hold the member")
        return None
    if not trusted and listed and len(listed) == len(groups):  # each group it answered holds the member
        scim.learn("filter_members", True, f"{_groups(action)}: answered only groups that hold the member")
    every_group = TargetGroup.objects.filter(integration=integration, removed_at__isnull=True).count()
    if len(known) < every_group <= len(groups):
        return None
    return [str(g["id"]) for g in groups]


def delete_identity(action: Action, scim: ScimClient, run: BatchRun) -> dict[str, Any]:
    user_id = action.parameters["user_id"]
    try:
        scim.request("DELETE", f"{_users(action)}/{user_id}")
        outcome = "deleted"
    except ScimNotFound:
        outcome = "already gone"
    TargetMembership.objects.filter(integration=action.integration, member_remote_id=user_id).delete()
    TargetUser.objects.filter(integration=action.integration, remote_id=user_id).update(removed_at=timezone.now())
    return {"operation": outcome, "id": user_id}


def create_entitlement(action: Action, scim: ScimClient, run: BatchRun) -> dict[str, Any]:
    name = action.parameters["display_name"]
    endpoint = _groups(action)
    lean = {"excludedAttributes": "members"}
    existing = find_resource(scim, endpoint, "displayName", name, kind="groups", listing=run.listing, params=lean)
    operation = "adopted"
    if existing is not None:
        resource = existing
    else:
        try:
            resource = scim.request("POST", endpoint, json={"schemas": [GROUP_SCHEMA], "displayName": name}).json()
            operation = "created"
        except ScimConflict:
            run.listing.forget(endpoint)
            found = find_resource(scim, endpoint, "displayName", name, kind="groups", listing=run.listing, params=lean)
            if found is None:
                raise
            resource = found
    group, _ = TargetGroup.objects.update_or_create(
        integration=action.integration,
        remote_id=str(resource["id"]),
        defaults={
            "display_name": str(resource.get("displayName", name))[:255],
            "resource": stored_group_resource(resource),
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
    """Queue again what a vanished worker left running, and actions whose message was lost.

    A message is lost when no worker claimed its action within the lease: a retry past its
    time, an action queued long ago, or one left approved but not queued (approving queues in
    the same transaction now; an action approved before that, by a process that died between
    its two commits, is queued here).
    """
    from provisioning.services import (
        ActionRefused,
        _enqueue_on_commit,
        action_transition,
        actions_sent_together,
    )

    now = timezone.now()
    stale = now - timedelta(seconds=settings.ACTION_LEASE_SECONDS)
    waiting = Action.objects.filter(
        lease_expired(now)
        | Q(state=ActionState.QUEUED, next_attempt_at__lt=now - timedelta(seconds=60))
        | Q(state=ActionState.QUEUED, next_attempt_at__isnull=True, updated_at__lt=stale)
    )
    approved = Action.objects.filter(state=ActionState.APPROVED, updated_at__lt=stale)
    count = 0
    with transaction.atomic(), actions_sent_together():
        for action in waiting:
            _enqueue_on_commit(action)
            count += 1
        for action in approved:
            try:
                action_transition(action, ActionState.QUEUED, note="queued by recovery after approval")
            except ActionRefused:  # cancelled or queued meanwhile
                continue
            count += 1
    return count
