"""Integration pages: list, add and edit, detail with health, Users and Groups tabs, runs."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from console.accounts.access import acting_person, requires
from console.accounts.permissions import Perm
from console.audit.models import AuditEvent
from console.audit.services import audit_record, reason_recorded
from console.core.confirm import confirmation_page
from console.core.errors import ConsoleError, InvalidInput, NotFound
from console.core.feedback import error_shown
from console.core.tables import SUGGESTIONS, render_table, suggestion_term, suggestions_response
from integrations import catalog, services
from integrations.correlation import target_user_owner_set
from integrations.discovery import connection_test, connection_test_unsaved, extension_value
from integrations.extraction import ExtractionRefused, extraction_run_cancel, extraction_start
from integrations.filters import ExtractionRunFilterSet, TargetGroupFilterSet, TargetUserFilterSet
from integrations.forms import IntegrationForm
from integrations.history import as_of_parse, member_accounts_then, members_as_of
from integrations.models import (
    ExtractionRun,
    Integration,
    ScimComparison,
    TargetGroup,
    TargetMembership,
    TargetUser,
)
from integrations.probe import probe_panel, probe_start
from integrations.selectors import (
    integration_conflict_count,
    integration_conflicts,
    integration_health,
    interval_minutes_of,
    with_seen_at,
)
from integrations.tables import GROUPS_TABLE, MEMBERS_TABLE, RUNS_TABLE, users_table


@requires(Perm.VIEW)
def integration_list(request: HttpRequest) -> HttpResponse:
    rows = [(i, integration_health(integration=i)) for i in Integration.objects.all()]
    rows.sort(key=lambda row: (not row[1].needs_attention, row[0].name.lower()))
    deleted = Integration.all_objects.filter(archived_at__isnull=False).order_by("-archived_at", "-pk")
    return render(request, "integrations/list.html", {"rows": rows, "deleted": deleted[:100]})


@requires(Perm.MANAGE_INTEGRATIONS, write=Perm.MANAGE_INTEGRATIONS)
def integration_create(request: HttpRequest) -> HttpResponse:
    """The catalog of known applications first; then the form, filled in by the chosen template or empty."""
    slug = (request.POST.get("template") or request.GET.get("template") or "").strip()
    if request.method != "POST" and not slug and catalog.SCRATCH not in request.GET:
        query = request.GET.get("q", "").strip()
        context = {"templates": catalog.templates(query), "q": query}
        if getattr(request, "htmx", False):
            return render(request, "integrations/catalog.html#grid", context)
        return render(request, "integrations/catalog.html", context)
    template = catalog.get(slug) if slug else None
    if slug and template is None:
        messages.error(request, f"There is no template {slug!r}: choose an application or start from scratch.")
        return redirect("integration_create")
    form = IntegrationForm(request.POST or None, template=template)
    if request.method == "POST" and form.is_valid():
        try:
            integration = services.integration_create(
                actor=acting_person(request), fields=form.integration_fields(), template=template, request=request
            )
        except ConsoleError as error:
            error_shown(request, error, form)
        else:
            messages.success(request, f"{integration.name} was added. Test the connection, then extract.")
            return redirect("integration_detail", pk=integration.pk)
    return render(request, "integrations/form.html", {"form": form, "template": template})


@requires(Perm.MANAGE_INTEGRATIONS, write=Perm.MANAGE_INTEGRATIONS)
def integration_edit(request: HttpRequest, pk: int) -> HttpResponse:
    integration = get_object_or_404(Integration, pk=pk)
    form = IntegrationForm(request.POST or None, instance=integration)
    if request.method == "POST" and form.is_valid():
        try:
            services.integration_update(
                actor=acting_person(request), integration=integration, fields=form.integration_fields(), request=request
            )
        except ConsoleError as error:
            error_shown(request, error, form)
        else:
            messages.success(request, "Saved.")
            return redirect("integration_detail", pk=integration.pk)
    return render(request, "integrations/form.html", {"form": form, "integration": integration})


@require_POST
@requires(Perm.MANAGE_INTEGRATIONS, write=Perm.MANAGE_INTEGRATIONS)
def integration_delete(request: HttpRequest, pk: int) -> HttpResponse:
    integration = get_object_or_404(Integration, pk=pk)
    if page := confirmation_page(request):
        return page
    with reason_recorded(request):
        services.integration_delete(actor=acting_person(request), integration=integration, request=request)
    messages.success(
        request,
        f"{integration.name} was deleted. Its actions, their calls, its runs and its audit trail stay readable "
        "under Deleted integrations.",
    )
    return redirect("integration_list")


def _detail_context(integration: Integration, refusal: str = "") -> dict[str, Any]:
    comparison = ScimComparison.objects.filter(integration=integration).first()
    sides = []
    if comparison is not None:
        sides = [
            (
                "Users only in the payload",
                comparison.users_only_in_payload,
                comparison.counts.get("users_only_in_payload", 0),
            ),
            ("Users only in SCIM", comparison.users_only_in_scim, comparison.counts.get("users_only_in_scim", 0)),
            (
                "Groups only in the payload",
                comparison.groups_only_in_payload,
                comparison.counts.get("groups_only_in_payload", 0),
            ),
            ("Groups only in SCIM", comparison.groups_only_in_scim, comparison.counts.get("groups_only_in_scim", 0)),
        ]
    return {
        "integration": integration,
        "comparison": comparison,
        "comparison_sides": sides,
        "extension_attributes": list(integration.extension_attributes.all()),
        "health": integration_health(integration=integration),
        "run": integration.runs.order_by("-queued_at", "-id").first(),
        "runs": integration.runs.order_by("-queued_at", "-id")[:10],
        "refusal": refusal,
        **probe_panel(integration),
        "catalog_template": catalog.get(integration.catalog_template) if integration.catalog_template else None,
    }


@requires(Perm.VIEW)
def integration_detail(request: HttpRequest, pk: int) -> HttpResponse:
    integration = get_object_or_404(Integration.all_objects, pk=pk)
    if integration.archived_at is not None:  # deleted: what it did stays readable
        context = {"integration": integration, "breadcrumbs": integration_crumbs(integration)}
        return render(request, "integrations/archived.html", context)
    context = {
        **_detail_context(integration),
        "tab": "overview",
        "breadcrumbs": integration_crumbs(integration),
        "conflicts": integration_conflicts(integration=integration, limit=CONFLICTS_SHOWN),
        "conflict_count": integration_conflict_count(integration=integration),
    }
    return render(request, "integrations/detail.html", context)


@requires(Perm.VIEW)
def integration_run_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress region, polled by htmx while a run is queued or running."""
    integration = get_object_or_404(Integration, pk=pk)
    return render(request, "integrations/detail.html#progress", _detail_context(integration))


