"""Plans' pages: an integration's plans, one plan with its items by category, make and apply."""

from __future__ import annotations

from typing import Any

import django_filters
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from console.accounts.access import acting_person, requires
from console.accounts.permissions import Perm
from console.audit.services import reason_recorded
from console.core.confirm import confirmation_page, reason_of
from console.core.errors import ConsoleError
from console.core.feedback import error_shown
from console.core.tables import Column, Table, render_table
from integrations.models import Integration
from integrations.views import integration_crumbs
from lifecycle.models import LifecyclePolicy
from provisioning.models import ActionType, Batch
from reconciliation.auto import auto_remediation_set
from reconciliation.models import DriftCategory, Plan
from reconciliation.plans import (
    ROWS_SHOWN,
    blocked_items,
    plan_apply,
    plan_categories,
    plan_create,
    plan_duration,
    plan_hold_if_all_applied,
    plan_state_words,
    plans_of,
)
from reconciliation.selectors import drift_counts


def made_by(plan: Plan) -> str:
    return plan.created_by.username if plan.created_by else "the system (auto-remediation)"


class PlanFilterSet(django_filters.FilterSet):
    automatic = django_filters.ChoiceFilter(
        choices=[("true", "Auto-remediation"), ("false", "A person")],
        method="made_by",
        label="Made by",
        empty_label="Anyone",
    )

    class Meta:
        model = Plan
        fields = ["automatic"]

    def made_by(self, queryset: Any, name: str, value: str) -> Any:
        return queryset.filter(automatic=value == "true")


PLANS_TABLE = Table(
    name="plans",
    columns=[
        Column(
            "id",
            "Plan",
            sort="id",
            value=lambda p: f"Plan {p.pk}",
            html=lambda p: format_html(
                '<a href="{}">Plan {}</a>', reverse("plan_detail", args=[p.integration_id, p.pk]), p.pk
            ),
        ),
        Column("created_at", "Made", sort="created_at"),
        Column("made_by", "By", value=made_by),
        Column(
            "categories",
            "Categories",
            value=lambda p: ", ".join(DriftCategory(c).label for c in p.categories if c in DriftCategory.values),
        ),
        Column("state", "State", value=lambda p: p.get_state_display()),
        Column("requests", "SCIM requests", sort="requests"),
    ],
    ordering="-id",
    total="exact",
)


