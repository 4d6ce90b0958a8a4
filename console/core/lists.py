"""One way to render a filtered, keyset-paginated list page.

A full request renders the page; an htmx request renders only its ``#table`` partial,
so search, filters and paging swap the table region and nothing else. Every control is
also a plain link or GET form, so the page works without JavaScript.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import render
from django_htmx.middleware import HtmxDetails

from console.core.pagination import CursorError, keyset_paginate, requested_page_size


def render_list(
    request: Any,
    *,
    template: str,
    queryset: QuerySet[Any],
    filterset_class: type[django_filters.FilterSet],
    ordering: list[str],
    page_size: int = 25,
    context: dict[str, Any] | None = None,
) -> HttpResponse:
    filterset = filterset_class(request.GET or None, queryset=queryset, request=request)
    cursor_error = ""
    items: list[Any] = []
    page = None
    if not filterset.is_bound or filterset.is_valid():
        try:
            page = keyset_paginate(
                filterset.qs,
                ordering=ordering,
                cursor=request.GET.get("cursor"),
                page_size=requested_page_size(request.GET.get("page_size"), page_size),
            )
            items = page.items
        except CursorError as exc:
            cursor_error = str(exc)
    base_params = {k: v for k, v in request.GET.items() if k != "cursor"}
    data = {
        "filter": filterset,
        "items": items,
        "page": page,
        "cursor_error": cursor_error,
        "next_query": page.query_string(base_params, page.next_cursor) if page else None,
        "previous_query": page.query_string(base_params, page.previous_cursor) if page else None,
        **(context or {}),
    }
    htmx: HtmxDetails | None = getattr(request, "htmx", None)
    if htmx and htmx.target == "table-region":
        return render(request, f"{template}#table", data)
    return render(request, template, data)
