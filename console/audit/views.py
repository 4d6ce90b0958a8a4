"""The Audit page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from console.accounts.access import requires
from console.accounts.permissions import Perm
from console.audit.filters import AuditEventFilterSet
from console.audit.models import AuditEvent
from console.web.lists import render_list


@requires(Perm.VIEW)
def audit_list(request: HttpRequest) -> HttpResponse:
    return render_list(
        request,
        template="audit/audit_list.html",
        queryset=AuditEvent.objects.all(),
        filterset_class=AuditEventFilterSet,
        ordering=["-occurred_at", "-id"],
        page_size=50,
    )
