"""``/api/v1/audit-events/``: read-only, like the log itself (kept by console.audit)."""

from __future__ import annotations

from rest_framework import viewsets

from console.accounts.access import api_policy
from console.audit.api.serializers import AuditEventSerializer
from console.audit.filters import AuditEventFilterSet
from console.audit.models import AuditEvent
from console.audit.tables import AUDIT_TABLE


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet[AuditEvent]):
    """Every event, newest first. Events cannot be created, edited or deleted here."""

    access_policy = api_policy()
    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
    keyset_ordering = ["-occurred_at", "-id"]
    keyset_table = AUDIT_TABLE
