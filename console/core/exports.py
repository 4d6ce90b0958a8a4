"""Lists exported as CSV or JSON: what the filters select, in the list's order, streamed row by row."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone


@dataclass(frozen=True)
class ExportColumn:
    """One field of each exported row: its name and how to read it from a row."""

    name: str
    value: Callable[[Any], Any]


class _Echo:
    def write(self, value: str) -> str:
        return value


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    return str(value)


def _rows(rows: Iterable[Any], columns: list[ExportColumn]) -> Iterator[dict[str, Any]]:
    iterable = rows.iterator(chunk_size=1000) if isinstance(rows, QuerySet) else rows
    for row in iterable:
        yield {column.name: _plain(column.value(row)) for column in columns}


def _csv(rows: Iterable[Any], columns: list[ExportColumn]) -> Iterator[str]:
    names = [column.name for column in columns]
    writer = csv.DictWriter(_Echo(), fieldnames=names)
    yield writer.writeheader() or ",".join(names) + "\r\n"
    for row in _rows(rows, columns):
        yield writer.writerow({k: "" if v is None else v for k, v in row.items()})


def _json(rows: Iterable[Any], columns: list[ExportColumn]) -> Iterator[str]:
    yield "["
    for index, row in enumerate(_rows(rows, columns)):
        yield ("," if index else "") + "\n" + json.dumps(row, default=str)
    yield "\n]\n"


def stream_export(rows: Iterable[Any], columns: list[ExportColumn], *, name: str, kind: str) -> StreamingHttpResponse:
    """A download of ``rows`` (already filtered and ordered): ``kind`` is ``csv`` or ``json``."""
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    if kind == "json":
        response = StreamingHttpResponse(_json(rows, columns), content_type="application/json")
    else:
        kind = "csv"
        response = StreamingHttpResponse(_csv(rows, columns), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.{kind}"'
    return response
