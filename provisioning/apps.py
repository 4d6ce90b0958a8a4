from datetime import timedelta
from typing import Any

from django.apps import AppConfig
from django.http import HttpRequest


class ProvisioningConfig(AppConfig):
    """Actions, approvals, access requests and the workers that carry them out."""

    name = "provisioning"
    verbose_name = "Provisioning"

    def ready(self) -> None:
        from console.core.search import register_search
        from console.core.slots import register_panel
        from integrations.services import integration_archived

        integration_archived.connect(_integration_archived, dispatch_uid="provisioning.integration_archived")

        from integrations.explain import register_account_explainer, register_membership_explainer
        from provisioning.causes import accounts_made_by_actions, memberships_requested

        register_account_explainer(accounts_made_by_actions, order=50)
        register_membership_explainer(memberships_requested, order=50)

        register_panel("dashboard.main", template="provisioning/dashboard_tiles.html", context=_tiles, order=5)
        register_panel("dashboard.main", template="provisioning/dashboard_charts.html", context=_charts, order=20)
        register_panel(
            "dashboard.main", template="provisioning/dashboard_revocations.html", context=_revocations, order=25
        )
        register_panel(
            "integration.detail", template="provisioning/panel_integration_charts.html", context=_integration_charts
        )
        register_panel("person.detail", template="provisioning/panel_person.html", context=_person)
        register_panel("person.account", template="provisioning/panel_account_in_flight.html", context=_in_flight)
        register_search("actions", label="Actions", find=_actions, order=60)
        register_panel("target_user.detail", template="provisioning/panel_target_user.html", context=_target_user)
        register_panel("target_group.detail", template="provisioning/panel_target_group.html", context=_target_group)
        register_panel("integration.groups", template="provisioning/panel_create_group.html", context=_may_provision)
        register_panel("integration.users", template="provisioning/panel_bulk.html", context=_bulk)
        register_panel("integration.detail", template="provisioning/panel_quarantine.html", context=_quarantine)
        register_panel("integration.transformers", template="provisioning/panel_policies.html", context=_policies)
        register_panel(
            "integration.transformers", template="provisioning/panel_transformers.html", context=_transformers
        )


def _actions(term: str, limit: int) -> list[Any]:
    """An action by its number: "18" or "#18" (the global search, console.core.search)."""
    import re

    from django.urls import reverse

    from console.core.search import Hit
    from provisioning.models import Action

    found = re.fullmatch(r"(?:action\s*)?#?\s*(\d{1,18})", term.strip(), flags=re.IGNORECASE)
    if not found or limit < 1:
        return []
    action = Action.objects.select_related("integration").filter(pk=int(found.group(1))).first()
    if action is None:
        return []
    label = f"Action {action.pk}: {action.get_action_type_display().lower()} {action.subject}".strip()
    where = f"{action.integration.name}, {action.get_state_display()}"
    return [Hit(label, reverse("action_detail", args=[action.pk]), where)]


def _integration_archived(sender: Any, *, integration: Any, actor: Any, request: Any, **kwargs: Any) -> None:
    """An integration was deleted: what waits for it is cancelled (what is running fails on its own)."""
    from django.utils import timezone

    from console.audit.services import audit_record
    from provisioning.models import AccessRequest, Action, ActionEvent, ActionState

    now = timezone.now()
    waiting = Action.objects.filter(
        integration=integration,
        state__in=[ActionState.PENDING_APPROVAL, ActionState.APPROVED, ActionState.QUEUED],
    )
    moved = list(waiting.values_list("pk", "state"))
    waiting.update(
        state=ActionState.CANCELLED, finished_at=now, updated_at=now, last_error="the integration was deleted"
    )
    ActionEvent.objects.bulk_create(
        [
            ActionEvent(
                action_id=pk, from_state=state, to_state=ActionState.CANCELLED, actor=actor, note="integration deleted"
            )
            for pk, state in moved
        ]
    )
    requests = AccessRequest.objects.filter(integration=integration, state=AccessRequest.State.PENDING)
    cancelled_requests = requests.update(state=AccessRequest.State.CANCELLED)
    if moved or cancelled_requests:
        audit_record(
            verb="integration.work_cancelled",
            actor=actor,
            target=integration,
            request=request,
            details={"actions_cancelled": len(moved), "access_requests_cancelled": cancelled_requests},
        )


def _can_request(request: HttpRequest) -> bool:
    from console.accounts.permissions import Perm

    user: Any = request.user
    return bool(user.is_authenticated and user.has_console_permission(Perm.REQUEST_ACTIONS))


def _tiles(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any]:
    from django.db.models import Count, Q
    from django.utils import timezone

    from provisioning.models import Action, ActionState

    since = timezone.now() - timedelta(hours=24)
    counts = Action.objects.aggregate(
        pending=Count("pk", filter=Q(state=ActionState.PENDING_APPROVAL)),
        running=Count("pk", filter=Q(state=ActionState.RUNNING)),
        failed_24h=Count("pk", filter=Q(state=ActionState.FAILED, finished_at__gte=since)),
    )
    rows = (
        Action.objects.filter(finished_at__gte=since, state__in=[ActionState.SUCCEEDED, ActionState.FAILED])
        .values("integration__name")
        .annotate(finished=Count("pk"), failed=Count("pk", filter=Q(state=ActionState.FAILED)))
        .order_by("integration__name")
    )
    rates = [
        {
            "name": row["integration__name"],
            "finished": row["finished"],
            "failed": row["failed"],
            "rate": round(100 * row["failed"] / row["finished"]),
        }
        for row in rows
    ]
    return {"tiles": counts, "error_rates": sorted(rates, key=lambda r: -r["rate"])}


