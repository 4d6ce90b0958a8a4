"""Keyset pagination, one implementation for the UI lists and the REST API.

A page is the rows after (or before) the last row seen, in a total order that ends on
the primary key, so page 1,000 costs what page 1 costs and no COUNT(*) is needed.
The cursor is opaque: base64 of the boundary row's ordering values and a direction.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import FieldDoesNotExist, FieldError
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response

MAX_PAGE_SIZE = 200


class CursorError(ValueError):
    """The cursor was not one this server handed out."""


@dataclass
class KeysetPage[M: models.Model]:
    items: list[M]
    next_cursor: str | None
    previous_cursor: str | None
    page_size: int

    def query_string(self, base: dict[str, str], cursor: str | None) -> str | None:
        if cursor is None:
            return None
        params = {k: v for k, v in base.items() if k != "cursor" and v not in ("", None)}
        params["cursor"] = cursor
        return "?" + urlencode(params, doseq=True)


def _encode(values: list[Any], direction: str) -> str:
    raw = json.dumps({"v": [v.isoformat() if isinstance(v, datetime) else v for v in values], "d": direction})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str, fields: list[str], queryset: QuerySet[Any]) -> tuple[list[Any], str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        values, direction = list(data["v"]), data["d"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise CursorError("The cursor is not valid; start again from the first page.") from exc
    if direction not in ("next", "prev") or len(values) != len(fields):
        raise CursorError("The cursor is not valid; start again from the first page.")
    for index, name in enumerate(fields):
        field: Any
        try:
            field = queryset.model._meta.get_field(name.lstrip("-"))
        except FieldDoesNotExist:
            # An annotation (a count, a sort key): its values are plain JSON numbers or strings,
            # read as the annotation's type where it has one (a date and time, say).
            if not isinstance(values[index], int | str | None):
                raise CursorError("The cursor is not valid; start again from the first page.") from None
            annotation = queryset.query.annotations.get(name.lstrip("-"))
            try:
                field = annotation.output_field if annotation is not None else None
            except FieldError:
                field = None
            if field is None:
                continue
        if isinstance(field, models.DateTimeField) and isinstance(values[index], str):
            try:
                values[index] = parse_datetime(values[index])
            except ValueError as exc:
                raise CursorError("The cursor is not valid; start again from the first page.") from exc
        elif values[index] is not None and isinstance(field, models.Field):
            # A cursor made for another sort must not reach the database as the wrong type.
            try:
                values[index] = field.to_python(values[index])
            except (DjangoValidationError, TypeError, ValueError) as exc:
                raise CursorError("The cursor is not valid; start again from the first page.") from exc
    if any(value is None for value in values):
        # Sort keys are never NULL (a nullable one is sorted as an expression that is not): a
        # NULL here is a cursor of another sort, a date that was not one, say.
        raise CursorError("The cursor is not valid; start again from the first page.")
    return values, direction


def _boundary(fields: list[str], values: list[Any], forward: bool) -> Q:
    """Rows strictly after ``values`` in the order of ``fields`` (or before, if not forward)."""
    condition = Q()
    for index in range(len(fields) - 1, -1, -1):
        name = fields[index].lstrip("-")
        descending = fields[index].startswith("-")
        lookup = "lt" if descending == forward else "gt"
        step = Q(**{f"{name}__{lookup}": values[index]})
        if index < len(fields) - 1:
            step |= Q(**{name: values[index]}) & condition
        condition = step
    if len(fields) > 1 and values[0] is not None:
        # The same rows, said so that an index on the ordering is used as a range: without
        # this leading bound a deep page scans (and throws away) every row before it.
        first = fields[0].lstrip("-")
        bound = "lte" if fields[0].startswith("-") == forward else "gte"
        condition = Q(**{f"{first}__{bound}": values[0]}) & condition
    return condition


def keyset_paginate[M: models.Model](
    queryset: QuerySet[M], *, ordering: list[str], cursor: str | None, page_size: int
) -> KeysetPage[M]:
    """One page of ``queryset``. ``ordering`` must end with a unique field (``-id`` or ``id``)."""
    page_size = max(1, min(page_size, MAX_PAGE_SIZE))
    fields = list(ordering)
    values: list[Any] | None = None
    direction = "next"
    if cursor:
        values, direction = _decode(cursor, fields, queryset)
    forward = direction == "next"
    qs = queryset
    if values is not None:
        qs = qs.filter(_boundary(fields, values, forward))
    order = fields if forward else [f[1:] if f.startswith("-") else f"-{f}" for f in fields]
    rows = list(qs.order_by(*order)[: page_size + 1])
    has_more = len(rows) > page_size
    rows = rows[:page_size]
    if not forward:
        rows.reverse()

    def key(row: M) -> list[Any]:
        return [getattr(row, f.lstrip("-")) for f in fields]

    next_cursor = previous_cursor = None
    if rows:
        if forward:
            next_cursor = _encode(key(rows[-1]), "next") if has_more else None
            previous_cursor = _encode(key(rows[0]), "prev") if values is not None else None
        else:
            previous_cursor = _encode(key(rows[0]), "prev") if has_more else None
            next_cursor = _encode(key(rows[-1]), "next")
    return KeysetPage(items=rows, next_cursor=next_cursor, previous_cursor=previous_cursor, page_size=page_size)


def requested_page_size(raw: str | None, default: int) -> int:
    try:
        return max(1, min(int(raw), MAX_PAGE_SIZE)) if raw else default
    except ValueError:
        return default


class KeysetApiPagination(BasePagination):
    """The API's one pagination: ``?cursor=…&page_size=…``, links in ``next``/``previous``.

    A view sets ``keyset_ordering`` (ending on a unique field); the default is ``-id``.
    A view with a ``keyset_table`` (console.core.tables) also takes ``?ordering=`` (a column
    of the table, ``-`` before it for descending), as the list page does.
    """

    default_page_size = 50
    page: KeysetPage[Any]
    request: Request

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any]:
        ordering = list(getattr(view, "keyset_ordering", ["-id"]))
        table = getattr(view, "keyset_table", None)
        if table is not None:
            try:
                ordering = table.api_ordering(request.query_params.get("ordering"))
            except ValueError as exc:
                raise ValidationError({"ordering": [str(exc)]}) from exc
            queryset = table.sortable(queryset, request.query_params.get("ordering"))
        size = requested_page_size(request.query_params.get("page_size"), self.default_page_size)
        try:
            self.page = keyset_paginate(
                queryset, ordering=ordering, cursor=request.query_params.get("cursor"), page_size=size
            )
        except CursorError as exc:
            raise ValidationError({"cursor": [str(exc)]}) from exc
        self.request = request
        return self.page.items

    def paginate_rows(self, rows: list[Any], request: Request, *, key: Callable[[Any], list[str]]) -> list[Any]:
        """One page of a computed, sorted list (``keyset_paginate_rows``), read as ``paginate_queryset``."""
        size = requested_page_size(request.query_params.get("page_size"), self.default_page_size)
        try:
            self.page = keyset_paginate_rows(rows, key=key, cursor=request.query_params.get("cursor"), page_size=size)
        except CursorError as exc:
            raise ValidationError({"cursor": [str(exc)]}) from exc
        self.request = request
        return self.page.items

    def page_fields(self) -> dict[str, Any]:
        """``next``, ``previous`` and ``page_size``: for an object answer whose ``results`` are paged
        (a plan and its items, a group and its members) beside the object's own fields."""
        return {
            "next": self._link(self.page.next_cursor),
            "previous": self._link(self.page.previous_cursor),
            "page_size": self.page.page_size,
        }

    def _link(self, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        params = self.request.query_params.copy()
        params["cursor"] = cursor
        return self.request.build_absolute_uri(self.request.path + "?" + params.urlencode())

    def get_paginated_response(self, data: Any) -> Response:
        return Response(OrderedDict([*self.page_fields().items(), ("results", data)]))

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["results"],
            "properties": {
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "page_size": {"type": "integer"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        table = getattr(view, "keyset_table", None)
        ordering = (
            [
                {
                    "name": "ordering",
                    "required": False,
                    "in": "query",
                    "description": "Sort by a column, `-` before it for descending.",
                    "schema": {"type": "string", "enum": [f"{s}{k}" for k in table.orderings for s in ("", "-")]},
                }
            ]
            if table is not None
            else []
        )
        return [
            *ordering,
            {
                "name": "cursor",
                "required": False,
                "in": "query",
                "description": "Opaque cursor from `next` or `previous`.",
                "schema": {"type": "string"},
            },
            {
                "name": "page_size",
                "required": False,
                "in": "query",
                "description": f"Rows per page (max {MAX_PAGE_SIZE}).",
                "schema": {"type": "integer"},
            },
        ]


def keyset_paginate_rows[T](
    rows: list[T], *, key: Callable[[T], list[str]], cursor: str | None, page_size: int
) -> KeysetPage[Any]:
    """One page of ``rows``, a list already sorted by ``key`` (unique per row, strings), with the
    same cursors as ``keyset_paginate``: for lists the console computes rather than queries (a
    group's members at a past moment). ``rows`` must be sorted by ``key`` ascending."""
    page_size = max(1, min(page_size, MAX_PAGE_SIZE))
    values: list[Any] | None = None
    direction = "next"
    if cursor:
        try:
            data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            values, direction = list(data["v"]), data["d"]
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise CursorError("The cursor is not valid; start again from the first page.") from exc
        if direction not in ("next", "prev") or not all(isinstance(v, str) for v in values):
            raise CursorError("The cursor is not valid; start again from the first page.")
    keys = [key(row) for row in rows]
    if values is None:
        start, end = 0, min(page_size, len(rows))
    elif direction == "next":
        start = bisect.bisect_right(keys, values)
        end = min(start + page_size, len(rows))
    else:
        end = bisect.bisect_left(keys, values)
        start = max(0, end - page_size)
    items = rows[start:end]
    next_cursor = _encode(keys[end - 1], "next") if items and end < len(rows) else None
    previous_cursor = _encode(keys[start], "prev") if items and start > 0 else None
    return KeysetPage(items=items, next_cursor=next_cursor, previous_cursor=previous_cursor, page_size=page_size)


class PageFieldsSerializer(serializers.Serializer[Any]):
    """The schema of ``KeysetApiPagination.page_fields``, for an object answer with paged ``results``."""

    next = serializers.URLField(allow_null=True, help_text="The next page of results; null on the last.")
    previous = serializers.URLField(allow_null=True, help_text="The page before; null on the first.")
    page_size = serializers.IntegerField()


# The page's parameters, for an object answer's schema (a list view's come from the pagination).
PAGE_PARAMETERS = [
    OpenApiParameter("cursor", str, description="Opaque cursor from `next` or `previous`."),
    OpenApiParameter("page_size", int, description=f"Rows per page (max {MAX_PAGE_SIZE})."),
]
