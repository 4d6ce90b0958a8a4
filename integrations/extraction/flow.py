"""The story of an extraction: read every user, group and membership of an integration into the console.

A run is queued (``extraction_start``) and claimed by one worker (``extraction_run_execute``),
which reads the application's users page by page, finds what changed against what is
stored by each resource's fingerprint, and hands the new and changed ones to be written;
users no longer read are marked removed. Then groups the same way, their members linked
to the accounts just read; then members named by user name rather than id are linked.
The run records its progress as it goes, which renews its lease; a run whose worker is
gone is failed by ``extractions_recover``, and a worker that finds its lease lost stops.

How and when rows reach the database is ``integrations.extraction.storage``'s business.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, Subquery
from django.db.models.functions import Upper
from django.utils import timezone

from console.core.errors import Refused
from console.core.redaction import integration_redactor, redact
from integrations import dialect
from integrations.correlation import integration_correlate
from integrations.discovery import SchemasUnavailable, extension_index_build
from integrations.extraction.fingerprints import fingerprint
from integrations.extraction.resources import stored_group_resource, target_user_values
from integrations.extraction.storage import (
    GroupBatch,
    GroupRead,
    UserBatch,
    groups_batch,
    groups_stored,
    list_writer,
    stored_fingerprints,
    users_batch,
    users_stored,
    write_transaction,
)
from integrations.history import account_changes_record, account_states, group_changes_record, history_started
from integrations.models import (
    ChangeSource,
    ExtractionRun,
    Integration,
    TargetGroup,
    TargetMembership,
    TargetUser,
)
from integrations.scim_client import ScimClient, ScimClientError, resource_problem, sampled
from integrations.signals import extraction_succeeded

logger = logging.getLogger(__name__)
BATCH = 500


class ExtractionRefused(Refused):
    """An extraction that may not start in the state its integration is in (409); the message says why."""


class LeaseLost(Exception):
    """The run was given up as lost (its heartbeat was too old) while this worker still ran it."""


def extraction_start(*, integration: Integration, trigger: str) -> ExtractionRun:
    """Queue an extraction, or return the one already queued or running (never two at once).

    A disabled integration is not extracted: ExtractionRefused.
    """
    from integrations.tasks import extraction_run_task

    if not integration.enabled:
        raise ExtractionRefused(f"{integration.name} is disabled: enable it to extract.", code="disabled")
    try:
        with transaction.atomic():
            run = ExtractionRun.objects.create(integration=integration, trigger=trigger)
            transaction.on_commit(lambda: extraction_run_task.delay(run.pk))
    except IntegrityError:
        return ExtractionRun.objects.get(integration=integration, status__in=["queued", "running"])
    return run


@transaction.atomic
def extraction_run_cancel(*, run: ExtractionRun, actor: Any, request: Any = None) -> bool:
    """Stop a queued or running run: it fails as "cancelled by <person>". One conditional
    UPDATE, so only a run still queued or running changes, and a worker that finishes later
    cannot overwrite it (the end of a run writes only while the run is still running).
    False where the run had already ended."""
    from console.audit.services import audit_record

    who = str(getattr(actor, "username", "") or "someone")
    now = timezone.now()
    cancelled = ExtractionRun.objects.filter(
        pk=run.pk, status__in=[ExtractionRun.Status.QUEUED, ExtractionRun.Status.RUNNING]
    ).update(status=ExtractionRun.Status.FAILED, finished_at=now, heartbeat_at=now, error=f"cancelled by {who}")
    run.refresh_from_db()
    if cancelled:
        audit_record(
            verb="integration.extraction_cancelled",
            actor=actor,
            target=run.integration,
            request=request,
            details={"run": run.pk},
        )
        logger.info("extraction cancelled", extra={"integration": run.integration_id, "run": run.pk})
    return bool(cancelled)


class Counts:
    def __init__(self) -> None:
        self.created = self.updated = self.removed = 0


# What the end of a run writes, under its lease.
FINAL_FIELDS = [
    "status",
    "error",
    "warnings",
    "created",
    "updated",
    "removed",
    "pages",
    "users_seen",
    "groups_seen",
    "requests",
    "finished_at",
    "heartbeat_at",
]


def extraction_run_execute(*, run_id: int, client: ScimClient | None = None) -> ExtractionRun | None:
    """Carry out a queued run. Safe to call twice: only one caller claims the run."""
    now = timezone.now()
    claimed = ExtractionRun.objects.filter(pk=run_id, status=ExtractionRun.Status.QUEUED).update(
        status=ExtractionRun.Status.RUNNING, started_at=now, heartbeat_at=now
    )
    if not claimed:
        return None
    run = ExtractionRun.objects.select_related("integration").get(pk=run_id)
    integration = run.integration
    client = client or ScimClient(integration)
    client.before_request = _heartbeat(run)
    client.defer_learning = True  # the dialect it learns is saved once the run ends
    counts = Counts()
    try:
        if not integration.enabled:  # disabled after the run was queued
            raise ExtractionRefused(f"{integration.name} was disabled before the run started", code="disabled")
        if integration.discover_extensions:
            try:
                extension_index_build(integration=integration, client=client)
            except SchemasUnavailable as exc:
                skipped = redact(
                    f"extension-schema discovery skipped: {exc}", secrets=integration_redactor(integration)
                )
                run.warnings = [*run.warnings, skipped]
                logger.info("extension discovery skipped", extra={"integration": integration.pk, "run": run.pk})
            extraction_progress(run, warnings=run.warnings)
        if integration.kind == Integration.Kind.OAA:
            # A custom application's picture is its pushed payload; reading SCIM shows where they disagree.
            from integrations.oaa import scim_compare

            scim_compare(run=run, client=client)
        else:
            accounts = _extract_users(run, client, counts)
            _extract_groups(run, client, counts, accounts)
            _link_members_by_user_name(integration, client)
        integration_correlate(integration=integration, run=run)
    except LeaseLost:
        logger.warning("extraction lease lost", extra={"integration": integration.pk, "run": run.pk})
        return _reloaded(run)
    except (ScimClientError, ExtractionRefused) as exc:
        run.status, run.error = ExtractionRun.Status.FAILED, redact(str(exc), secrets=integration_redactor(integration))
        logger.warning("extraction failed", extra={"integration": integration.pk, "run": run.pk, "error": run.error})
    except Exception as exc:
        run.status, run.error = ExtractionRun.Status.FAILED, f"internal error: {type(exc).__name__}"
        logger.exception("extraction crashed", extra={"integration": integration.pk, "run": run.pk})
    else:
        run.status = ExtractionRun.Status.SUCCEEDED
    client.save_learned()
    run.created, run.updated, run.removed = counts.created, counts.updated, counts.removed
    run.requests = client.requests_made
    run.finished_at = run.heartbeat_at = timezone.now()
    # Only while the lease holds: a run given up as lost stays failed, whatever this worker found.
    if not ExtractionRun.objects.filter(pk=run.pk, status=ExtractionRun.Status.RUNNING).update(
        **{name: getattr(run, name) for name in FINAL_FIELDS}
    ):
        logger.warning("extraction lease lost", extra={"integration": integration.pk, "run": run.pk})
        return _reloaded(run)
    if run.status == ExtractionRun.Status.SUCCEEDED:
        history_started(integration=integration, at=run.finished_at)
        extraction_succeeded.send(sender=Integration, run=run)
    return run


def _reloaded(run: ExtractionRun) -> ExtractionRun:
    run.refresh_from_db()
    return run


def extraction_progress(run: ExtractionRun, **fields: Any) -> None:
    """Record progress and renew the run's lease; LeaseLost if it was given up meanwhile."""
    if not ExtractionRun.objects.filter(pk=run.pk, status=ExtractionRun.Status.RUNNING).update(
        heartbeat_at=timezone.now(), **fields
    ):
        raise LeaseLost(f"run {run.pk} is no longer running")


