"""Reads about integrations: health and what is due."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from django.db.models import Case, F, OuterRef, QuerySet, Subquery, When
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from console.core.models import ConsoleSettings
from integrations.models import (
    CorrelationConflict,
    ExtractionRun,
    Integration,
    TargetGroup,
    TargetMembership,
    TargetUser,
)


def with_seen_at[R: (TargetUser, TargetGroup)](rows: QuerySet[R]) -> QuerySet[R]:
    """Accounts or groups with ``seen_at``: when the application last listed them.

    Extraction writes ``last_seen_at`` only on rows it adds or changes (writing every row of
    a large application at each run would cost more than reading it). A row still present
    after a succeeded run was in that run, so it was seen when the run read it; a removed
    row was last seen by the succeeded run before the one that found it gone.
    """
    succeeded = ExtractionRun.objects.filter(
        integration_id=OuterRef("integration_id"), status=ExtractionRun.Status.SUCCEEDED
    )
    latest = succeeded.order_by("-id").values("started_at")[:1]
    # The run that found the row gone: the last to start before its removal was written.
    removing = (
        ExtractionRun.objects.filter(
            integration_id=OuterRef(OuterRef("integration_id")), started_at__lte=OuterRef(OuterRef("removed_at"))
        )
        .order_by("-started_at")
        .values("started_at")[:1]
    )
    before_removal = (
        succeeded.filter(started_at__lt=Subquery(removing)).order_by("-started_at").values("started_at")[:1]
    )
    return rows.annotate(
        seen_at=Case(
            When(
                removed_at__isnull=True, then=Greatest(F("last_seen_at"), Coalesce(Subquery(latest), F("last_seen_at")))
            ),
            default=Greatest(F("last_seen_at"), Coalesce(Subquery(before_removal), F("last_seen_at"))),
        )
    )


def interval_minutes_of(integration: Integration, default: int | None = None) -> int:
    if integration.extraction_interval_minutes:
        return integration.extraction_interval_minutes
    return default if default is not None else ConsoleSettings.load().extraction_interval_minutes


@dataclass
class Health:
    provisioning_enabled: bool
    enabled: bool
    interval_minutes: int
    last_success_at: str | None
    last_success_age_minutes: int | None
    freshness: str  # fresh | stale | never
    last_error: str
    last_run_status: str | None
    users: int
    groups: int
    connection_status: str  # ok | failed | unknown (never tested)
    connection_checked_at: str | None
    connection_error: str
    capabilities: dict[str, Any]
    quarantined: bool
    quarantine_reason: str
    needs_attention: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def integration_health(*, integration: Integration) -> Health:
    interval = interval_minutes_of(integration)
    last = integration.runs.order_by("-queued_at", "-id").first()
    success = integration.runs.filter(status=ExtractionRun.Status.SUCCEEDED).order_by("-finished_at").first()
    age = None
    freshness = "never"
    if success is not None and success.finished_at is not None:
        age = int((timezone.now() - success.finished_at).total_seconds() // 60)
        freshness = "fresh" if age <= 2 * interval else "stale"
    last_error = last.error if last is not None and last.status == ExtractionRun.Status.FAILED else ""
    return Health(
        provisioning_enabled=integration.provisioning_enabled,
        enabled=integration.enabled,
        interval_minutes=interval,
        last_success_at=success.finished_at.isoformat() if success and success.finished_at else None,
        last_success_age_minutes=age,
        freshness=freshness,
        last_error=last_error,
        last_run_status=last.status if last else None,
        users=integration.target_users.filter(removed_at__isnull=True).count(),
        groups=integration.target_groups.filter(removed_at__isnull=True).count(),
        connection_status=integration.connection_status,
        connection_checked_at=(
            integration.connection_checked_at.isoformat() if integration.connection_checked_at else None
        ),
        connection_error=integration.connection_error,
        capabilities=integration.capabilities,
        quarantined=integration.quarantined_at is not None,
        quarantine_reason=integration.quarantine_reason,
        needs_attention=bool(last_error)
        or freshness != "fresh"
        or integration.connection_status == "failed"
        or integration.quarantined_at is not None,
    )


def integrations_due() -> list[Integration]:
    """Enabled integrations whose last extraction is older than their interval."""
    default = ConsoleSettings.load().extraction_interval_minutes
    now = timezone.now()
    due = []
    for integration in Integration.objects.filter(enabled=True):
        last = integration.runs.order_by("-queued_at").values_list("queued_at", flat=True).first()
        if last is None or now - last >= timedelta(minutes=interval_minutes_of(integration, default)):
            due.append(integration)
    return due


def person_accounts_query(*, person_id: int) -> QuerySet[TargetUser]:
    """The person's accounts in every live integration, with ``seen_at``, unordered."""
    return with_seen_at(
        TargetUser.objects.filter(owner_id=person_id, integration__archived_at__isnull=True).select_related(
            "integration"
        )
    )


