"""Reads of provisioning that the UI and the API share, so both take the same input."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from integrations.models import Integration, TargetUser
from provisioning.errors import ActionRefused
from provisioning.models import ActionType


def remote_ids_of(*, integration: Integration, names: Iterable[str]) -> list[str]:
    """Accounts named by user name or by remote id → their remote ids, in the order given.

    A value that is no account's user name is taken as a remote id (the request's own
    check then refuses one that names no account). Only accounts still in the application
    count; a user name that two of them hold is refused, never guessed between.
    """
    names = [str(name).strip() for name in names if str(name).strip()]
    found: dict[str, list[str]] = {}
    accounts = TargetUser.objects.filter(integration=integration, user_name__in=names, removed_at__isnull=True)
    for user_name, remote_id in accounts.order_by("pk").values_list("user_name", "remote_id"):
        found.setdefault(user_name, []).append(remote_id)
    for name, remote_ids in found.items():
        if len(remote_ids) > 1:
            raise ActionRefused(
                f"{len(remote_ids)} accounts in {integration.name} are named {name!r} "
                f"(remote ids {', '.join(remote_ids[:5])}): name the one you mean by its remote id.",
                "parameters",
            )
    return [found[name][0] if name in found else name for name in names]


def parameters_resolved(*, integration: Integration, action_type: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """An action's parameters as its request takes them: members to add or remove by remote id."""
    if action_type != ActionType.MANAGE_RELATIONSHIPS:
        return parameters
    resolved = dict(parameters)
    for key in ("add", "remove"):
        if isinstance(parameters.get(key), list):
            resolved[key] = remote_ids_of(integration=integration, names=parameters[key])
    return resolved
