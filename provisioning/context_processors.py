"""The approvals count beside *Approvals* in the navigation, for approvers."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from console.accounts.permissions import Perm
from provisioning.batches import actions_awaiting_decision, held_batches_awaiting_decision
from provisioning.models import AccessRequest


def approvals(request: HttpRequest) -> dict[str, Any]:
    user: Any = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.has_console_permission(Perm.APPROVE):
        return {}
    # One per decision to make, as the inbox lists them: a held batch is one.
    actions = actions_awaiting_decision().count()
    batches = held_batches_awaiting_decision().count()
    access = AccessRequest.objects.filter(state=AccessRequest.State.PENDING).count()
    return {"approvals_pending": actions + batches + access}
