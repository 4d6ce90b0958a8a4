"""Extraction: read every user, group and membership of an integration into the console."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.discovery import extension_index_build
from integrations.models import ExtractionRun, Integration, TargetGroup, TargetMembership, TargetUser
from integrations.scim_client import ScimClient, ScimClientError

logger = logging.getLogger(__name__)
BATCH = 500
LARGE_GROUP = 1000  # members
# The columns a new read rewrites on a changed user or group.
USER_FIELDS = ["user_name", "display_name", "email", "external_id", "active", "resource", "content_hash", "removed_at"]
GROUP_FIELDS = [
    "display_name",
    "external_id",
    "resource",
    "content_hash",
    "member_count",
    "last_seen_at",
    "removed_at",
]


def content_hash(resource: dict[str, Any]) -> str:
    stable = {k: v for k, v in resource.items() if k != "meta"}
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()


def primary_email(resource: dict[str, Any]) -> str:
    emails = resource.get("emails") or []
    chosen = next((e for e in emails if isinstance(e, dict) and e.get("primary")), emails[0] if emails else None)
    return str(chosen.get("value", ""))[:320] if isinstance(chosen, dict) else ""


def extraction_start(*, integration: Integration, trigger: str) -> ExtractionRun:
    """Queue an extraction, or return the one already queued or running (never two at once)."""
    from integrations.tasks import extraction_run_task

    try:
        with transaction.atomic():
            run = ExtractionRun.objects.create(integration=integration, trigger=trigger)
            transaction.on_commit(lambda: extraction_run_task.delay(run.pk))
    except IntegrityError:
        return ExtractionRun.objects.get(integration=integration, status__in=["queued", "running"])
    return run


class Counts:
    def __init__(self) -> None:
        self.created = self.updated = self.removed = 0


def extraction_run_execute(*, run_id: int, client: ScimClient | None = None) -> ExtractionRun | None:
    """Carry out a queued run. Safe to call twice: only one caller claims the run."""
    claimed = ExtractionRun.objects.filter(pk=run_id, status=ExtractionRun.Status.QUEUED).update(
        status=ExtractionRun.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    run = ExtractionRun.objects.select_related("integration").get(pk=run_id)
    integration = run.integration
    client = client or ScimClient(integration)
    counts = Counts()
    try:
        if integration.discover_extensions:
            extension_index_build(integration=integration, client=client)
        if integration.kind == Integration.Kind.OAA:
            # A custom application's picture is its pushed payload; reading SCIM shows where they disagree.
            from integrations.oaa import scim_compare

            scim_compare(run=run, client=client)
        else:
            user_ids = _extract_users(run, client, counts)
            _extract_groups(run, client, counts, user_ids)
    except ScimClientError as exc:
        run.status, run.error = ExtractionRun.Status.FAILED, str(exc)
        logger.warning("extraction failed", extra={"integration": integration.pk, "run": run.pk, "error": str(exc)})
    except Exception as exc:
        run.status, run.error = ExtractionRun.Status.FAILED, f"internal error: {type(exc).__name__}"
        logger.exception("extraction crashed", extra={"integration": integration.pk, "run": run.pk})
    else:
        run.status = ExtractionRun.Status.SUCCEEDED
    run.created, run.updated, run.removed = counts.created, counts.updated, counts.removed
    run.requests = client.requests_made
    run.finished_at = timezone.now()
    run.save()
    return run


def _progress(run: ExtractionRun, **fields: int) -> None:
    ExtractionRun.objects.filter(pk=run.pk).update(**fields)


def _extract_users(run: ExtractionRun, client: ScimClient, counts: Counts) -> dict[str, int]:
    integration = run.integration
    known = {
        remote_id: (pk, digest)
        for pk, remote_id, digest in TargetUser.objects.filter(integration=integration).values_list(
            "pk", "remote_id", "content_hash"
        )
    }
    removed_before = set(
        TargetUser.objects.filter(integration=integration, removed_at__isnull=False).values_list("remote_id", flat=True)
    )
    ids: dict[str, int] = {}
    seen: set[str] = set()
    now = timezone.now()
    for page in client.pages(integration.users_endpoint):
        run.pages += 1
        fresh: list[TargetUser] = []
        changed: list[TargetUser] = []
        for resource in page:
            remote_id = str(resource.get("id", ""))
            if not remote_id or remote_id in seen:
                continue
            seen.add(remote_id)
            digest = content_hash(resource)
            pk, known_digest = known.get(remote_id, (None, None))
            if known_digest == digest:
                continue
            user = TargetUser(
                pk=pk,
                integration_id=integration.pk,
                remote_id=remote_id,
                user_name=str(resource.get("userName", ""))[:255],
                display_name=str(resource.get("displayName", ""))[:255],
                email=primary_email(resource),
                external_id=str(resource.get("externalId", "") or "")[:255],
                active=resource.get("active", True) is not False,
                resource=resource,
                content_hash=digest,
                last_seen_at=now,
                removed_at=None,
            )
            (fresh if pk is None else changed).append(user)
        # One transaction (one commit) per page: the rows and the progress they make.
        with transaction.atomic():
            TargetUser.objects.bulk_create(fresh, batch_size=BATCH)
            updated_rows = _rewrite(TargetUser, changed, USER_FIELDS)
            created, updated = counts.created + len(fresh), counts.updated + updated_rows
            _progress(run, pages=run.pages, users_seen=len(seen), created=created, updated=updated)
        counts.created, counts.updated, run.users_seen = created, updated, len(seen)
    gone = [remote_id for remote_id in known if remote_id not in seen]
    counts.removed += _mark_removed(TargetUser, integration, gone, now)
    back = [remote_id for remote_id in removed_before if remote_id in seen]  # came back unchanged
    for start in range(0, len(back), BATCH):
        TargetUser.objects.filter(integration=integration, remote_id__in=back[start : start + BATCH]).update(
            removed_at=None
        )
    for remote_id, pk in TargetUser.objects.filter(integration=integration).values_list("remote_id", "pk"):
        ids[remote_id] = pk
    return ids


def _rewrite(model: Any, rows: list[Any], fields: list[str]) -> int:
    """Save ``fields`` of existing rows: one plain UPDATE each, cheaper in Django than bulk_update's CASE."""
    return sum(model.objects.filter(pk=row.pk).update(**{name: getattr(row, name) for name in fields}) for row in rows)


