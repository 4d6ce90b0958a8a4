"""The shapes of ``/api/v1/actions/``, ``batches/``, ``access-requests/``, ``transformers/``,
approval policies and revocations: what the API reads and answers."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from console.accounts.models import Person
from integrations.models import Integration, TargetGroup, TargetUser
from provisioning.access_requests import access_end_in_words
from provisioning.batches import batch_progress, batch_rejection
from provisioning.models import (
    AccessRequest,
    Action,
    ActionEvent,
    ActionType,
    AttributeTransformer,
    Batch,
    Revocation,
    ScimCall,
)
from provisioning.revocations import revocation_calls
from provisioning.selectors import parameters_resolved


class ActionEventSerializer(serializers.ModelSerializer[ActionEvent]):
    actor = serializers.CharField(source="actor.username", default=None, read_only=True)

    class Meta:
        model = ActionEvent
        fields = ["at", "from_state", "to_state", "actor", "note"]
        read_only_fields = fields


class ScimCallSerializer(serializers.ModelSerializer[ScimCall]):
    class Meta:
        model = ScimCall
        fields = ["attempt", "at", "method", "url", "status", "duration_ms", "request_body", "response_body", "error"]
        read_only_fields = fields


# What a request of an action gives (the bulk and dry-run inputs are no columns); the rest is read-only.
_REQUEST_INPUT = {
    *("integration", "action_type", "person", "target_user", "target_group", "parameters"),
    *("target_users", "people", "dry_run", "reason"),
}


class CauseSerializer(serializers.Serializer[Any]):
    text = serializers.CharField(help_text="Why, in words: the identity event, the policy and the mappings.")
    event = serializers.IntegerField(allow_null=True, help_text="The identity event that caused it.")
    policy = serializers.IntegerField(allow_null=True, help_text="The lifecycle policy that asked for it.")
    mappings = serializers.ListField(
        child=serializers.IntegerField(), help_text="The birthright mappings that grant (or granted) the membership."
    )


class ActionSerializer(serializers.ModelSerializer[Action]):
    integration = serializers.PrimaryKeyRelatedField(queryset=Integration.objects.all())
    integration_name = serializers.CharField(
        source="integration.name", read_only=True, help_text="Kept when the integration is deleted."
    )
    person = serializers.PrimaryKeyRelatedField(queryset=Person.objects.all(), required=False, allow_null=True)
    target_user = serializers.PrimaryKeyRelatedField(queryset=TargetUser.objects.all(), required=False, allow_null=True)
    target_group = serializers.PrimaryKeyRelatedField(
        queryset=TargetGroup.objects.all(), required=False, allow_null=True
    )
    requested_by = serializers.CharField(source="requested_by.username", default=None, read_only=True)
    decided_by = serializers.CharField(source="decided_by.username", default=None, read_only=True)
    action_type = serializers.ChoiceField(choices=ActionType.choices)
    cause = serializers.SerializerMethodField(
        help_text="Why lifecycle automation asked for it (null for an action somebody asked for)."
    )
    target_users = serializers.PrimaryKeyRelatedField(
        queryset=TargetUser.objects.all(), many=True, required=False, write_only=True, help_text="Bulk: a batch."
    )
    people = serializers.PrimaryKeyRelatedField(
        queryset=Person.objects.all(), many=True, required=False, write_only=True, help_text="Bulk: a batch."
    )
    dry_run = serializers.BooleanField(
        required=False, default=False, write_only=True, help_text="Only plan: answer the SCIM requests."
    )
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=1000,
        write_only=True,
        help_text="Why (optional): kept in the audit event of the request, as the console's confirmation keeps it.",
    )

    class Meta:
        model = Action
        fields = [
            "id",
            "batch",
            "target_users",
            "people",
            "dry_run",
            "reason",
            "integration",
            "integration_name",
            "action_type",
            "state",
            "subject",
            "person",
            "target_user",
            "target_group",
            "parameters",
            "requested_by",
            "decided_by",
            "decision_comment",
            "cause",
            "result",
            "attempts",
            "attempts_total",
            "last_error",
            "created_at",
            "updated_at",
            "expires_at",
            "started_at",
            "finished_at",
        ]
        # Everything but what a request gives.
        read_only_fields = [name for name in fields if name not in _REQUEST_INPUT]

    @extend_schema_field(CauseSerializer(allow_null=True))
    def get_cause(self, action: Action) -> dict[str, Any] | None:
        cause = action.cause or {}
        if not cause.get("text"):
            return None
        return {
            "text": cause["text"],
            "event": action.cause_event_id if action.cause_event_id is not None else cause.get("event"),
            "policy": cause.get("policy"),
            "mappings": list(cause.get("mappings") or []),
        }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Members to add or remove may be named by user name, as in the console, or by remote id."""
        if isinstance(attrs.get("parameters"), dict) and "integration" in attrs:
            attrs["parameters"] = parameters_resolved(
                integration=attrs["integration"], action_type=attrs["action_type"], parameters=attrs["parameters"]
            )
        return attrs


class ActionDetailSerializer(ActionSerializer):
    events = ActionEventSerializer(many=True, read_only=True)
    calls = ScimCallSerializer(many=True, read_only=True)

    class Meta(ActionSerializer.Meta):
        fields = [*ActionSerializer.Meta.fields, "events", "calls"]


class BatchRejectionSerializer(serializers.Serializer[Any]):
    by = serializers.CharField(allow_null=True, help_text="Who rejected (the latest rejection).")
    reason = serializers.CharField()
    at = serializers.DateTimeField(allow_null=True)
    actions = serializers.IntegerField(help_text="How many of the batch's actions were rejected.")


