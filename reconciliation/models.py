"""Reconciliation: where an application disagrees with what the console's policies want.

After every extraction (and on demand) the drift of each integration is computed
(``reconciliation.drift``) and stored as open ``DriftItem`` rows, one per account, person or
membership that disagrees; each keeps when it was first seen, so the report says since when.
An item that no longer disagrees is deleted. Each computation is a ``DriftRun`` with its
counts per category, for the report's chart.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from integrations.models import ExtractionRun, Integration, TargetGroup, TargetUser


class DriftCategory(models.TextChoices):
    MISSING = "missing", "Missing account"
    ORPHAN = "orphan", "Orphan account"
    SHOULD_BE_INACTIVE = "should_be_inactive", "Should be inactive"
    SHOULD_BE_ACTIVE = "should_be_active", "Should be active"
    ATTRIBUTE = "attribute", "Attribute drift"
    MISSING_MEMBERSHIP = "missing_membership", "Missing membership"
    UNEXPLAINED_MEMBERSHIP = "unexplained_membership", "Unexplained membership"


class DriftItem(models.Model):
    """One open disagreement between an application and what the console wants of it."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="drift_items")
    category = models.CharField(max_length=24, choices=DriftCategory.choices)
    # What the item is about, stable from one computation to the next (its identity within the
    # integration and category): "account:<target user id>", "person:<person id>",
    # "membership:<group id>:<member remote id>".
    key = models.CharField(max_length=400)
    target_user = models.ForeignKey(
        TargetUser, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    person = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    group = models.ForeignKey(
        TargetGroup, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    # The rule that wants the change, in words ("policy: in scope (team Sales)", "mapping 4: team
    # Sales → Engineering", "no person owns it").
    rule = models.CharField(max_length=500)
    # What differs, for the report: for attribute drift {"attributes": [{"path", "application",
    # "wanted"}]}; otherwise what helps (user names, group names).
    detail = models.JSONField(default=dict, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now, help_text="Drifted since then.")
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["integration", "category", "key"], name="drift_item_unique"),
        ]
        indexes = [
            models.Index(fields=["integration", "category", "id"], name="drift_item_keyset_idx"),
            # The Drift tab's "since" sort, one index range per page.
            models.Index(fields=["integration", "first_seen_at", "id"], name="drift_item_since_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.category} {self.key}"


class DriftRun(models.Model):
    """One drift computation of an integration, with its counts per category."""

    class Trigger(models.TextChoices):
        EXTRACTION = "extraction", "After an extraction"
        ON_DEMAND = "on_demand", "On demand"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        # Not computed: another computation of the integration was running (``error`` says which).
        SKIPPED = "skipped", "Skipped"

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="drift_runs")
    extraction_run = models.ForeignKey(
        ExtractionRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="drift_runs"
    )
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SUCCEEDED)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # {category: open items after this computation}, every category present.
    counts = models.JSONField(default=dict)
    # What the computation did not report, and why: {"accounts_in_conflict", "people_in_conflict"
    # (a correlation conflict, or a person with several accounts here: the admin resolves it first),
    # "in_flight" (an action still in flight will do it), "transformer_errors" (the person's sync
    # would be refused)}; a key is present only when its count is not zero.
    left_out = models.JSONField(default=dict, blank=True)
    # Why it failed, or why it was skipped, in words.
    error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["integration", "-started_at"], name="drift_run_recent_idx")]
        constraints = [
            # The lock: one computation of an integration at a time. Creating a second running run
            # fails on this index, on SQLite and PostgreSQL alike, however close together they start.
            models.UniqueConstraint(
                fields=["integration"], condition=models.Q(status="running"), name="drift_run_one_running"
            ),
        ]

    def __str__(self) -> str:
        return f"drift of {self.integration_id} at {self.started_at:%Y-%m-%d %H:%M}"