@requires(Perm.VIEW)
def plan_list(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The integration's plans, newest first (CSV and JSON export from the table)."""
    integration = get_object_or_404(Integration, pk=pk)
    return render_table(
        request,
        table=PLANS_TABLE,
        template="reconciliation/plans.html",
        queryset=plans_of(integration),
        filterset_class=PlanFilterSet,
        context={
            "integration": integration,
            "tab": "drift",
            # As on the Drift tab: only the categories with open items, each with its count.
            "categories": [
                (c.category, f"{c.label} ({c.count})") for c in drift_counts(integration=integration) if c.count
            ],
            "breadcrumbs": integration_crumbs(integration, ("Plans", None)),
        },
    )


@require_POST
@requires(Perm.MANAGE_INTEGRATIONS, write=Perm.MANAGE_INTEGRATIONS)
def plan_create_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Make a plan of the open drift (the categories ticked, else all); nothing is sent."""
    integration = get_object_or_404(Integration, pk=pk, archived_at__isnull=True)
    chosen = request.POST.getlist("category") or None
    try:
        plan = plan_create(actor=acting_person(request), integration=integration, categories=chosen, request=request)
    except ConsoleError as exc:
        error_shown(request, exc)
        return redirect("plan_list", pk=pk)
    if plan.state == Plan.State.MAKING:
        messages.info(
            request,
            f"Plan {plan.pk} is being made by a worker ({plan.expected} drift items): this page shows how far it is.",
        )
    else:
        messages.success(request, f"Plan {plan.pk} made: nothing is sent until an approver applies its items.")
    return redirect("plan_detail", pk=pk, plan=plan.pk)


def _plan(pk: int, plan: int) -> Plan:
    return get_object_or_404(Plan.objects.select_related("integration", "created_by"), pk=plan, integration_id=pk)


@requires(Perm.VIEW)
def plan_detail(request: HttpRequest, pk: int, plan: int) -> HttpResponse:
    """One plan with its items by category; while a worker makes it, how far it is (its
    ``#state`` partial, polled by htmx, refreshes the whole page once it is done)."""
    found = _plan(pk, plan)
    integration = found.integration
    ready = found.state == Plan.State.READY
    context: dict[str, Any] = {
        "integration": integration,
        "plan": found,
        "made_by": made_by(found),
        "state_text": plan_state_words(found),
        "making": found.state == Plan.State.MAKING,
        "tab": "drift",
        "breadcrumbs": integration_crumbs(
            integration, ("Plans", reverse("plan_list", args=[pk])), (f"Plan {found.pk}", None)
        ),
    }
    if getattr(request, "htmx", False) and request.GET.get("part") == "state":
        response = render(request, "reconciliation/plan.html#state", context)
        if not context["making"]:
            response["HX-Refresh"] = "true"  # made (or failed): the whole page, items included
        return response
    if ready:
        categories = plan_categories(found, shown=ROWS_SHOWN)
        context.update(
            categories=categories,
            duration=plan_duration(found),
            hold=plan_hold_if_all_applied(found),
            open=sum(c["open"] for c in categories),
            batches=Batch.objects.filter(actions__plan_item__plan=found).distinct().order_by("id"),
            delete_type=ActionType.DELETE_IDENTITY.value,
        )
    return render(request, "reconciliation/plan.html", context)


def _ticked(found: Plan, request: HttpRequest) -> list[int]:
    """The items ticked one by one, and every open item of each category ticked whole; a
    category never ticks an orphan's delete (an approver ticks each of those)."""
    ids: set[int] = set()
    for raw in request.POST.getlist("item"):
        if raw.isascii() and raw.isdigit() and len(raw) < 19:
            ids.add(int(raw))
    whole = [c for c in request.POST.getlist("category") if c in DriftCategory.values]
    if whole:
        rows = list(found.items.select_related("plan").filter(category__in=whole, action__isnull=True, problem=""))
        stale = blocked_items(rows)
        ids |= {row.pk for row in rows if not row.deletes and row.pk not in stale}
    return sorted(ids)


@require_POST
@requires(Perm.APPROVE, write=Perm.APPROVE)
def plan_apply_view(request: HttpRequest, pk: int, plan: int) -> HttpResponse:
    """Apply the ticked items, after the one confirmation: their actions, one batch per type."""
    found = _plan(pk, plan)
    ids = _ticked(found, request)
    if not ids:
        messages.error(request, "Tick at least one item (or a whole category) to apply.")
        return redirect("plan_detail", pk=pk, plan=plan)
    text = (
        f"Requests the actions of the {len(ids)} ticked items in {found.integration.name}, one batch per action type."
    )
    if page := confirmation_page(request, count=len(ids), text=text):
        return page
    try:
        batches = plan_apply(
            actor=acting_person(request), plan=found, item_ids=ids, request=request, reason=reason_of(request)
        )
    except ConsoleError as exc:
        error_shown(request, exc)
        return redirect("plan_detail", pk=pk, plan=plan)
    if batches[0].held_reason:
        messages.warning(request, f"Held whole for approval: {batches[0].held_reason}.")
    else:
        messages.success(
            request, f"{len(ids)} actions requested in {len(batches)} batch{'es' if len(batches) > 1 else ''}."
        )
    if len(batches) == 1:
        return redirect("batch_detail", pk=batches[0].pk)
    return redirect("plan_detail", pk=pk, plan=plan)


@require_POST
@requires(Perm.MANAGE_INTEGRATIONS, write=Perm.MANAGE_INTEGRATIONS)
def auto_remediation_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Save the categories the Lifecycle tab's auto-remediation form ticked."""
    integration = get_object_or_404(Integration, pk=pk, archived_at__isnull=True)
    back = f"{reverse('lifecycle_tab', args=[pk])}#auto-remediation"
    policy = LifecyclePolicy.objects.filter(integration=integration).first()
    if policy is None:
        messages.error(request, "Save the lifecycle policy first: auto-remediation is part of it.")
        return redirect(back)
    if page := confirmation_page(request):  # the policy is on: what is ticked will change the application
        return page
    try:
        with reason_recorded(request):
            row = auto_remediation_set(
                actor=acting_person(request),
                policy=policy,
                categories=request.POST.getlist("category"),
                request=request,
            )
    except ConsoleError as exc:
        error_shown(request, exc)
        return redirect(back)
    chosen = ", ".join(DriftCategory(c).label.lower() for c in row.categories) or "none"
    messages.success(request, f"Saved: auto-remediation of {chosen}.")
    return redirect(back)
