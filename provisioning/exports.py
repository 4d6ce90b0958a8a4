"""Actions exported as CSV or JSON, with the same filters as the list, streamed row by row."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from console.core.exports import ExportColumn, stream_export
from provisioning.models import Action


def _stamp(value: object) -> str:
    return value.isoformat() if value is not None else ""  # type: ignore[attr-defined]


# The export's fields, the same in the page's download and the API's (clients rely on them).
EXPORT_COLUMNS = [
    ExportColumn("id", lambda a: a.pk),
    ExportColumn("created_at", lambda a: a.created_at.isoformat()),
    ExportColumn("action_type", lambda a: a.action_type),
    ExportColumn("state", lambda a: a.state),
    ExportColumn("integration", lambda a: a.integration.name),
    ExportColumn("subject", lambda a: a.subject),
    ExportColumn("requested_by", lambda a: a.requested_by.username if a.requested_by else ""),
    ExportColumn("decided_by", lambda a: a.decided_by.username if a.decided_by else ""),
    ExportColumn("attempts", lambda a: a.attempts),
    ExportColumn("started_at", lambda a: _stamp(a.started_at)),
    ExportColumn("finished_at", lambda a: _stamp(a.finished_at)),
    ExportColumn("last_error", lambda a: a.last_error),
]
COLUMNS = [column.name for column in EXPORT_COLUMNS]


def actions_export(actions: QuerySet[Action], kind: str, ordering: list[str] | None = None) -> StreamingHttpResponse:
    """A download of ``actions`` (already filtered): ``kind`` is ``csv`` or ``json``."""
    actions = actions.select_related("integration", "requested_by", "decided_by").order_by(
        *(ordering or ["-created_at", "-id"])
    )
    return stream_export(actions, EXPORT_COLUMNS, name="actions", kind=kind)
