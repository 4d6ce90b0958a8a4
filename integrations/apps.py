from typing import Any

from django.apps import AppConfig
from django.http import HttpRequest, HttpResponseBase


class IntegrationsConfig(AppConfig):
    """Outbound targets: integration config, credentials, the SCIM client, extraction."""

    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from console.core.search import register_search
        from console.core.slots import register_panel

        register_panel("dashboard.main", template="integrations/dashboard_panel.html", context=_dashboard, order=10)
        register_panel("dashboard.main", template="integrations/dashboard_leavers.html", context=_leavers, order=24)
        register_panel("settings.pipeline", template="integrations/settings_overrides.html", context=_overrides)
        register_panel(
            "person.detail",
            template="integrations/panel_person_accounts.html",
            context=_person_accounts,
            order=50,
            respond=_person_accounts_respond,
        )
        register_search("accounts", label="Accounts", find=_accounts, order=20)
        register_search("groups", label="Groups", find=_groups, order=30)
        register_search("integrations", label="Integrations", find=_integrations, order=40)


def _dashboard(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any]:
    from integrations.models import Integration
    from integrations.selectors import integration_health

    rows = [(i, integration_health(integration=i)) for i in Integration.objects.all()]
    rows.sort(key=lambda row: (not row[1].needs_attention, row[0].name.lower()))
    return {"integration_rows": rows}


def _leavers(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any]:
    from integrations.selectors import leavers_with_active_accounts

    count, accounts = leavers_with_active_accounts()
    return {"leaver_count": count, "leaver_accounts": accounts}


def _overrides(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any]:
    from integrations.models import Integration

    return {"overrides": Integration.objects.filter(extraction_interval_minutes__isnull=False).order_by("name")}


def _person_accounts(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any] | None:
    from django.utils import timezone

    from console.core.errors import InvalidInput
    from integrations.history import as_of_parse, person_accounts_as_of
    from integrations.models import Integration

    person = page.get("person")
    if person is None:
        return None
    as_of_value, error = request.GET.get("as_of", "").strip(), ""
    try:
        at = as_of_parse(as_of_value, field_name="Accounts as of")
    except InvalidInput as exc:
        error, at = exc.message, None
    context: dict[str, Any] = {
        "as_of_error": error,
        "today": timezone.localdate().isoformat(),
        # The earliest history of the live integrations: the picker says where it starts.
        "history_since": Integration.objects.exclude(history_since=None)
        .order_by("history_since")
        .values_list("history_since", flat=True)
        .first(),
    }
    if at is not None:  # the accounts then, from the access history (integrations.history)
        return {**context, "as_of_value": as_of_value, "then": person_accounts_as_of(person_id=person.pk, at=at)}
    data = _person_accounts_data(request, person)
    if isinstance(data, HttpResponseBase):  # an export is answered by _person_accounts_respond
        return None
    return {**context, **data}


def _person_accounts_data(request: HttpRequest, person: Any) -> dict[str, Any] | HttpResponseBase:
    """The person's accounts as the shared table (integrations.tables.person_accounts_table)."""
    from django.template.loader import render_to_string
    from django.utils.html import strip_tags
    from django.utils.safestring import mark_safe

    from console.core.slots import panels_for
    from console.core.tables import table_data
    from integrations.explain import person_accounts_explained
    from integrations.filters import PersonAccountFilterSet
    from integrations.models import TargetUser
    from integrations.selectors import accounts_with_groups, person_accounts_query
    from integrations.tables import person_accounts_table

    # Every account of the person (not only this page's): provisioning reads the actions of
    # all of them at once, for the rows of the page.
    every = list(TargetUser.objects.filter(owner_id=person.pk).only("pk"))

    def in_flight(account: Any) -> Any:
        page = {"person": person, "account": account, "accounts": every}
        parts = []
        for panel in panels_for("person.account"):
            extra = panel.context(request, page)
            if extra is not None:
                parts.append(render_to_string(panel.template, {**page, **extra}, request=request))
        return mark_safe("".join(parts))  # noqa: S308 - each part is a rendered, autoescaped template

    def in_flight_text(account: Any) -> str:
        words = " ".join(strip_tags(in_flight(account)).split())
        return "" if words == "none" else words

    def prepare(accounts: list[Any]) -> None:
        accounts_with_groups(accounts)
        person_accounts_explained(person.pk, accounts)

    return table_data(
        request,
        table=person_accounts_table(in_flight, in_flight_text),
        queryset=person_accounts_query(person_id=person.pk),
        filterset_class=PersonAccountFilterSet,
        prepare=prepare,
    )


def _person_accounts_respond(request: HttpRequest, page: dict[str, Any]) -> HttpResponseBase | None:
    """The accounts table's own requests on the person's page: its export, its htmx partial."""
    from django.shortcuts import render

    person = page.get("person")
    htmx = getattr(request, "htmx", None)
    partial = bool(htmx and htmx.target == "table-region")
    if person is None or (request.GET.get("as") not in ("csv", "json") and not partial):
        return None
    data = _person_accounts_data(request, person)
    if isinstance(data, HttpResponseBase):
        return data
    return render(request, "integrations/panel_person_accounts.html#table", {"person": person, **data})


# The global search (console.core.search). Names match from their beginning, case aside: one
# query across live integrations, bounded by its LIMIT (within one integration the
# (integration, UPPER(user_name)) index serves it).
def _accounts(term: str, limit: int) -> list[Any]:
    from django.urls import reverse

    from console.core.search import Hit
    from integrations.models import TargetUser

    users = (
        TargetUser.objects.filter(
            integration__archived_at__isnull=True, removed_at__isnull=True, user_name__istartswith=term
        )
        .select_related("integration")
        .order_by("user_name", "id")[:limit]
    )
    return [
        Hit(
            user.user_name,
            reverse("target_user_detail", args=[user.integration_id, user.pk]),
            f"in {user.integration.name}" + ("" if user.active else " (inactive)"),
        )
        for user in users
    ]


def _groups(term: str, limit: int) -> list[Any]:
    from django.urls import reverse

    from console.core.search import Hit
    from integrations.models import TargetGroup

    groups = (
        TargetGroup.objects.filter(
            integration__archived_at__isnull=True, removed_at__isnull=True, display_name__istartswith=term
        )
        .select_related("integration")
        .order_by("display_name", "id")[:limit]
    )
    return [
        Hit(
            group.display_name,
            reverse("target_group_detail", args=[group.integration_id, group.pk]),
            f"in {group.integration.name}, {group.member_count} members",
        )
        for group in groups
    ]


def _integrations(term: str, limit: int) -> list[Any]:
    from django.urls import reverse

    from console.core.search import Hit
    from integrations.models import Integration

    # A short table: a name matches anywhere in it.
    found = Integration.objects.filter(name__icontains=term).order_by("name", "id")[:limit]
    return [Hit(i.name, reverse("integration_detail", args=[i.pk]), i.get_kind_display()) for i in found]