HEARTBEAT_EVERY_SECONDS = 30


def _heartbeat(run: ExtractionRun, submit: Callable[[Callable[[], None]], None] | None = None) -> Callable[[], None]:
    """Renew the run's lease before a request when the last renewal is a while ago.

    Pages renew it too; this covers one page that takes long (slow answers, retries after
    Retry-After), so a healthy run is never taken for a lost one. With ``submit`` (a
    writer's), the renewal is handed to the writer, which holds the database meanwhile.
    """
    last = time.monotonic()

    def renew() -> None:
        nonlocal last
        if time.monotonic() - last >= HEARTBEAT_EVERY_SECONDS:
            if submit is None:
                extraction_progress(run)
            else:
                submit(functools.partial(extraction_progress, run))
            last = time.monotonic()

    return renew


@contextmanager
def _lease_renewed_through(
    run: ExtractionRun, client: ScimClient, submit: Callable[[Callable[[], None]], None]
) -> Iterator[None]:
    """Meanwhile the lease is renewed through ``submit`` (a writer's: the reader leaves the database to it)."""
    renew = client.before_request
    client.before_request = _heartbeat(run, submit)
    try:
        yield
    finally:
        client.before_request = renew


def extractions_recover(*, now: datetime | None = None) -> int:
    """Fail runs whose worker is gone, so the integration can be extracted again.

    Running with a heartbeat older than the lease: the worker died (or hangs). Queued for
    longer than EXTRACTION_QUEUED_MAX_SECONDS: the task message was lost. A worker that is in
    fact still on a failed run finds its lease gone at its next write and stops.
    """
    now = now or timezone.now()
    lease = settings.EXTRACTION_LEASE_SECONDS
    queued_max = settings.EXTRACTION_QUEUED_MAX_SECONDS
    stale = now - timedelta(seconds=lease)
    lost = ExtractionRun.objects.filter(
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, started_at__lt=stale),
        status=ExtractionRun.Status.RUNNING,
    ).update(
        status=ExtractionRun.Status.FAILED,
        finished_at=now,
        error=f"worker lost: no progress for more than {lease} s; the next extraction starts afresh",
    )
    never_started = ExtractionRun.objects.filter(
        status=ExtractionRun.Status.QUEUED, queued_at__lt=now - timedelta(seconds=queued_max)
    ).update(
        status=ExtractionRun.Status.FAILED,
        finished_at=now,
        error=f"worker lost: queued for more than {queued_max} s and never started "
        "(the task was lost, or no worker is running)",
    )
    if lost or never_started:
        logger.warning("extraction runs recovered", extra={"running": lost, "queued": never_started})
    return lost + never_started