def _charts(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any]:
    from provisioning.charts import actions_per_day, pending_approvals

    return {"charts": [actions_per_day(), pending_approvals()]}


def _revocations(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any]:
    from provisioning.revocations import LATENCY_DAYS, revocation_latencies

    return {"latencies": revocation_latencies(), "days": LATENCY_DAYS}


def _integration_charts(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any] | None:
    from integrations.charts import extraction_charts
    from provisioning.charts import actions_per_day, error_rate_per_day, revocation_latency_per_day

    integration = page.get("integration")
    if integration is None:
        return None
    return {
        "charts": [
            *extraction_charts(integration),
            actions_per_day(integration=integration),
            error_rate_per_day(integration=integration),
            revocation_latency_per_day(integration=integration),
        ]
    }


def _person(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any] | None:
    from integrations.models import Integration
    from provisioning.models import Action

    person = page.get("person")
    if person is None:
        return None
    return {
        "sync_integrations": Integration.objects.filter(enabled=True, provisioning_enabled=True).order_by("name")
        if _can_request(request)
        else [],
        "recent_actions": Action.objects.filter(person=person)[:10],
    }


def _in_flight(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any] | None:
    """A row of the person's accounts: the actions waiting or running for the account, or for the
    person in its integration. Read once for all the rows of the page."""
    from django.db.models import Q

    from provisioning.models import IN_FLIGHT_STATES, Action

    person, account = page.get("person"), page.get("account")
    if person is None or account is None:
        return None
    memo: dict[int, list[Action]] = request.__dict__.setdefault("_actions_in_flight", {})
    if person.pk not in memo:
        accounts = [a.pk for a in page.get("accounts") or [account]]
        memo[person.pk] = list(
            Action.objects.filter(Q(person=person) | Q(target_user_id__in=accounts), state__in=IN_FLIGHT_STATES)
            .only("pk", "action_type", "state", "integration_id", "person_id", "target_user_id")
            .order_by("pk")
        )
    mine = [
        action
        for action in memo[person.pk]
        if action.integration_id == account.integration_id
        and (action.target_user_id == account.pk or action.person_id == person.pk)
    ]
    return {"in_flight": mine}


def _approval_warnings(request: HttpRequest, integration: Any, action_types: list[str]) -> list[str]:
    """Said beside the buttons that request these kinds: which would be refused as nobody else could approve."""
    from console.accounts.access import acting_person
    from provisioning.approvers import request_warnings

    return request_warnings(requester=acting_person(request), integration=integration, action_types=action_types)


def _account_action_types(integration: Any) -> list[str]:
    from provisioning.models import ActionType

    kinds = [ActionType.DEPROVISION_IDENTITY.value]
    if integration.supports_hard_delete:
        kinds.append(ActionType.DELETE_IDENTITY.value)
    return kinds


def _target_user(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any] | None:
    from provisioning.models import Action

    integration, user = page.get("integration"), page.get("user")
    if integration is None or user is None or not integration.provisioning_enabled or not _can_request(request):
        return None
    return {
        "recent_actions": Action.objects.filter(target_user=user)[:10],
        "approval_warnings": _approval_warnings(request, integration, _account_action_types(integration)),
    }


def _target_group(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any] | None:
    from provisioning.models import Action, ActionType

    integration, group = page.get("integration"), page.get("group")
    if integration is None or group is None or not integration.provisioning_enabled or not _can_request(request):
        return None
    return {
        "recent_actions": Action.objects.filter(target_group=group)[:10],
        "approval_warnings": _approval_warnings(request, integration, [ActionType.MANAGE_RELATIONSHIPS.value]),
    }


def _may_provision(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any] | None:
    integration = page.get("integration")
    if integration is None or not integration.provisioning_enabled or not _can_request(request):
        return None
    return {}


def _bulk(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any] | None:
    context = _may_provision(request, page)
    if context is None:
        return None
    integration = page["integration"]
    return {"approval_warnings": _approval_warnings(request, integration, _account_action_types(integration))}


def _quarantine(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any] | None:
    integration = page.get("integration")
    if integration is None or integration.quarantined_at is None:
        return None
    return {}


def _transformers(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any] | None:
    from provisioning.transformers import CORE_PATHS, IDENTITY_ATTRIBUTES

    integration = page.get("integration")
    if integration is None:
        return None
    import json

    from provisioning.action_types.sync_identity import user_resource
    from provisioning.transformers import TransformerError, payload_for

    resulting, error = "", ""
    if request.user.is_authenticated:
        try:
            resulting = json.dumps(user_resource(payload_for(request.user, integration)), indent=2)
        except TransformerError as exc:
            error = str(exc)
    return {
        "resulting_payload": resulting,
        "resulting_error": error,
        "transformers": list(integration.transformers.all()),
        "core_names": list(CORE_PATHS),
        "extension_names": list(integration.extension_attributes.values_list("normalized_name", flat=True)),
        "identity_attributes": IDENTITY_ATTRIBUTES,
    }


def _policies(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any] | None:
    from provisioning.services import approval_policies_of

    integration = page.get("integration")
    if integration is None:
        return None
    from provisioning.approvers import policy_warning

    return {"policies": approval_policies_of(integration), "approval_warning": policy_warning()}