@require_POST
@requires(Perm.EXTRACT, write=Perm.EXTRACT)
def integration_extract(request: HttpRequest, pk: int) -> HttpResponse:
    integration = get_object_or_404(Integration, pk=pk)
    try:
        run = extraction_start(integration=integration, trigger=ExtractionRun.Trigger.MANUAL)
    except ExtractionRefused as exc:
        if getattr(request, "htmx", False):
            return render(request, "integrations/detail.html#progress", _detail_context(integration, str(exc)))
        error_shown(request, exc)
        return redirect("integration_detail", pk=integration.pk)
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
    result = connection_test(integration=integration)
    return render(request, "integrations/connection.html", {"integration": integration, "result": result})


# What a connection test reads of the form: where these hold errors, there is nothing to test yet.
TESTED_FIELDS = ("base_url", "auth_type", "bearer_token", "basic_username", "basic_password", "ca_certificate")


@require_POST
@requires(Perm.MANAGE_INTEGRATIONS, write=Perm.MANAGE_INTEGRATIONS)
def integration_test_unsaved(request: HttpRequest) -> HttpResponse:
    """Test the connection with the form's values as they stand, saving nothing (not even the
    outcome): an integration being edited lends its stored secrets where the form leaves them empty."""
    pk = request.POST.get("integration", "")
    stored = get_object_or_404(Integration, pk=int(pk)) if pk.isdecimal() else None
    secrets = {name: getattr(stored, name) for name in Integration.SECRET_FIELDS} if stored else {}  # before the clean
    slug = request.POST.get("template", "").strip()
    template = catalog.get(slug) if slug and stored is None else None
    form = IntegrationForm(request.POST, instance=stored, template=template)
    form.is_valid()
    wrong = [
        name
        for name in form.errors
        if name in TESTED_FIELDS or name.startswith("template_") or name == "users_endpoint"
    ]
    result: Any
    if wrong:
        labels = ", ".join(str(form[name].label) for name in wrong if name in form.fields)
        result = {"ok": False, "refusal": f"Correct these first: {labels}."}
    else:
        result = connection_test_unsaved(integration=_unsaved(form, stored, secrets))
    context = {"form": form, "integration": stored, "template": template, "test_result": result}
    if getattr(request, "htmx", False):
        return render(request, "integrations/form.html#test_result", context)
    return render(request, "integrations/form.html", context)


