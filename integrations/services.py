"""Extraction: read every user, group and membership of an integration into the console."""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Q, Subquery
from django.db.models.functions import Upper
from django.dispatch import Signal
from django.utils import timezone

from console.bulk import (
    EncodedBlocks,
    EncodedRows,
    encode_blocks,
    encode_rows,
    insert_blocks,
    insert_encoded,
    update_rows,
)
from console.core.errors import Refused
from console.web.redaction import integration_redactor
from integrations import dialect
from integrations.discovery import SchemasUnavailable, extension_index_build
from integrations.models import ExtractionRun, Integration, TargetGroup, TargetMembership, TargetUser
from integrations.scim_client import ScimClient, ScimClientError, resource_problem, sampled
from integrations.writer import BackgroundWriter

logger = logging.getLogger(__name__)
BATCH = 500
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


def _stable_json_encoder() -> Callable[[Any], str]:
    """``json.dumps(value, sort_keys=True, default=str)``, built once rather than for every resource.

    The C encoder json.dumps itself uses, without the circular-reference check (parsed JSON
    cannot refer to itself): the same text, about a quarter faster. The plain encoder where
    the C one is missing.
    """
    make = json.encoder.c_make_encoder  # type: ignore[attr-defined]
    if make is None:
        encoder = json.JSONEncoder(sort_keys=True, default=str)
        return encoder.encode
    iterencode = make(None, str, json.encoder.encode_basestring_ascii, None, ": ", ", ", True, False, True)
    return lambda value: "".join(iterencode(value, 0))


_stable_json = _stable_json_encoder()


def content_hash(resource: dict[str, Any]) -> str:
    """What a resource says apart from its ``meta``: sha256 of its JSON with sorted keys."""
    stable = dict(resource)
    stable.pop("meta", None)
    return hashlib.sha256(_stable_json(stable).encode()).hexdigest()


VERSION_PREFIX = "v:"


def fingerprint(resource: dict[str, Any]) -> str:
    """What tells one state of a resource from another, for finding what changed between reads.

    The resource's ``meta.version`` where it has one: the entity tag that RFC 7643 (section
    3.1) has the application change with the resource, so an unchanged resource costs a
    look-up instead of encoding and hashing it (most of the work of a read that finds little
    changed). Otherwise its ``content_hash``. The two never collide (a version is prefixed).
    """
    meta = resource.get("meta")
    version = meta.get("version") if isinstance(meta, dict) else None
    if isinstance(version, str) and version:
        if len(version) > 64 - len(VERSION_PREFIX):
            version = hashlib.sha256(version.encode()).hexdigest()[: 64 - len(VERSION_PREFIX)]
        return VERSION_PREFIX + version
    return content_hash(resource)


def target_user_values(resource: dict[str, Any], digest: str) -> tuple[Any, ...]:
    """The stored columns of a target user read from ``resource``, in ``USER_FIELDS``' order.

    Extraction calls this once per user read, so it is a tuple built from one look-up each.
    """
    get = resource.get
    external_id = get("externalId", "")
    return (
        str(get("userName", ""))[:255],
        str(get("displayName", ""))[:255],
        primary_email(resource),
        str(external_id or "")[:255],
        get("active", True) is not False,
        resource,
        digest,
        None,  # removed_at: seen again
    )


def target_user_fields(resource: dict[str, Any], digest: str) -> dict[str, Any]:
    """The stored columns (``USER_FIELDS``) of a target user read from ``resource``, by name."""
    return dict(zip(USER_FIELDS, target_user_values(resource, digest), strict=True))


def stored_group_resource(resource: dict[str, Any]) -> dict[str, Any]:
    """A group's resource as stored: as read, less ``members``, which are stored as its memberships."""
    return {key: value for key, value in resource.items() if key != "members"}