class Plan(models.Model):
    """The open drift of an integration turned into the actions that would resolve it.

    Each ``PlanItem`` is one proposed action with the SCIM requests it would send (the real
    executor's dry run). An approver applies the items they tick; applied items become
    batches of ordinary actions (``reconciliation.plans``). A plan made by auto-remediation
    has no ``created_by``. A plan of more drift items than ``PLAN_BACKGROUND_AFTER`` is made by a
    worker: it is "being made" until then.
    """

    class State(models.TextChoices):
        READY = "ready", "Ready"
        MAKING = "making", "Being made"
        FAILED = "failed", "Failed"

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="plans")
    # A large plan is made by a worker: "making" until its items are all there, then "ready";
    # "failed" (with ``error``) keeps no item.
    state = models.CharField(max_length=8, choices=State.choices, default=State.READY)
    expected = models.PositiveIntegerField(default=0, help_text="The drift items to plan, when it was asked for.")
    planned = models.PositiveIntegerField(default=0, help_text="The items made so far (all of them once ready).")
    error = models.TextField(blank=True, help_text="Why it could not be made.")
    # The lease of the worker making it, renewed at each chunk: another delivery of its task
    # takes the making over only once this is older than ``plans.BUILD_LEASE_SECONDS``.
    building_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    drift_run = models.ForeignKey(DriftRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="plans")
    categories = models.JSONField(default=list, help_text="The drift categories the plan covers.")
    automatic = models.BooleanField(default=False, help_text="Made and applied by auto-remediation.")
    # The SCIM requests its items would send, and how long at the integration's rate limit then.
    requests = models.PositiveIntegerField(default=0)
    rate_per_second = models.FloatField(default=0)
    burst = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["integration", "-id"], name="plan_integration_idx")]

    def __str__(self) -> str:
        return f"plan {self.pk}"


class PlanItem(models.Model):
    """One proposed action of a plan: what it resolves, the action, and its requests."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="items")
    # The drift item it resolves; kept by category and key too, so a plan says which one it was
    # after the drift item is gone (resolved: the item is stale).
    drift_item = models.ForeignKey(DriftItem, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    category = models.CharField(max_length=24, choices=DriftCategory.choices)
    key = models.CharField(max_length=400)
    rule = models.CharField(max_length=500, blank=True)
    action_type = models.CharField(max_length=24)
    subject = models.CharField(max_length=300)
    person = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target_user = models.ForeignKey(
        TargetUser, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    target_group = models.ForeignKey(
        TargetGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    parameters = models.JSONField(default=dict, blank=True, help_text="What the action is requested with.")
    # [{"method", "path", "body"?, "note"?, "label"?}]: the requests of the executor's dry run.
    requests = models.JSONField(default=list, blank=True)
    problem = models.TextField(blank=True, help_text="Why the action cannot be requested (nothing to apply).")
    action = models.OneToOneField(
        "provisioning.Action", null=True, blank=True, on_delete=models.SET_NULL, related_name="plan_item"
    )
    applied_at = models.DateTimeField(null=True, blank=True)
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["plan", "category", "id"]

    def __str__(self) -> str:
        return f"{self.action_type} {self.subject}"

    @property
    def action_label(self) -> str:
        from provisioning.models import ActionType

        return ActionType(self.action_type).label if self.action_type in ActionType.values else self.action_type

    @property
    def deletes(self) -> bool:
        """A hard delete: applied only when an approver ticks this item itself."""
        return self.action_type == "DELETE_IDENTITY"


class AutoRemediation(models.Model):
    """Which drift categories an integration's lifecycle policy resolves by itself.

    Orphans are never eligible: an account nobody owns may be a service account or a
    correlation the console got wrong, and its remedy removes access (or the account) for good.
    """

    policy = models.OneToOneField(
        "lifecycle.LifecyclePolicy", on_delete=models.CASCADE, related_name="auto_remediation"
    )
    categories = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"auto-remediation of {self.policy_id}: {', '.join(self.categories) or 'none'}"


# The categories auto-remediation may resolve (every one but orphans: see AutoRemediation).
AUTO_ELIGIBLE = [c for c in DriftCategory.values if c != DriftCategory.ORPHAN]
