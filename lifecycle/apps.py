from typing import Any

from django.apps import AppConfig
from django.http import HttpRequest


class LifecycleConfig(AppConfig):
    name = "lifecycle"
    verbose_name = "Lifecycle automation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from console.core.slots import register_panel
        from integrations.explain import register_membership_explainer
        from lifecycle import receivers  # noqa: F401 - connects the identity-event and action signals
        from lifecycle.explain import memberships_granted

        register_membership_explainer(memberships_granted, order=40)
        # The Lifecycle tab of an integration's pages (integrations knows nothing of lifecycle).
        register_panel("integration.tabs", template="lifecycle/tab_link.html", context=_tab, order=50)


def _tab(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any] | None:
    return {} if page.get("integration") is not None else None
