"""Integrations' services: what changes an integration itself (its extraction is ``integrations.extraction``)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from integrations.models import ExtractionRun, Integration

# Sent inside the transaction that archives an integration: apps above (provisioning) end
# what waits for it. ``sender`` is Integration; ``integration``, ``actor`` and ``request`` come along.
integration_archived = Signal()


def integration_delete(*, actor: Any, integration: Integration, request: Any = None) -> Integration:
    """Delete an integration as people mean it: it is gone from the console, its history is not.

    The integration is archived under its name (its name is free for a new one): provisioning
    and extraction stop, what waits for it is cancelled, its credentials are erased; its
    actions and their SCIM calls, its runs, its last picture of the application (what the
    actions name) and its audit trail stay readable.
    """
    from console.audit.services import audit_record

    now = timezone.now()
    with transaction.atomic():
        if Integration.objects.select_for_update().filter(pk=integration.pk).first() is None:
            return integration  # deleted meanwhile: once is enough
        audit_record(
            verb="integration.deleted",
            actor=actor,
            target=integration,
            request=request,
            before={"name": integration.name, "base_url": integration.base_url},
        )
        Integration.all_objects.filter(pk=integration.pk).update(
            archived_at=now,
            enabled=False,
            provisioning_enabled=False,
            bearer_token="",
            basic_password="",
            updated_at=now,
        )
        ExtractionRun.objects.filter(
            integration=integration, status__in=[ExtractionRun.Status.QUEUED, ExtractionRun.Status.RUNNING]
        ).update(status=ExtractionRun.Status.FAILED, finished_at=now, error="the integration was deleted")
        integration_archived.send(sender=Integration, integration=integration, actor=actor, request=request)
    integration.refresh_from_db()
    return integration
