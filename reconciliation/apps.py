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

        # "Make a plan" on the drift tab, and auto-remediation on the Lifecycle tab (lifecycle
        # knows nothing of reconciliation).
        register_panel("reconciliation.drift_actions", template="reconciliation/make_plan.html", context=_make_plan)
        register_panel("lifecycle.policy", template="reconciliation/auto_remediation.html", context=_auto, order=10)


def _make_plan(request: HttpRequest, page: dict[str, Any]) -> dict[str, Any] | None:
    from reconciliation.models import DriftCategory

    if page.get("integration") is None:
        return None
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
    }
