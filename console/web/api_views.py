"""``/api/v1/settings/``: read by everyone with a console role, changed by admins."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from console.accounts.access import acting_person, api_policy
from console.accounts.permissions import Perm
from console.web.models import ConsoleSettings
from console.web.services import console_settings_update


class ConsoleSettingsSerializer(serializers.ModelSerializer[ConsoleSettings]):
    extraction_interval_minutes = serializers.IntegerField(min_value=5, max_value=7 * 24 * 60)

    class Meta:
        model = ConsoleSettings
        fields = ["scim_provisioning_enabled", "extraction_interval_minutes", "updated_at"]
        read_only_fields = ["updated_at"]


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