def _extract_users(run: ExtractionRun, client: ScimClient, counts: Counts) -> dict[str, int]:
    """Users a page at a time: new ones inserted, changed ones rewritten, missing ones marked removed.

    What is read is handed over a few pages at a time and written while the next pages are
    read (``storage.list_writer``). Returns the console's key of every account of the
    integration by remote id (stored before, or now), for the groups' members.
    """
    integration = run.integration
    integration_id = integration.pk
    accounts: dict[str, int] = {}
    known = stored_fingerprints(TargetUser, integration, keys=accounts)
    seen: set[str] = set()
    now = timezone.now()
    fresh: list[tuple[Any, ...]] = []  # read, not yet handed to the writer
    changed: list[tuple[str, tuple[Any, ...]]] = []  # by remote id

    def write(batch: UserBatch, progress: dict[str, Any]) -> None:
        # One transaction: the rows of one hand-over and the progress they make.
        with write_transaction():
            keys, updated_rows = users_stored(batch, integration, run_id=run.pk, at=now)
            created, updated = counts.created + batch.fresh.count, counts.updated + updated_rows
            extraction_progress(run, created=created, updated=updated, **progress)
        counts.created, counts.updated = created, updated
        accounts.update(zip(batch.fresh_ids, keys, strict=True))

    with list_writer() as writer, _lease_renewed_through(run, client, writer.submit):

        def hand_over() -> None:
            nonlocal fresh, changed
            batch = users_batch(fresh, changed)
            fresh, changed = [], []
            writer.hand_over(functools.partial(write, batch, _progress(run, client, "users", seen)))

        for changes in _changes_by_page(run, client, "User", integration.users_endpoint, known, seen):
            for remote_id, resource, digest, new in changes:
                values = target_user_values(resource, digest)  # in USER_FIELDS' order
                if new:
                    values += (integration_id, remote_id, now, now)  # storage.NEW_USER_COLUMNS: first and last seen
                    fresh.append(values)
                else:
                    changed.append((remote_id, values))
            run.users_seen, run.users_total = len(seen), client.total_results
            if writer.due(len(fresh) + len(changed), _still_to_read(client.total_results, len(seen))):
                hand_over()
        hand_over()
    counts.removed += _mark_removed(TargetUser, integration, known, seen, now, run.pk)
    return accounts


def _still_to_read(total: int | None, seen: int, rows_each: float = 1.0) -> float | None:
    """The rows a list has left to give by the total the server reports (None if it reports none)."""
    return None if total is None else max(0, total - seen) * rows_each


def _progress(run: ExtractionRun, client: ScimClient, kind: str, seen: set[str]) -> dict[str, Any]:
    """What a hand-over of ``kind`` (users or groups) records of the run, as it stands now."""
    return {
        "pages": run.pages,
        f"{kind}_seen": len(seen),
        f"{kind}_total": client.total_results,
        "warnings": list(run.warnings),
    }


