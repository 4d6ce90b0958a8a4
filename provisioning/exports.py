"""Actions exported as CSV or JSON, with the same filters as the list, streamed row by row."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from provisioning.models import Action

COLUMNS = [
    "id",
    "created_at",
    "action_type",
    "state",
    "integration",
    "subject",
    "requested_by",
    "decided_by",
    "attempts",
    "started_at",
    "finished_at",
    "last_error",
]


class _Echo:
    def write(self, value: str) -> str:
        return value


def _row(action: Action) -> dict[str, Any]:
    return {
        "id": action.pk,
        "created_at": action.created_at.isoformat(),
        "action_type": action.action_type,
        "state": action.state,
        "integration": action.integration.name,
        "subject": action.subject,
        "requested_by": action.requested_by.username if action.requested_by else "",
        "decided_by": action.decided_by.username if action.decided_by else "",
        "attempts": action.attempts,
        "started_at": action.started_at.isoformat() if action.started_at else "",
        "finished_at": action.finished_at.isoformat() if action.finished_at else "",
        "last_error": action.last_error,
    }


def _csv(actions: QuerySet[Action]) -> Iterator[str]:
    writer = csv.DictWriter(_Echo(), fieldnames=COLUMNS)
    yield writer.writeheader() or ",".join(COLUMNS) + "\r\n"
    for action in actions.iterator(chunk_size=1000):
        yield writer.writerow(_row(action))


def _json(actions: QuerySet[Action]) -> Iterator[str]:
    yield "["
    for index, action in enumerate(actions.iterator(chunk_size=1000)):
        yield ("," if index else "") + "\n" + json.dumps(_row(action))
    yield "\n]\n"


def actions_export(actions: QuerySet[Action], kind: str) -> StreamingHttpResponse:
    """A download of ``actions`` (already filtered): ``kind`` is ``csv`` or ``json``."""
    actions = actions.select_related("integration", "requested_by", "decided_by").order_by("-created_at", "-id")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    if kind == "json":
        response = StreamingHttpResponse(_json(actions), content_type="application/json")
    else:
        kind = "csv"
        response = StreamingHttpResponse(_csv(actions), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="actions-{stamp}.{kind}"'
    return response
