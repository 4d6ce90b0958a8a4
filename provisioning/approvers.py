"""Who can approve, and refusing a request that nobody could.

Nobody approves their own request. A request that needs approval, made by the only
person who may approve, could never be decided: it would wait until it expired. It is
refused at once instead, saying what to do.
"""

from __future__ import annotations

from django.db.models import QuerySet

from console.accounts.models import Person
from console.accounts.permissions import Perm
from console.accounts.selectors import people_holding_permission
from integrations.models import Integration
from provisioning.errors import ActionInvalid
from provisioning.models import ActionType


class NoOtherApprover(ActionInvalid):
    """The request needs an approver, and nobody but the requester could approve it (400, on its action type)."""


def approvers() -> QuerySet[Person]:
    """Active people who may approve (directly or through a team)."""
    return people_holding_permission(perm=Perm.APPROVE).filter(is_active=True)


def approver_names(limit: int = 5) -> list[str]:
    return list(approvers().order_by("username").values_list("username", flat=True)[:limit])


def someone_else_can_approve(requester: Person | None) -> bool:
    """Whether a person other than ``requester`` may approve (a request by nobody: whether anyone may)."""
    others = approvers()
    if requester is not None:
        others = others.exclude(pk=requester.pk)
    return others.exists()


def refusal(*, requester: Person | None, integration: Integration, action_type: str, held: str = "") -> str:
    """Why the request could never be approved, and what to do; "" when someone could approve it."""
    if someone_else_can_approve(requester):
        return ""
    label = ActionType(action_type).label.lower() if action_type in ActionType.values else action_type
    who = "you" if requester is not None and requester.has_console_permission(Perm.APPROVE) else "nobody"
    remedy = (
        "request fewer accounts at once (below the integration's mass-change limit)"
        if held
        else f"set {integration.name}'s approval policy for {label} to Automatic"
    )
    return (
        f"No one could approve this {label}: it needs an approver, nobody approves their own request, and "
        f"{'no one but you' if who == 'you' else 'no one'} may approve. Give another person the admin role "
        f"(or a role with {Perm.APPROVE}), or {remedy}."
    )


def request_warnings(*, requester: Person | None, integration: Integration, action_types: list[str]) -> list[str]:
    """What a page that requests these kinds of action says before the request: for each kind
    whose policy requires approval that nobody but the requester could give, that it would be
    refused, why and what to do (the refusal itself, said ahead)."""
    from provisioning.services import approval_required

    warnings = []
    for action_type in action_types:
        if approval_required(integration, action_type):
            reason = refusal(requester=requester, integration=integration, action_type=action_type)
            if reason:
                warnings.append(f"{ActionType(action_type).label} would be refused. {reason}")
    return warnings


def policy_warning(*, viewer: Person | None = None) -> str:
    """What the approval policies panel says when approvals cannot work as they stand."""
    names = approver_names(limit=3)
    if not names:
        return (
            "No one may approve: every action that requires approval will be refused. Give someone the admin "
            "role, or set the policies below to Automatic."
        )
    if len(names) == 1:
        return (
            f"Only {names[0]} may approve, and nobody approves their own request: what {names[0]} requests that "
            "requires approval will be refused. Add another approver, or set those kinds to Automatic."
        )
    return ""
