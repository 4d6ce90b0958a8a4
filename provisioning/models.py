"""Actions: every change the console makes in an application, with its timeline and SCIM log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from integrations.models import Integration, TargetGroup, TargetUser


class ActionType(models.TextChoices):
    SYNC_IDENTITIES = "SYNC_IDENTITIES", "Sync identity"
    MANAGE_RELATIONSHIPS = "MANAGE_RELATIONSHIPS", "Manage group members"
    DEPROVISION_IDENTITY = "DEPROVISION_IDENTITY", "Deprovision identity"
    DELETE_IDENTITY = "DELETE_IDENTITY", "Delete identity"
    CREATE_ENTITLEMENT = "CREATE_ENTITLEMENT", "Create group"


class ActionState(models.TextChoices):
    PENDING_APPROVAL = "pending_approval", "Waiting for approval"
    APPROVED = "approved", "Approved"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


# An action still to be carried out: waiting for approval, approved, queued or running.
IN_FLIGHT_STATES = [ActionState.PENDING_APPROVAL, ActionState.APPROVED, ActionState.QUEUED, ActionState.RUNNING]

# The only moves an action can make. Anything else is refused with a clear error.
TRANSITIONS: dict[str, set[str]] = {
    ActionState.PENDING_APPROVAL: {ActionState.APPROVED, ActionState.REJECTED, ActionState.CANCELLED},
    ActionState.APPROVED: {ActionState.QUEUED, ActionState.CANCELLED},
    ActionState.QUEUED: {ActionState.RUNNING, ActionState.CANCELLED},
    ActionState.RUNNING: {ActionState.SUCCEEDED, ActionState.FAILED, ActionState.QUEUED},
    ActionState.FAILED: {ActionState.QUEUED},
    ActionState.SUCCEEDED: set(),
    ActionState.REJECTED: set(),
    ActionState.CANCELLED: set(),
}
FINISHED = {ActionState.SUCCEEDED, ActionState.FAILED, ActionState.REJECTED, ActionState.CANCELLED}


class ApprovalPolicy(models.Model):
    """Per integration and action type: automatic, or approval required.

    Without a row, DELETE_IDENTITY requires approval and the rest run automatically.
    """

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="approval_policies")
    action_type = models.CharField(max_length=24, choices=ActionType.choices)
    requires_approval = models.BooleanField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["integration", "action_type"], name="approval_policy_unique")]

    def __str__(self) -> str:
        return f"{self.integration_id} {self.action_type}: {'approval' if self.requires_approval else 'automatic'}"


class Batch(models.Model):
    """Many actions requested together: one progress, one decision when held, one undo."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="batches")
    action_type = models.CharField(max_length=24, choices=ActionType.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="batches_requested"
    )
    created_at = models.DateTimeField(default=timezone.now)
    held_reason = models.TextField(blank=True, help_text="Why the whole batch waits for approval (mass change).")
    undo_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="undone_by")

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return f"batch {self.pk}: {self.title}"

    @property
    def title(self) -> str:
        """What it does, as people read it: an undo is the undo, not the type of its first action."""
        if self.undo_of_id:
            return f"Undo of batch {self.undo_of_id}"
        return self.get_action_type_display()


# The Actions list's sorts that are not a field (provisioning.tables), each served by an index
# on the same expression then the id below; each is total (never NULL), as keyset paging needs.
# Who requested it, by their id (0: the system): grouped by requester, not by their name.
ACTION_REQUESTER_SORT = Coalesce(F("requested_by"), Value(0))
# When it finished; one not finished yet sorts after every finished one.
NOT_FINISHED = datetime(9999, 12, 31, tzinfo=UTC)
ACTION_FINISHED_SORT = Coalesce(F("finished_at"), Value(NOT_FINISHED, output_field=models.DateTimeField()))


