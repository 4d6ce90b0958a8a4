"""The Audit list's table."""

from __future__ import annotations

from typing import Any

from console.audit.models import AuditEvent
from console.audit.words import target_html, target_words, verb_html
from console.core.display import json_block, when
from console.core.tables import Column, Table


def _target(event: AuditEvent) -> str:
    return target_words(event.target_type, event.target_id, event.target_label)


def _details(event: AuditEvent) -> Any:
    if not event.details:
        return ""
    return json_block(event.details, "Show")


def _when(event: AuditEvent) -> Any:
    return when(event.occurred_at, seconds=True)


# Sorts: the time (its own index), the actor and the verb (indexes on the field and the id).
AUDIT_TABLE = Table(
    name="audit",
    columns=[
        Column("occurred_at", "When", sort="occurred_at", html=_when),
        Column("actor", "Actor", sort="actor_label", value=lambda e: e.actor_label or "system"),
        Column("verb", "Verb", sort="verb", value=lambda e: e.verb, html=verb_html),
        Column("target", "Target", value=_target, html=target_html),
        Column("details", "Details", value=lambda e: e.details, html=_details),
        Column("address", "Address", value=lambda e: e.source_address or ""),
    ],
    ordering="-occurred_at",
)
