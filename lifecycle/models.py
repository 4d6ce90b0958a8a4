"""Lifecycle automation: what each integration does by itself when people join, move and leave.

A policy per integration says who is in scope and how automation behaves (off, simulate, on);
birthright mappings say which groups a team (or a condition on people's attributes) grants;
grants remember which memberships automation made, so only those are ever taken away.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from console.accounts.models import Person, Team
from integrations.models import Integration, TargetGroup

# The person attributes a scope condition or a mapping can test.
CONDITION_ATTRIBUTES = {
    "department": "Department",
    "division": "Division",
    "cost_center": "Cost center",
    "organization": "Organization",
    "title": "Title",
    "user_type": "User type",
    "employee_number": "Employee number",
}
CONDITION_OPERATORS = {"equals": "equals", "in": "is one of", "starts_with": "starts with"}


class PolicyMode(models.TextChoices):
    OFF = "off", "Off"
    SIMULATE = "simulate", "Simulate (plan and record, send nothing)"
    ON = "on", "On"


class LeavingScope(models.TextChoices):
    DEPROVISION = "deprovision", "Deprovision the account"
    REMOVE_GROUPS = "remove_groups", "Only remove the birthright groups"


class LifecyclePolicy(models.Model):
    """How one integration follows the people the identity provider pushes."""

    integration = models.OneToOneField(Integration, on_delete=models.CASCADE, related_name="lifecycle_policy")
    mode = models.CharField(max_length=10, choices=PolicyMode.choices, default=PolicyMode.OFF)
    # Scope: everyone active, or the members of the chosen teams; narrowed by every condition,
    # and by the pilot team when one is set.
    all_active_people = models.BooleanField(default=False)
    teams = models.ManyToManyField(Team, blank=True, related_name="+")
    conditions = models.JSONField(
        default=list, blank=True, help_text='[{"attribute": "department", "operator": "in", "values": ["Sales"]}]'
    )
    pilot_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    on_leaving_scope = models.CharField(max_length=16, choices=LeavingScope.choices, default=LeavingScope.DEPROVISION)
    retention_days = models.PositiveIntegerField(
        null=True, blank=True, default=30, help_text="Days after a leaver's deprovision until the delete; empty: never."
    )
    # The last identity event this policy has acted on: events after it are still to do.
    event_cursor = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "lifecycle policies"

    def __str__(self) -> str:
        return f"lifecycle policy of {self.integration}"


class MappingState(models.TextChoices):
    ACTIVE = "active", "In effect"
    PENDING = "pending", "Waiting for a second admin"
    REJECTED = "rejected", "Rejected"


class BirthrightMapping(models.Model):
    """The groups of an integration that a team's members (or the people a condition selects) get."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="birthright_mappings")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    conditions = models.JSONField(default=list, blank=True)
    groups = models.ManyToManyField(TargetGroup, related_name="+")
    state = models.CharField(max_length=10, choices=MappingState.choices, default=MappingState.ACTIVE)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"mapping {self.pk}"


class SensitiveGroup(models.Model):
    """A group whose birthright mappings take effect only once a second admin approves them."""

    group = models.OneToOneField(TargetGroup, on_delete=models.CASCADE, related_name="sensitivity")
    marked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    marked_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"group {self.group_id} is sensitive"


class Grant(models.Model):
    """A membership automation added: the person is in the group because of these mappings."""

    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="birthright_grants")
    group = models.ForeignKey(TargetGroup, on_delete=models.CASCADE, related_name="+")
    mapping_ids = models.JSONField(default=list)
    granted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["person", "group"], name="lifecycle_grant_unique")]

    def __str__(self) -> str:
        return f"{self.person_id} in group {self.group_id}"


class PlannedChange(models.Model):
    """What a simulating policy would have done: the action it would have requested, and why."""

    policy = models.ForeignKey(LifecyclePolicy, on_delete=models.CASCADE, related_name="planned_changes")
    person = models.ForeignKey(Person, null=True, on_delete=models.SET_NULL, related_name="+")
    action_type = models.CharField(max_length=24)
    subject = models.CharField(max_length=300)
    parameters = models.JSONField(default=dict, blank=True)
    cause = models.CharField(max_length=500)
    planned_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-planned_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action_type} {self.subject}"