def _unsaved(form: IntegrationForm, stored: Integration | None, secrets: dict[str, str]) -> Integration:
    """An Integration in memory only, from the form's clean values (and the stored secrets)."""
    data = form.cleaned_data
    defaults = Integration()
    return Integration(
        name=data.get("name") or (stored.name if stored else "new integration"),
        base_url=data["base_url"],
        auth_type=data.get("auth_type") or Integration.AuthType.BEARER,
        basic_username=data.get("basic_username") or "",
        **{name: data.get(name) or secrets.get(name, "") for name in Integration.SECRET_FIELDS},
        ca_certificate=data.get("ca_certificate") or "",
        users_endpoint=data.get("users_endpoint") or defaults.users_endpoint,
        groups_endpoint=data.get("groups_endpoint") or defaults.groups_endpoint,
        timeout_seconds=data.get("timeout_seconds") or defaults.timeout_seconds,
        dialect=dict(stored.dialect) if stored else {},
    )


@require_http_methods(["GET", "POST"])
@requires(Perm.VIEW, write=Perm.MANAGE_INTEGRATIONS)
def integration_probe(request: HttpRequest, pk: int) -> HttpResponse:
    """The Dialect region (polled by htmx while a probe runs); POST starts a probe, with the
    write checks only when ``writes`` is ticked."""
    integration = get_object_or_404(Integration, pk=pk)
    if request.method == "POST":
        writes = request.POST.get("writes") in ("1", "on", "true")
        _, queued = probe_start(integration=integration, writes=writes, actor=acting_person(request))
        if not getattr(request, "htmx", False):
            if queued:
                messages.success(request, "The probe is queued: the Dialect section shows its progress.")
            else:
                messages.info(request, "A probe of this integration is already under way.")
            return redirect(f"{reverse('integration_detail', args=[integration.pk])}#dialect")
    return render(request, "integrations/detail.html#dialect", {"integration": integration, **probe_panel(integration)})


@requires(Perm.VIEW)
def integration_users(request: HttpRequest, pk: int) -> HttpResponseBase:
    integration = get_object_or_404(Integration, pk=pk)
    selectable = _selectable(request, integration)
    table = replace(users_table(integration), suggest={"group": reverse("target_group_suggest", args=[integration.pk])})
    return render_table(
        request,
        table=table,
        template="integrations/users.html",
        queryset=with_seen_at(integration.target_users.select_related("owner")),  # the Owner column, in one query
        filterset_class=TargetUserFilterSet,
        context={
            "integration": integration,
            "selectable": selectable,
            "conflict_count": integration_conflict_count(integration=integration),
        },
        selection={"form": "bulk-form", "name": "target_user", "disabled": lambda u: u.removed_at}
        if selectable
        else None,
    )


def _selectable(request: HttpRequest, integration: Integration) -> bool:
    """Rows get checkboxes for bulk actions where someone may request them."""
    user: Any = request.user
    return bool(integration.provisioning_enabled and user.has_console_permission(Perm.REQUEST_ACTIONS))


@requires(Perm.VIEW)
def integration_groups(request: HttpRequest, pk: int) -> HttpResponseBase:
    integration = get_object_or_404(Integration, pk=pk)
    return render_table(
        request,
        table=GROUPS_TABLE,
        template="integrations/groups.html",
        queryset=with_seen_at(integration.target_groups.all()),
        filterset_class=TargetGroupFilterSet,
        context={"integration": integration},
    )


@requires(Perm.VIEW)
def target_group_suggest(request: HttpRequest, pk: int) -> HttpResponseBase:
    """Names of the integration's groups that begin with (then contain) what was typed."""
    integration = get_object_or_404(Integration, pk=pk)
    term = suggestion_term(request)
    groups = integration.target_groups.filter(removed_at__isnull=True)
    starting = groups.filter(display_name__istartswith=term).order_by("display_name", "id")
    containing = groups.filter(display_name__icontains=term).order_by("display_name", "id")
    names = [*starting.values_list("display_name", flat=True)[:SUGGESTIONS]]
    if len(names) < SUGGESTIONS and term:
        names += containing.values_list("display_name", flat=True)[:SUGGESTIONS]
    return suggestions_response(names)


