from typing import Any

from django.apps import AppConfig
from django.http import HttpRequest


class ReconciliationConfig(AppConfig):
    name = "reconciliation"
    verbose_name = "Reconciliation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from console.core.slots import register_panel
        from reconciliation import receivers  # noqa: F401 - connects the extraction signal

        # The Drift tab of an integration's pages, its counts on the integration's overview and
        # on the dashboard (integrations and the console know nothing of reconciliation).
        register_panel("integration.tabs", template="reconciliation/tab_link.html", context=_tab, order=60)
        register_panel(
            "integration.detail", template="reconciliation/panel_integration.html", context=_panel, order=110
        )
        register_panel("dashboard.main", template="reconciliation/dashboard_panel.html", context=_dashboard, order=26)


def _tab(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any] | None:
    from reconciliation.models import DriftItem

    integration = page.get("integration")
    if integration is None:
        return None
    return {"drift_open": DriftItem.objects.filter(integration=integration).count()}


def _panel(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any] | None:
    from reconciliation.selectors import drift_counts, drift_runs

    integration = page.get("integration")
    if integration is None:
        return None
    counts = drift_counts(integration=integration)
    runs = drift_runs(integration=integration, last=1)
    return {
        "drift_counts": counts,
        "drift_total": sum(c.count for c in counts),
        "drift_last_run": runs[0] if runs else None,
    }


def _dashboard(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any]:
    from reconciliation.selectors import open_drift_per_integration

    rows = open_drift_per_integration()
    return {"drift_rows": rows, "drift_total": sum(row.total for row in rows)}
