"""The API's shape of an audit event."""

from __future__ import annotations

from rest_framework import serializers

from console.audit.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    actor = serializers.CharField(source="actor_label", read_only=True)
    actor_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "occurred_at",
            "actor",
            "actor_id",
            "verb",
            "target_type",
            "target_id",
            "target_label",
            "details",
            "source_address",
        ]
        read_only_fields = fields