@requires(Perm.VIEW)
def integration_runs(request: HttpRequest, pk: int) -> HttpResponseBase:
    """Every extraction run of the integration, newest first (a small table: counted exactly);
    a deleted integration's too."""
    integration = get_object_or_404(Integration.all_objects, pk=pk)
    return render_table(
        request,
        table=RUNS_TABLE,
        template="integrations/runs.html",
        queryset=integration.runs.all(),
        filterset_class=ExtractionRunFilterSet,
        context={"integration": integration, "breadcrumbs": integration_crumbs(integration, ("Runs", None))},
    )


# The conflicts the overview lists (the Users tab counts them all).
CONFLICTS_SHOWN = 50


@requires(Perm.VIEW)
def target_user_detail(request: HttpRequest, pk: int, user_pk: int) -> HttpResponse:
    user = get_object_or_404(
        with_seen_at(TargetUser.objects.select_related("integration", "owner")), pk=user_pk, integration_id=pk
    )
    groups = TargetGroup.objects.filter(integration_id=pk, memberships__member_remote_id=user.remote_id).order_by(
        "display_name"
    )
    extensions = [
        (attribute, extension_value(user.resource, attribute))
        for attribute in user.integration.extension_attributes.all()
    ]
    return render(
        request,
        "integrations/user_detail.html",
        {
            "user": user,
            "integration": user.integration,
            "groups": groups,
            "candidates": [c.person for c in user.correlation_conflicts.select_related("person")],
            "extensions": [(attribute, value) for attribute, value in extensions if value is not None],
            "breadcrumbs": integration_crumbs(
                user.integration, ("Users", reverse("integration_users", args=[pk])), (user.user_name, None)
            ),
        },
    )


@require_POST
@requires(Perm.MANAGE_INTEGRATIONS, write=Perm.MANAGE_INTEGRATIONS)
def target_user_owner(request: HttpRequest, pk: int, user_pk: int) -> HttpResponse:
    """Choose the account's owner: a person's id (``person``, from a conflict) or user name
    (``username``). A manual link, audited, that the rules never undo."""
    user = get_object_or_404(TargetUser, pk=user_pk, integration_id=pk)
    person_id, username = request.POST.get("person", ""), request.POST.get("username", "").strip()
    try:
        if username:
            found = get_user_model().objects.filter(username__iexact=username).values_list("pk", flat=True).first()
            if found is None:
                raise NotFound(f"There is no person with the user name {username!r}.", "username")
            person_id = str(found)
        if not person_id.isdecimal():
            raise InvalidInput("Choose the person the account belongs to.", "username")
        target_user_owner_set(user=user, person_id=int(person_id), actor=acting_person(request), request=request)
    except ConsoleError as exc:
        error_shown(request, exc)
    else:
        messages.success(request, f"{user.user_name} is tied to its owner by your choice.")
    if request.POST.get("back") == "conflicts":
        return redirect(f"{reverse('integration_detail', args=[pk])}#conflicts")
    return redirect("target_user_detail", pk=pk, user_pk=user.pk)


@requires(Perm.VIEW)
def target_group_detail(request: HttpRequest, pk: int, group_pk: int) -> HttpResponseBase:
    group = get_object_or_404(TargetGroup.objects.select_related("integration"), pk=group_pk, integration_id=pk)
    # The integration's filter lets its (integration, sort field, id) indexes serve the sort.
    members = TargetUser.objects.filter(
        integration_id=group.integration_id, pk__in=TargetMembership.objects.filter(group=group).values("user_id")
    )
    # ?as_of=: the members then, from the access history (integrations.history).
    as_of_value, as_of_error, then = request.GET.get("as_of", "").strip(), "", None
    try:
        at = as_of_parse(as_of_value, field_name="Members as of")
    except InvalidInput as exc:
        as_of_error, at = exc.message, None
    if at is not None:
        then = members_as_of(group=group, at=at, with_members=False)
        members = member_accounts_then(group=group, state=then)
    return render_table(
        request,
        table=MEMBERS_TABLE,
        template="integrations/group_detail.html",
        queryset=with_seen_at(members),
        filterset_class=TargetUserFilterSet,
        context={
            "group": group,
            "integration": group.integration,
            "as_of_value": as_of_value if then is not None else "",
            "as_of_error": as_of_error,
            "then": then,
            "today": timezone.localdate().isoformat(),
            "history_since": group.integration.history_since,
            "breadcrumbs": integration_crumbs(
                group.integration, ("Groups", reverse("integration_groups", args=[pk])), (group.display_name, None)
            ),
        },
    )


