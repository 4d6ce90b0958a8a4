"""Template helpers for action pages."""

from __future__ import annotations

from collections.abc import Iterable

from django import template

from provisioning.models import Action, ActionState

register = template.Library()

LIVE = {ActionState.QUEUED, ActionState.RUNNING, ActionState.APPROVED}
BADGE = {
    ActionState.SUCCEEDED: "ok",
    ActionState.FAILED: "bad",
    ActionState.REJECTED: "bad",
    ActionState.PENDING_APPROVAL: "warn",
    ActionState.CANCELLED: "muted",
}


@register.filter
def any_live(actions: Iterable[Action]) -> bool:
    """Whether a list still has actions whose state will change on its own."""
    return any(action.state in LIVE for action in actions)


@register.inclusion_tag("provisioning/state_badge.html")
def state_badge(action: Action) -> dict[str, str]:
    return {"label": action.get_state_display(), "tone": BADGE.get(ActionState(action.state), "")}


@register.filter
def requester(action: Action) -> str:
    """Who asked for the action: a user name, lifecycle automation, or the console itself."""
    from provisioning.causes import requested_by_text

    return requested_by_text(action)


@register.filter
def state_words(state: str) -> str:
    """A stored state as people read it: ``pending_approval`` → "Waiting for approval"."""
    try:
        return str(ActionState(state).label)
    except ValueError:
        return str(state).replace("_", " ").capitalize()
