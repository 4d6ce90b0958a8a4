"""The Drift tab of an integration: open drift per category, the items, the last computations,
and Check now."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from console.accounts.access import acting_person, requires
from console.accounts.permissions import Perm
from console.core.errors import ConsoleError
from console.core.tables import render_table
from integrations.models import Integration
from integrations.views import integration_crumbs
from reconciliation.charts import drift_chart
from reconciliation.filters import DriftItemFilterSet
from reconciliation.models import DriftCategory
from reconciliation.selectors import drift_counts, drift_items, drift_runs
from reconciliation.services import drift_request, drift_running_words
from reconciliation.tables import DRIFT_TABLE


def drift_summary(integration: Integration) -> dict[str, Any]:
    """What the tab says above its table: counts per category, the total and the last computation."""
    counts = drift_counts(integration=integration)
    runs = drift_runs(integration=integration, last=1)
    return {
        "counts": counts,
        "open_total": sum(c.count for c in counts),
        "last_run": runs[0] if runs else None,
    }


@requires(Perm.VIEW)
def drift_tab(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The Drift tab (its table's ``#table`` partial for htmx, or its export for ``?as=csv|json``)."""
    integration = get_object_or_404(Integration, pk=pk)
    category = request.GET.get("category", "")
    context: dict[str, Any] = {
        "integration": integration,
        "tab": "drift",
        "breadcrumbs": integration_crumbs(integration, ("Drift", None)),
        "category": category if category in DriftCategory.values else "",
    }
    htmx = getattr(request, "htmx", None)
    only_table = request.GET.get("as") in ("csv", "json") or (htmx and htmx.target == "table-region")
    if not only_table:  # the counts and the chart stand outside the table's region
        context.update(drift_summary(integration), chart=drift_chart(integration))
    return render_table(
        request,
        table=DRIFT_TABLE,
        template="reconciliation/tab.html",
        queryset=drift_items(integration=integration),
        filterset_class=DriftItemFilterSet,
        context=context,
    )


@require_POST
@requires(Perm.MANAGE_INTEGRATIONS, write=Perm.MANAGE_INTEGRATIONS)
def drift_check(request: HttpRequest, pk: int) -> HttpResponse:
    """Check now: queue a drift computation of the integration."""
    integration = get_object_or_404(Integration, pk=pk)
    try:
        running = drift_request(actor=acting_person(request), integration=integration, request=request)
    except ConsoleError as error:
        messages.error(request, error.message)
    else:
        if running is not None:
            messages.info(request, drift_running_words(running))
            return redirect(reverse("drift_tab", args=[integration.pk]))
        messages.success(
            request, "Drift check queued: a worker compares the last extraction with the policies; reload in a moment."
        )
    return redirect(reverse("drift_tab", args=[integration.pk]))
