"""Password sign-in for people."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from console.accounts.models import Person
from console.accounts.usernames import person_for_sign_in


class PersonBackend(ModelBackend):
    """User name and password; inactive people never authenticate.

    The name is found by :func:`~console.accounts.usernames.person_for_sign_in`, the rule the
    sign-in throttle counts by.
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
            return None
        if person.check_password(password) and self.user_can_authenticate(person):
            return person
        return None

    def get_user_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        return set()

    def get_group_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        return set()
