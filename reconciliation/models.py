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
        indexes = [models.Index(fields=["integration", "category", "id"], name="drift_item_keyset_idx")]

    def __str__(self) -> str:
        return f"{self.category} {self.key}"


class DriftRun(models.Model):
    """One drift computation of an integration, with its counts per category."""

    class Trigger(models.TextChoices):
        EXTRACTION = "extraction", "After an extraction"
        ON_DEMAND = "on_demand", "On demand"

    class Status(models.TextChoices):
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

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
    error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["integration", "-started_at"], name="drift_run_recent_idx")]

    def __str__(self) -> str:
        return f"drift of {self.integration_id} at {self.started_at:%Y-%m-%d %H:%M}"