def _changes_by_page(
    run: ExtractionRun, client: ScimClient, kind: str, endpoint: str, known: dict[str, str], seen: set[str]
) -> Iterator[list[tuple[str, dict[str, Any], str, bool]]]:
    """Each page of a list as its new and changed resources: (remote id, resource, fingerprint, new).

    Counts the page on the run and checks its sample; what it reads joins ``seen``. A
    resource without an id, or read earlier in the list, is skipped; one whose fingerprint
    is the stored one is unchanged.
    """
    mark_seen, stored = seen.add, known.get  # the loop below runs once per resource: names bound once
    for number, page in enumerate(client.pages(endpoint), start=1):
        run.pages += 1
        _check_sample(run, kind, page, number)
        changes = []
        for resource in page:
            remote_id = resource.get("id")
            if type(remote_id) is not str:  # the common case, told at once
                remote_id = "" if remote_id is None else str(remote_id)
            if not remote_id or remote_id in seen:
                continue
            mark_seen(remote_id)
            digest = fingerprint(resource)
            known_digest = stored(remote_id)
            if known_digest != digest:
                changes.append((remote_id, resource, digest, known_digest is None))
        yield changes


def _check_sample(run: ExtractionRun, kind: str, page: list[dict[str, Any]], number: int) -> None:
    """Check the first resource of page ``number`` of a kind with scim2-models; its first problem is a run warning.

    Resources are stored as sent either way. A sample, because checking every resource,
    or even the first of every page, would weigh on the read: the pages ``sampled`` picks.
    """
    prefix = f"some {kind.lower()}s are not valid SCIM"
    if not sampled(number):
        return
    if not page or any(warning.startswith(prefix) for warning in run.warnings):
        return
    problem = resource_problem(kind, page[0])
    if problem:
        problem = redact(problem, secrets=integration_redactor(run.integration))
        run.warnings = [*run.warnings, f"{prefix} (kept as sent): {problem}"]


def _mark_removed(
    model: type[TargetUser | TargetGroup],
    integration: Integration,
    known: dict[str, str],
    seen: set[str],
    when: datetime,
    run_id: int | None = None,
) -> int:
    """Mark what was stored and not read this time as removed, and record it
    (``integrations.history``); returns how many newly.

    ``known`` is what ``stored_fingerprints`` read: one already marked (no fingerprint) is left as it is.
    """
    gone = [remote_id for remote_id, digest in known.items() if digest and remote_id not in seen]
    marked = 0
    for start in range(0, len(gone), BATCH):
        rows = model.objects.filter(
            integration=integration, remote_id__in=gone[start : start + BATCH], removed_at__isnull=True
        )
        with write_transaction():
            if model is TargetUser:
                before = account_states(rows)  # type: ignore[arg-type]
                marked += rows.update(removed_at=when)
                account_changes_record(
                    integration_id=integration.pk,
                    before=before,
                    after={pk: (active, True, owner) for pk, (active, _, owner) in before.items()},
                    source=ChangeSource.EXTRACTION,
                    at=when,
                    run_id=run_id,
                )
            else:
                pks = list(rows.values_list("pk", flat=True))
                marked += model.objects.filter(pk__in=pks).update(removed_at=when)
                group_changes_record(integration_id=integration.pk, group_ids=pks, removed=True, at=when, run_id=run_id)
    return marked