class BatchSerializer(serializers.ModelSerializer[Batch]):
    integration_name = serializers.CharField(
        source="integration.name", read_only=True, help_text="Kept when the integration is deleted."
    )
    requested_by = serializers.CharField(source="requested_by.username", default=None, read_only=True)
    title = serializers.CharField(read_only=True, help_text='What it does; an undo reads "Undo of batch N".')
    progress = serializers.SerializerMethodField()
    actions = serializers.SerializerMethodField()
    rejection = serializers.SerializerMethodField()

    class Meta:
        model = Batch
        fields = [
            "id",
            "integration",
            "integration_name",
            "action_type",
            "title",
            "requested_by",
            "created_at",
            "held_reason",
            "undo_of",
            "progress",
            "actions",
            "rejection",
        ]
        read_only_fields = fields

    def get_progress(self, batch: Batch) -> dict[str, Any]:
        return batch_progress(batch)

    def get_actions(self, batch: Batch) -> list[int]:
        return sorted(action.pk for action in batch.actions.all())

    @extend_schema_field(BatchRejectionSerializer(allow_null=True))
    def get_rejection(self, batch: Batch) -> dict[str, Any] | None:
        return batch_rejection(batch)


class DecisionSerializer(serializers.Serializer[Any]):
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class AccessRequestSerializer(serializers.ModelSerializer[AccessRequest]):
    target_user = serializers.PrimaryKeyRelatedField(queryset=TargetUser.objects.all())
    target_group = serializers.PrimaryKeyRelatedField(queryset=TargetGroup.objects.all())
    requested_by = serializers.CharField(source="requested_by.username", default=None, read_only=True)
    decided_by = serializers.CharField(source="decided_by.username", default=None, read_only=True)
    action_state = serializers.CharField(source="action.state", default=None, read_only=True)
    ends_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Optional, for access added: it ends then (in the future, within ACCESS_REQUEST_MAX_DAYS).",
    )
    ended_by = serializers.CharField(source="ended_by.username", default=None, read_only=True)
    end_action_state = serializers.CharField(source="end_action.state", default=None, read_only=True)
    end = serializers.SerializerMethodField(help_text="What becomes or became of the access's end, in words.")

    class Meta:
        model = AccessRequest
        fields = [
            "id",
            "integration",
            "target_user",
            "target_group",
            "operation",
            "justification",
            "state",
            "requested_by",
            "decided_by",
            "decision_comment",
            "decided_at",
            "action",
            "action_state",
            "created_at",
            "ends_at",
            "ended_at",
            "ended_by",
            "end_action",
            "end_action_state",
            "end",
        ]
        read_only_fields = [
            "id",
            "integration",
            "state",
            "requested_by",
            "decided_by",
            "decision_comment",
            "decided_at",
            "action",
            "action_state",
            "created_at",
            "ended_at",
            "ended_by",
            "end_action",
            "end_action_state",
            "end",
        ]

    def get_end(self, access: AccessRequest) -> str:
        return access_end_in_words(access)


class AccessEndSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)


class AccessExtendSerializer(serializers.Serializer[Any]):
    ends_at = serializers.DateTimeField(help_text="The new end, later than the current one.")


class AttributeTransformerSerializer(serializers.ModelSerializer[AttributeTransformer]):
    integration = serializers.PrimaryKeyRelatedField(queryset=Integration.objects.all())
    position = serializers.IntegerField(
        min_value=1,
        required=False,
        help_text="1 is applied first; the rows after it move down. Left out when creating: last.",
    )

    class Meta:
        model = AttributeTransformer
        fields = ["id", "integration", "position", "attribute_name", "source", "value"]
        read_only_fields = ["id"]


class AttributeTransformerMoveSerializer(AttributeTransformerSerializer):
    """Changing a row is moving it: only ``position`` is written."""

    integration = serializers.PrimaryKeyRelatedField(read_only=True)
    position = serializers.IntegerField(min_value=1, help_text="1 is applied first; the rows between shift.")

    class Meta(AttributeTransformerSerializer.Meta):
        read_only_fields = ["id", "integration", "attribute_name", "source", "value"]


class ApprovalPolicyItemSerializer(serializers.Serializer[Any]):
    action_type = serializers.ChoiceField(choices=ActionType.choices)
    requires_approval = serializers.BooleanField()


class RevocationSerializer(serializers.ModelSerializer[Revocation]):
    integration_name = serializers.CharField(source="integration.name", read_only=True)
    person = serializers.PrimaryKeyRelatedField[Person](read_only=True)
    calls = serializers.SerializerMethodField(help_text="The deprovision's requests and answers, from its call log.")

    class Meta:
        model = Revocation
        fields = [
            "id",
            "action",
            "attempt",
            "integration",
            "integration_name",
            "target_user",
            "account",
            "person",
            "requested_at",
            "measured_from",
            "verified_at",
            "outcome",
            "reason",
            "latency_seconds",
            "calls",
        ]
        read_only_fields = fields

    @extend_schema_field(ScimCallSerializer(many=True))
    def get_calls(self, record: Revocation) -> Any:
        return ScimCallSerializer(revocation_calls(record), many=True).data


class RevocationLatencySerializer(serializers.Serializer[dict[str, Any]]):
    integration = serializers.IntegerField()
    days = serializers.IntegerField()
    count = serializers.IntegerField(help_text="Verified revocations in the period.")
    not_verified = serializers.IntegerField(help_text="Mismatches and revocations that could not be verified.")
    sampled = serializers.IntegerField(help_text="How many of the most recent the percentiles were computed over.")
    p50_seconds = serializers.FloatField(allow_null=True)
    p95_seconds = serializers.FloatField(allow_null=True)
