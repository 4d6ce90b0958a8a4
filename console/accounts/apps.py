from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    """People, teams, roles, API keys and sign-in."""

    name = "console.accounts"
    label = "accounts"
    verbose_name = "People and access"

    def ready(self) -> None:
        from console.accounts import schema, signals  # noqa: F401
        from console.accounts.search import people_found, teams_found
        from console.core.search import register_search

        register_search("people", label="People", find=people_found, order=10)
        register_search("teams", label="Teams", find=teams_found, order=50)
        post_migrate.connect(_ensure_builtin_roles, sender=self)


def _ensure_builtin_roles(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """Built-in roles always exist, also after a database is flushed."""
    from console.accounts.services import builtin_roles_ensure

    builtin_roles_ensure(using=using)
