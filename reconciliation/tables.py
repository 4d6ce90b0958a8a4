"""The Drift tab's table: what each open item is about, the rule that wants it, what differs, since when."""

from __future__ import annotations

import json
from typing import Any

from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from console.core.display import ago, when, when_text
from console.core.exports import ExportColumn
from console.core.tables import Column, Table
from reconciliation.models import DriftCategory, DriftItem


def _value(value: Any) -> str:
    """A value as the application or the console holds it: text as text, anything else as JSON."""
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return f'"{value}"' if value == "" or value != value.strip() else value
    return json.dumps(value, ensure_ascii=False)


def attribute_changes(item: DriftItem) -> list[tuple[str, str, str]]:
    """Attribute drift as (attribute, what the application has, what the console wants)."""
    detail = item.detail if isinstance(item.detail, dict) else {}
    rows = detail.get("attributes")
    if not isinstance(rows, list):
        return []
    return [
        (str(row.get("path", "?")), _value(row.get("application")), _value(row.get("wanted")))
        for row in rows
        if isinstance(row, dict)
    ]


def _noted(value: Any) -> str:
    """A value the computation noted, in words: yes or no, a list as its items, else as ``_value``."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list) and all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
        return ", ".join(str(v) for v in value) or "none"
    return _value(value)


def _other_detail(item: DriftItem) -> list[tuple[str, str]]:
    detail = item.detail if isinstance(item.detail, dict) else {}
    return [(key.replace("_", " "), _noted(value)) for key, value in detail.items() if key != "attributes"]


def differs_text(item: DriftItem) -> str:
    """What differs, in one line of text (exports)."""
    parts = [f"{path}: {have} → {want}" for path, have, want in attribute_changes(item)]
    parts += [f"{key}: {value}" for key, value in _other_detail(item)]
    return "; ".join(parts)


def differs_html(item: DriftItem) -> SafeString:
    """Attribute drift as a before/after per attribute; otherwise what the computation noted."""
    changes = attribute_changes(item)
    if changes:
        return format_html(
            '<dl class="drift-diff" data-testid="drift-diff">{}</dl>',
            format_html_join(
                "",
                '<dt>{}</dt><dd><span class="before" title="In the application">{}</span>'
                ' → <span class="after" title="What the console wants">{}</span></dd>',
                changes,
            ),
        )
    other = _other_detail(item)
    if not other:
        return format_html("{}", "—")
    return format_html('<dl class="drift-detail">{}</dl>', format_html_join("", "<dt>{}</dt><dd>{}</dd>", other))


def since_html(item: DriftItem) -> SafeString:
    """How long ago, then the exact time."""
    return format_html("{}<br><small>{}</small>", ago(item.first_seen_at), when(item.first_seen_at))


def _account_name(item: DriftItem) -> str:
    if item.target_user is not None:
        return item.target_user.user_name
    detail = item.detail if isinstance(item.detail, dict) else {}
    return str(detail.get("user_name") or "")


def _account(item: DriftItem) -> SafeString | str:
    user = item.target_user
    if user is None:
        return _account_name(item) or "—"
    return format_html(
        '<a href="{}">{}</a>', reverse("target_user_detail", args=[user.integration_id, user.pk]), user.user_name
    )


def _person(item: DriftItem) -> SafeString | str:
    if item.person is None:
        return "—"
    return format_html('<a href="{}">{}</a>', reverse("person_detail", args=[item.person.pk]), item.person.username)


def _group_name(item: DriftItem) -> str:
    if item.group is not None:
        return item.group.display_name
    detail = item.detail if isinstance(item.detail, dict) else {}
    return str(detail.get("group_name") or "")


def _group(item: DriftItem) -> SafeString | str:
    group = item.group
    if group is None:
        return _group_name(item) or "—"
    return format_html(
        '<a href="{}">{}</a>', reverse("target_group_detail", args=[group.integration_id, group.pk]), group.display_name
    )


def category_label(item: DriftItem) -> str:
    return str(DriftCategory(item.category).label) if item.category in DriftCategory.values else item.category


# Sorts: category, and since when, each by an index (integration, field, id).
DRIFT_TABLE = Table(
    name="drift",
    columns=[
        Column("category", "Category", sort="category", value=category_label),
        Column("account", "Account", value=_account_name, html=_account),
        Column("person", "Person", value=lambda i: i.person.username if i.person else "", html=_person),
        Column("group", "Group", value=_group_name, html=_group),
        Column("rule", "Rule"),
        Column("differs", "What differs", value=differs_text, html=differs_html),
        Column("since", "Since", sort="first_seen_at", value=lambda i: i.first_seen_at, html=since_html),
        Column("last_seen_at", "Last seen", value=lambda i: i.last_seen_at, default=False),
    ],
    ordering="category",
    export_columns=[
        ExportColumn("category", lambda i: i.category),
        ExportColumn("category_label", category_label),
        ExportColumn("account", _account_name),
        ExportColumn("person", lambda i: i.person.username if i.person else ""),
        ExportColumn("group", _group_name),
        ExportColumn("rule", lambda i: i.rule),
        ExportColumn("differs", differs_text),
        ExportColumn("first_seen_at", lambda i: i.first_seen_at),
        ExportColumn("first_seen", lambda i: when_text(i.first_seen_at)),
        ExportColumn("last_seen_at", lambda i: i.last_seen_at),
    ],
)
