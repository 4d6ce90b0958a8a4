"""The action types, one module each, and the one place that maps a type to its module.

Each module (``sync_identity``, ``manage_relationships``, ``deprovision``, ``delete``,
``create_entitlement``) holds everything its type is, as an ``ActionKind``: its
validation, its executor, its plan and its inverse. Services, workers, dry runs and
batches ask :func:`action_type_of` and hold no branch of their own by type.
"""

from __future__ import annotations

from provisioning.action_types import create_entitlement, delete, deprovision, manage_relationships, sync_identity
from provisioning.action_types.base import ActionKind
from provisioning.models import ActionType

KINDS: dict[str, ActionKind] = {
    kind.action_type: kind
    for kind in (
        sync_identity.KIND,
        manage_relationships.KIND,
        deprovision.KIND,
        delete.KIND,
        create_entitlement.KIND,
    )
}


def action_type_of(action_type: str) -> ActionKind:
    """The action type named ``action_type``; ValueError for a name that is none."""
    return KINDS[ActionType(action_type)]