def _mark_removed(model: Any, integration: Integration, remote_ids: Iterable[str], when: Any) -> int:
    remote_ids = list(remote_ids)
    marked = 0
    for start in range(0, len(remote_ids), BATCH):
        marked += model.objects.filter(
            integration=integration, remote_id__in=remote_ids[start : start + BATCH], removed_at__isnull=True
        ).update(removed_at=when)
    return marked


def _extract_groups(run: ExtractionRun, client: ScimClient, counts: Counts, user_ids: dict[str, int]) -> None:
    """Groups a page at a time: new ones inserted, changed ones updated and their members replaced."""
    integration = run.integration
    known = {
        remote_id: (pk, digest)
        for pk, remote_id, digest in TargetGroup.objects.filter(integration=integration).values_list(
            "pk", "remote_id", "content_hash"
        )
    }
    seen: set[str] = set()
    now = timezone.now()
    for page in client.pages(integration.groups_endpoint):
        run.pages += 1
        fresh: list[tuple[TargetGroup, list[str]]] = []
        changed: list[tuple[TargetGroup, list[str]]] = []
        for resource in page:
            remote_id = str(resource.get("id", ""))
            if not remote_id or remote_id in seen:
                continue
            seen.add(remote_id)
            digest = content_hash(resource)
            pk, known_digest = known.get(remote_id, (None, None))
            if known_digest == digest:
                continue
            members = [str(m.get("value")) for m in resource.get("members") or [] if isinstance(m, dict)]
            group = TargetGroup(
                pk=pk,
                integration_id=integration.pk,
                remote_id=remote_id,
                display_name=str(resource.get("displayName", ""))[:255],
                external_id=str(resource.get("externalId", "") or "")[:255],
                resource=resource,
                content_hash=digest,
                member_count=len(members),
                last_seen_at=now,
                removed_at=None,
            )
            (fresh if pk is None else changed).append((group, members))
        # A page's groups and their members change together, in one transaction.
        with transaction.atomic():
            # A multi-row insert holds many copies of each value while it is built: large groups go alone.
            small = [group for group, members in fresh if len(members) <= LARGE_GROUP]
            large = [group for group, members in fresh if len(members) > LARGE_GROUP]
            TargetGroup.objects.bulk_create(small, batch_size=BATCH)
            for group in large:
                TargetGroup.objects.bulk_create([group])
            _rewrite(TargetGroup, [group for group, _ in changed], GROUP_FIELDS)
            TargetMembership.objects.filter(group_id__in=[group.pk for group, _ in changed]).delete()
            TargetMembership.objects.bulk_create(
                [
                    TargetMembership(
                        integration_id=integration.pk, group_id=group.pk, member_remote_id=m, user_id=user_ids.get(m)
                    )
                    for group, members in (*fresh, *changed)
                    for m in dict.fromkeys(members)
                ],
                batch_size=BATCH,
            )
            created, updated = counts.created + len(fresh), counts.updated + len(changed)
            _progress(run, pages=run.pages, groups_seen=len(seen), created=created, updated=updated)
        counts.created, counts.updated, run.groups_seen = created, updated, len(seen)
    counts.removed += _mark_removed(TargetGroup, integration, [g for g in known if g not in seen], now)
