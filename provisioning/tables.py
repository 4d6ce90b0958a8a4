"""The Actions list's table (the export keeps its own stable fields: provisioning.exports)."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html

from console.core.display import when
from console.core.tables import Column, Table, link
from provisioning.exports import EXPORT_COLUMNS
from provisioning.models import Action
from provisioning.templatetags.actions import state_badge


def _state(action: Action) -> Any:
    return render_to_string("provisioning/state_badge.html", state_badge(action))


def _integration(action: Action) -> Any:
    return format_html(
        '<a href="{}">{}</a>', reverse("integration_detail", args=[action.integration_id]), action.integration.name
    )


# Sorts: created (its own index), type, subject and state (indexes on the field and the id).
ACTIONS_TABLE = Table(
    name="actions",
    columns=[
        Column(
            "created_at",
            "Created",
            sort="created_at",
            html=link(lambda a: reverse("action_detail", args=[a.pk]), lambda a: when(a.created_at)),
        ),
        Column("action_type", "Type", sort="action_type", value=lambda a: a.get_action_type_display()),
        Column("subject", "Subject", sort="subject"),
        Column("integration", "Integration", value=lambda a: a.integration.name, html=_integration),
        Column("state", "State", sort="state", value=lambda a: a.get_state_display(), html=_state),
        Column("requested_by", "Requested by", value=lambda a: a.requested_by.username if a.requested_by else "system"),
        Column(
            "decided_by", "Decided by", value=lambda a: a.decided_by.username if a.decided_by else "", default=False
        ),
        Column("attempts", "Attempts", default=False),
        Column("finished_at", "Finished", default=False),
        Column("last_error", "Last error", default=False),
    ],
    ordering="-created_at",
    export_columns=EXPORT_COLUMNS,
)
