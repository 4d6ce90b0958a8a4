"""Password sign-in for people."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from console.accounts.models import Person
from console.accounts.usernames import person_for_sign_in

# Where a refused password sign-in's cause is left on the request for its audit event
# (console/accounts/signals.py): the page says only that the name or password is not right.
FAILURE_CAUSE = "sign_in_failure_cause"
UNKNOWN_PERSON, BAD_PASSWORD, INACTIVE = "unknown person", "bad password", "inactive"


def _refused(request: HttpRequest | None, cause: str) -> None:
    if request is not None:
        setattr(request, FAILURE_CAUSE, cause)


class PersonBackend(ModelBackend):
    """User name and password; inactive people never authenticate.

    The name is found by :func:`~console.accounts.usernames.person_for_sign_in`, the rule the
    sign-in throttle counts by. A refusal's cause (unknown person, bad password, inactive) is
    left on the request for the audit log.
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Person | None:
        if username is None:
            username = kwargs.get(Person.USERNAME_FIELD)
        if username is None or password is None:
            return None
        person = person_for_sign_in(username)
        if person is None:
            Person().set_password(password)  # as slow as a real check, so the time tells nothing
            _refused(request, UNKNOWN_PERSON)
            return None
        if not person.check_password(password):
            _refused(request, BAD_PASSWORD)
            return None
        if not self.user_can_authenticate(person):
            _refused(request, INACTIVE)
            return None
        return person

    def get_user_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        return set()

    def get_group_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        return set()
