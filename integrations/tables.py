"""The tables of an integration's pages (users, groups, a group's members, extraction runs) and of a
person's accounts on the person's page."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.db.models import F
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from console.core.display import when
from console.core.exports import ExportColumn
from console.core.tables import Column, Table, link
from integrations.discovery import extension_value
from integrations.models import (
    TARGET_USER_OWNER_SORT,
    TARGET_USER_STATUS_SORT,
    ExtensionAttribute,
    ExtractionRun,
    Integration,
    TargetGroup,
    TargetUser,
)


def _status(user: TargetUser) -> str:
    if user.removed_at:
        return "Removed"
    return "Active" if user.active else "Inactive"


def _status_badge(user: TargetUser) -> Any:
    label = _status(user)
    return format_html('<span class="badge {}">{}</span>', "ok" if label == "Active" else "muted", label)


def _owner(user: TargetUser) -> str:
    # The person the account is tied to (integrations.correlation), read with the page's rows.
    owner = getattr(user, "owner", None)
    return str(owner) if owner else "no owner"


def _user_link(user: TargetUser) -> str:
    return reverse("target_user_detail", args=[user.integration_id, user.pk])


# Sorts: user name, display name, email, department and title (columns: department and title
# are kept from the resource as it is written), each by an index (integration, field, id);
# status and owner by an index on (integration, the expression, id) (integrations.models).
# Last seen does not sort: extraction writes it only for accounts that changed.
# An account's status in words, as a badge; sorted by an index on (integration, status, id).
STATUS_COLUMN = Column(
    "status", "Status", sort="status_sort", sort_expression=TARGET_USER_STATUS_SORT, value=_status, html=_status_badge
)
USER_COLUMNS = [
    Column("user_name", "User name", sort="user_name", html=link(_user_link, lambda u: u.user_name)),
    Column("display_name", "Display name", sort="display_name"),
    Column("email", "Email", sort="email"),
    STATUS_COLUMN,
    Column("last_seen", "Last seen", value=lambda u: getattr(u, "seen_at", u.last_seen_at)),
    Column("department", "Department", sort="department", default=False),
    Column("title", "Title", sort="title", default=False),
    Column(
        "owner",
        "Owner",
        sort="owner_sort",
        sort_expression=TARGET_USER_OWNER_SORT,
        sort_note="By owner: accounts grouped by their owner, in the order the people were added (not by name); "
        "accounts with no owner come first.",
        value=_owner,
        default=False,
    ),
]
USERS_TABLE = Table(name="users", columns=USER_COLUMNS, ordering="user_name")
MEMBERS_TABLE = Table(name="members", columns=[*USER_COLUMNS[:4]], ordering="user_name")


def _extension_column(attribute: ExtensionAttribute) -> Column:
    short = attribute.scim_path.rsplit(":", 1)[-1]

    def value(user: TargetUser) -> Any:
        found = extension_value(user.resource if isinstance(user.resource, dict) else {}, attribute)
        if found is None:
            return ""
        # A list or an object reads as JSON (["front", "lab"]), never as the text of a Python list.
        return found if isinstance(found, str | int | float | bool) else json.dumps(found, ensure_ascii=False)

    return Column(f"ext.{attribute.normalized_name}", short, value=value, default=False, title=attribute.scim_path)


def users_table(integration: Integration) -> Table:
    """The Users tab's table: the fixed columns and one per extension attribute of the integration."""
    return USERS_TABLE.with_columns(_extension_column(a) for a in integration.extension_attributes.all())


def _group_link(group: TargetGroup) -> Any:
    text = format_html(
        '<a href="{}">{}</a>', reverse("target_group_detail", args=[group.integration_id, group.pk]), group.display_name
    )
    if group.removed_at:
        return format_html('{} <span class="badge muted">Removed</span>', text)
    return text


GROUPS_TABLE = Table(
    name="groups",
    columns=[
        Column("display_name", "Group", sort="display_name", html=_group_link),
        Column("member_count", "Members", sort="member_count"),
        Column("last_seen", "Last seen", value=lambda g: getattr(g, "seen_at", g.last_seen_at)),
        Column("status", "Status", value=lambda g: "Removed" if g.removed_at else "Present", default=False),
    ],
    ordering="display_name",
)


