"""How extraction stores what it reads, and why each trick is there.

The flow (``integrations.extraction.flow``) reads pages, finds what changed and hands rows
over; this module decides when and how they reach the database:

- ``WritePace``: a transaction every few pages rather than every page, in batches that
  start small and grow, then shrink again near the end of a list.
- ``list_writer``: the batches are written by a ``BackgroundWriter`` beside the reads, while
  Python's cyclic garbage collector is kept from starting by itself.
- ``users_batch`` / ``groups_batch``: rows are encoded as ``COPY`` text on the reader's
  thread, so the writer's thread is left only the database to wait for.
- ``write_transaction``: each write commits without waiting for its WAL to reach the disk.
- ``stored_fingerprints``: what is stored is read back in one plain query.

The measured effect of each is in ``docs/extraction.md``.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from console.core.bulk import (
    EncodedBlocks,
    EncodedRows,
    encode_blocks,
    encode_rows,
    insert_blocks,
    insert_encoded,
    update_rows,
)
from integrations.extraction.resources import GROUP_FIELDS, USER_FIELDS
from integrations.extraction.writer import BackgroundWriter, Job
from integrations.history import (
    account_changes_record,
    group_changes_record,
    membership_changes_record,
)
from integrations.models import ChangeSource, Integration, TargetGroup, TargetMembership, TargetUser

FLUSH_MAX_ROWS = 5000  # buffered users, or group members, before a write whatever the time
SMALLEST_BATCH_ROWS = 500  # the first batch of a list, and the smallest the halving near its end hands over

# A new user's row: its USER_FIELDS' values, then these.
NEW_USER_COLUMNS = [*USER_FIELDS, "integration_id", "remote_id", "first_seen_at", "last_seen_at"]
# A new group's row: its GROUP_FIELDS' values, then these.
NEW_GROUP_COLUMNS = [*GROUP_FIELDS, "integration_id", "remote_id", "first_seen_at"]
MEMBER_COLUMNS = ["integration_id", "member_remote_id", "user_id"]

_REMOTE_ID_AT = NEW_USER_COLUMNS.index("remote_id")
_ACTIVE_AT = USER_FIELDS.index("active")

# A group read: its remote id, its GROUP_FIELDS' values, its members' remote ids.
GroupRead = tuple[str, list[Any], list[str]]


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


class ListWriter:
    """Where the rows of one list go: handed over at the ``WritePace``, written in order beside the reads."""

    def __init__(self, background: BackgroundWriter) -> None:
        self.background = background
        self.pace = WritePace()

    def due(self, rows: int, still_to_read: float | None = None) -> bool:
        """Whether the ``rows`` waiting are handed over now (``WritePace.due``)."""
        return self.pace.due(rows, still_to_read)

    def hand_over(self, job: Job) -> None:
        """Write a batch (``job``) after those before it; the reader reads on meanwhile.

        The cycles made since the last hand-over are collected here, while the collector
        does not start by itself (``list_writer``). The caller drops what it read before
        handing over, so the collection has the few objects made since the last one to go
        over, not every resource read.
        """
        self.background.submit(job)
        self.pace.written()
        _young_garbage_collected()

    def submit(self, job: Job) -> None:
        """Run ``job`` on the database in turn with the batches (the reader leaves the database to the writer)."""
        self.background.submit(job)


@contextmanager
def list_writer() -> Iterator[ListWriter]:
    """A writer for one list, waited for at the end; meanwhile the cyclic garbage collector
    does not start by itself (``ListWriter.hand_over`` collects instead)."""
    with _automatic_collection_paused(), BackgroundWriter() as background:
        yield ListWriter(background)


@contextmanager
def _automatic_collection_paused() -> Iterator[None]:
    """Python's cyclic garbage collector does not start by itself meanwhile.

    Each page parsed is thousands of new containers, and the collector would go over them
    several times a page, and now and then over every object of the process. Nothing an
    extraction keeps is cyclic; the little cyclic garbage it makes (httpx's objects of each
    request) is collected at each hand-over by ``_young_garbage_collected``, and the
    collector starts by itself again afterwards, as it did before (unless it was off already).
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