def primary_email(resource: dict[str, Any]) -> str:
    emails = resource.get("emails") or []
    if type(emails) is list and emails:
        first = emails[0]
        if type(first) is dict and first.get("primary") and "value" in first:  # the usual case, told at once
            return str(first["value"])[:320]
    chosen = next((e for e in emails if isinstance(e, dict) and e.get("primary")), emails[0] if emails else None)
    return str(chosen.get("value", ""))[:320] if isinstance(chosen, dict) else ""


# Sent inside the transaction that archives an integration: apps above (provisioning) end
# what waits for it. ``sender`` is Integration; ``integration``, ``actor`` and ``request`` come along.
integration_archived = Signal()


def integration_delete(*, actor: Any, integration: Integration, request: Any = None) -> Integration:
    """Delete an integration as people mean it: it is gone from the console, its history is not.

    The integration is archived under its name (its name is free for a new one): provisioning
    and extraction stop, what waits for it is cancelled, its credentials are erased; its
    actions and their SCIM calls, its runs, its last picture of the application (what the
    actions name) and its audit trail stay readable.
    """
    from console.audit.services import audit_record

    now = timezone.now()
    with transaction.atomic():
        if Integration.objects.select_for_update().filter(pk=integration.pk).first() is None:
            return integration  # deleted meanwhile: once is enough
        audit_record(
            verb="integration.deleted",
            actor=actor,
            target=integration,
            request=request,
            before={"name": integration.name, "base_url": integration.base_url},
        )
        Integration.all_objects.filter(pk=integration.pk).update(
            archived_at=now,
            enabled=False,
            provisioning_enabled=False,
            bearer_token="",
            basic_password="",
            updated_at=now,
        )
        ExtractionRun.objects.filter(
            integration=integration, status__in=[ExtractionRun.Status.QUEUED, ExtractionRun.Status.RUNNING]
        ).update(status=ExtractionRun.Status.FAILED, finished_at=now, error="the integration was deleted")
        integration_archived.send(sender=Integration, integration=integration, actor=actor, request=request)
    integration.refresh_from_db()
    return integration


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
        raise ExtractionRefused(f"{integration.name} is disabled: enable it to extract.")
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
            raise ExtractionRefused(f"{integration.name} was disabled before the run started")
        if integration.discover_extensions:
            try:
                extension_index_build(integration=integration, client=client)
            except SchemasUnavailable as exc:
                skipped = integration_redactor(integration).text(f"extension-schema discovery skipped: {exc}")
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
    except LeaseLost:
        logger.warning("extraction lease lost", extra={"integration": integration.pk, "run": run.pk})
        return _reloaded(run)
    except (ScimClientError, ExtractionRefused) as exc:
        run.status, run.error = ExtractionRun.Status.FAILED, integration_redactor(integration).text(str(exc))
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


FLUSH_MAX_ROWS = 5000  # buffered users, or group members, before a write whatever the time
SMALLEST_BATCH_ROWS = 500  # the first batch of a list, and the smallest the halving near its end hands over


