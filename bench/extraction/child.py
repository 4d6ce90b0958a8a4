"""The measured processes: one extraction, or the bare httpx loop; each prints one JSON line.

``python -m bench.extraction.child extract RUN_ID`` runs ``extraction_run_execute`` on a
queued run (the function the Celery task calls), with Django configured from the
environment. ``python -m bench.extraction.child baseline URL PAGE_SIZE`` fetches and
parses the pages an extraction reads from that application, and nothing else.

Each reports its wall time and its own peak resident memory (``ru_maxrss``).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
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


def baseline(url: str, page_size: int) -> dict[str, Any]:
    """The same requests as an extraction (``Schemas``, then every page of each list), parsed."""
    import httpx

    headers = {"Accept": "application/scim+json", "Authorization": f"Bearer {TOKEN}"}
    pages = requests = resources_read = 0
    started = time.perf_counter()
    with httpx.Client(headers=headers, timeout=30) as http:
        http.get(f"{url}/Schemas").json()
        requests += 1
        for endpoint in ("Users", "Groups"):
            start = 1
            while True:
                body = http.get(f"{url}/{endpoint}", params={"startIndex": start, "count": page_size}).json()
                requests += 1
                resources = body.get("Resources") or []
                if not resources:
                    break
                pages += 1
                resources_read += len(resources)
                start += len(resources)
                if len(resources) < page_size and body.get("totalResults") == start - 1:
                    break
    return {
        "wall": time.perf_counter() - started,
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
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
