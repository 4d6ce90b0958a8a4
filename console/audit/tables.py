"""The Audit list's table."""

from __future__ import annotations

import json
from typing import Any

from django.utils.html import format_html

from console.audit.models import AuditEvent
from console.web.tables import Column, Table


def _target(event: AuditEvent) -> str:
    text = event.target_type + (f" #{event.target_id}" if event.target_id else "")
    return f"{text} ({event.target_label})" if event.target_label else text


def _details(event: AuditEvent) -> Any:
    if not event.details:
        return ""
    return format_html(
        "<details><summary>Show</summary><pre>{}</pre></details>", json.dumps(event.details, indent=2, default=str)
    )


def _when(event: AuditEvent) -> Any:
    return format_html(
        '<time datetime="{}">{}</time>', event.occurred_at.isoformat(), event.occurred_at.strftime("%Y-%m-%d %H:%M:%S")
    )


# Sorts: the time (its own index), the actor and the verb (indexes on the field and the id).
AUDIT_TABLE = Table(
    name="audit",
    columns=[
        Column("occurred_at", "When", sort="occurred_at", html=_when),
        Column("actor", "Actor", sort="actor_label", value=lambda e: e.actor_label or "system"),
        Column("verb", "Verb", sort="verb", html=lambda e: format_html("<code>{}</code>", e.verb)),
        Column("target", "Target", value=_target),
        Column("details", "Details", value=lambda e: e.details, html=_details),
        Column("address", "Address", value=lambda e: e.source_address or ""),
    ],
    ordering="-occurred_at",
)
