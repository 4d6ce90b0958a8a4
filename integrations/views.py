"""Integration pages: list, add and edit, detail with health, Users and Groups tabs, runs."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from console.accounts.access import acting_person, requires
from console.accounts.permissions import Perm
from console.audit.services import audit_record
from console.web.lists import render_list
from integrations.filters import TargetGroupFilterSet, TargetUserFilterSet
from integrations.forms import IntegrationForm
from integrations.models import ExtractionRun, Integration, TargetGroup, TargetUser
from integrations.scim_client import ScimClient, ScimClientError
from integrations.selectors import integration_health
from integrations.services import extraction_start

SECRET_FIELDS = {"bearer_token", "basic_password"}


@requires(Perm.VIEW)
def integration_list(request: HttpRequest) -> HttpResponse:
    rows = [(i, integration_health(integration=i)) for i in Integration.objects.all()]
    rows.sort(key=lambda row: (not row[1].needs_attention, row[0].name.lower()))
    return render(request, "integrations/list.html", {"rows": rows})


@requires(Perm.MANAGE_INTEGRATIONS, write=Perm.MANAGE_INTEGRATIONS)
def integration_create(request: HttpRequest) -> HttpResponse:
    form = IntegrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        integration = form.save()
        audit_record(
            verb="integration.created",
            actor=acting_person(request),
            target=integration,
            request=request,
            after={k: ("(changed)" if k in SECRET_FIELDS else str(form.cleaned_data[k])) for k in form.changed_data},
        )
        messages.success(request, f"{integration.name} was added. Test the connection, then extract.")
        return redirect("integration_detail", pk=integration.pk)
    return render(request, "integrations/form.html", {"form": form})


@requires(Perm.MANAGE_INTEGRATIONS, write=Perm.MANAGE_INTEGRATIONS)
def integration_edit(request: HttpRequest, pk: int) -> HttpResponse:
    integration = get_object_or_404(Integration, pk=pk)
    form = IntegrationForm(request.POST or None, instance=integration)
    if request.method == "POST" and form.is_valid():
        form.save()
        audit_record(
            verb="integration.updated",
            actor=acting_person(request),
            target=integration,
            request=request,
            after={k: ("(changed)" if k in SECRET_FIELDS else str(form.cleaned_data[k])) for k in form.changed_data},
        )
        messages.success(request, "Saved.")
        return redirect("integration_detail", pk=integration.pk)
    return render(request, "integrations/form.html", {"form": form, "integration": integration})


@require_POST
@requires(Perm.MANAGE_INTEGRATIONS, write=Perm.MANAGE_INTEGRATIONS)
def integration_delete(request: HttpRequest, pk: int) -> HttpResponse:
    integration = get_object_or_404(Integration, pk=pk)
    audit_record(
        verb="integration.deleted",
        actor=acting_person(request),
        target=integration,
        request=request,
        before={"name": integration.name, "base_url": integration.base_url},
    )
    integration.delete()
    messages.success(request, f"{integration.name} was deleted. Its audit trail stays.")
    return redirect("integration_list")


def _detail_context(integration: Integration) -> dict[str, Any]:
    return {
        "integration": integration,
        "health": integration_health(integration=integration),
        "run": integration.runs.order_by("-queued_at", "-id").first(),
        "runs": integration.runs.order_by("-queued_at", "-id")[:10],
    }


@requires(Perm.VIEW)
def integration_detail(request: HttpRequest, pk: int) -> HttpResponse:
    integration = get_object_or_404(Integration, pk=pk)
    return render(request, "integrations/detail.html", _detail_context(integration))


@requires(Perm.VIEW)
def integration_run_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress region, polled by htmx while a run is queued or running."""
    integration = get_object_or_404(Integration, pk=pk)
    return render(request, "integrations/detail.html#progress", _detail_context(integration))


@require_POST
@requires(Perm.EXTRACT, write=Perm.EXTRACT)
def integration_extract(request: HttpRequest, pk: int) -> HttpResponse:
    integration = get_object_or_404(Integration, pk=pk)
    run = extraction_start(integration=integration, trigger=ExtractionRun.Trigger.MANUAL)
    audit_record(
        verb="integration.extraction_requested",
        actor=acting_person(request),
        target=integration,
        request=request,
        details={"run": run.pk},
    )
    if getattr(request, "htmx", False):
        return render(request, "integrations/detail.html#progress", _detail_context(integration))
    return redirect("integration_detail", pk=integration.pk)


@require_POST
@requires(Perm.MANAGE_INTEGRATIONS, write=Perm.MANAGE_INTEGRATIONS)
def integration_test_connection(request: HttpRequest, pk: int) -> HttpResponse:
    integration = get_object_or_404(Integration, pk=pk)
    client = ScimClient(integration)
    result: dict[str, Any]
    try:
        config = client.get_json("ServiceProviderConfig")
        types = client.get_json("ResourceTypes")
        client.get_json(integration.users_endpoint, {"count": 1})
    except ScimClientError as exc:
        result = {"ok": False, "error": str(exc), "cause": type(exc).__name__}
    else:
        result = {
            "ok": True,
            "capabilities": {
                name: bool((config.get(name) or {}).get("supported"))
                for name in ("patch", "filter", "bulk", "etag", "sort", "changePassword")
            },
            "max_results": (config.get("filter") or {}).get("maxResults"),
            "resource_types": [t.get("name") for t in types.get("Resources", []) if isinstance(t, dict)],
        }
    return render(request, "integrations/connection.html", {"integration": integration, "result": result})


@requires(Perm.VIEW)
def integration_users(request: HttpRequest, pk: int) -> HttpResponse:
    integration = get_object_or_404(Integration, pk=pk)
    return render_list(
        request,
        template="integrations/users.html",
        queryset=integration.target_users.all(),
        filterset_class=TargetUserFilterSet,
        ordering=["user_name", "id"],
        context={"integration": integration},
    )


@requires(Perm.VIEW)
def integration_groups(request: HttpRequest, pk: int) -> HttpResponse:
    integration = get_object_or_404(Integration, pk=pk)
    return render_list(
        request,
        template="integrations/groups.html",
        queryset=integration.target_groups.all(),
        filterset_class=TargetGroupFilterSet,
        ordering=["display_name", "id"],
        context={"integration": integration},
    )


@requires(Perm.VIEW)
def target_user_detail(request: HttpRequest, pk: int, user_pk: int) -> HttpResponse:
    user = get_object_or_404(TargetUser.objects.select_related("integration"), pk=user_pk, integration_id=pk)
    groups = TargetGroup.objects.filter(memberships__user=user).order_by("display_name")
    return render(
        request, "integrations/user_detail.html", {"user": user, "integration": user.integration, "groups": groups}
    )


@requires(Perm.VIEW)
def target_group_detail(request: HttpRequest, pk: int, group_pk: int) -> HttpResponse:
    group = get_object_or_404(TargetGroup.objects.select_related("integration"), pk=group_pk, integration_id=pk)
    return render_list(
        request,
        template="integrations/group_detail.html",
        queryset=TargetUser.objects.filter(memberships__group=group),
        filterset_class=TargetUserFilterSet,
        ordering=["user_name", "id"],
        context={"group": group, "integration": group.integration},
    )
