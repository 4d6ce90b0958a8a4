"""The measured processes: one extraction, or a baseline; each prints one JSON line.

``python -m bench.extraction.child extract RUN_ID`` runs ``extraction_run_execute`` on a
queued run (the function the Celery task calls), with Django configured from the
environment. ``python -m bench.extraction.child baseline URL PAGE_SIZE`` fetches and
parses the pages an extraction reads from that application, and nothing else;
``... store URL PAGE_SIZE`` also writes them by a plain psycopg ``COPY`` into scratch
tables made like the target tables (``DATABASE_URL``), and nothing else.

Each reports its wall time and its own peak resident memory (``ru_maxrss``).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Iterator
from typing import Any

from bench.extraction.server import TOKEN


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def extract(run_id: int) -> dict[str, Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    import django

    django.setup()
    from integrations.extraction import extraction_run_execute
    from integrations.scim_client import ScimClient, warm_up

    warm_up()  # as a Celery worker process does when it starts (worker_process_init)

    reading = 0.0
    get_json = ScimClient.get_json

    def timed_get_json(self: ScimClient, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The client's own method, timed: how much of the run is HTTP and JSON decoding."""
        nonlocal reading
        began = time.perf_counter()
        try:
            return get_json(self, path, params)
        finally:
            reading += time.perf_counter() - began

    setattr(ScimClient, "get_json", timed_get_json)  # noqa: B010 - mypy refuses assigning to a method
    rss_before = current_rss_mb()
    started = time.perf_counter()
    run = extraction_run_execute(run_id=run_id)
    wall = time.perf_counter() - started
    if run is None:
        raise SystemExit(f"run {run_id} was not queued")
    return {
        "wall": wall,
        "reading": reading,
        "status": run.status,
        "error": run.error,
        "users_seen": run.users_seen,
        "groups_seen": run.groups_seen,
        "created": run.created,
        "updated": run.updated,
        "removed": run.removed,
        "pages": run.pages,
        "requests": run.requests,
        "rss_after_setup_mb": rss_before,
        "peak_rss_mb": peak_rss_mb(),
    }


def list_pages(url: str, page_size: int) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The requests an extraction makes (``Schemas``, then every page of each list), parsed:
    each page's resources with its list (``Users`` or ``Groups``)."""
    import httpx

    headers = {"Accept": "application/scim+json", "Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(headers=headers, timeout=30) as http:
        http.get(f"{url}/Schemas").json()
        for endpoint in ("Users", "Groups"):
            start = 1
            while True:
                body = http.get(f"{url}/{endpoint}", params={"startIndex": start, "count": page_size}).json()
                resources = body.get("Resources") or []
                yield endpoint, resources
                if not resources:
                    break
                start += len(resources)
                if len(resources) < page_size and body.get("totalResults") == start - 1:
                    break


def baseline(url: str, page_size: int) -> dict[str, Any]:
    """The same pages as an extraction, fetched and parsed, and nothing else."""
    requests, pages, resources_read = 1, 0, 0  # Schemas
    started = time.perf_counter()
    for _, resources in list_pages(url, page_size):
        requests += 1
        pages += bool(resources)
        resources_read += len(resources)
    return {
        "wall": time.perf_counter() - started,
        "pages": pages,
        "requests": requests,
        "resources": resources_read,
        "peak_rss_mb": peak_rss_mb(),
    }


# Scratch tables for ``store``: the columns of the target tables, their primary and unique keys, nothing else.
SCRATCH = {
    "bench_store_user": ("integrations_targetuser", "(integration_id, remote_id)"),
    "bench_store_group": ("integrations_targetgroup", "(integration_id, remote_id)"),
    "bench_store_membership": ("integrations_targetmembership", "(group_id, member_remote_id)"),
}
USER_COLUMNS = (
    "id, integration_id, remote_id, user_name, display_name, email, external_id, active, resource, content_hash, "
    "first_seen_at, last_seen_at"
)
GROUP_COLUMNS = (
    "id, integration_id, remote_id, display_name, external_id, resource, content_hash, member_count, first_seen_at, "
    "last_seen_at"
)
MEMBER_COLUMNS = "id, integration_id, group_id, member_remote_id, user_id"


def store(url: str, page_size: int) -> dict[str, Any]:
    """The same pages as an extraction, fetched, parsed and written by a plain psycopg ``COPY``.

    Into scratch tables made like the target tables (same columns, same primary and unique
    keys, no other index): each page's users, or its groups (without ``members``) and their
    memberships, in one ``COPY`` per table, a transaction per list. Keys are numbered here,
    members linked to the users stored by a dict; nothing is compared, hashed or checked.
    """
    from datetime import UTC, datetime

    import psycopg
    from psycopg.types.json import Json

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        for table, (like, unique) in SCRATCH.items():
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute(f"CREATE TABLE {table} (LIKE {like} INCLUDING DEFAULTS, PRIMARY KEY (id), UNIQUE {unique})")
        conn.autocommit = False
        now = datetime.now(UTC)
        accounts: dict[str, int] = {}
        group_id = member_id = 0
        requests, pages, resources_read = 1, 0, 0  # Schemas
        listed = "Users"
        started = time.perf_counter()
        with conn.cursor() as cursor:
            for endpoint, resources in list_pages(url, page_size):
                requests += 1
                if endpoint != listed:
                    conn.commit()
                    listed = endpoint
                if not resources:
                    continue
                pages += 1
                resources_read += len(resources)
                if endpoint == "Users":
                    with cursor.copy(f"COPY bench_store_user ({USER_COLUMNS}) FROM STDIN") as copy:
                        for user in resources:
                            key = accounts[user["id"]] = len(accounts) + 1
                            emails = user.get("emails") or [{}]
                            copy.write_row(
                                (
                                    key,
                                    1,
                                    user["id"],
                                    user.get("userName", ""),
                                    user.get("displayName", ""),
                                    emails[0].get("value", ""),
                                    user.get("externalId", ""),
                                    user.get("active", True),
                                    Json(user),
                                    "",
                                    now,
                                    now,
                                )
                            )
                    continue
                members: list[tuple[int, int, int, str, int | None]] = []
                with cursor.copy(f"COPY bench_store_group ({GROUP_COLUMNS}) FROM STDIN") as copy:
                    for group in resources:
                        group_id += 1
                        values = [member["value"] for member in group.get("members") or []]
                        for value in values:
                            member_id += 1
                            members.append((member_id, 1, group_id, value, accounts.get(value)))
                        resource = {key: value for key, value in group.items() if key != "members"}
                        copy.write_row(
                            (
                                group_id,
                                1,
                                group["id"],
                                group.get("displayName", ""),
                                group.get("externalId", ""),
                                Json(resource),
                                "",
                                len(values),
                                now,
                                now,
                            )
                        )
                with cursor.copy(f"COPY bench_store_membership ({MEMBER_COLUMNS}) FROM STDIN") as copy:
                    for row in members:
                        copy.write_row(row)
            conn.commit()
        wall = time.perf_counter() - started
        conn.autocommit = True
        for table in SCRATCH:
            conn.execute(f"DROP TABLE {table}")
    return {
        "wall": wall,
        "pages": pages,
        "requests": requests,
        "resources": resources_read,
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    command, *args = sys.argv[1:]
    if command == "extract":
        result = extract(int(args[0]))
    elif command == "baseline":
        result = baseline(args[0], int(args[1]))
    elif command == "store":
        result = store(args[0], int(args[1]))
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
