"""The Lifecycle tab of an integration: its policy, who is in scope, birthright mappings,
sensitive groups and, while it simulates, the plan."""

from __future__ import annotations

from typing import Any

import django_filters
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBase, QueryDict
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_POST

from console.accounts.access import acting_person, requires
from console.accounts.models import Team
from console.accounts.permissions import Perm
from console.audit.models import AuditEvent
from console.audit.services import reason_recorded
from console.core.confirm import confirmation_page
from console.core.errors import ConsoleError, InvalidInput
from console.core.tables import Column, Table, render_table, table_data
from integrations.models import Integration, TargetGroup
from integrations.views import integration_crumbs
from lifecycle.api.serializers import action_label
from lifecycle.models import (
    CONDITION_ATTRIBUTES,
    CONDITION_OPERATORS,
    BirthrightMapping,
    LeavingScope,
    LifecyclePolicy,
    MappingState,
    PlannedChange,
    PolicyMode,
    SensitiveGroup,
)
from lifecycle.scope import mapping_text, people_in_scope, scope_text
from lifecycle.services import (
    SCOPE_SAMPLE,
    group_mark_sensitive,
    mapping_approve,
    mapping_create,
    mapping_delete,
    mapping_described,
    mapping_reject,
    policy_set,
    scope_preview,
)
from lifecycle.tables import mappings_table

MODE_HELP = {
    PolicyMode.OFF: "Nothing happens: people joining, moving or leaving change nothing in this application.",
    PolicyMode.SIMULATE: "The console works out what it would do and lists it below; nothing is sent.",
    PolicyMode.ON: "Joiners get an account and their birthright groups, movers follow, leavers are "
    "deprovisioned, through this integration's approval policies.",
}
SCOPE_KINDS = {
    "everyone": "Every active person",
    "teams": "Members of chosen teams",
    "conditions": "Only the people the conditions select",
}
PLAN_SHOWN = 50
GROUPS_OFFERED = 1000


def _values(raw: str) -> list[str]:
    return [value.strip() for value in raw.split(",") if value.strip()]


def conditions_from(data: QueryDict, prefix: str = "condition") -> list[dict[str, Any]]:
    """The condition rows of a form: attribute, operator and comma-separated values; a row
    without an attribute is an empty row and left out."""
    rows = zip(
        data.getlist(f"{prefix}_attribute"),
        data.getlist(f"{prefix}_operator"),
        data.getlist(f"{prefix}_values"),
        strict=False,
    )
    return [
        {"attribute": attribute, "operator": operator or "equals", "values": _values(values)}
        for attribute, operator, values in rows
        if attribute
    ]


def policy_fields_from(data: QueryDict, scope_only: bool = False) -> dict[str, Any]:
    """The policy form's fields as ``policy_set`` takes them."""
    kind = data.get("scope", "everyone")
    if kind not in SCOPE_KINDS:
        raise InvalidInput("Choose who is in scope.", field="scope")
    fields: dict[str, Any] = {
        "all_active_people": kind == "everyone",
        "teams": data.getlist("teams") if kind == "teams" else [],
        "conditions": conditions_from(data),
        "pilot_team": data.get("pilot_team") or None,
    }
    if kind == "teams" and not fields["teams"]:
        raise InvalidInput("Choose at least one team, or another scope.", field="teams")
    if kind == "conditions" and not fields["conditions"]:
        raise InvalidInput("Give at least one condition, or another scope.", field="conditions")
    if scope_only:
        return fields
    days = data.get("retention_days", "").strip()
    if days and not (days.isascii() and days.isdigit() and len(days) < 7):
        raise InvalidInput("Retention is a number of days, or empty for never.", field="retention_days")
    fields.update(
        mode=data.get("mode", ""),
        on_leaving_scope=data.get("on_leaving_scope", ""),
        retention_days=int(days) if days else None,
    )
    return fields


