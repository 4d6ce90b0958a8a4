"""Plans and auto-remediation as the API shows them."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from console.core.pagination import PageFieldsSerializer
from reconciliation.models import DriftCategory, Plan, PlanItem
from reconciliation.plans import item_state, plan_duration, plan_state_words


class PlanItemSerializer(serializers.ModelSerializer[PlanItem]):
    state = serializers.SerializerMethodField(help_text="open, applied, stale (the drift was resolved since) …")
    batch = serializers.SerializerMethodField()

    class Meta:
        model = PlanItem
        fields = [
            "id",
            "category",
            "key",
            "rule",
            "action_type",
            "subject",
            "person",
            "target_user",
            "target_group",
            "parameters",
            "requests",
            "problem",
            "state",
            "action",
            "batch",
            "applied_at",
            "applied_by",
        ]

    def get_state(self, item: PlanItem) -> str:
        return item_state(item, self.context.get("stale", {}))

    def get_batch(self, item: PlanItem) -> int | None:
        return item.action.batch_id if item.action is not None else None


class PlanSerializer(serializers.ModelSerializer[Plan]):
    created_by = serializers.SerializerMethodField(help_text="Who made it; null: the system (auto-remediation).")
    duration = serializers.SerializerMethodField()
    state_text = serializers.SerializerMethodField(help_text="Where its making is, in words (why, when it failed).")
    url = serializers.SerializerMethodField(help_text="The plan's detail in the API.")

    class Meta:
        model = Plan
        fields = [
            "id",
            "url",
            "integration",
            "state",
            "state_text",
            "expected",
            "planned",
            "error",
            "created_at",
            "created_by",
            "automatic",
            "categories",
            "drift_run",
            "duration",
        ]

    def get_state_text(self, plan: Plan) -> str:
        return plan_state_words(plan)

    def get_url(self, plan: Plan) -> str:
        path = reverse("api_plan_detail", args=[plan.integration_id, plan.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def get_created_by(self, plan: Plan) -> str | None:
        return plan.created_by.username if plan.created_by else None

    def get_duration(self, plan: Plan) -> dict[str, Any]:
        return plan_duration(plan)


class PlanDetailSerializer(PlanSerializer, PageFieldsSerializer):
    """(The answer's schema.) A plan with one page of its items (``results``, by category then id; ``?cursor=``,
    ``?page_size=``, ``?category=``); ``count`` and ``counts`` are of all its items."""

    count = serializers.IntegerField(help_text="Its items, every page (of the category asked for, if one was).")
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Its items per category, all of them.")
    results = PlanItemSerializer(many=True)

    class Meta(PlanSerializer.Meta):
        fields = [*PlanSerializer.Meta.fields, "count", "counts", "next", "previous", "page_size", "results"]


class PlanCreateSerializer(serializers.Serializer[Any]):
    categories = serializers.ListField(
        child=serializers.ChoiceField(choices=DriftCategory.choices), required=False, help_text="Default: all."
    )


class PlanApplySerializer(serializers.Serializer[Any]):
    items = serializers.ListField(child=serializers.IntegerField(), required=False)
    categories = serializers.ListField(child=serializers.ChoiceField(choices=DriftCategory.choices), required=False)
    reason = serializers.CharField(required=False)


class BatchBriefSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    action_type = serializers.CharField()
    held_reason = serializers.CharField()
    actions = serializers.IntegerField()


class AutoRemediationSerializer(serializers.Serializer[Any]):
    policy = serializers.IntegerField()
    integration = serializers.IntegerField()
    categories = serializers.ListField(child=serializers.ChoiceField(choices=DriftCategory.choices))
    eligible = serializers.ListField(child=serializers.CharField())
    active = serializers.BooleanField(help_text="Whether it acts now: the policy is on and a category is opted in.")
    orphans = serializers.CharField(help_text="Why orphans are never eligible.")
