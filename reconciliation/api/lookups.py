"""What every reconciliation endpoint looks up first: the integration its URL names."""

from __future__ import annotations

from django.shortcuts import get_object_or_404

from integrations.models import Integration


def integration_or_404(pk: int) -> Integration:
    """The live integration ``pk`` (a deleted one has no drift report and no plans: 404)."""
    return get_object_or_404(Integration.objects, pk=pk)
