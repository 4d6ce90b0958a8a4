"""``/api/v1/settings/``: read by everyone with a console role, changed by admins."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from console.accounts.access import acting_person, api_policy
from console.accounts.models import Role
from console.accounts.permissions import Perm
from console.core.models import ConsoleSettings
from console.web.services import SIGN_IN_FIELDS, console_settings_update, settings_problems


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


class ConsoleSettingsView(APIView):
    access_policy = api_policy(write=Perm.MANAGE_SETTINGS)

    @extend_schema(responses=ConsoleSettingsSerializer)
    def get(self, request: Request) -> Response:
        return Response(ConsoleSettingsSerializer(ConsoleSettings.load()).data)

    @extend_schema(request=ConsoleSettingsSerializer, responses=ConsoleSettingsSerializer)
    def patch(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = ConsoleSettingsSerializer(ConsoleSettings.load(), data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        updated = console_settings_update(actor=acting_person(request), request=request, **serializer.validated_data)
        return Response(ConsoleSettingsSerializer(updated).data)
