"""Why an automated action exists, as the action's page, list, export and API show it.

Lifecycle automation records a cause on each action it asks for (``Action.cause``: the text,
the identity event, the policy and the birthright mappings; ``Action.cause_event``). Here it
is read back for people: one line of text, and links to the person the identity event is
about, to the integration's lifecycle tab (where the policy and its mappings are), to each
mapping there, and to the drift plan whose item the action applies. Provisioning knows
lifecycle's and reconciliation's pages only by their URL names, never by import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.urls import reverse

from console.core.display import when_text
from integrations.explain import Membership, Why
from integrations.models import OwnerSource, TargetUser
from provisioning.models import AccessRequest, Action, ActionState, ActionType

AUTOMATION = "lifecycle automation"


@dataclass(frozen=True)
class CauseLink:
    label: str
    url: str


@dataclass(frozen=True)
class CauseView:
    text: str
    links: list[CauseLink] = field(default_factory=list)


def lifecycle_url(integration_id: int) -> str:
    """The integration's lifecycle tab: the policy and its mappings."""
    return reverse("lifecycle_tab", args=[integration_id])


def cause_text(action: Action) -> str:
    return str((action.cause or {}).get("text") or "")


def requested_by_text(action: Action) -> str:
    """Who asked: a person's user name, lifecycle automation, or the console itself."""
    if action.requested_by_id is not None:
        return action.requested_by.username  # type: ignore[union-attr]
    if (action.cause or {}).get("policy") or action.cause_event_id is not None:
        return AUTOMATION
    return "system"


def cause_view(action: Action) -> CauseView | None:
    """The cause in one line with its links, or None for an action somebody asked for.

    Reads ``action.cause_event.person`` (select it with the action)."""
    cause = action.cause or {}
    text = cause_text(action)
    if not text:
        return None
    links = []
    event = action.cause_event
    if event is not None:
        person_url = reverse("person_detail", args=[event.person_id]) + "#identity-events"
        links.append(CauseLink(f"{event.person.username}, identity event {event.pk}", person_url))
    policy_url = lifecycle_url(action.integration_id)
    if cause.get("policy"):
        links.append(CauseLink(f"the lifecycle policy of {action.integration.name}", policy_url))
    for mapping_id in cause.get("mappings") or []:
        links.append(CauseLink(f"mapping {mapping_id}", f"{policy_url}#mapping-{mapping_id}"))
    if isinstance(cause.get("plan"), int):
        links.append(
            CauseLink(f"plan {cause['plan']}", reverse("plan_detail", args=[action.integration_id, cause["plan"]]))
        )
    return CauseView(text=text, links=links)


# --- why a person has an account and a membership (integrations.explain) ---------------------


def accounts_made_by_actions(person_id: int, accounts: Sequence[TargetUser]) -> dict[int, Why]:
    """Accounts an action of the console made (or found) for the person: the first such sync,
    by lifecycle automation (its policy and identity event) or at someone's request. One query."""
    ids = [a.pk for a in accounts if a.owner_source == OwnerSource.ACTION]
    if not ids:
        return {}
    syncs = (
        Action.objects.filter(
            target_user_id__in=ids, action_type=ActionType.SYNC_IDENTITIES, state=ActionState.SUCCEEDED
        )
        .select_related("integration", "requested_by")
        .order_by("target_user_id", "pk")
    )
    found: dict[int, Why] = {}
    for action in syncs:
        if action.target_user_id in found:
            continue
        url = reverse("action_detail", args=[action.pk])
        # A sync that found the account in the application (and brought it up to date) did not create it.
        made = "created" if (action.result or {}).get("operation") == "created" else "found and linked"
        if (action.cause or {}).get("policy"):
            event = f" for identity event {action.cause_event_id}" if action.cause_event_id else ""
            text = f"{made} by the lifecycle policy of {action.integration.name}{event} (action {action.pk})"
        else:
            text = f"{made} by action {action.pk} at the request of {requested_by_text(action)}"
        found[action.target_user_id] = Why(text, url)  # type: ignore[index]
    return found


def memberships_requested(person_id: int, memberships: Sequence[Membership]) -> dict[tuple[int, int], Why]:
    """Memberships an approved access request added, still in force. One query."""
    accounts = {m.account.pk for m in memberships}
    if not accounts:
        return {}
    wanted = {(m.account.pk, m.group_id) for m in memberships}
    granted = AccessRequest.objects.filter(
        target_user_id__in=accounts,
        operation=AccessRequest.Operation.ADD,
        state=AccessRequest.State.APPROVED,
        ended_at__isnull=True,
    ).order_by("pk")
    found: dict[tuple[int, int], Why] = {}
    for access in granted.only("pk", "target_user_id", "target_group_id", "ends_at"):
        key = (access.target_user_id, access.target_group_id)
        if key in wanted:
            until = f", until {when_text(access.ends_at)}" if access.ends_at else ""
            found[key] = Why(f"access request #{access.pk}{until}", reverse("access_request_detail", args=[access.pk]))
    return found