class WritePace:
    """When the pages read so far are written: a transaction every few pages, not every page.

    Rows are buffered and written, with the run's progress and under its lease, once
    ``settings.EXTRACTION_WRITE_SECONDS`` have passed since the last write or enough rows
    wait (so memory stays bounded), and at the end of each list. A read that finds little
    changed then costs a few transactions rather than one per page; the progress bar still
    moves at that pace, and a worker that lost its lease learns it at its next write,
    before any row of it is stored. ``0`` writes after every page.

    Enough rows is SMALLEST_BATCH_ROWS for a list's first batch, twice as many for each
    batch after it, up to FLUSH_MAX_ROWS: the writer, idle until the first batch comes,
    starts early. Near the end of a list the batches halve again (``due``).
    """

    def __init__(self) -> None:
        self.every = settings.EXTRACTION_WRITE_SECONDS
        self.last = time.monotonic()
        self.rows = SMALLEST_BATCH_ROWS

    def due(self, rows: int, still_to_read: float | None = None) -> bool:
        """Whether the ``rows`` waiting are written now. With ``still_to_read`` (what the list
        has left by the server's total, estimated in rows), also once they are as many and at
        least SMALLEST_BATCH_ROWS: the last batch, which is written after the reading while
        nothing else goes on, is then small."""
        if rows >= self.rows or time.monotonic() - self.last >= self.every:
            return True
        return still_to_read is not None and rows >= max(still_to_read, SMALLEST_BATCH_ROWS)

    def written(self) -> None:
        self.last = time.monotonic()
        self.rows = min(FLUSH_MAX_ROWS, self.rows * 2)


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

    What is read is handed to a ``BackgroundWriter`` a few pages at a time (``WritePace``)
    and written while the next pages are read. Returns the console's key of every account
    of the integration by remote id (stored before, or now), for the groups' members.
    """
    integration = run.integration
    integration_id = integration.pk
    accounts: dict[str, int] = {}
    known = _fingerprints(TargetUser, integration, keys=accounts)
    seen: set[str] = set()
    now = timezone.now()
    pace = WritePace()
    fresh: list[tuple[Any, ...]] = []  # read, not yet handed to the writer
    changed: list[tuple[str, tuple[Any, ...]]] = []  # by remote id
    columns = [*USER_FIELDS, "integration_id", "remote_id", "first_seen_at", "last_seen_at"]
    remote_id_at = columns.index("remote_id")

    def write(
        fresh: EncodedRows,
        fresh_ids: list[str],
        changed: list[tuple[str, tuple[Any, ...]]],
        progress: dict[str, Any],
    ) -> None:
        # One transaction: the rows of one hand-over and the progress they make.
        with transaction.atomic():
            _commit_without_waiting_for_disk()
            keys = insert_encoded(fresh, returning=True)
            updated_rows = update_rows(
                TargetUser, USER_FIELDS, changed, key="remote_id", scope={"integration_id": integration.pk}
            )
            created, updated = counts.created + fresh.count, counts.updated + updated_rows
            extraction_progress(run, created=created, updated=updated, **progress)
        counts.created, counts.updated = created, updated
        accounts.update(zip(fresh_ids, keys, strict=True))

    with _writer_for(run, client) as writer:

        def hand_over() -> None:
            nonlocal fresh, changed
            # Encoded here, so the writer's thread is left only the database to wait for.
            # The resources are not kept past their text: the hand-over's garbage collection has
            # the few objects made since the last one to go over, not every resource read.
            encoded, fresh_ids = encode_rows(TargetUser, columns, fresh), [row[remote_id_at] for row in fresh]
            writer.submit(functools.partial(write, encoded, fresh_ids, changed, _progress(run, client, "users", seen)))
            fresh, changed = [], []
            pace.written()
            _young_garbage_collected()

        for changes in _changes_by_page(run, client, "User", integration.users_endpoint, known, seen):
            for remote_id, resource, digest, new in changes:
                values = target_user_values(resource, digest)  # in USER_FIELDS' order
                if new:
                    values += (integration_id, remote_id, now, now)  # first and last seen: this read
                    fresh.append(values)
                else:
                    changed.append((remote_id, values))
            run.users_seen, run.users_total = len(seen), client.total_results
            if pace.due(len(fresh) + len(changed), _still_to_read(client.total_results, len(seen))):
                hand_over()
        hand_over()
    counts.removed += _mark_removed(TargetUser, integration, known, seen, now)
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


def _commit_without_waiting_for_disk() -> None:
    """On PostgreSQL, this transaction's commit does not wait for its WAL to reach the disk.

    A write of extraction is a copy of what the application holds: should the server crash
    within the moment before the WAL is flushed (at most three times ``wal_writer_delay``),
    the transaction is lost whole, never in part, and its run is failed by recovery and read
    again. Each write then costs no disk flush (a third of a second over a read of 100,000 users).
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


@contextmanager
def _writer_for(run: ExtractionRun, client: ScimClient) -> Iterator[BackgroundWriter]:
    """A writer for one list; meanwhile the lease is renewed through it (the reader leaves the database to it).

    While the list is read, Python's cyclic garbage collector does not run by itself
    (``_young_garbage_collected`` runs it at each hand-over instead).
    """
    renew = client.before_request
    with _automatic_collection_paused(), BackgroundWriter() as writer:
        client.before_request = _heartbeat(run, writer.submit)
        try:
            yield writer
        finally:
            client.before_request = renew


