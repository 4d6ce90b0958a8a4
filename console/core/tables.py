"""One table component for the console's lists: sort, page size, totals, columns, export.

A :class:`Table` says which columns a list has, which of them sort (and by which indexed
field), which are shown unless the viewer chose otherwise, and how its total is counted.
:func:`render_table` filters with the list's FilterSet (the one the API uses), pages by
keyset in the chosen order (the sort field, then the primary key the same way, so deep
pages stay one index range), and renders ``includes/table.html`` inside the page's
``#table`` partial; ``?as=csv`` or ``?as=json`` streams what the filters select instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlencode

import django_filters
from django.db import connections
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from console.core.display import when
from console.core.exports import ExportColumn, stream_export
from console.core.pagination import MAX_PAGE_SIZE, CursorError, keyset_paginate, requested_page_size

PAGE_SIZES = (25, 50, 100, 200)
# SQLite has no row estimate: past this many matching rows, the total says "more than".
COUNT_CAP_SQLITE = 10_000
# PostgreSQL counts exactly up to this many, then asks the planner for "about N".
COUNT_CAP_POSTGRES = 1_000
SESSION_KEY = "tables.columns.{}"


@dataclass(frozen=True)
class Column:
    """One column: ``sort`` is the (indexed) field it orders by, None where it does not sort.

    Where the sort key is not a field (a value inside the stored resource, a status worked
    out from two fields, a nullable key made total), ``sort_expression`` is the expression,
    annotated as ``sort`` on the rows when the column sorts; a functional index on the
    same expression keeps the pages one index range. ``sort_note`` says what the order is
    where it is not what the label suggests (a related row's id, not its name).
    """

    key: str
    label: str
    sort: str | None = None
    sort_expression: Any = None
    sort_note: str = ""
    value: Callable[[Any], Any] | None = None
    html: Callable[[Any], Any] | None = None
    default: bool = True
    export: bool = True
    title: str = ""  # shown on hover: an extension attribute's full URN beside its short name

    def plain(self, row: Any) -> Any:
        return self.value(row) if self.value is not None else getattr(row, self.key, "")

    def cell(self, row: Any) -> Any:
        if self.html is not None:
            return self.html(row)
        value = self.plain(row)
        if isinstance(value, datetime):  # in the viewer's zone, naming it
            return when(value)
        return "" if value is None else value


@dataclass(frozen=True)
class Table:
    """A list's columns and behaviour. ``ordering`` is the default sort, e.g. ``-created_at``."""

    name: str
    columns: Sequence[Column]
    ordering: str
    total: Literal["exact", "estimate"] = "estimate"
    # Filter field → suggestion URL (a <datalist> filled as the viewer types).
    suggest: Mapping[str, str] = field(default_factory=dict)
    # Columns of the export where they differ from the table's (kept stable for clients).
    export_columns: Sequence[ExportColumn] | None = None

    def with_columns(self, extra: Iterable[Column]) -> Table:
        return replace(self, columns=[*self.columns, *extra])

    @property
    def orderings(self) -> dict[str, str]:
        """Public sort name → field, for the UI and the API's ``?ordering=``."""
        return {c.key: c.sort for c in self.columns if c.sort}

    def keyset_ordering(self, requested: str | None) -> tuple[str, list[str]]:
        """The sort the request asks for (or the default) and its keyset ordering, pk last."""
        name = (requested or "").strip()
        key = name.lstrip("-")
        if key not in self.orderings:
            name = self.ordering
            key = name.lstrip("-")
        descending = name.startswith("-")
        sort_field = self.orderings[key]
        sign = "-" if descending else ""
        return name, [f"{sign}{sort_field}", f"{sign}id"]

    def sortable(self, queryset: QuerySet[Any], requested: str | None) -> QuerySet[Any]:
        """``queryset`` with the requested sort's key, where that key is an expression."""
        key = self.keyset_ordering(requested)[0].lstrip("-")
        column = next(c for c in self.columns if c.key == key)
        if column.sort and column.sort_expression is not None:
            return queryset.annotate(**{column.sort: column.sort_expression})
        return queryset

    def api_ordering(self, requested: str | None) -> list[str]:
        """The keyset ordering for an API ``?ordering=``; ValueError names what is allowed."""
        if requested and requested.strip().lstrip("-") not in self.orderings:
            allowed = ", ".join(sorted(self.orderings))
            raise ValueError(f"Sort by one of: {allowed} (- before it for descending).")
        return self.keyset_ordering(requested)[1]

    def export_spec(self) -> list[ExportColumn]:
        if self.export_columns is not None:
            return list(self.export_columns)
        return [ExportColumn(c.key, c.plain) for c in self.columns if c.export]


def link(url: Callable[[Any], str], text: Callable[[Any], Any]) -> Callable[[Any], SafeString]:
    """A cell that links to the row's page."""
    return lambda row: format_html('<a href="{}">{}</a>', url(row), text(row))


def badge(kind: Callable[[Any], str], text: Callable[[Any], Any]) -> Callable[[Any], SafeString]:
    return lambda row: format_html('<span class="badge {}">{}</span>', kind(row), text(row))


def total_of(queryset: QuerySet[Any], mode: str) -> tuple[int, str]:
    """The number of matching rows and how to say it, never an unbounded COUNT(*) for ``estimate``.

    ``exact`` counts (small tables). ``estimate`` counts only up to a cap; past it,
    PostgreSQL says "about N" from the planner's row estimate of the filtered query,
    other databases "more than N".
    """
    if mode == "exact":
        count = queryset.count()
        return count, f"{count:,}"
    vendor = connections[queryset.db].vendor
    cap = COUNT_CAP_POSTGRES if vendor == "postgresql" else COUNT_CAP_SQLITE
    capped = queryset.order_by().values("pk")[: cap + 1].count()  # the rows' keys alone, at most cap + 1
    if capped <= cap:
        return capped, f"{capped:,}"
    if vendor == "postgresql":
        estimate = max(_planner_rows(queryset), cap + 1)
        return estimate, f"about {_rounded(estimate):,}"
    return capped, f"more than {cap:,}"


def _planner_rows(queryset: QuerySet[Any]) -> int:
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def _rounded(number: int) -> int:
    """Two significant figures: an estimate should not look exact."""
    if number < 100:
        return number
    step = 10 ** (len(str(number)) - 2)
    return round(number / step) * step


def chosen_columns(request: HttpRequest, table: Table) -> list[Column]:
    """The columns the viewer chose for this table (kept in their session), else the defaults."""
    keys = {c.key for c in table.columns}
    session_key = SESSION_KEY.format(table.name)
    session = getattr(request, "session", None)
    if request.GET.get("columns_set"):
        chosen = [k for k in request.GET.getlist("columns") if k in keys]
        if session is not None:
            session[session_key] = chosen
    else:
        stored = session.get(session_key) if session is not None else None
        chosen = [k for k in stored if k in keys] if isinstance(stored, list) else []
        if not chosen:
            chosen = [c.key for c in table.columns if c.default]
    if not chosen:
        chosen = [table.columns[0].key]
    return [c for c in table.columns if c.key in chosen]


def _query(params: Mapping[str, Any], **changes: Any) -> str:
    merged: dict[str, Any] = {k: v for k, v in params.items() if v not in ("", None)}
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return "?" + urlencode(merged, doseq=True)


def _params(request: HttpRequest) -> dict[str, Any]:
    """The request's query, without what only applies once (cursor, export, the column form)."""
    drop = {"cursor", "as", "columns", "columns_set"}
    return {
        k: request.GET.getlist(k) if len(request.GET.getlist(k)) > 1 else v
        for k, v in request.GET.items()
        if k not in drop
    }


def filtered(
    request: HttpRequest, queryset: QuerySet[Any], filterset_class: type[django_filters.FilterSet]
) -> tuple[django_filters.FilterSet, QuerySet[Any] | None]:
    filterset = filterset_class(request.GET or None, queryset=queryset, request=request)
    if filterset.is_bound and not filterset.is_valid():
        return filterset, None
    return filterset, filterset.qs


def render_table(
    request: HttpRequest,
    *,
    table: Table,
    template: str,
    queryset: QuerySet[Any],
    filterset_class: type[django_filters.FilterSet],
    page_size: int = 25,
    context: dict[str, Any] | None = None,
    selection: Mapping[str, Any] | None = None,
    prepare: Callable[[list[Any]], None] | None = None,
) -> HttpResponseBase:
    """A list page (or its ``#table`` partial for htmx), or its export for ``?as=csv|json``.

    ``selection`` gives rows checkboxes for a bulk form: ``form`` (its id), ``name`` (the
    field), ``disabled`` (a row → bool); the header selects the page, and a box selects
    all N matching (the bulk form gets the filters to resolve them). ``prepare`` is as for
    :func:`table_data`.
    """
    data = table_data(
        request,
        table=table,
        queryset=queryset,
        filterset_class=filterset_class,
        page_size=page_size,
        selection=selection,
        prepare=prepare,
    )
    if isinstance(data, HttpResponseBase):
        return data
    data.update(context or {})
    htmx = getattr(request, "htmx", None)
    if htmx and htmx.target == "table-region":
        return render(request, f"{template}#table", data)
    return render(request, template, data)


def table_data(
    request: HttpRequest,
    *,
    table: Table,
    queryset: QuerySet[Any],
    filterset_class: type[django_filters.FilterSet],
    page_size: int = 25,
    selection: Mapping[str, Any] | None = None,
    prepare: Callable[[list[Any]], None] | None = None,
) -> dict[str, Any] | HttpResponseBase:
    """What ``includes/table.html`` needs for one page of the list, or the export for ``?as=csv|json``.

    For a table that is one part of a page (a panel another app adds): the page renders it
    in its ``#table`` partial. ``prepare`` reads what the cells need for a page of rows at
    once (related rows, explanations); with it, the export reads its rows into a list, so it
    is for short lists (a person's accounts, an integration's mappings).
    """
    filterset, matching = filtered(request, queryset, filterset_class)
    sort_name, ordering = table.keyset_ordering(request.GET.get("ordering"))
    if matching is not None:
        matching = table.sortable(matching, sort_name)
    export = request.GET.get("as")
    if export in ("csv", "json"):
        chosen = matching.order_by(*ordering) if matching is not None else queryset.none()
        if prepare is not None:
            rows = list(chosen)
            prepare(rows)
            return stream_export(rows, table.export_spec(), name=table.name, kind=export)
        return stream_export(chosen, table.export_spec(), name=table.name, kind=export)
    size = requested_page_size(request.GET.get("page_size"), page_size)
    cursor_error = ""
    page = None
    items: list[Any] = []
    total: tuple[int, str] | None = None
    if matching is not None:
        try:
            page = keyset_paginate(matching, ordering=ordering, cursor=request.GET.get("cursor"), page_size=size)
            items = page.items
            if prepare is not None:
                prepare(items)
        except CursorError as exc:
            cursor_error = str(exc)
        total = total_of(matching, table.total)
    params = _params(request)
    visible = chosen_columns(request, table)
    descending = sort_name.startswith("-")
    current = sort_name.lstrip("-")
    sort_note = next((c.sort_note for c in table.columns if c.key == current), "")
    headers = []
    for column in visible:
        header: dict[str, Any] = {
            "key": column.key,
            "label": column.label,
            "title": column.sort_note or column.title,
            "sortable": bool(column.sort),
        }
        if column.sort:
            active = column.key == current
            next_sort = f"-{column.key}" if active and not descending else column.key
            header.update(
                active=active,
                direction=("descending" if descending else "ascending") if active else "none",
                arrow=("↓" if descending else "↑") if active else "",
                query=_query(params, ordering=next_sort),
            )
        headers.append(header)
    selectable = selection is not None
    table_rows = [
        (item, [column.cell(item) for column in visible], bool(selection and selection["disabled"](item)))
        for item in items
    ]
    data = {
        "filter": filterset,
        "items": items,
        "page": page,
        "cursor_error": cursor_error,
        "next_query": page.query_string(params, page.next_cursor) if page else None,
        "previous_query": page.query_string(params, page.previous_cursor) if page else None,
        "table": {
            "name": table.name,
            "headers": headers,
            "rows": table_rows,
            "width": len(visible) + (1 if selectable else 0),
            "choices": [(c.key, c.label, c in visible, c.title) for c in table.columns],
            "ordering": sort_name,
            "sort_note": sort_note,
            "page_size": size,
            "page_sizes": [s for s in PAGE_SIZES if s <= MAX_PAGE_SIZE],
            "total": total[1] if total else "",
            "total_count": total[0] if total else 0,
            "keep": [(k, v) for k, v in params.items() if k not in ("page_size",) and not isinstance(v, list)],
            "keep_for_columns": [(k, v) for k, v in params.items() if not isinstance(v, list)],
            "export_csv": _query(params, ordering=sort_name, **{"as": "csv"}),
            "export_json": _query(params, ordering=sort_name, **{"as": "json"}),
            "filters_query": urlencode([(k, v) for k, v in params.items() if not isinstance(v, list)]),
            "selection": selection,
        },
    }
    _attach_suggestions(filterset, table)
    return data


def _attach_suggestions(filterset: django_filters.FilterSet, table: Table) -> None:
    """Name filters get a <datalist> that the suggestion endpoint fills as the viewer types."""
    for name, url in table.suggest.items():
        form_field = filterset.form.fields.get(name)
        if form_field is None:
            continue
        separator = "&" if "?" in url else "?"
        form_field.widget.attrs.update(
            {
                "list": f"suggest-{name}",
                "autocomplete": "off",
                "hx-get": f"{url}{separator}field={name}",
                "hx-trigger": "input changed delay:200ms, focus once",
                "hx-target": f"#suggest-{name}",
                "hx-swap": "innerHTML",
                "hx-push-url": "false",
                "hx-sync": "this:replace",
                "data-suggest": f"suggest-{name}",
            }
        )


def export_response(
    request: HttpRequest,
    *,
    table: Table,
    queryset: QuerySet[Any],
    filterset_class: type[django_filters.FilterSet],
) -> HttpResponseBase:
    """Only the export of a list (for a dedicated export URL), filtered and sorted as the page."""
    _, matching = filtered(request, queryset, filterset_class)
    sort_name, ordering = table.keyset_ordering(request.GET.get("ordering"))
    rows = table.sortable(matching, sort_name).order_by(*ordering) if matching is not None else queryset.none()
    return stream_export(rows, table.export_spec(), name=table.name, kind=request.GET.get("as", "csv"))


SUGGESTIONS = 20


def suggestion_term(request: HttpRequest) -> str:
    """What the viewer typed: ``q``, or the filter field the input sends under its own name."""
    name = request.GET.get("field", "")
    return (request.GET.get("q") or (request.GET.get(name) if name else "") or "").strip()


def suggestions_response(names: Iterable[str]) -> HttpResponseBase:
    """<option>s for a <datalist>: at most SUGGESTIONS distinct names."""
    seen: list[str] = []
    for name in names:
        if name and name not in seen:
            seen.append(name)
        if len(seen) >= SUGGESTIONS:
            break
    return HttpResponse(format_html_join("", '<option value="{}"></option>', ((n,) for n in seen)))
