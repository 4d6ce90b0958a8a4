from typing import Any

from django.apps import AppConfig
from django.http import HttpRequest


class IntegrationsConfig(AppConfig):
    """Outbound targets: integration config, credentials, the SCIM client, extraction."""

    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from console.web.slots import register_panel

        register_panel("dashboard.main", template="integrations/dashboard_panel.html", context=_dashboard, order=10)
        register_panel("settings.pipeline", template="integrations/settings_overrides.html", context=_overrides)


def _dashboard(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any]:
    from integrations.models import Integration
    from integrations.selectors import integration_health

    rows = [(i, integration_health(integration=i)) for i in Integration.objects.all()]
    rows.sort(key=lambda row: (not row[1].needs_attention, row[0].name.lower()))
    return {"integration_rows": rows}


def _overrides(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any]:
    from integrations.models import Integration

    return {"overrides": Integration.objects.filter(extraction_interval_minutes__isnull=False).order_by("name")}