def _run_link(run: ExtractionRun) -> str:
    return reverse("extraction_run_detail", args=[run.integration_id, run.pk])


def _duration(run: ExtractionRun) -> str:
    if run.started_at and run.finished_at:
        return f"{(run.finished_at - run.started_at).total_seconds():.1f} s"
    return ""


RUNS_TABLE = Table(
    name="runs",
    columns=[
        Column("queued_at", "Queued", sort="queued_at", html=link(_run_link, lambda r: when(r.queued_at))),
        Column("trigger", "Trigger", value=lambda r: r.get_trigger_display()),
        Column("status", "Status", sort="status", value=lambda r: r.get_status_display()),
        Column("users_seen", "Users", sort="users_seen"),
        Column("groups_seen", "Groups", sort="groups_seen"),
        Column("created", "Created", default=False),
        Column("updated", "Updated", default=False),
        Column("removed", "Removed", default=False),
        Column("requests", "Requests", default=False),
        Column("duration", "Duration", value=_duration),
        Column("error", "Error"),
    ],
    ordering="-queued_at",
    total="exact",
)


def _why_html(why: Any) -> Any:
    if why is None:
        return ""
    if why.url:
        return format_html('<a href="{}">{}</a>', why.url, why.text)
    return why.text


def _why_text(why: Any) -> str:
    return why.text if why is not None else ""


def _integration_link(user: TargetUser) -> str:
    return reverse("integration_detail", args=[user.integration_id])


def _account_cell(user: TargetUser) -> Any:
    """The account's name, then in one line why the person has it (integrations.explain)."""
    return format_html(
        '{} <span class="muted" data-testid="account-why">{}</span>',
        link(_user_link, lambda u: u.user_name)(user),
        _why_html(getattr(user, "why", None)),
    )


def _groups_html(user: TargetUser) -> Any:
    rows = getattr(user, "group_rows", [])
    if not rows:
        return "none"
    return format_html(
        '<ul class="plain">{}</ul>',
        format_html_join(
            "",
            '<li data-testid="membership-why">{} <span class="muted">({})</span></li>',
            ((name, _why_html(why)) for name, why in rows),
        ),
    )


def _groups_text(user: TargetUser) -> str:
    """Each group with why the person has it: ``Staff (birthright: team Sales); Admins (…)``."""
    return "; ".join(f"{name} ({_why_text(why)})" for name, why in getattr(user, "group_rows", []))


def person_accounts_table(in_flight: Callable[[TargetUser], Any], in_flight_text: Callable[[TargetUser], str]) -> Table:
    """A person's accounts in every live integration: ``in_flight`` renders a row's actions under
    way (what provisioning adds to the row), ``in_flight_text`` says them in words for exports.

    Sorts: application (by its name), user name, status and last seen. A person has a few
    accounts, so these sort the person's rows without an index of their own.
    """
    return Table(
        name="person-accounts",
        columns=[
            Column(
                "application",
                "Application",
                sort="application_sort",
                sort_expression=F("integration__name"),
                value=lambda u: u.integration.name,
                html=link(
                    lambda u: reverse("integration_detail", args=[u.integration_id]), lambda u: u.integration.name
                ),
            ),
            Column("user_name", "Account", sort="user_name", html=_account_cell),
            STATUS_COLUMN,
            Column("groups", "Groups", value=_groups_text, html=_groups_html),
            Column("last_seen", "Last seen", sort="seen_at", value=lambda u: getattr(u, "seen_at", u.last_seen_at)),
            Column("in_flight", "Actions in flight", value=in_flight_text, html=in_flight),
        ],
        ordering="application",
        total="exact",
        export_columns=[
            ExportColumn("application", lambda u: u.integration.name),
            ExportColumn("user_name", lambda u: u.user_name),
            ExportColumn("why", lambda u: _why_text(getattr(u, "why", None))),
            ExportColumn("status", _status),
            ExportColumn("groups", _groups_text),
            ExportColumn("last_seen", lambda u: getattr(u, "seen_at", u.last_seen_at)),
            ExportColumn("actions_in_flight", in_flight_text),
        ],
    )
