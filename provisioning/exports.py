"""Actions and revocations exported as CSV or JSON, with the same filters as the list, streamed row by row."""

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
    # Why an automated action exists (lifecycle automation: the event, policy and mappings, in words).
    ExportColumn("cause", lambda a: (a.cause or {}).get("text") or ""),
]
COLUMNS = [column.name for column in EXPORT_COLUMNS]


# A revocation's request and answer are its action's calls of ``attempt`` (``calls`` on the API,
# the action's page): referenced, not copied.
REVOCATION_EXPORT_COLUMNS = [
    ExportColumn("id", lambda r: r.pk),
    ExportColumn("action", lambda r: r.action_id),
    ExportColumn("attempt", lambda r: r.attempt),
    ExportColumn("integration", lambda r: r.integration.name),
    ExportColumn("account", lambda r: r.account),
    ExportColumn("person", lambda r: r.person.username if r.person else ""),
    ExportColumn("requested_at", lambda r: r.requested_at.isoformat()),
    ExportColumn("measured_from", lambda r: r.measured_from),
    ExportColumn("verified_at", lambda r: r.verified_at.isoformat()),
    ExportColumn("outcome", lambda r: r.outcome),
    ExportColumn("reason", lambda r: r.reason),
    ExportColumn("latency_seconds", lambda r: round(r.latency_seconds, 3)),
]


def actions_export(actions: QuerySet[Action], kind: str, ordering: list[str] | None = None) -> StreamingHttpResponse:
    """A download of ``actions`` (already filtered): ``kind`` is ``csv`` or ``json``."""
    actions = actions.select_related("integration", "requested_by", "decided_by").order_by(
        *(ordering or ["-created_at", "-id"])
    )
    return stream_export(actions, EXPORT_COLUMNS, name="actions", kind=kind)
