"""The approvals count beside *Approvals* in the navigation, for approvers."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from console.accounts.permissions import Perm
from provisioning.models import AccessRequest, Action, ActionState


def approvals(request: HttpRequest) -> dict[str, Any]:
    user: Any = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.has_console_permission(Perm.APPROVE):
        return {}
    actions = Action.objects.filter(state=ActionState.PENDING_APPROVAL).count()
    access = AccessRequest.objects.filter(state=AccessRequest.State.PENDING).count()
    return {"approvals_pending": actions + access}
