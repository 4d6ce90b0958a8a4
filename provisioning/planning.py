"""Plans: the SCIM requests an action would send, and how long they take.

A plan is its action type's dry run (``provisioning/dry_run.py``): the real executor,
against the console's picture of the application, sending nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from integrations.catalog import per_second
from integrations.models import Integration, TargetGroup, TargetUser
from provisioning.action_types import action_type_of
from provisioning.dry_run import PlannedRequest


def plan(*, integration: Integration, action_type: str, parameters: dict[str, Any]) -> list[PlannedRequest]:
    """The requests, in order, that carrying out the action would make (as far as known now)."""
    return action_type_of(action_type).plan(integration, parameters)


def plan_for(
    *,
    integration: Integration,
    action_type: str,
    person: Any = None,
    target_user: TargetUser | None = None,
    target_group: TargetGroup | None = None,
    parameters: dict[str, Any] | None = None,
) -> list[PlannedRequest]:
    """Validate as a request would, then plan: a dry run of an action not yet requested."""
    from provisioning.services import _validated

    _, clean = _validated(
        integration=integration,
        action_type=action_type,
        person=person,
        target_user=target_user,
        target_group=target_group,
        parameters=parameters or {},
    )
    return plan(integration=integration, action_type=action_type, parameters=clean)


@dataclass(frozen=True)
class DurationEstimate:
    """How long the planned requests take at the integration's rate limit.

    The limit is shared by every worker (``provisioning/throttle.py``), so more concurrency
    does not make a batch faster than ``requests / rate``; the burst is left out, as other
    work may have used it. The application's own answers take some time on top.
    """

    requests: int
    rate_per_second: float
    seconds: float
    rate_limit_note: str = ""  # why the limit is what it is, when a 429 lowered it

    @property
    def text(self) -> str:
        return f"about {duration_text(self.seconds)} at {per_second(self.rate_per_second)} requests/s"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "text": self.text}


def duration_text(seconds: float) -> str:
    """``seconds`` as people say a wait: 40 s, 3 min, 2 h 5 min."""
    if seconds < 60:
        return f"{max(1, math.ceil(seconds))} s"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min" if minutes % 60 else f"{minutes // 60} h"


def requests_planned(plans: Iterable[list[PlannedRequest]]) -> int:
    """The SCIM requests the plans would send (a step that sends nothing, method "—", aside)."""
    return sum(1 for steps in plans for step in steps if step.method != "—")


def duration_estimate(*, integration: Integration, requests: int) -> DurationEstimate:
    rate = max(integration.rate_limit_per_second, 0.001)
    return DurationEstimate(requests, rate, requests / rate, integration.rate_limit_learned_note)


def plan_for_action(action: Any) -> list[PlannedRequest]:
    """The plan of a requested action; one whose parameters are incomplete plans nothing."""
    try:
        return plan(integration=action.integration, action_type=action.action_type, parameters=action.parameters)
    except (KeyError, TypeError, ValueError):
        return [PlannedRequest("—", "", note="the action's parameters are incomplete; it cannot run")]
