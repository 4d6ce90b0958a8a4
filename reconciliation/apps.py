from typing import Any

from django.apps import AppConfig
from django.http import HttpRequest


class ReconciliationConfig(AppConfig):
    name = "reconciliation"
    verbose_name = "Reconciliation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from console.core.slots import register_panel
        from reconciliation import receivers  # noqa: F401 - connects the extraction and drift signals

        # The Drift tab of an integration's pages, its counts in the overview's health card and
        # on the dashboard (integrations and the console know nothing of reconciliation).
        register_panel("integration.tabs", template="reconciliation/tab_link.html", context=_tab, order=60)
        register_panel("integration.health", template="reconciliation/panel_integration.html", context=_panel)
        register_panel("dashboard.main", template="reconciliation/dashboard_panel.html", context=_dashboard, order=26)
        # "Make a plan" on the drift tab, and auto-remediation on the Lifecycle tab (lifecycle
        # knows nothing of reconciliation).
        register_panel("reconciliation.drift_actions", template="reconciliation/make_plan.html", context=_make_plan)
        register_panel("lifecycle.policy", template="reconciliation/auto_remediation.html", context=_auto, order=10)


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
        "drift_counts": [c for c in counts if c.count],
        "drift_total": sum(c.count for c in counts),
        "drift_last_run": runs[0] if runs else None,
    }


def _dashboard(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any]:
    from reconciliation.selectors import open_drift_per_integration

    rows = open_drift_per_integration()
    return {"drift_rows": rows, "drift_total": sum(row.total for row in rows)}


def _make_plan(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any] | None:
    from reconciliation.models import DriftCategory

    if page.get("integration") is None:
        return None
    counts = page.get("counts")  # the drift tab's counts: offer the categories with open items
    if counts is not None:
        return {"categories": [(c.category, f"{c.label} ({c.count})") for c in counts if c.count]}
    return {"categories": DriftCategory.choices}


def _auto(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any] | None:
    from reconciliation.auto import ORPHANS_NOT_ELIGIBLE, auto_categories
    from reconciliation.models import AUTO_ELIGIBLE, DriftCategory

    if page.get("integration") is None:
        return None
    policy = page.get("policy")
    chosen = auto_categories(policy)
    return {
        "auto_choices": [(c, DriftCategory(c).label, c in chosen) for c in AUTO_ELIGIBLE],
        "auto_labels": [DriftCategory(c).label for c in chosen],
        "auto_active": policy is not None and policy.mode == "on" and bool(chosen),
        "orphans": ORPHANS_NOT_ELIGIBLE,
        "auto_confirm": (
            "Saves the categories ticked: while the policy is on, after each drift computation their open items "
            f"are applied to {page['integration'].name} by the system, without asking again."
        ),
    }