def integration_crumbs(integration: Integration, *trail: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    """Integrations > the integration > what follows (the last one is the page itself)."""
    return [
        ("Integrations", reverse("integration_list")),
        (integration.name, reverse("integration_detail", args=[integration.pk])),
        *trail,
    ]


@requires(Perm.VIEW)
def integration_provisioning(request: HttpRequest, pk: int) -> HttpResponse:
    """The Provisioning tab: approval policies, attribute transformers, extension attributes."""
    integration = get_object_or_404(Integration, pk=pk)
    context = {
        "integration": integration,
        "tab": "provisioning",
        "health": integration_health(integration=integration),
        "extension_attributes": list(integration.extension_attributes.all()),
        "breadcrumbs": integration_crumbs(integration, ("Provisioning", None)),
    }
    return render(request, "integrations/detail.html", context)


@requires(Perm.VIEW)
def integration_settings(request: HttpRequest, pk: int) -> HttpResponse:
    """The Settings tab: what is set (the form edits it), the extraction interval, delete."""
    integration = get_object_or_404(Integration, pk=pk)
    context = {
        "integration": integration,
        "tab": "settings",
        "interval_minutes": interval_minutes_of(integration),
        "catalog_template": catalog.get(integration.catalog_template) if integration.catalog_template else None,
        "breadcrumbs": integration_crumbs(integration, ("Settings", None)),
    }
    return render(request, "integrations/detail.html", context)


def _requested_by(run: ExtractionRun) -> AuditEvent | None:
    """The audit event of whoever asked for the run (none for a scheduled one)."""
    events = AuditEvent.objects.filter(
        verb="integration.extraction_requested",
        target_type="integrations.integration",
        target_id=str(run.integration_id),
    )
    # Runs are asked for one at a time per integration: the few events after the run was queued hold it.
    for event in events.filter(occurred_at__gte=run.queued_at).order_by("occurred_at", "id")[:20]:
        if isinstance(event.details, dict) and event.details.get("run") == run.pk:
            return event
    return None


@requires(Perm.VIEW)
def extraction_run_detail(request: HttpRequest, pk: int, run_pk: int) -> HttpResponse:
    """One extraction run: how it ended, its counts, warnings, pages, requests and duration."""
    integration = get_object_or_404(Integration.all_objects, pk=pk)
    run = get_object_or_404(ExtractionRun, pk=run_pk, integration=integration)
    duration = None
    if run.started_at:
        duration = ((run.finished_at or timezone.now()) - run.started_at).total_seconds()
    cancelled = AuditEvent.objects.filter(
        verb="integration.extraction_cancelled",
        target_type="integrations.integration",
        target_id=str(integration.pk),
        occurred_at__gte=run.queued_at,
    ).order_by("occurred_at", "id")
    context = {
        "integration": integration,
        "run": run,
        "duration": duration,
        "requested": _requested_by(run),
        "cancelled": next((e for e in cancelled[:20] if e.details.get("run") == run.pk), None),
        "breadcrumbs": integration_crumbs(
            integration, ("Runs", reverse("integration_runs", args=[integration.pk])), (f"Run {run.pk}", None)
        ),
    }
    if getattr(request, "htmx", False) and request.GET.get("part") == "status":
        response = render(request, "integrations/run_detail.html#status", context)
        if not run.active:
            response["HX-Refresh"] = "true"  # ended: the whole page, without Cancel
        return response
    return render(request, "integrations/run_detail.html", context)


@require_POST
@requires(Perm.EXTRACT, write=Perm.EXTRACT)
def extraction_run_cancel_view(request: HttpRequest, pk: int, run_pk: int) -> HttpResponse:
    """Cancel a queued or running run; one that already ended stays as it ended."""
    run = get_object_or_404(ExtractionRun, pk=run_pk, integration_id=pk)
    if extraction_run_cancel(run=run, actor=acting_person(request), request=request):
        messages.success(request, f"Run {run.pk} was cancelled.")
    else:
        messages.info(request, f"Run {run.pk} had already ended: {run.get_status_display().lower()}.")
    return redirect("extraction_run_detail", pk=pk, run_pk=run.pk)