class Action(models.Model):
    """One change in one integration, from request to outcome."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="actions")
    action_type = models.CharField("type", max_length=24, choices=ActionType.choices)
    state = models.CharField(max_length=20, choices=ActionState.choices, db_index=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="actions_requested"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="actions_decided"
    )
    decision_comment = models.TextField(blank=True)
    # What the action is about: a console person (sync), an account, a group.
    person = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="actions"
    )
    target_user = models.ForeignKey(
        TargetUser, null=True, blank=True, on_delete=models.SET_NULL, related_name="actions"
    )
    target_group = models.ForeignKey(
        TargetGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="actions"
    )
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.SET_NULL, related_name="actions")
    subject = models.CharField(max_length=300, help_text="Who or what, as people read it.")
    parameters = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    # Why an automated action exists: its text as people read it, and the lifecycle policy and
    # birthright mappings behind it (``{"text": ..., "policy": id, "mappings": [ids]}``); empty
    # for an action someone asked for. The identity event it answers is kept as a key too: the
    # revocation latency runs from it.
    cause = models.JSONField(default=dict, blank=True)
    cause_event = models.ForeignKey(
        "accounts.IdentityEvent", null=True, blank=True, on_delete=models.SET_NULL, related_name="actions"
    )
    priority = models.PositiveSmallIntegerField(default=5, help_text="Lower runs first.")
    attempts = models.PositiveIntegerField(default=0, help_text="Attempts since it was requested or last retried.")
    attempts_total = models.PositiveIntegerField(
        default=0, help_text="Every attempt ever, retries included: numbers the call log."
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="Not before then (backoff).")
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # The running worker's claim: its token, and until when it holds (renewed as it works).
    lease_token = models.CharField(max_length=32, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["integration", "state"], name="action_integration_state_idx"),
            # The Actions list's sorts besides created_at (console.core.tables: the field, then the id).
            models.Index(fields=["action_type", "id"], name="action_type_sort_idx"),
            models.Index(fields=["state", "id"], name="action_state_sort_idx"),
            models.Index(fields=["subject", "id"], name="action_subject_sort_idx"),
            # By integration: grouped by the integration's id, not ordered by its name.
            models.Index(fields=["integration", "id"], name="action_integration_sort_idx"),
            models.Index(ACTION_REQUESTER_SORT, F("id"), name="action_requester_sort_idx"),
            models.Index(ACTION_FINISHED_SORT, F("id"), name="action_finished_sort_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_type_display()} {self.subject}"

    @property
    def accounts_touched(self) -> int:
        """How many accounts in the application the action changes (its confirmation says so)."""
        if self.action_type == ActionType.MANAGE_RELATIONSHIPS:
            return len(self.parameters.get("add") or []) + len(self.parameters.get("remove") or [])
        return 0 if self.action_type == ActionType.CREATE_ENTITLEMENT else 1


def lease_expired(now: datetime) -> Q:
    """Running actions whose worker stopped renewing its claim (it died, or hangs)."""
    stale = now - timedelta(seconds=settings.ACTION_LEASE_SECONDS)
    return Q(state=ActionState.RUNNING) & (
        Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True, started_at__lt=stale)
    )


class ActionEvent(models.Model):
    """The timeline of an action: each state change, who made it and why."""

    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    from_state = models.CharField(max_length=20, blank=True)
    to_state = models.CharField(max_length=20)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.from_state or '∅'} → {self.to_state}"


class ScimCall(models.Model):
    """One SCIM request an action made and what came back, secrets removed and long bodies cut."""

    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="calls")
    attempt = models.PositiveIntegerField()
    at = models.DateTimeField(default=timezone.now)
    method = models.CharField(max_length=8)
    url = models.CharField(max_length=1000)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    request_body = models.TextField(blank=True)
    response_body = models.TextField(blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.method} {self.url} {self.status}"


class IntegrationThrottle(models.Model):
    """The shared state behind an integration's rate limit and concurrency, one row each.

    Every worker process reserves its requests here (a row lock serializes them), so the
    limit holds for all workers together, not per process.
    """

    integration = models.OneToOneField(Integration, on_delete=models.CASCADE, primary_key=True, related_name="+")
    # Generic cell rate algorithm: the theoretical arrival time of the next request.
    next_free_at = models.FloatField(default=0.0)

    def __str__(self) -> str:
        return f"throttle of {self.integration_id}"


class AccessRequest(models.Model):
    """Someone asks that an account join or leave a group; an approver decides.

    Approval makes the MANAGE_RELATIONSHIPS action that carries it out. Access added may
    end (``ends_at``): then another such action removes the membership, and the request
    is ``ended`` (``provisioning.access_requests``).
    """

    class Operation(models.TextChoices):
        ADD = "add", "Add to the group"
        REMOVE = "remove", "Remove from the group"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        CANCELLED = "cancelled", "Cancelled"
        ENDED = "ended", "Access ended"

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="access_requests")
    target_user = models.ForeignKey(TargetUser, on_delete=models.CASCADE, related_name="access_requests")
    target_group = models.ForeignKey(TargetGroup, on_delete=models.CASCADE, related_name="access_requests")
    operation = models.CharField(max_length=6, choices=Operation.choices)
    justification = models.TextField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING, db_index=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="access_requests"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision_comment = models.TextField(blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    action = models.OneToOneField(
        Action, null=True, blank=True, on_delete=models.SET_NULL, related_name="access_request"
    )
    created_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(null=True, blank=True, help_text="The access ends then: the membership is removed.")
    ended_at = models.DateTimeField(null=True, blank=True, help_text="When the console ended the access.")
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who ended it early; nobody when it ended at its end date.",
    )
    end_action = models.OneToOneField(
        Action, null=True, blank=True, on_delete=models.SET_NULL, related_name="ended_access_request"
    )
    end_note = models.TextField(
        blank=True, help_text="Why no removal was sent, or why the end could not be carried out yet."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Beat's look-up of access due to end: approved, oldest end first.
            models.Index(fields=["state", "ends_at"], name="access_request_due_idx"),
        ]

    def __str__(self) -> str:
        verb = "add" if self.operation == self.Operation.ADD else "remove"
        return (
            f"{verb} {self.target_user.user_name} {'to' if verb == 'add' else 'from'} {self.target_group.display_name}"
        )


class AttributeTransformer(models.Model):
    """One row of an integration's mapping from a person to the SCIM user sent for them.

    Rows apply in order; a later row for the same attribute wins.
    """

    class Source(models.TextChoices):
        IDENTITY_ATTRIBUTE = "identity_attribute", "Identity attribute"
        STATIC_VALUE = "static_value", "Static value"
        TEMPLATE = "template", "Template"

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="transformers")
    position = models.PositiveIntegerField(default=0)
    attribute_name = models.CharField(
        max_length=400, help_text="A core name (user_name, emails, given_name …) or an extension's normalized name."
    )
    source = models.CharField(max_length=20, choices=Source.choices)
    value = models.TextField(
        help_text="The identity attribute, the static value, or a template such as {given_name}.{family_name}."
    )

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return f"{self.attribute_name} ← {self.get_source_display()} {self.value}"


class Revocation(models.Model):
    """What a deprovision left in the application, read back after it: one per deprovision.

    The request and the answer are the action's call log for ``attempt`` (already redacted:
    referenced, never copied); ``latency_seconds`` runs from ``requested_at`` to the read-back:
    the identity event's time for a deprovision lifecycle automation asked for because of one
    (a leaver deactivated at the identity provider), otherwise the action's request.
    """

    class Outcome(models.TextChoices):
        VERIFIED = "verified", "Verified"
        MISMATCH = "mismatch", "Mismatch"
        UNVERIFIED = "unverified", "Could not verify"

    class MeasuredFrom(models.TextChoices):
        IDENTITY_EVENT = "identity event", "The identity event"
        REQUEST = "request", "The request"

    action = models.OneToOneField(Action, on_delete=models.CASCADE, related_name="revocation")
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="revocations")
    target_user = models.ForeignKey(
        TargetUser, null=True, blank=True, on_delete=models.SET_NULL, related_name="revocations"
    )
    account = models.CharField(max_length=300, help_text="The account's user name, as the action named it.")
    person = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="revocations"
    )
    requested_at = models.DateTimeField(help_text="Where the latency starts: see measured_from.")
    measured_from = models.CharField(
        max_length=14,
        choices=MeasuredFrom.choices,
        default=MeasuredFrom.REQUEST,
        help_text="What requested_at is: the identity event that caused the deprovision, or its request.",
    )
    attempt = models.PositiveIntegerField(help_text="The attempt whose calls carried the request and its answer.")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reason = models.TextField(blank=True, help_text="What the read-back showed, in words.")
    verified_at = models.DateTimeField(default=timezone.now)
    latency_seconds = models.FloatField(help_text="From requested_at (see measured_from) to the read-back.")

    class Meta:
        ordering = ["-verified_at", "-id"]
        indexes = [
            # The latency of an integration over a period, and the Revocations list's sorts.
            models.Index(fields=["integration", "verified_at"], name="revocation_latency_idx"),
            models.Index(fields=["verified_at", "id"], name="revocation_verified_sort_idx"),
            models.Index(fields=["account", "id"], name="revocation_account_sort_idx"),
            models.Index(fields=["outcome", "id"], name="revocation_outcome_sort_idx"),
            models.Index(fields=["latency_seconds", "id"], name="revocation_latency_sort_idx"),
        ]

    def __str__(self) -> str:
        return f"revocation of {self.account}: {self.get_outcome_display()}"