@contextmanager
def write_transaction() -> Iterator[None]:
    """One write of extraction: a transaction whose commit does not wait for its WAL to reach the disk.

    On PostgreSQL (``synchronous_commit`` off for this transaction only). A write of
    extraction is a copy of what the application holds: should the server crash within the
    moment before the WAL is flushed (at most three times ``wal_writer_delay``), the
    transaction is lost whole, never in part, and its run is failed by recovery and read
    again. Each write then costs no disk flush.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


@dataclass(frozen=True)
class UserBatch:
    """Users handed over together: the new ones as COPY text, the changed ones as values."""

    fresh: EncodedRows
    fresh_ids: list[str]  # the new users' remote ids, in their rows' order
    changed: list[tuple[str, tuple[Any, ...]]]  # remote id, USER_FIELDS' values


def users_batch(fresh: Sequence[Sequence[Any]], changed: list[tuple[str, tuple[Any, ...]]]) -> UserBatch:
    """Encode users read for the writer (on the reader's thread): ``fresh`` rows in ``NEW_USER_COLUMNS``' order.

    The new users' resources are not kept past their text.
    """
    return UserBatch(encode_rows(TargetUser, NEW_USER_COLUMNS, fresh), [row[_REMOTE_ID_AT] for row in fresh], changed)


def users_stored(
    batch: UserBatch, integration: Integration, *, run_id: int | None = None, at: datetime | None = None
) -> tuple[list[int], int]:
    """Insert the new users (COPY on PostgreSQL) and rewrite the changed ones in one statement.

    A changed user that became active or inactive, or came back after it was gone, is
    recorded (``integrations.history``); new users are not. Returns the new users' keys, in
    their rows' order, and how many changed users were rewritten.
    """
    keys = insert_encoded(batch.fresh, returning=True)
    before = _stored_states(integration, [remote_id for remote_id, _ in batch.changed]) if batch.changed else {}
    updated = update_rows(
        TargetUser, USER_FIELDS, batch.changed, key="remote_id", scope={"integration_id": integration.pk}
    )
    if before:
        old, new = {}, {}
        for remote_id, values in batch.changed:
            if remote_id in before:
                pk, state = before[remote_id]
                old[pk], new[pk] = state, (bool(values[_ACTIVE_AT]), False, state[2])
        account_changes_record(
            integration_id=integration.pk, before=old, after=new, source=ChangeSource.EXTRACTION, at=at, run_id=run_id
        )
    return keys, updated


def _stored_states(
    integration: Integration, remote_ids: list[str]
) -> dict[str, tuple[int, tuple[bool, bool, int | None]]]:
    """The stored accounts ``remote_ids``: each one's key and (active, removed, owner), by remote id."""
    found: dict[str, tuple[int, tuple[bool, bool, int | None]]] = {}
    for start in range(0, len(remote_ids), 500):
        rows = TargetUser.objects.filter(
            integration=integration, remote_id__in=remote_ids[start : start + 500]
        ).values_list("remote_id", "pk", "active", "removed_at", "owner_id")
        found.update(
            (remote_id, (pk, (active, removed_at is not None, owner)))
            for remote_id, pk, active, removed_at, owner in rows
        )
    return found


@dataclass(frozen=True)
class GroupBatch:
    """Groups handed over together, with their members as blocks that take the group's key when it is drawn."""

    fresh: EncodedRows
    fresh_members: EncodedBlocks
    changed: list[tuple[str, list[Any]]]  # remote id, GROUP_FIELDS' values
    changed_members: EncodedBlocks
    unknown: set[str]  # members stored without an account: none was known when they were encoded
    # The changed groups' members as read (remote id, account or None), for their history.
    changed_member_lists: list[list[tuple[str, int | None]]]


def groups_batch(
    integration: Integration,
    fresh: list[GroupRead],
    changed: list[GroupRead],
    account: Callable[[str], int | None],
    now: datetime,
) -> GroupBatch:
    """Encode groups read for the writer (on the reader's thread), each member with its account by ``account``."""
    integration_id = integration.pk
    unknown: set[str] = set()

    changed_lists: list[list[tuple[str, int | None]]] = []

    def member_rows(groups: list[GroupRead], keep: list[list[tuple[str, int | None]]] | None = None) -> EncodedBlocks:
        blocks = []
        for _, _, members in groups:
            block = [(integration_id, member, account(member)) for member in dict.fromkeys(members)]
            unknown.update(member for _, member, user in block if user is None)
            blocks.append(block)
            if keep is not None:
                keep.append([(member, user) for _, member, user in block])
        return encode_blocks(TargetMembership, "group_id", MEMBER_COLUMNS, blocks)

    encoded = encode_rows(
        TargetGroup, NEW_GROUP_COLUMNS, [[*values, integration_id, remote_id, now] for remote_id, values, _ in fresh]
    )
    return GroupBatch(
        encoded,
        member_rows(fresh),
        [(remote_id, values) for remote_id, values, _ in changed],
        member_rows(changed, changed_lists),
        unknown,
        changed_lists,
    )


def groups_stored(
    batch: GroupBatch, integration: Integration, *, run_id: int | None = None, at: datetime | None = None
) -> list[int]:
    """Insert the new groups and their members; rewrite the changed ones and replace their members.

    The changed groups' members before and after are compared, and who came and went is
    recorded (``integrations.history``), as is a group read again after it was gone; the new
    groups' members are not (a group did not exist before its ``first_seen_at``). Returns the
    keys of the groups written (the new ones, then the changed ones still stored).
    """
    changed_rows = (
        TargetGroup.objects.filter(
            integration=integration, remote_id__in=[remote_id for remote_id, _ in batch.changed]
        ).values_list("remote_id", "pk", "removed_at")
        if batch.changed
        else []
    )
    changed_pks = {remote_id: pk for remote_id, pk, _ in changed_rows}
    back = [pk for _, pk, removed_at in changed_rows if removed_at is not None]
    pks = insert_encoded(batch.fresh, returning=True)
    update_rows(TargetGroup, GROUP_FIELDS, batch.changed, key="remote_id", scope={"integration_id": integration.pk})
    before: dict[int, dict[str, int | None]] = {}
    if changed_pks:
        stored = TargetMembership.objects.filter(group_id__in=list(changed_pks.values()))
        for group_id, member, user_id in stored.values_list("group_id", "member_remote_id", "user_id"):
            before.setdefault(group_id, {})[member] = user_id
        stored.delete()
    insert_blocks(batch.fresh_members, pks)
    changed_group_pks = [changed_pks.get(remote_id) for remote_id, _ in batch.changed]
    insert_blocks(batch.changed_members, changed_group_pks)
    if changed_pks:
        _member_changes_recorded(integration, changed_group_pks, batch.changed_member_lists, before, run_id, at)
    if back:
        group_changes_record(
            integration_id=integration.pk, group_ids=back, removed=False, at=at or timezone.now(), run_id=run_id
        )
    return [*pks, *(pk for pk in changed_group_pks if pk is not None)]


def _member_changes_recorded(
    integration: Integration,
    group_pks: list[int | None],
    read: list[list[tuple[str, int | None]]],
    before: dict[int, dict[str, int | None]],
    run_id: int | None,
    at: datetime | None,
) -> None:
    """Record who came and went in each changed group: its members read against those stored."""
    changes: list[tuple[int, str, int | None, bool]] = []
    for group_pk, members in zip(group_pks, read, strict=True):
        if group_pk is None:
            continue
        old = before.get(group_pk, {})
        new = dict(members)
        changes += [(group_pk, member, user_id, False) for member, user_id in old.items() if member not in new]
        changes += [(group_pk, member, user_id, True) for member, user_id in new.items() if member not in old]
    if changes:
        membership_changes_record(
            integration_id=integration.pk,
            changes=changes,
            source=ChangeSource.EXTRACTION,
            at=at,
            run_id=run_id,
        )


def stored_fingerprints(
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
