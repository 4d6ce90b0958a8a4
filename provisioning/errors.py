"""Provisioning's refusals: the console's error family (``console.core.errors``) for actions.

Services and the action types raise :class:`ActionRefused`; catch it for every refusal of
provisioning. The API's one handler and the UI's ``error_shown`` show it.
"""

from __future__ import annotations

from console.core.errors import ConsoleError, InvalidInput, Refused


class ActionRefused(ConsoleError):
    """A request or a transition that is not allowed; the message says why, for people.

    Catch this for every refusal of provisioning. Raised as such, it is one of its two kinds:
    naming the input at fault (``field``) it is bad input, :class:`ActionInvalid` (400);
    naming none it is a refusal because of the state things are in, :class:`ActionStateRefused`
    (409: already decided, finished, changed meanwhile, not the requester's).
    """

    def __new__(cls, message: str, field: str | None = None, *, code: str | None = None) -> ActionRefused:
        if cls is ActionRefused:
            cls = ActionInvalid if field else ActionStateRefused
        return super().__new__(cls, message, field)


class ActionInvalid(ActionRefused, InvalidInput):
    """The request's input cannot be carried out (400), on the field named."""


class ActionStateRefused(ActionRefused, Refused):
    """Not allowed in the state the action (or its batch or request) is in now (409)."""


def require(condition: bool, message: str, field: str | None = None) -> None:
    """Refuse with ``message`` (on ``field``, when it names the input at fault) unless ``condition`` holds."""
    if not condition:
        raise ActionRefused(message, field)
