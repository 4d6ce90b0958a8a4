"""Carrying out an action: exactly the SCIM calls of DESIGN.md, safe to run twice.

A worker claims a queued action with a conditional update, so only one runs it. Every
call it makes is logged (secrets never are: the Authorization header is not part of the
log, and credential-like attributes are redacted). Creation looks before it leaps and
adopts on 409, so a worker killed between the POST and the record leaves no duplicate:
the next attempt finds the account and updates it.

What each action type sends is its own module's (``provisioning/action_types``); this
module is what they share: claims, leases, the rate limit, retries and the call log.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from console.core.bulk import insert_rows, update_rows_returning, upsert_objects
from console.core.redaction import integration_redactor, redact
from integrations.correlation import target_users_link_by_action
from integrations.extraction import fingerprint, target_user_fields
from integrations.history import account_changes_record, account_states
from integrations.models import ChangeSource, Integration, TargetUser
from integrations.scim_client import CallRecord, ScimClient, ScimClientError, ScimTransient
from provisioning.action_types import KINDS, action_type_of
from provisioning.action_types.base import LeaseLost, NoLongerAllowed
from provisioning.errors import ActionRefused
from provisioning.lookups import Listing
from provisioning.models import Action, ActionEvent, ActionState, ScimCall, lease_expired
from provisioning.signals import actions_succeeded
from provisioning.throttle import reserve_many, running_count, running_locked, slots_to_reserve

logger = logging.getLogger(__name__)

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


def _still_allowed(action: Action) -> None:
    """What every action type needs of the integration when it runs (a type's own, its executor checks)."""
    integration = action.integration
    if not integration.enabled:
        raise NoLongerAllowed(f"{integration.name} was disabled after this action was requested.")
    if not integration.provisioning_enabled:
        raise NoLongerAllowed(f"Provisioning was turned off for {integration.name} after this action was requested.")


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
    console/core/redaction.py), then long bodies cut.

    Bodies are kept as compact JSON (the encoder's C path; the action page indents them).
    """
    secrets = call.redactor
    response_text = call.response_text
    with contextlib.suppress(ValueError):  # not JSON: kept as text
        response_text = json.dumps(redact(json.loads(response_text), secrets=secrets)) if response_text else ""
    return [
        datetime.fromtimestamp(call.started_at, tz=UTC),
        call.method,
        redact(call.url, secrets=secrets)[:1000],
        call.status,
        call.duration_ms,
        _cut(json.dumps(redact(call.request_body, secrets=secrets))) if call.request_body else "",
        _cut(redact(response_text, secrets=secrets)),
        redact(call.error, secrets=secrets)[:2000],
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
    """With one slot left (``running`` others hold the rest), a leaver's ready action (a
    deprovision) of the same integration goes before a claim of other work."""
    leavers = [kind.action_type for kind in KINDS.values() if kind.leaver]
    others = [a for a in claimed if a.action_type not in leavers]
    if not others:
        return False
    integration = others[0].integration
    if running + 1 < max(1, integration.max_concurrency):
        return False
    return (
        Action.objects.filter(integration=integration, state=ActionState.QUEUED, action_type__in=leavers)
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
        """The console's picture of the application, updated with the action's outcome (at the next write)."""
        self.accounts[action.pk] = resource

    def update_picture(self, change: Callable[[], None]) -> None:
        """The console's picture brought in line with what an action did, at once."""
        change()

    def keep_record(self, write: Callable[[], object]) -> None:
        """A record of what an action found, written at once (a failure that follows keeps it)."""
        write()

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
        succeeded = [action for action, _ in done]
        transaction.on_commit(lambda: actions_succeeded.send(sender=Action, actions=succeeded))

    def release(self, action: Action) -> None:
        """The action's outcome was written apart (a failure, a retry): it is no longer this run's."""
        self.held.discard(action.pk)


def _remember_users(actions: list[Action], resources: dict[int, dict[str, Any]]) -> None:
    """Upsert the accounts actions found or made, in one statement, point each action at its own,
    and tie the accounts of actions for a person to that person (integrations.correlation)."""
    by_action = {a.pk: a for a in actions}
    integration_id = actions[0].integration_id
    now = timezone.now()
    rows: dict[str, TargetUser] = {}  # one row per account, though two actions may touch it
    for resource in resources.values():
        fields = {**target_user_fields(resource, fingerprint(resource)), "last_seen_at": now}
        rows[str(resource["id"])] = TargetUser(integration_id=integration_id, remote_id=str(resource["id"]), **fields)
    # The accounts found (not made) before their rewrite, for the access history.
    before = account_states(TargetUser.objects.filter(integration_id=integration_id, remote_id__in=list(rows)))
    upsert_objects(
        list(rows.values()),
        unique_fields=["integration", "remote_id"],
        update_fields=[*target_user_fields({}, ""), "last_seen_at"],
    )
    owners: dict[int, int] = {}  # account -> the person the action made or found it for
    by_account: dict[int, int] = {}  # account -> the action
    for action_id, resource in resources.items():
        action = by_action[action_id]
        action.target_user = rows[str(resource["id"])]  # recorded with the outcome
        by_account[action.target_user.pk] = action_id
        if action.person_id is not None:
            owners[action.target_user.pk] = action.person_id
    if before:  # an account brought back, or made active or inactive, by an action
        after = account_states(TargetUser.objects.filter(pk__in=list(before)))
        for pk, state in before.items():
            account_changes_record(
                integration_id=integration_id,
                before={pk: state},
                after=after,
                source=ChangeSource.ACTION,
                at=now,
                action_id=by_account.get(pk),
            )
    target_users_link_by_action(links=owners, actions=by_account)


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
            _prepare(run, scim)
        for action in taken.actions:
            outcomes[action.pk] = _attempt(run, action, scim)
        run.write()
        for action in taken.actions:
            if action.state == ActionState.RUNNING:  # a success whose claim was lost before it was written
                outcomes[action.pk] = Outcome(None)
    return [outcomes.get(pk, Outcome(None)) for pk in action_ids]


def _prepare(run: BatchRun, scim: ScimClient) -> None:
    """What each action type does once for its actions claimed together, before they run."""
    by_type: dict[str, list[Action]] = {}
    for action in run.actions:
        by_type.setdefault(action.action_type, []).append(action)
    for action_type, actions in by_type.items():
        prepare = action_type_of(action_type).prepare_batch
        if prepare is not None:
            prepare(run, scim, actions)


def _attempt(run: BatchRun, action: Action, scim: ScimClient) -> Outcome:
    """One attempt of one action of the run. A success is written with the run's next write."""
    if action.pk not in run.held:  # another worker took it over while this one ran the batch
        return Outcome(None)
    scim.recorder = run.recorder(action)
    scim.before_request = run.before_each_request(action)
    try:
        _still_allowed(action)
        result = action_type_of(action.action_type).execute(action, scim, run)
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
    error = redact(str(exc), secrets=integration_redactor(action.integration))
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
            last = redact(error, secrets=integration_redactor(integration))[:500]
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
        error = redact(error, secrets=integration_redactor(action.integration))
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
    if state == ActionState.SUCCEEDED:
        actions_succeeded.send(sender=Action, actions=[action])
    return action


def actions_recover() -> int:
    """Queue again what a vanished worker left running, and actions whose message was lost.

    A message is lost when no worker claimed its action within the lease: a retry past its
    time, an action queued long ago, or one left approved but not queued (approving queues in
    the same transaction now; an action approved before that, by a process that died between
    its two commits, is queued here).
    """
    from provisioning.services import _enqueue_on_commit, action_transition, actions_sent_together

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