def _form_state(policy: LifecyclePolicy | None, data: QueryDict | None) -> dict[str, Any]:
    """What the form shows: the posted values after an error, else the stored policy."""
    if data is not None:
        conditions = [
            {"attribute": a, "operator": o, "values": v}
            for a, o, v in zip(
                data.getlist("condition_attribute"),
                data.getlist("condition_operator"),
                data.getlist("condition_values"),
                strict=False,
            )
            if a
        ]
        return {
            "mode": data.get("mode", PolicyMode.OFF),
            "scope": data.get("scope", "everyone"),
            "teams": {int(t) for t in data.getlist("teams") if t.isdecimal() and len(t) < 19},
            "conditions": conditions,
            "pilot_team": int(p) if (p := data.get("pilot_team", "")).isdecimal() and len(p) < 19 else None,
            "on_leaving_scope": data.get("on_leaving_scope", LeavingScope.DEPROVISION),
            "retention_days": data.get("retention_days", ""),
        }
    if policy is None:
        return {
            "mode": PolicyMode.OFF,
            "scope": "everyone",
            "teams": set(),
            "conditions": [],
            "pilot_team": None,
            "on_leaving_scope": LeavingScope.DEPROVISION,
            "retention_days": 30,
        }
    teams = set(policy.teams.values_list("pk", flat=True))
    return {
        "mode": policy.mode,
        "scope": "everyone" if policy.all_active_people else ("teams" if teams else "conditions"),
        "teams": teams,
        "conditions": [{**c, "values": ", ".join(c["values"])} for c in policy.conditions],
        "pilot_team": policy.pilot_team_id,
        "on_leaving_scope": policy.on_leaving_scope,
        "retention_days": "" if policy.retention_days is None else policy.retention_days,
    }


class MappingFilterSet(django_filters.FilterSet):
    """The mappings of the Lifecycle tab: no filter of their own (an integration has a few)."""

    class Meta:
        model = BirthrightMapping
        fields: list[str] = []


def _mappings_data(
    request: HttpRequest, integration: Integration, policy: LifecyclePolicy | None
) -> dict[str, Any] | HttpResponseBase:
    """The birthright mappings as the shared table (lifecycle.tables), or its export."""
    me = acting_person(request)
    viewer: Any = request.user  # the buttons follow the roles the page's navigation shows (``can``)
    can = {p.name.lower(): viewer.has_console_permission(p) for p in Perm}
    csrf = get_token(request)

    def actions(mapping: BirthrightMapping) -> str:
        context = {"mapping": mapping, "integration": integration, "policy": policy, "can": can, "csrf_token": csrf}
        return render_to_string("lifecycle/mapping_actions.html", context)

    def prepare(mappings: list[Any]) -> None:
        sensitive = set(
            SensitiveGroup.objects.filter(group__integration=integration).values_list("group_id", flat=True)
        )
        for m in mappings:
            m.text = mapping_text(m)
            m.group_rows = [(g, g.pk in sensitive) for g in m.groups.all()]
            m.may_decide = m.state == MappingState.PENDING and m.created_by_id != me.pk

    return table_data(
        request,
        table=mappings_table(actions),
        queryset=BirthrightMapping.objects.filter(integration=integration)
        .select_related("team", "created_by", "decided_by")
        .prefetch_related("groups"),
        filterset_class=MappingFilterSet,
        prepare=prepare,
    )


