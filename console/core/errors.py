"""The console's one family of errors.

A service raises one of these when it will not do what it was asked; the message is for
people and says what to do. The API maps the family once (``console.core.api.exception_handler``:
one JSON shape, one status per kind) and so does the UI (one helper that puts the message on
the form field it names, or on the page). So the same refusal answers the same status
everywhere:

- bad input is 400, with the field it concerns when there is one;
- a refusal because of the state something is in (an action already finished, an
  integration archived, a run already going) is 409;
- an id that names nothing is 404.
"""

from __future__ import annotations


class ConsoleError(Exception):
    """Something the console will not do, said for people; ``field`` names the input at fault."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, field: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class InvalidInput(ConsoleError):
    """The input is not valid (400); ``field`` names the input at fault when there is one."""


class Refused(ConsoleError):
    """Not allowed in the state things are in now (409): finished, archived, already running."""

    status = 409
    code = "refused"


class Conflict(Refused):
    """It would clash with something that exists (409): a name taken, a change made meanwhile."""

    code = "conflict"


class NotFound(ConsoleError):
    """The id names nothing the caller may see (404)."""

    status = 404
    code = "not_found"