def person_accounts(*, person_id: int) -> list[TargetUser]:
    """The person's accounts in every live integration, each with ``groups``: the names of its
    groups there, and ``group_pairs``: (group id, name) (two queries, whatever the number of accounts)."""
    accounts = list(person_accounts_query(person_id=person_id).order_by("integration__name", "user_name", "id"))
    accounts_with_groups(accounts)
    return accounts


def accounts_with_groups(accounts: list[TargetUser]) -> None:
    """Set ``group_pairs`` (group id, name) and ``groups`` (the names) on each account, in one query."""
    memberships = TargetMembership.objects.filter(
        integration_id__in={a.integration_id for a in accounts},
        member_remote_id__in={a.remote_id for a in accounts},
        group__removed_at__isnull=True,
    ).values_list("integration_id", "member_remote_id", "group_id", "group__display_name")
    pairs: dict[tuple[int, str], list[tuple[int, str]]] = {}
    for integration_id, remote_id, group_id, name in memberships:
        pairs.setdefault((integration_id, remote_id), []).append((group_id, name))
    for account in accounts:
        found = sorted(pairs.get((account.integration_id, account.remote_id), []), key=lambda p: (p[1].lower(), p[0]))
        account.group_pairs = found  # type: ignore[attr-defined]
        account.groups = [name for _, name in found]  # type: ignore[attr-defined]


def integration_conflicts(*, integration: Integration, limit: int = 100) -> list[tuple[TargetUser, list[Any]]]:
    """The integration's first ``limit`` accounts in conflict, each with the people it could be."""
    rows = CorrelationConflict.objects.filter(integration=integration).select_related("target_user", "person")
    accounts = list(rows.order_by("target_user_id").values_list("target_user_id", flat=True).distinct()[:limit])
    found: dict[int, tuple[TargetUser, list[Any]]] = {}
    for row in rows.filter(target_user_id__in=accounts).order_by("target_user__user_name", "person__username"):
        found.setdefault(row.target_user_id, (row.target_user, []))[1].append((row.person, row.get_rule_display()))
    return list(found.values())


def integration_conflict_count(*, integration: Integration) -> int:
    """How many of the integration's accounts are in conflict."""
    return CorrelationConflict.objects.filter(integration=integration).values("target_user_id").distinct().count()


def account_status(user: TargetUser) -> str:
    """The account's status in words: active, inactive, or removed (from the application)."""
    if user.removed_at is not None:
        return "removed"
    return "active" if user.active else "inactive"


LEAVERS_SHOWN = 20


def leavers_with_active_accounts(*, limit: int = LEAVERS_SHOWN) -> tuple[int, list[TargetUser]]:
    """Accounts still active in a live integration whose owner has left (is inactive): how many,
    and the first ``limit`` of them with their owner and integration. The goal is none."""
    accounts = TargetUser.objects.filter(
        owner__is_active=False, active=True, removed_at__isnull=True, integration__archived_at__isnull=True
    )
    shown = list(
        accounts.select_related("owner", "integration").order_by("owner__username", "integration__name", "id")[:limit]
    )
    return (accounts.count() if len(shown) == limit else len(shown)), shown
