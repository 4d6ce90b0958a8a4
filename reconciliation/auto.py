"""Auto-remediation: the drift categories an integration's lifecycle policy resolves by itself.

Opted in per category (``AutoRemediation``, one per lifecycle policy; orphans never). After
each drift computation, while the policy is on, the open drift of the opted-in categories is
made into a plan and applied by the system: the same actions, approval policies and
mass-change limits as an approver's application, recorded as applied by the system.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from rest_framework.request import Request

from console.accounts.models import Person
from console.audit.services import audit_record
from console.core.errors import InvalidInput
from lifecycle.models import LifecyclePolicy, PolicyMode
from provisioning.models import IN_FLIGHT_STATES
from reconciliation.models import (
    AUTO_ELIGIBLE,
    AutoRemediation,
    DriftCategory,
    DriftItem,
    DriftRun,
    Plan,
    PlanItem,
)
from reconciliation.plans import categories_from, in_flight, plan_apply, plan_create, remedy, remedy_key

logger = logging.getLogger(__name__)

ORPHANS_NOT_ELIGIBLE = (
    "Orphan accounts are never resolved automatically: an account nobody owns may be a service "
    "account or one the console failed to correlate, and its remedy takes it away for good. "
    "Make a plan and tick each orphan instead."
)


def auto_categories(policy: LifecyclePolicy | None) -> list[str]:
    if policy is None:
        return []
    row = AutoRemediation.objects.filter(policy=policy).first()
    return list(row.categories) if row is not None else []


def auto_remediation_set(
    *, actor: Person, policy: LifecyclePolicy, categories: Any, request: HttpRequest | Request | None = None
) -> AutoRemediation:
    """Opt the policy's integration in to auto-remediation of these categories (none: off)."""
    if not isinstance(categories, list):
        raise InvalidInput("Give the categories as a list of names (empty: none).", field="categories")
    chosen = categories_from(categories) if categories else []
    if DriftCategory.ORPHAN in chosen:
        raise InvalidInput(ORPHANS_NOT_ELIGIBLE, field="categories")
    with transaction.atomic():
        row, _ = AutoRemediation.objects.select_for_update().get_or_create(policy=policy)
        before = list(row.categories)
        row.categories = chosen
        row.updated_by = actor
        row.save()
        if before != chosen:
            audit_record(
                verb="auto_remediation.changed",
                actor=actor,
                target=policy,
                request=request,
                details={"integration": policy.integration_id, "before": before, "after": chosen},
            )
    return row


def auto_remediate(drift_run: DriftRun) -> Plan | None:
    """After a drift computation: plan and apply the opted-in categories' open drift, if the
    integration's policy is on. The plan made, or None."""
    if drift_run.status != DriftRun.Status.SUCCEEDED:
        return None
    integration = drift_run.integration
    policy = LifecyclePolicy.objects.filter(integration=integration).first()
    if policy is None or policy.mode != PolicyMode.ON or integration.archived_at is not None:
        return None
    categories = [c for c in auto_categories(policy) if c in AUTO_ELIGIBLE]
    if not categories:
        return None
    # An earlier plan's action for the same drift, still in flight (held for approval, queued):
    # asked for once, not again (nor planned again) after every computation.
    busy = set(
        PlanItem.objects.filter(
            plan__integration=integration, category__in=categories, action__state__in=IN_FLIGHT_STATES
        ).values_list("category", "key")
    )
    drift = list(
        DriftItem.objects.filter(integration=integration, category__in=categories).select_related(
            "person", "target_user", "target_user__owner", "group"
        )
    )
    # Or an action in flight already does what the remedy would, whoever asked for it.
    doing = in_flight(integration)
    busy |= {(item.category, item.key) for item in drift if remedy_key(**remedy(integration, item)) in doing}
    if not {(item.category, item.key) for item in drift} - busy:
        return None
    with transaction.atomic():
        plan = plan_create(actor=None, integration=integration, categories=categories, automatic=True, skip=busy)
        problems = list(plan.items.exclude(problem="").values_list("subject", "problem")[:10])
        open_items = [row.pk for row in plan.items.filter(problem="")]
        if not open_items:
            # Nothing it could ask for (each item says why): no plan kept, or one would pile up
            # after every computation; the reason is logged.
            transaction.set_rollback(True)
            logger.warning(
                "auto-remediation found nothing it could request",
                extra={"integration": integration.pk, "problems": problems},
            )
            return None
        plan_apply(actor=None, plan=plan, item_ids=open_items)
    return plan