@contextmanager
def _automatic_collection_paused() -> Iterator[None]:
    """Python's cyclic garbage collector does not start by itself meanwhile.

    Each page parsed is thousands of new containers, and the collector would go over them
    several times a page, and now and then over every object of the process: a sixth of
    a worker's time reading 100,000 users, measured. Nothing an extraction keeps is
    cyclic; the little cyclic garbage it makes (httpx's objects of each request, some forty)
    is collected at each hand-over by ``_young_garbage_collected``, and the collector
    starts by itself again afterwards, as it did before (unless it was off already).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _young_garbage_collected() -> None:
    """Collect the cycles made since the last collection (the youngest generation only: the
    objects created since, not the whole process)."""
    gc.collect(0)


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


def _fingerprints(
    model: type[TargetUser | TargetGroup], integration: Integration, *, keys: dict[str, int] | None = None
) -> dict[str, str]:
    """Each stored user's (or group's) fingerprint by remote id: one plain read, built into a dict in C.

    One marked removed has none (an empty string matches no fingerprint): read again, it is
    rewritten, which also clears its mark. With ``keys``, each one's primary key joins it, by
    remote id, from the same read.
    """
    table, quote = model._meta.db_table, connection.ops.quote_name
    pk_field = model._meta.pk
    assert pk_field is not None
    key = f", {quote(str(pk_field.column))}" if keys is not None else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT remote_id, CASE WHEN removed_at IS NULL THEN content_hash ELSE '' END{key} "  # noqa: S608 - a model's table
            f"FROM {quote(table)} WHERE integration_id = %s",
            [integration.pk],
        )
        if keys is None:
            return dict(cursor.fetchall())
        rows = cursor.fetchall()
    keys.update((remote_id, pk) for remote_id, _, pk in rows)
    return {remote_id: digest for remote_id, digest, _ in rows}


def _check_sample(run: ExtractionRun, kind: str, page: list[dict[str, Any]], number: int) -> None:
    """Check the first resource of page ``number`` of a kind with scim2-models; its first problem is a run warning.

    Resources are stored as sent either way. A sample, because checking every one would
    double the time an extraction takes: the pages ``sampled`` picks (checking the first
    resource of every page would still cost a tenth of reading it).
    """
    prefix = f"some {kind.lower()}s are not valid SCIM"
    if not sampled(number):
        return
    if not page or any(warning.startswith(prefix) for warning in run.warnings):
        return
    problem = resource_problem(kind, page[0])
    if problem:
        problem = integration_redactor(run.integration).text(problem)
        run.warnings = [*run.warnings, f"{prefix} (kept as sent): {problem}"]


def _mark_removed(
    model: type[TargetUser | TargetGroup],
    integration: Integration,
    known: dict[str, str],
    seen: set[str],
    when: datetime,
) -> int:
    """Mark what was stored and not read this time as removed; returns how many newly.

    ``known`` is what ``_fingerprints`` read: one already marked (no fingerprint) is left as it is.
    """
    gone = [remote_id for remote_id, digest in known.items() if digest and remote_id not in seen]
    marked = 0
    for start in range(0, len(gone), BATCH):
        marked += model.objects.filter(
            integration=integration, remote_id__in=gone[start : start + BATCH], removed_at__isnull=True
        ).update(removed_at=when)
    return marked


def _extract_groups(run: ExtractionRun, client: ScimClient, counts: Counts, accounts: dict[str, int]) -> None:
    """Groups a page at a time: new ones inserted, changed ones updated and their members replaced.

    A group's members are stored as its memberships, one row each, and not again in its
    stored resource: the resource is kept as read without ``members`` (a group of 50,000
    would otherwise be a document of megabytes, rewritten whole whenever one member changes).
    ``accounts`` (what the users' read returned) resolves members to accounts; one it does not
    know is looked up (an account stored since, say).
    """
    integration = run.integration
    integration_id = integration.pk
    known = _fingerprints(TargetGroup, integration)
    seen: set[str] = set()
    now = timezone.now()
    pace = WritePace()
    Read = tuple[str, list[Any], list[str]]  # remote id, GROUP_FIELDS' values, member remote ids
    fresh: list[Read] = []  # read, not yet handed to the writer
    changed: list[Read] = []  # by remote id
    waiting = 0  # groups and members read, not yet handed over
    members_read = 0  # of the new and changed groups read so far

    group_columns = [*GROUP_FIELDS, "integration_id", "remote_id", "first_seen_at"]
    member_columns = ["integration_id", "member_remote_id", "user_id"]

    def write(
        fresh: EncodedRows,
        fresh_members: EncodedBlocks,
        changed: list[Read],
        changed_members: EncodedBlocks,
        unknown: set[str],
        progress: dict[str, Any],
    ) -> None:
        # Groups and their members change together, with the progress they make, in one transaction.
        with transaction.atomic():
            _commit_without_waiting_for_disk()
            changed_pks = dict(
                TargetGroup.objects.filter(
                    integration=integration, remote_id__in=[remote_id for remote_id, _, _ in changed]
                ).values_list("remote_id", "pk")
                if changed
                else {}
            )
            pks = insert_encoded(fresh, returning=True)
            update_rows(
                TargetGroup,
                GROUP_FIELDS,
                [(remote_id, values) for remote_id, values, _ in changed],
                key="remote_id",
                scope={"integration_id": integration.pk},
            )
            if changed_pks:
                TargetMembership.objects.filter(group_id__in=list(changed_pks.values())).delete()
            insert_blocks(fresh_members, pks)
            changed_group_pks = [changed_pks.get(remote_id) for remote_id, _, _ in changed]
            insert_blocks(changed_members, changed_group_pks)
            if unknown:
                _link_late_members(
                    integration, accounts, unknown, [*pks, *(pk for pk in changed_group_pks if pk is not None)]
                )
            created, updated = counts.created + fresh.count, counts.updated + len(changed)
            extraction_progress(run, created=created, updated=updated, **progress)
        counts.created, counts.updated = created, updated

    with _writer_for(run, client) as writer:

        def hand_over() -> None:
            nonlocal fresh, changed, waiting
            # Rows and members are encoded here, so the writer's thread is left only the
            # database to wait for. A member that is no account read so far is stored without
            # its account, and linked by the writer should it be one by then (``_link_late_members``).
            account = accounts.get
            unknown: set[str] = set()

            def member_rows(groups: list[Read]) -> EncodedBlocks:
                blocks = []
                for _, _, members in groups:
                    block = [(integration_id, member, account(member)) for member in dict.fromkeys(members)]
                    unknown.update(member for _, member, user in block if user is None)
                    blocks.append(block)
                return encode_blocks(TargetMembership, "group_id", member_columns, blocks)

            encoded = encode_rows(
                TargetGroup,
                group_columns,
                [[*values, integration_id, remote_id, now] for remote_id, values, _ in fresh],
            )
            job = functools.partial(
                write,
                encoded,
                member_rows(fresh),
                changed,
                member_rows(changed),
                unknown,
                _progress(run, client, "groups", seen),
            )
            writer.submit(job)
            fresh, changed, waiting = [], [], 0
            pace.written()
            _young_garbage_collected()

        for changes in _changes_by_page(run, client, "Group", integration.groups_endpoint, known, seen):
            for remote_id, resource, digest, new in changes:
                members = [str(m.get("value")) for m in resource.get("members") or [] if isinstance(m, dict)]
                values = [
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
            if pace.due(waiting, _still_to_read(client.total_results, len(seen), 1 + members_per_group)):
                hand_over()
        hand_over()
    counts.removed += _mark_removed(TargetGroup, integration, known, seen, now)


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
