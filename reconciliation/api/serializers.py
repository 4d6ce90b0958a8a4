"""The shapes of ``/api/v1/integrations/{id}/drift/`` and its runs."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from reconciliation.models import DriftItem, DriftRun
from reconciliation.tables import category_label


class _AccountRef(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    user_name = serializers.CharField()


class _PersonRef(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    username = serializers.CharField()


class _GroupRef(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    display_name = serializers.CharField()


class DriftItemSerializer(serializers.ModelSerializer[DriftItem]):
    """One open item. ``account``, ``person`` and ``group`` are null where the item is not about one;
    ``detail`` is what differs (attribute drift: ``{"attributes": [{"path", "application", "wanted"}]}``)."""

    category_label = serializers.SerializerMethodField()
    account = serializers.SerializerMethodField()
    person = serializers.SerializerMethodField()
    group = serializers.SerializerMethodField()
    detail = serializers.JSONField()

    class Meta:
        model = DriftItem
        fields = [
            "id",
            "category",
            "category_label",
            "key",
            "account",
            "person",
            "group",
            "rule",
            "detail",
            "first_seen_at",
            "last_seen_at",
        ]
        read_only_fields = fields

    def get_category_label(self, item: DriftItem) -> str:
        return category_label(item)

    @extend_schema_field(_AccountRef(allow_null=True))
    def get_account(self, item: DriftItem) -> dict[str, Any] | None:
        user = item.target_user
        return None if user is None else {"id": user.pk, "user_name": user.user_name}

    @extend_schema_field(_PersonRef(allow_null=True))
    def get_person(self, item: DriftItem) -> dict[str, Any] | None:
        person = item.person
        return None if person is None else {"id": person.pk, "username": person.username}

    @extend_schema_field(_GroupRef(allow_null=True))
    def get_group(self, item: DriftItem) -> dict[str, Any] | None:
        group = item.group
        return None if group is None else {"id": group.pk, "display_name": group.display_name}


class DriftRunSerializer(serializers.ModelSerializer[DriftRun]):
    """One computation: ``counts`` holds the open items per category after it."""

    trigger_label = serializers.CharField(source="get_trigger_display", read_only=True)
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    counts = serializers.DictField(child=serializers.IntegerField())

    class Meta:
        model = DriftRun
        fields = [
            "id",
            "trigger",
            "trigger_label",
            "status",
            "status_label",
            "started_at",
            "finished_at",
            "counts",
            "error",
            "extraction_run",
        ]
        read_only_fields = fields


class DriftRequestedSerializer(serializers.Serializer[Any]):
    queued = serializers.BooleanField(help_text="False when a computation of the integration was already running.")
    integration = serializers.IntegerField()
    running = serializers.IntegerField(
        allow_null=True, help_text="The computation already running (its run in drift/runs/), when not queued."
    )
    detail = serializers.CharField()
