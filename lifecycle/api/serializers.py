"""API shapes of lifecycle automation: policies (with who is in scope), plans, mappings."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from lifecycle.models import BirthrightMapping, LifecyclePolicy, PlannedChange, SensitiveGroup
from lifecycle.scope import mapping_text, people_in_scope, scope_text
from lifecycle.services import POLICY_FIELDS, SCOPE_SAMPLE
from provisioning.models import ActionType


class ConditionSerializer(serializers.Serializer[dict[str, Any]]):
    attribute = serializers.CharField(help_text="department, division, cost_center, organization, title, …")
    operator = serializers.CharField(help_text="equals, in or starts_with")
    values = serializers.ListField(child=serializers.CharField())


class LifecyclePolicySerializer(serializers.ModelSerializer[LifecyclePolicy]):
    """A policy as stored, with who its scope covers now."""

    teams: Any = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    conditions = ConditionSerializer(many=True, read_only=True)
    updated_by: Any = serializers.SlugRelatedField(slug_field="username", read_only=True)
    scope_count = serializers.SerializerMethodField()
    scope_sample = serializers.SerializerMethodField()
    scope_text = serializers.SerializerMethodField()

    class Meta:
        model = LifecyclePolicy
        fields = [
            "id",
            "integration",
            *POLICY_FIELDS,
            "updated_at",
            "updated_by",
            "scope_count",
            "scope_sample",
            "scope_text",
        ]
        read_only_fields = fields

    def get_scope_count(self, policy: LifecyclePolicy) -> int:
        return people_in_scope(policy).count()

    def get_scope_sample(self, policy: LifecyclePolicy) -> list[str]:
        """The first user names in scope, by name."""
        return list(people_in_scope(policy).order_by("username").values_list("username", flat=True)[:SCOPE_SAMPLE])

    def get_scope_text(self, policy: LifecyclePolicy) -> str:
        return scope_text(policy)


class PolicyWriteSerializer(serializers.Serializer[dict[str, Any]]):
    """What a create or PATCH takes (the services check it: a 400 names the field at fault)."""

    integration = serializers.IntegerField(required=False, help_text="On create only: the integration's id.")
    mode = serializers.ChoiceField(choices=["off", "simulate", "on"], required=False)
    all_active_people = serializers.BooleanField(required=False)
    teams = serializers.ListField(child=serializers.IntegerField(), required=False)
    conditions = ConditionSerializer(many=True, required=False)
    pilot_team = serializers.IntegerField(required=False, allow_null=True)
    on_leaving_scope = serializers.ChoiceField(choices=["deprovision", "remove_groups"], required=False)
    retention_days = serializers.IntegerField(required=False, allow_null=True, min_value=1)


class ScopePreviewSerializer(serializers.Serializer[dict[str, Any]]):
    count = serializers.IntegerField()
    sample = serializers.ListField(child=serializers.CharField())
    text = serializers.CharField()


class PlannedChangeSerializer(serializers.ModelSerializer[PlannedChange]):
    """One change a simulating policy would make, and why."""

    person_name = serializers.SerializerMethodField()
    action_label = serializers.SerializerMethodField()

    class Meta:
        model = PlannedChange
        fields = [
            "id",
            "person",
            "person_name",
            "action_type",
            "action_label",
            "subject",
            "parameters",
            "cause",
            "planned_at",
        ]
        read_only_fields = fields

    def get_person_name(self, change: PlannedChange) -> str:
        return change.person.username if change.person is not None else ""

    def get_action_label(self, change: PlannedChange) -> str:
        return action_label(change.action_type)


def action_label(action_type: str) -> str:
    return str(ActionType(action_type).label) if action_type in ActionType.values else action_type


class BirthrightMappingSerializer(serializers.ModelSerializer[BirthrightMapping]):
    groups: Any = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    conditions = ConditionSerializer(many=True, read_only=True)
    state_label = serializers.CharField(source="get_state_display", read_only=True)
    created_by: Any = serializers.SlugRelatedField(slug_field="username", read_only=True)
    decided_by: Any = serializers.SlugRelatedField(slug_field="username", read_only=True)
    text = serializers.SerializerMethodField()

    class Meta:
        model = BirthrightMapping
        fields = [
            "id",
            "integration",
            "team",
            "conditions",
            "groups",
            "state",
            "state_label",
            "text",
            "created_by",
            "created_at",
            "decided_by",
            "decided_at",
        ]
        read_only_fields = fields

    def get_text(self, mapping: BirthrightMapping) -> str:
        return mapping_text(mapping)


class MappingWriteSerializer(serializers.Serializer[dict[str, Any]]):
    integration = serializers.IntegerField()
    team = serializers.IntegerField(required=False, allow_null=True)
    conditions = ConditionSerializer(many=True, required=False)
    groups = serializers.ListField(child=serializers.IntegerField())


class SensitiveSerializer(serializers.Serializer[dict[str, Any]]):
    group = serializers.IntegerField(read_only=True)
    sensitive = serializers.BooleanField()
    marked_by = serializers.CharField(read_only=True, allow_null=True)
    marked_at = serializers.DateTimeField(read_only=True, allow_null=True)


def sensitive_body(group_id: int) -> dict[str, Any]:
    mark = SensitiveGroup.objects.select_related("marked_by").filter(group_id=group_id).first()
    return {
        "group": group_id,
        "sensitive": mark is not None,
        "marked_by": mark.marked_by.username if mark and mark.marked_by else None,
        "marked_at": mark.marked_at if mark else None,
    }
