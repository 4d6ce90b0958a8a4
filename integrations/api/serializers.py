"""API shapes for integrations. Credentials are write-only: only whether each is set shows."""

from __future__ import annotations

import ssl
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from integrations.models import (
    INTERVAL_TOO_SHORT,
    ExtensionAttribute,
    ExtractionRun,
    Integration,
    TargetGroup,
    TargetUser,
)

SECRET_FIELDS = ("bearer_token", "basic_password")


class IntegrationSerializer(serializers.ModelSerializer[Integration]):
    bearer_token = serializers.CharField(write_only=True, required=False, allow_blank=True, trim_whitespace=True)
    basic_password = serializers.CharField(write_only=True, required=False, allow_blank=True, trim_whitespace=False)
    extraction_interval_minutes = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        error_messages={"min_value": INTERVAL_TOO_SHORT},
        help_text="Overrides the global interval when set; at least 1 minute.",
    )
    bearer_token_set = serializers.SerializerMethodField()
    basic_password_set = serializers.SerializerMethodField()

    class Meta:
        model = Integration
        fields = [
            "id",
            "kind",
            "name",
            "application_type",
            "base_url",
            "auth_type",
            "bearer_token",
            "bearer_token_set",
            "basic_username",
            "basic_password",
            "basic_password_set",
            "credentials_changed_at",
            "ca_certificate",
            "users_endpoint",
            "groups_endpoint",
            "discover_extensions",
            "provisioning_enabled",
            "enabled",
            "timeout_seconds",
            "page_size",
            "rate_limit_per_second",
            "rate_limit_burst",
            "max_concurrency",
            "supports_hard_delete",
            "membership_chunk_size",
            "mass_change_max_accounts",
            "mass_change_max_percent",
            "extraction_interval_minutes",
            "connection_status",
            "connection_checked_at",
            "connection_error",
            "capabilities",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "credentials_changed_at",
            "connection_status",
            "connection_checked_at",
            "connection_error",
            "capabilities",
            "created_at",
            "updated_at",
        ]

    def get_bearer_token_set(self, integration: Integration) -> bool:
        return bool(integration.bearer_token)

    def get_basic_password_set(self, integration: Integration) -> bool:
        return bool(integration.basic_password)

    def validate_base_url(self, value: str) -> str:
        if not value.lower().startswith(("http://", "https://")):
            raise serializers.ValidationError("The SCIM base URL must start with http:// or https://.")
        return value

    def validate_ca_certificate(self, value: str) -> str:
        if value.strip():
            try:
                ssl.create_default_context(cadata=value)
            except (ssl.SSLError, ValueError) as exc:
                raise serializers.ValidationError(f"This is not a PEM certificate that parses ({exc}).") from None
        return value

    def validate_page_size(self, value: int) -> int:
        if not 1 <= value <= 1000:
            raise serializers.ValidationError("Choose a page size from 1 to 1000.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        current = self.instance
        auth_type = attrs.get("auth_type", current.auth_type if current else Integration.AuthType.BEARER)
        token = attrs.get("bearer_token", current.bearer_token if current else "")
        username = attrs.get("basic_username", current.basic_username if current else "")
        password = attrs.get("basic_password", current.basic_password if current else "")
        if auth_type == Integration.AuthType.BEARER and not token:
            raise serializers.ValidationError({"bearer_token": ["A bearer token is needed for bearer authentication."]})
        if auth_type == Integration.AuthType.BASIC and not (username and password):
            raise serializers.ValidationError(
                {"basic_password": ["A user name and a password are needed for basic authentication."]}
            )
        if any(attrs.get(name) for name in SECRET_FIELDS):
            attrs["credentials_changed_at"] = timezone.now()
        return attrs


class ExtractionRunSerializer(serializers.ModelSerializer[ExtractionRun]):
    class Meta:
        model = ExtractionRun
        fields = [
            "id",
            "trigger",
            "status",
            "queued_at",
            "started_at",
            "finished_at",
            "users_seen",
            "groups_seen",
            "created",
            "updated",
            "removed",
            "pages",
            "requests",
            "users_total",
            "groups_total",
            "heartbeat_at",
            "error",
            "warnings",
        ]
        read_only_fields = fields


class TargetUserSerializer(serializers.ModelSerializer[TargetUser]):
    class Meta:
        model = TargetUser
        fields = [
            "id",
            "remote_id",
            "user_name",
            "display_name",
            "email",
            "external_id",
            "active",
            "resource",
            "first_seen_at",
            "last_seen_at",
            "removed_at",
        ]
        read_only_fields = fields


class TargetGroupSerializer(serializers.ModelSerializer[TargetGroup]):
    class Meta:
        model = TargetGroup
        fields = [
            "id",
            "remote_id",
            "display_name",
            "external_id",
            "member_count",
            "first_seen_at",
            "last_seen_at",
            "removed_at",
        ]
        read_only_fields = fields


class ExtensionAttributeSerializer(serializers.ModelSerializer[ExtensionAttribute]):
    class Meta:
        model = ExtensionAttribute
        fields = ["id", "normalized_name", "scim_path", "schema_urn", "attribute_type", "multi_valued", "description"]
        read_only_fields = fields
