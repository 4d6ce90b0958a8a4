"""Password sign-in for people."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from console.accounts.models import Person


class PersonBackend(ModelBackend):
    """Username (case-insensitive) and password; inactive people never authenticate."""

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Person | None:
        person = super().authenticate(request, username=username, password=password, **kwargs)
        return person if isinstance(person, Person) else None

    def get_user_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        return set()

    def get_group_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        return set()