def _page_context(
    request: HttpRequest,
    integration: Integration,
    data: QueryDict | None = None,
    errors: dict[str, str] | None = None,
    mapping_errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    policy = LifecyclePolicy.objects.filter(integration=integration).select_related("pilot_team").first()
    form = _form_state(policy, data)
    form["conditions"] = [*form["conditions"], {"attribute": "", "operator": "equals", "values": ""}]
    mapping_table = _mappings_data(request, integration, policy)
    if isinstance(mapping_table, HttpResponseBase):  # an export: lifecycle_tab answers it before this
        mapping_table = {}
    marked = SensitiveGroup.objects.filter(group__integration=integration)
    sensitive_ids = set(marked.values_list("group_id", flat=True))
    groups = list(
        TargetGroup.objects.filter(integration=integration, removed_at__isnull=True).order_by("display_name", "id")[
            :GROUPS_OFFERED
        ]
    )
    plan: list[PlannedChange] = []
    plan_count = 0
    if policy is not None and policy.mode == PolicyMode.SIMULATE:
        changes = policy.planned_changes.select_related("person")
        plan_count = changes.count()
        plan = list(changes[:PLAN_SHOWN])
    in_scope = people_in_scope(policy) if policy is not None else None
    refused = None
    if policy is not None and policy.mode != PolicyMode.OFF:
        refused = (
            AuditEvent.objects.filter(
                verb="lifecycle.refused",
                target_type="integrations.integration",
                target_id=str(integration.pk),
                occurred_at__gte=policy.updated_at,
            )
            .order_by("-occurred_at", "-id")
            .first()
        )
    return {
        "refused": refused,
        "integration": integration,
        "tab": "lifecycle",
        "breadcrumbs": integration_crumbs(integration, ("Lifecycle", None)),
        "policy": policy,
        "form": form,
        "errors": errors or {},
        "mapping_errors": mapping_errors or {},
        "modes": [(value, label, MODE_HELP[PolicyMode(value)]) for value, label in PolicyMode.choices],
        "scope_kinds": SCOPE_KINDS.items(),
        "leaving_choices": LeavingScope.choices,
        "attributes": CONDITION_ATTRIBUTES.items(),
        "operators": CONDITION_OPERATORS.items(),
        "teams": list(Team.objects.order_by("name", "id")),
        **mapping_table,
        "groups": [(g, g.pk in sensitive_ids) for g in groups],
        "sensitive_groups": [g for g, sensitive in ((g, g.pk in sensitive_ids) for g in groups) if sensitive],
        "plan": [(change, action_label(change.action_type)) for change in plan],
        "plan_count": plan_count,
        "preview": {
            "count": in_scope.count() if in_scope is not None else 0,
            "sample": list(in_scope.order_by("username").values_list("username", flat=True)[:SCOPE_SAMPLE])
            if in_scope is not None
            else [],
            "text": scope_text(policy) if policy is not None else "nobody: no policy yet",
        },
    }


@requires(Perm.VIEW, write=Perm.MANAGE_INTEGRATIONS)
def lifecycle_tab(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The Lifecycle tab; POST saves the policy (errors beside their fields)."""
    integration = get_object_or_404(Integration, pk=pk)
    if request.method == "POST":
        try:
            fields = policy_fields_from(request.POST)
            stored = LifecyclePolicy.objects.filter(integration=integration).first()
            if fields["mode"] == PolicyMode.ON and (stored is None or stored.mode != PolicyMode.ON):
                # Turning on changes the application: the one confirmation asks first (the page
                # without the script; the form posts confirm=ask).
                preview = scope_preview(fields, stored)
                text = (
                    f"Turns the lifecycle policy of {integration.name} on: each person in scope "
                    f"({preview['count']}) gets an account in {integration.name} and their birthright groups, "
                    "and leavers are deprovisioned, from now on and without asking again."
                )
                if page := confirmation_page(request, count=preview["count"], text=text):
                    return page
            with reason_recorded(request):
                policy = policy_set(
                    actor=acting_person(request), integration=integration, fields=fields, request=request
                )
        except ConsoleError as error:
            context = _page_context(request, integration, request.POST, {error.field or "form": error.message})
            return render(request, "lifecycle/tab.html", context, status=400)
        messages.success(request, f"Saved: the lifecycle policy is {policy.get_mode_display().lower()}.")
        return redirect("lifecycle_tab", pk=integration.pk)
    htmx = getattr(request, "htmx", None)
    if request.GET.get("as") in ("csv", "json") or (htmx and htmx.target == "table-region"):
        # The mappings table's own requests: its export, its partial (sorting, paging).
        data = _mappings_data(request, integration, LifecyclePolicy.objects.filter(integration=integration).first())
        if isinstance(data, HttpResponseBase):
            return data
        return render(request, "lifecycle/tab.html#table", {"integration": integration, **data})
    return render(request, "lifecycle/tab.html", _page_context(request, integration))


@requires(Perm.VIEW)
def lifecycle_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """Who the form's scope covers, before it is saved (htmx swaps it in as the form changes)."""
    integration = get_object_or_404(Integration, pk=pk)
    policy = LifecyclePolicy.objects.filter(integration=integration).first()
    try:
        preview = scope_preview(policy_fields_from(request.GET, scope_only=True), policy)
        error = ""
    except ConsoleError as exc:
        preview, error = None, exc.message
    return render(request, "lifecycle/tab.html#preview", {"preview": preview, "preview_error": error})


def _back(integration: Integration, anchor: str) -> HttpResponse:
    return redirect(f"{reverse('lifecycle_tab', args=[integration.pk])}#{anchor}")


@require_POST
@requires(Perm.MANAGE_INTEGRATIONS, write=Perm.MANAGE_INTEGRATIONS)
def lifecycle_mapping_create(request: HttpRequest, pk: int) -> HttpResponse:
    integration = get_object_or_404(Integration, pk=pk)
    try:
        if request.POST.get("confirm") == "ask":
            # Without the script, the confirmation page says what this mapping does (the team or
            # conditions and the groups), and a mistake in the form is shown before it asks.
            described = mapping_described(
                integration=integration,
                team=request.POST.get("team") or None,
                conditions=conditions_from(request.POST, "mapping_condition"),
                groups=request.POST.getlist("groups"),
            )
            if page := confirmation_page(request, text=described):
                return page
        with reason_recorded(request):
            mapping = mapping_create(
                actor=acting_person(request),
                integration=integration,
                team=request.POST.get("team") or None,
                conditions=conditions_from(request.POST, "mapping_condition"),
                groups=request.POST.getlist("groups"),
                request=request,
            )
    except ConsoleError as error:
        context = _page_context(request, integration, mapping_errors={error.field or "form": error.message})
        return render(request, "lifecycle/tab.html", context, status=400)
    if mapping.state == MappingState.PENDING:
        messages.success(request, "The mapping grants a sensitive group: it waits for a second admin's approval.")
    else:
        messages.success(request, "The mapping is in effect.")
    return _back(integration, "mappings")


@require_POST
@requires(Perm.APPROVE, write=Perm.APPROVE)
def lifecycle_mapping_approve(request: HttpRequest, pk: int, mapping_pk: int) -> HttpResponse:
    mapping = get_object_or_404(BirthrightMapping, pk=mapping_pk, integration_id=pk)
    if page := confirmation_page(request):
        return page
    try:
        with reason_recorded(request):
            mapping_approve(actor=acting_person(request), mapping=mapping, request=request)
    except ConsoleError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Approved: the mapping is in effect.")
    return _back(mapping.integration, "mappings")


@require_POST
@requires(Perm.APPROVE, write=Perm.APPROVE)
def lifecycle_mapping_reject(request: HttpRequest, pk: int, mapping_pk: int) -> HttpResponse:
    mapping = get_object_or_404(BirthrightMapping, pk=mapping_pk, integration_id=pk)
    try:
        mapping_reject(actor=acting_person(request), mapping=mapping, request=request)
    except ConsoleError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Rejected: the mapping grants nothing.")
    return _back(mapping.integration, "mappings")


@require_POST
@requires(Perm.MANAGE_INTEGRATIONS, write=Perm.MANAGE_INTEGRATIONS)
def lifecycle_mapping_delete(request: HttpRequest, pk: int, mapping_pk: int) -> HttpResponse:
    mappings = BirthrightMapping.objects.select_related("integration")
    mapping = get_object_or_404(mappings, pk=mapping_pk, integration_id=pk)
    if page := confirmation_page(request):
        return page
    integration = mapping.integration
    with reason_recorded(request):
        mapping_delete(actor=acting_person(request), mapping=mapping, request=request)
    messages.success(request, "The mapping was deleted: what only it granted is taken away.")
    return _back(integration, "mappings")


@require_POST
@requires(Perm.MANAGE_INTEGRATIONS, write=Perm.MANAGE_INTEGRATIONS)
def lifecycle_group_sensitive(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark the posted ``group`` sensitive (``sensitive=1``) or not (``sensitive=0``)."""
    integration = get_object_or_404(Integration, pk=pk)
    raw = request.POST.get("group", "")
    group = (
        TargetGroup.objects.filter(pk=int(raw), integration=integration).first()
        if raw.isascii() and raw.isdigit() and len(raw) < 19
        else None
    )
    if group is None:
        messages.error(request, "Choose one of the integration's groups.")
        return _back(integration, "sensitive")
    sensitive = request.POST.get("sensitive", "1") == "1"
    group_mark_sensitive(actor=acting_person(request), group=group, sensitive=sensitive, request=request)
    if sensitive:
        messages.success(request, f"{group.display_name} is sensitive: new mappings that grant it need a second admin.")
    else:
        messages.success(request, f"{group.display_name} is no longer sensitive.")
    return _back(integration, "sensitive")


class PlannedChangeFilterSet(django_filters.FilterSet):
    action_type = django_filters.ChoiceFilter(
        label="What",
        choices=[
            ("SYNC_IDENTITIES", "Sync identity"),
            ("MANAGE_RELATIONSHIPS", "Manage group members"),
            ("DEPROVISION_IDENTITY", "Deprovision identity"),
        ],
        empty_label="Any",
    )

    class Meta:
        model = PlannedChange
        fields = ["action_type"]


PLAN_TABLE = Table(
    name="lifecycle-plan",
    columns=[
        Column("what", "What", value=lambda c: f"{action_label(c.action_type)}: {c.subject}"),
        Column("who", "Who", value=lambda c: c.person.username if c.person else ""),
        Column("cause", "Why"),
        Column("planned_at", "When", sort="planned_at"),
    ],
    ordering="-planned_at",
    total="exact",
)


@requires(Perm.VIEW)
def lifecycle_plan(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The whole simulated plan as a table (CSV and JSON export from the table)."""
    integration = get_object_or_404(Integration, pk=pk)
    policy = LifecyclePolicy.objects.filter(integration=integration).first()
    changes = (
        PlannedChange.objects.filter(policy=policy).select_related("person") if policy else PlannedChange.objects.none()
    )
    return render_table(
        request,
        table=PLAN_TABLE,
        template="lifecycle/plan.html",
        queryset=changes,
        filterset_class=PlannedChangeFilterSet,
        context={
            "integration": integration,
            "policy": policy,
            "tab": "lifecycle",
            "breadcrumbs": integration_crumbs(
                integration, ("Lifecycle", reverse("lifecycle_tab", args=[pk])), ("Simulated plan", None)
            ),
        },
    )
