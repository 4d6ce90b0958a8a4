"""What every action type is made of, and what its executor may use of the run that carries it out.

An action type is four things (``ActionKind``): how a request is validated, how it is
executed (its SCIM calls), its plan (the dry run: the same executor against the console's
picture, ``provisioning/dry_run.py``) and its inverse (what undoes it). An executor
changes the application through the client it is given and the console's picture of it
only through its run (``Run.update_picture``, ``Run.remember_user``), and keeps records of
what it found through it (``Run.keep_record``): a worker's run makes those changes, a dry
run's keeps none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from integrations.models import Integration, TargetUser
from integrations.scim_client import ScimClient
from provisioning.errors import ActionRefused, require
from provisioning.lookups import Listing
from provisioning.models import Action, ActionType

if TYPE_CHECKING:
    from provisioning.dry_run import PlannedRequest
    from provisioning.execution import BatchRun
    from provisioning.services import ActionTarget

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


class NoLongerAllowed(Exception):
    """The integration's settings changed after the action was requested and now forbid it."""


class LeaseLost(Exception):
    """This worker's claim on the action ended (it was reclaimed): it must stop at once."""


class Run(Protocol):
    """What an executor uses of the run that carries it out."""

    listing: Listing  # lists read whole, for an application that cannot filter
    lookups: dict[tuple[str, str], dict[str, Any] | None]  # (attribute, value) -> account or none, settled ahead

    def remember_user(self, action: Action, resource: dict[str, Any]) -> None:
        """The account the action found or made, for the console's picture."""

    def update_picture(self, change: Callable[[], None]) -> None:
        """Bring the console's picture in line with what the action did in the application."""

    def keep_record(self, write: Callable[[], object]) -> None:
        """Write a record of what the action found (a deprovision's read-back); a dry run keeps none."""


Executor = Callable[[Action, ScimClient, Run], dict[str, Any]]
# A target's subject and clean parameters, or why it is refused.
Checked = tuple[str, dict[str, Any]] | ActionRefused


@dataclass(frozen=True)
class ActionKind:
    """One action type: everything the console does with it."""

    action_type: ActionType
    # (integration=, person=, target_user=, target_group=, parameters=) -> (subject, clean parameters);
    # raises ActionRefused. The checks every type shares are made before (services.action_request).
    validate: Callable[..., tuple[str, dict[str, Any]]]
    execute: Executor
    plan: Callable[[Integration, dict[str, Any]], list[PlannedRequest]]
    # A succeeded action -> the requests that undo it, as keyword arguments of ``action_request``.
    inverse: Callable[[Action], list[dict[str, Any]]]
    # Work done once for the actions of this type a worker claimed together, before they run.
    prepare_batch: Callable[[BatchRun, ScimClient, list[Action]], None] | None = None
    # What a batch of it does to accounts, for a batch held whole as a mass change ("" for none).
    mass_change_verb: str = ""
    # Queued work runs in this order (lower first).
    priority: int = 5
    # Whether it waits for an approval where the integration has no policy for it.
    approval_by_default: bool = False
    # A leaver's action: its own worker queue, and it takes an integration's last free slot.
    leaver: bool = False
    # ``validate`` of many targets at once (integration=, targets=) -> a ``Checked`` each, in
    # order: what they all need read once, not once a target. Without it, one at a time.
    validate_many: Callable[..., list[Checked]] | None = None

    def validate_each(self, integration: Integration, targets: Sequence[ActionTarget]) -> list[Checked]:
        """Each target validated, a refusal returned in its place (nothing raised)."""
        if self.validate_many is not None:
            return self.validate_many(integration=integration, targets=targets)
        checked: list[Checked] = []
        for target in targets:
            try:
                checked.append(
                    self.validate(
                        integration=integration,
                        person=target.person,
                        target_user=target.target_user,
                        target_group=target.target_group,
                        parameters=target.parameters,
                    )
                )
            except ActionRefused as exc:
                checked.append(exc)
        return checked


def users_endpoint(integration: Integration) -> str:
    return integration.users_endpoint.strip("/")


def groups_endpoint(integration: Integration) -> str:
    return integration.groups_endpoint.strip("/")


def account_to_remove(target_user: TargetUser | None) -> tuple[str, dict[str, Any]]:
    """The subject and parameters of an action on one account still in the application (a
    deprovision, a delete)."""
    require(target_user is not None, "Choose the account.", "target_user")
    assert target_user is not None
    require(target_user.removed_at is None, f"{target_user.user_name} is no longer in the application.", "target_user")
    return target_user.user_name, {"user_id": target_user.remote_id}
