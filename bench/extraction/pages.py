"""The users tab of an integration holding 1M target users, on PostgreSQL.

Rows are bulk-loaded with one ``INSERT … SELECT generate_series``; the page is the real
view (middleware, access policy, filters, keyset pagination, template) requested through
Django's test client as a signed-in viewer. The deep page's cursor is built with the
pagination module's own encoder from the row at that position, and the first page's
``next`` link is followed once to check that it is the same kind of cursor.
"""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bench.extraction.report import Report, fmt_int, fmt_ms
from console.accounts.models import Person, Role
from console.core.pagination import _encode
from integrations.models import Integration, TargetUser

TABLE = TargetUser._meta.db_table
assert TABLE == "integrations_targetuser", TABLE
COUNT_RE = re.compile(r"\bCOUNT\s*\(", re.IGNORECASE)
LIMIT_RE = re.compile(r"\bLIMIT\s+\d+", re.IGNORECASE)


@dataclass
class PageTimings:
    label: str
    url: str
    durations: list[float] = field(default_factory=list)
    queries: list[dict[str, Any]] = field(default_factory=list)

    def p(self, q: float) -> float:
        ordered = sorted(self.durations)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.durations)

    @property
    def p95(self) -> float:
        return self.p(0.95)


def load_users(integration: Integration, rows: int) -> float:
    """``rows`` target users in one statement; user names sort in another order than ids."""
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO integrations_targetuser
                (integration_id, remote_id, user_name, display_name, email, external_id, active,
                 resource, content_hash, first_seen_at, last_seen_at, removed_at)
            SELECT %s, md5(g::text), u.name, 'User ' || g, u.name || '@example.com', 'E' || g, g %% 20 <> 0,
                   jsonb_build_object('id', md5(g::text), 'userName', u.name, 'displayName', 'User ' || g,
                                      'active', g %% 20 <> 0,
                                      'emails', jsonb_build_array(jsonb_build_object(
                                          'value', u.name || '@example.com', 'primary', true))),
                   md5('h' || g::text), now(), now(), NULL
            FROM generate_series(1, %s) AS g,
                 LATERAL (SELECT substr(md5('n' || g::text), 1, 10) || '.' || g AS name) AS u
            """,
            [integration.pk, rows],
        )
        cursor.execute("ANALYZE integrations_targetuser")
    return time.perf_counter() - started


def viewer_client() -> Client:
    person, _ = Person.objects.get_or_create(username="bench-viewer", defaults={"is_active": True})
    person.set_unusable_password()
    person.save()
    person.roles.set(Role.objects.filter(name="viewer"))
    client = Client()
    client.force_login(person)
    return client


def next_link(html: str) -> str | None:
    match = re.search(r'rel="next" href="([^"]+)"', html)
    return match.group(1).replace("&amp;", "&") if match else None


def unfiltered_counts(queries: list[dict[str, Any]]) -> list[str]:
    """Every unbounded COUNT over the target-user table: with 1M rows none may run on a page load.

    A count of a LIMITed subquery (the table's "up to 1,000, else about N" total) reads at
    most its limit's rows, whatever the table holds, and is not one.
    """
    return [
        q["sql"] for q in queries if COUNT_RE.search(q["sql"]) and TABLE in q["sql"] and not LIMIT_RE.search(q["sql"])
    ]


def measure(report: Report, rows: int, repeats: int) -> None:
    report.section(f"Users tab on PostgreSQL with {fmt_int(rows)} target users (keyset pages of 25)")
    integration = Integration.objects.create(name="bench users tab", base_url="https://app.example.com/scim/v2")
    seconds = load_users(integration, rows)
    report.line(f"loaded {fmt_int(rows)} rows with INSERT … SELECT generate_series in {seconds:.1f} s (then ANALYZE)")
    client = viewer_client()
    base = f"/integrations/{integration.pk}/users/"
    ordered = TargetUser.objects.filter(integration=integration).order_by("user_name", "id")

    first = client.get(base)
    assert first.status_code == 200, first.status_code
    followed = next_link(first.content.decode())
    assert followed is not None, "the first page has no next link"
    second = client.get(base + followed)
    expected_26th = ordered.values_list("user_name", flat=True)[25]
    follows = second.status_code == 200 and expected_26th in second.content.decode()

    position = int(rows * 0.9)
    boundary = ordered.values_list("user_name", "id")[position - 1]
    deep_url = f"{base}?cursor={_encode(list(boundary), 'next')}"
    deep = client.get(deep_url)
    expected_first_deep = ordered.values_list("user_name", flat=True)[position]
    deep_ok = deep.status_code == 200 and expected_first_deep in deep.content.decode()
    report.line(
        f"page 2 through the first page's next link: {'rows 26-50 as expected' if follows else 'WRONG ROWS'}; "
        f"deep page after row {fmt_int(position)} (cursor built as the view builds it): "
        f"{'starts at row ' + fmt_int(position + 1) if deep_ok else 'WRONG ROWS'}"
    )

    pages = [PageTimings("first page", base), PageTimings(f"deep page (row {fmt_int(position + 1)})", deep_url)]
    for page in pages:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(page.url)
        assert response.status_code == 200
        page.queries = list(captured.captured_queries)
    for _ in range(5):  # warm caches and connections
        for page in pages:
            client.get(page.url)
    for _ in range(repeats):
        for page in pages:  # interleaved, so both see the same machine
            started = time.perf_counter()
            response = client.get(page.url)
            page.durations.append(time.perf_counter() - started)
            assert response.status_code == 200

    first_page, deep_page = pages
    for page in pages:
        slowest = max(page.queries, key=lambda q: float(q["time"] or 0))
        report.line(
            f"{page.label}: p50 {fmt_ms(page.p50)}, p95 {fmt_ms(page.p95)} over {len(page.durations)} requests; "
            f"{len(page.queries)} queries, slowest {float(slowest['time']) * 1000:.1f} ms"
        )
    ratio = deep_page.p50 / first_page.p50
    report.figure(
        "deep page / first page (p50)",
        f"{fmt_ms(deep_page.p50)} / {fmt_ms(first_page.p50)} = {ratio:.2f}x",
        "≤ 1.5x",
        ratio <= 1.5 and deep_ok and follows,
    )
    worst_p95 = max(first_page.p95, deep_page.p95)
    report.figure(
        "p95 of a page load (first and deep)",
        f"first {fmt_ms(first_page.p95)}, deep {fmt_ms(deep_page.p95)}",
        "≤ 100 ms",
        worst_p95 <= 0.100,
    )
    slowest_sql = max(deep_page.queries, key=lambda q: float(q["time"] or 0))["sql"]
    report.line(f"the deep page's slowest query: {slowest_sql[:400]}")
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + slowest_sql)
        for (row,) in cursor.fetchall()[:8]:
            report.line(f"    {row}")
    counts = {page.label: unfiltered_counts(page.queries) for page in pages}
    found = [f"{label}: {sql[:160]}" for label, sqls in counts.items() for sql in sqls]
    report.figure(
        f"unbounded COUNT over {TABLE} on a page load",
        "none in "
        + " / ".join(f"{len(p.queries)} queries of the {p.label.split(' (')[0]}" for p in pages)
        + " (captured with CaptureQueriesContext)"
        if not found
        else f"{len(found)} found",
        "none",
        not found,
    )
    for line in found:
        report.line(f"    {line}")
