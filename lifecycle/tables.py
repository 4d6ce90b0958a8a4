"""The birthright mappings of an integration's Lifecycle tab: who gets which groups, in what state, made
and decided by whom."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import capfirst

from console.core.display import when, when_text
from console.core.exports import ExportColumn
from console.core.tables import Column, Table
from lifecycle.models import BirthrightMapping, MappingState

SENSITIVE_BADGE = mark_safe(' <span class="badge warn">sensitive</span>')
STATE_BADGE: dict[str, str] = {MappingState.ACTIVE: "ok", MappingState.PENDING: "warn"}


def _who(mapping: BirthrightMapping) -> str:
    # Set with the page's rows (lifecycle.views): mapping_text, the team and conditions in words.
    return capfirst(str(getattr(mapping, "text", "")))


def _who_html(mapping: BirthrightMapping) -> Any:
    # The anchor the Why lines link to (integrations.explain: "mapping N").
    return format_html('<span id="mapping-{}" data-testid="mapping-row">{}</span>', mapping.pk, _who(mapping))


def _groups_text(mapping: BirthrightMapping) -> str:
    return ", ".join(
        f"{group.display_name} (sensitive)" if sensitive else group.display_name
        for group, sensitive in getattr(mapping, "group_rows", [])
    )


def _groups_html(mapping: BirthrightMapping) -> Any:
    return format_html_join(
        ", ",
        "{}{}",
        (
            (group.display_name, SENSITIVE_BADGE if sensitive else "")
            for group, sensitive in getattr(mapping, "group_rows", [])
        ),
    )


def _state(mapping: BirthrightMapping) -> str:
    return str(mapping.get_state_display())


def _state_html(mapping: BirthrightMapping) -> Any:
    return format_html('<span class="badge {}">{}</span>', STATE_BADGE.get(mapping.state, "muted"), _state(mapping))


def _made_by(mapping: BirthrightMapping) -> str:
    return mapping.created_by.username if mapping.created_by else ""


def _decided_by(mapping: BirthrightMapping) -> str:
    return mapping.decided_by.username if mapping.decided_by else ""


def _made_html(mapping: BirthrightMapping) -> Any:
    return format_html("{} {}", _made_by(mapping) or "—", when(mapping.created_at))


def _decided_html(mapping: BirthrightMapping) -> Any:
    if mapping.decided_by is None:
        return "—"
    return format_html("{} {}", mapping.decided_by.username, when(mapping.decided_at))


def mappings_table(actions: Callable[[BirthrightMapping], Any]) -> Table:
    """The mappings of one integration; ``actions`` renders a row's buttons (approve, reject, delete).

    Sorts: who (by the team's name; mappings of a condition alone first), state, and when made.
    An integration has a few mappings, so these sort its rows without an index of their own.
    """
    return Table(
        name="mappings",
        columns=[
            Column(
                "who",
                "Who",
                sort="who_sort",
                sort_expression=Coalesce("team__name", Value("")),
                sort_note="By team name: mappings of a condition alone come first.",
                value=_who,
                html=_who_html,
            ),
            Column("groups", "Groups", value=_groups_text, html=_groups_html),
            Column("state", "State", sort="state", value=_state, html=_state_html),
            Column("created", "Made", sort="created_at", value=_made_by, html=_made_html),
            Column("decided", "Decided", value=_decided_by, html=_decided_html),
            Column("actions", "Actions", html=actions, export=False),
        ],
        ordering="created",
        total="exact",
        export_columns=[
            ExportColumn("id", lambda m: m.pk),
            ExportColumn("who", _who),
            ExportColumn("team", lambda m: m.team.name if m.team else ""),
            ExportColumn("conditions", lambda m: m.conditions or []),
            ExportColumn("groups", _groups_text),
            ExportColumn("state", lambda m: m.state),
            ExportColumn("state_label", _state),
            ExportColumn("made_by", _made_by),
            ExportColumn("made_at", lambda m: m.created_at),
            ExportColumn("made", lambda m: when_text(m.created_at)),
            ExportColumn("decided_by", _decided_by),
            ExportColumn("decided_at", lambda m: m.decided_at),
        ],
    )
