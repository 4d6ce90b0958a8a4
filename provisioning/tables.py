"""The Actions and Revocations lists' tables (their exports keep their own stable fields: provisioning.exports)."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html

from console.core.display import when
from console.core.tables import Column, Table, badge, link
from provisioning.causes import cause_text, requested_by_text
from provisioning.exports import EXPORT_COLUMNS, REVOCATION_EXPORT_COLUMNS
from provisioning.models import ACTION_FINISHED_SORT, ACTION_REQUESTER_SORT, Action, Revocation
from provisioning.templatetags.actions import state_badge


def _state(action: Action) -> Any:
    return render_to_string("provisioning/state_badge.html", state_badge(action))


def _integration(row: Action | Revocation) -> Any:
    return format_html(
        '<a href="{}">{}</a>', reverse("integration_detail", args=[row.integration_id]), row.integration.name
    )


# Sorts: created (its own index), type, subject and state (indexes on the field and the id);
# integration and requester group by the related row's id (indexed, unlike its name), finished
# by an index on the expression (provisioning.models).
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
        Column(
            "integration",
            "Integration",
            sort="integration_id",
            sort_note="By integration: actions grouped by integration, in the order the integrations were added "
            "(not by name).",
            value=lambda a: a.integration.name,
            html=_integration,
        ),
        Column("state", "State", sort="state", value=lambda a: a.get_state_display(), html=_state),
        Column(
            "requested_by",
            "Requested by",
            sort="requested_by_sort",
            sort_expression=ACTION_REQUESTER_SORT,
            sort_note="By requester: actions grouped by who requested them, in the order those people were added "
            "(not by name); automation's come first.",
            value=requested_by_text,
        ),
        Column("cause", "Why", value=cause_text),
        Column(
            "decided_by", "Decided by", value=lambda a: a.decided_by.username if a.decided_by else "", default=False
        ),
        Column("attempts", "Attempts", default=False),
        Column(
            "finished_at",
            "Finished",
            sort="finished_sort",
            sort_expression=ACTION_FINISHED_SORT,
            sort_note="By finished: an action not finished yet counts as later than every finished one.",
            default=False,
        ),
        Column("last_error", "Last error", default=False),
    ],
    ordering="-created_at",
    export_columns=EXPORT_COLUMNS,
)


OUTCOME_BADGES = {
    Revocation.Outcome.VERIFIED: "ok",
    Revocation.Outcome.MISMATCH: "bad",
    Revocation.Outcome.UNVERIFIED: "warn",
}


def _seconds(revocation: Revocation) -> str:
    return f"{revocation.latency_seconds:.1f} s"


# Sorts: verified (its own index), account, outcome and latency (indexes on the field and the id).
REVOCATIONS_TABLE = Table(
    name="revocations",
    columns=[
        Column(
            "verified_at",
            "Verified",
            sort="verified_at",
            html=link(lambda r: reverse("action_detail", args=[r.action_id]), lambda r: when(r.verified_at)),
        ),
        Column("account", "Account", sort="account"),
        Column("integration", "Integration", value=lambda r: r.integration.name, html=_integration),
        Column("person", "Person", value=lambda r: r.person.username if r.person else ""),
        Column(
            "outcome",
            "Outcome",
            sort="outcome",
            value=lambda r: r.get_outcome_display(),
            html=badge(lambda r: OUTCOME_BADGES.get(r.outcome, ""), lambda r: r.get_outcome_display()),
        ),
        Column("reason", "What the application showed", value=lambda r: r.reason),
        Column("latency_seconds", "Time to verify", sort="latency_seconds", value=_seconds),
        Column("measured_from", "Measured from", value=lambda r: r.get_measured_from_display()),
        Column("requested_at", "Requested", default=False),
    ],
    ordering="-verified_at",
    export_columns=REVOCATION_EXPORT_COLUMNS,
)
