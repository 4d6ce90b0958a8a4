"""The shell's API: ``/api/v1/settings/`` (read by everyone with a console role, changed by admins)
and ``/api/v1/audit-events/`` (read-only, like the log itself, which ``console.audit`` keeps)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from console.accounts.access import acting_person, api_policy
from console.accounts.permissions import Perm
from console.audit.api.serializers import AuditEventSerializer
from console.audit.filters import AuditEventFilterSet
from console.audit.models import AuditEvent
from console.audit.tables import AUDIT_TABLE
from console.core.models import ConsoleSettings
from console.web.api.serializers import ConsoleSettingsSerializer
from console.web.services import console_settings_update


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


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet[AuditEvent]):
    """Every event, newest first. Events cannot be created, edited or deleted here."""

    access_policy = api_policy()
    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
    keyset_ordering = ["-occurred_at", "-id"]
    keyset_table = AUDIT_TABLE