def _extract_groups(run: ExtractionRun, client: ScimClient, counts: Counts, accounts: dict[str, int]) -> None:
    """Groups a page at a time: new ones inserted, changed ones updated and their members replaced.

    A group's members are stored as its memberships, one row each, and not again in its
    stored resource: the resource is kept as read without ``members`` (a large group would
    otherwise be a document of megabytes, rewritten whole whenever one member changes).
    ``accounts`` (what the users' read returned) resolves members to accounts; one it does not
    know is looked up (an account stored since, say).
    """
    integration = run.integration
    known = stored_fingerprints(TargetGroup, integration)
    seen: set[str] = set()
    now = timezone.now()
    fresh: list[GroupRead] = []  # read, not yet handed to the writer
    changed: list[GroupRead] = []  # by remote id
    waiting = 0  # groups and members read, not yet handed over
    members_read = 0  # of the new and changed groups read so far

    def write(batch: GroupBatch, progress: dict[str, Any]) -> None:
        # Groups and their members change together, with the progress they make, in one transaction.
        with write_transaction():
            group_pks = groups_stored(batch, integration, run_id=run.pk, at=now)
            if batch.unknown:
                _link_late_members(integration, accounts, batch.unknown, group_pks)
            created, updated = counts.created + batch.fresh.count, counts.updated + len(batch.changed)
            extraction_progress(run, created=created, updated=updated, **progress)
        counts.created, counts.updated = created, updated

    with list_writer() as writer, _lease_renewed_through(run, client, writer.submit):

        def hand_over() -> None:
            nonlocal fresh, changed, waiting
            # A member that is no account read so far is stored without its account, and
            # linked by the writer should it be one by then (``_link_late_members``).
            batch = groups_batch(integration, fresh, changed, accounts.get, now)
            fresh, changed, waiting = [], [], 0
            writer.hand_over(functools.partial(write, batch, _progress(run, client, "groups", seen)))

        for changes in _changes_by_page(run, client, "Group", integration.groups_endpoint, known, seen):
            for remote_id, resource, digest, new in changes:
                members = [str(m.get("value")) for m in resource.get("members") or [] if isinstance(m, dict)]
                values = [  # in GROUP_FIELDS' order
                    str(resource.get("displayName", ""))[:255],
                    str(resource.get("externalId", "") or "")[:255],
                    stored_group_resource(resource),
                    digest,
                    len(members),
                    now,  # last_seen_at
                    None,  # removed_at
                ]
                (fresh if new else changed).append((remote_id, values, members))
                waiting += 1 + len(members)
                members_read += len(members)
            run.groups_seen, run.groups_total = len(seen), client.total_results
            members_per_group = members_read / len(seen) if seen else 0.0
            if writer.due(waiting, _still_to_read(client.total_results, len(seen), 1 + members_per_group)):
                hand_over()
        hand_over()
    counts.removed += _mark_removed(TargetGroup, integration, known, seen, now, run.pk)


def _link_members_by_user_name(integration: Integration, client: ScimClient) -> None:
    """Link the members of an application whose groups hold user names rather than ids.

    Members are read as ids first. Where, after a read, members are left without an account
    and each such member is an account's userName (without regard to case), the application's
    groups hold names: its profile learns it (actions then send names), and the members are
    linked to those accounts.
    """
    unlinked = TargetMembership.objects.filter(integration=integration, user__isnull=True)
    by_name = TargetUser.objects.filter(
        integration=integration, user_name__iexact=OuterRef("member_remote_id"), removed_at__isnull=True
    ).values("pk")[:1]
    if dialect.value(integration, "member_reference") != "userName":
        sample = list(unlinked.values_list("member_remote_id", flat=True)[:100])
        if not sample:
            return
        names = {name.upper() for name in sample}
        known = TargetUser.objects.filter(integration=integration, removed_at__isnull=True)
        matching = set(
            known.annotate(upper_name=Upper("user_name"))
            .filter(upper_name__in=names)
            .values_list("upper_name", flat=True)
        )
        if not matching or any(name not in matching for name in names):
            return  # not every unlinked member is a user name: members are ids (some not yet accounts)
        client.learn(
            "member_reference",
            "userName",
            f"{len(sample)} group members read were user names of accounts, not their ids",
        )
    unlinked.filter(Exists(by_name)).update(user_id=Subquery(by_name))


def _link_late_members(
    integration: Integration, accounts: dict[str, int], unknown: set[str], group_pks: list[int]
) -> None:
    """Members of ``group_pks`` stored without an account (``unknown``) get theirs, where they are
    accounts after all: stored since the read of users, or found by an earlier batch."""
    _resolve_members(integration, accounts, {member for member in unknown if member not in accounts})
    for member in unknown:
        if member in accounts:
            TargetMembership.objects.filter(group_id__in=group_pks, member_remote_id=member, user__isnull=True).update(
                user_id=accounts[member]
            )


def _resolve_members(integration: Integration, accounts: dict[str, int], unknown: set[str]) -> bool:
    """Add to ``accounts`` the ``unknown`` members that are accounts after all (stored meanwhile,
    say); whether any was."""
    missing_ids = list(unknown)
    found = 0
    for start in range(0, len(missing_ids), BATCH):
        stored = TargetUser.objects.filter(
            integration=integration, remote_id__in=missing_ids[start : start + BATCH]
        ).values_list("remote_id", "pk")
        before = len(accounts)
        accounts.update(stored)
        found += len(accounts) - before
    return found > 0
