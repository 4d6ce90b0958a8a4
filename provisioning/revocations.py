"""Revocation records: what each deprovision left in the application, and how long it took.

A deprovision reads the account back after its writes (``action_types/deprovision.py``)
and keeps the outcome here, one record per deprovision (a retry's read-back replaces the
last). The request and the application's answers are the action's call log for that
attempt, already redacted: a record points at them and copies nothing.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from integrations.models import Integration
from provisioning.models import Action, Revocation, ScimCall

LATENCY_DAYS = 30
# The latency is computed over at most this many of the period's most recent verified revocations.
LATENCY_SAMPLE = 10_000


def revocation_record(*, action: Action, outcome: str, reason: str) -> Revocation:
    """Keep what the deprovision's read-back found, with the time from the request to it (audited)."""
    from console.audit.services import audit_record

    now = timezone.now()
    with transaction.atomic():
        record, _ = Revocation.objects.update_or_create(
            action=action,
            defaults={
                "integration_id": action.integration_id,
                "target_user_id": action.target_user_id,
                "account": action.subject,
                # The person whose access this was: the action's, or else the account's owner (a
                # deprovision asked for by account, as lifecycle automation and the accounts tab do).
                "person_id": action.person_id or (action.target_user.owner_id if action.target_user else None),
                "requested_at": action.created_at,
                "attempt": action.attempts_total,
                "outcome": outcome,
                "reason": reason,
                "verified_at": now,
                "latency_seconds": max(0.0, (now - action.created_at).total_seconds()),
            },
        )
        audit_record(
            verb=f"revocation.{outcome}",
            target=action,
            details={"account": action.subject, "integration": action.integration.name, "reason": reason},
        )
    return record


def revocation_calls(record: Revocation) -> QuerySet[ScimCall]:
    """The requests of the attempt the record verified, and the application's answers (redacted)."""
    return ScimCall.objects.filter(action_id=record.action_id, attempt=record.attempt).order_by("at", "id")


def revocations_of_person(person: Any) -> QuerySet[Revocation]:
    return Revocation.objects.filter(person=person).select_related("integration")


def _percentile(ordered: list[float], share: float) -> float | None:
    """The nearest-rank percentile of ``ordered`` (ascending); None for no values."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def revocation_latency(*, integration: Integration, days: int = LATENCY_DAYS) -> dict[str, Any]:
    """p50 and p95 of the time from request to verified revocation over ``days``, and the counts.

    Counted in SQL; the percentiles over the period's most recent ``LATENCY_SAMPLE`` verified
    revocations (``sampled`` says how many that is).
    """
    since = timezone.now() - timedelta(days=days)
    recent = Revocation.objects.filter(integration=integration, verified_at__gte=since)
    verified = recent.filter(outcome=Revocation.Outcome.VERIFIED)
    latencies = sorted(verified.order_by("-verified_at").values_list("latency_seconds", flat=True)[:LATENCY_SAMPLE])
    p50, p95 = _percentile(latencies, 0.5), _percentile(latencies, 0.95)
    return {
        "integration": integration.pk,
        "days": days,
        "count": verified.count(),
        "not_verified": recent.exclude(outcome=Revocation.Outcome.VERIFIED).count(),
        "sampled": len(latencies),
        "p50_seconds": None if p50 is None else round(p50, 3),
        "p95_seconds": None if p95 is None else round(p95, 3),
    }


def revocation_latencies(*, days: int = LATENCY_DAYS) -> list[tuple[Integration, dict[str, Any]]]:
    """Each integration with revocations in the period, and its latency."""
    since = timezone.now() - timedelta(days=days)
    ids = Revocation.objects.filter(verified_at__gte=since).values("integration_id").distinct()
    return [
        (integration, revocation_latency(integration=integration, days=days))
        for integration in Integration.all_objects.filter(pk__in=ids).order_by("name")
    ]
