"""The one way to write the audit log."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import models
from django.http import HttpRequest
from django.utils import timezone

from console.audit.models import AuditEvent
from console.core.bulk import insert_rows
from console.core.confirm import reason_of
from console.core.redaction import redact
from console.core.request_meta import client_address

logger = logging.getLogger(__name__)


_context: ContextVar[dict[str, Any] | None] = ContextVar("audit_context", default=None)


@contextmanager
def audit_context(**details: Any) -> Iterator[None]:
    """Add ``details`` (for example how a change arrived) to each event recorded inside.

    A request that changes things through several services then leaves one event per
    change, each saying where it came from, instead of one more event that repeats them.
    """
    token = _context.set(details)
    try:
        yield
    finally:
        _context.reset(token)


def audit_event(
    *,
    verb: str,
    actor: Any = None,
    target: models.Model | None = None,
    target_type: str = "",
    target_id: str | int = "",
    target_label: str = "",
    details: Mapping[str, Any] | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    request: HttpRequest | None = None,
    actor_label: str = "",
) -> dict[str, Any]:
    """The columns of one event, by attribute name (``AUDIT_FIELDS``): see :func:`audit_record`,
    :func:`audit_record_many`."""
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or str(target.pk)
        target_label = target_label or str(target)[:255]
    payload: dict[str, Any] = {**(_context.get() or {}), **(details or {})}
    if before is not None:
        payload["before"] = dict(before)
    if after is not None:
        payload["after"] = dict(after)
    return {
        "occurred_at": timezone.now(),
        "actor_id": actor.pk if actor is not None else None,
        "actor_label": actor_label or (actor.get_username() if actor is not None else ""),
        "verb": verb,
        "target_type": target_type,
        "target_id": str(target_id),
        "target_label": target_label,
        "details": redact(payload),
        "source_address": client_address(request) if request is not None else None,
    }


# The columns audit_event gives, by attribute name: every stored field but the key.
AUDIT_FIELDS = [field.attname for field in AuditEvent._meta.concrete_fields if not field.primary_key]


def audit_record(**fields: Any) -> AuditEvent:
    """Append one event (the fields of :func:`audit_event`); secrets in its details are redacted."""
    event = AuditEvent(**audit_event(**fields))
    event.save()
    _logged(event.verb, event.target_type, event.target_id)
    return event


def audit_record_many(events: list[dict[str, Any]]) -> None:
    """Append many events made by :func:`audit_event`, in one statement."""
    insert_rows(AuditEvent, AUDIT_FIELDS, [[event[name] for name in AUDIT_FIELDS] for event in events])
    for event in events:
        _logged(event["verb"], event["target_type"], event["target_id"])


def _logged(verb: str, target_type: str, target_id: str) -> None:
    logger.info("audit event", extra={"verb": verb, "target_type": target_type, "target_id": target_id})


def changed_fields(instance: models.Model, original: Mapping[str, Any], fields: list[str]) -> tuple[dict, dict]:
    """Return (before, after) holding only the fields whose value differs."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name in fields:
        old, new = original.get(name), getattr(instance, name)
        if old != new:
            before[name], after[name] = _plain(old), _plain(new)
    return before, after


def _plain(value: Any) -> Any:
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return sorted(str(v) for v in value)
    return value


@contextmanager
def reason_recorded(request: HttpRequest) -> Iterator[None]:
    """The reason given in a confirmation (``console.core.confirm``) goes into each audit event recorded inside."""
    reason = reason_of(request)
    if not reason:
        yield
        return
    with audit_context(reason=reason):
        yield
