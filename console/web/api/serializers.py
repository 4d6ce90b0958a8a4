"""The shell's API serializers: the console-wide settings."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from console.accounts.models import Role
from console.core.models import ConsoleSettings
from console.web.services import SIGN_IN_FIELDS, settings_problems


class ConsoleSettingsSerializer(serializers.ModelSerializer[ConsoleSettings]):
    """The client secret is write-only: answers say only whether it is set and when it changed."""

    extraction_interval_minutes = serializers.IntegerField(min_value=5, max_value=7 * 24 * 60)
    oidc_client_secret = serializers.CharField(write_only=True, required=False, allow_blank=True)
    oidc_client_secret_set = serializers.SerializerMethodField()
    oidc_default_role = serializers.SlugRelatedField(
        slug_field="name", queryset=Role.objects.all(), required=False, allow_null=True
    )

    class Meta:
        model = ConsoleSettings
        fields = [
            "scim_provisioning_enabled",
            "extraction_interval_minutes",
            *SIGN_IN_FIELDS,
            "oidc_client_secret_set",
            "oidc_client_secret_changed_at",
            "updated_at",
        ]
        read_only_fields = ["oidc_client_secret_changed_at", "updated_at"]

    def get_oidc_client_secret_set(self, current: ConsoleSettings) -> bool:
        return bool(current.oidc_client_secret)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        problems = settings_problems(current=self.instance or ConsoleSettings.load(), values=attrs)
        if problems:
            raise serializers.ValidationError(problems)
        return attrs
