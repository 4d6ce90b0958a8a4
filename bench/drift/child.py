"""The measured process: one drift computation; prints one JSON line.

``python -m bench.drift.child drift RUN_ID`` runs ``reconciliation.drift.drift_compute`` for
the extraction run's integration (what the Celery task calls after that run), with Django
configured from the environment, and reports its wall time, its peak resident memory and the
counts it stored. Extractions are measured by ``bench.extraction.child``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from bench.extraction.child import current_rss_mb


def peak_rss_mb() -> float:
    """This process's own high-water mark (``VmHWM``): ``ru_maxrss`` carries the parent's over the fork."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def drift(run_id: int) -> dict[str, Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    import django

    django.setup()
    from integrations.models import ExtractionRun
    from reconciliation.drift import drift_compute
    from reconciliation.models import DriftRun

    run = ExtractionRun.objects.select_related("integration").get(pk=run_id)
    import provisioning.services  # noqa: F401 - as in a worker that has run a task before: imported, connected

    rss_before = current_rss_mb()
    started = time.perf_counter()
    computed = drift_compute(run.integration, trigger=DriftRun.Trigger.EXTRACTION, extraction_run=run)
    wall = time.perf_counter() - started
    return {
        "wall": wall,
        "status": computed.status,
        "error": computed.error,
        "counts": computed.counts,
        "left_out": computed.left_out,
        "rss_after_setup_mb": rss_before,
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    command, *args = sys.argv[1:]
    if command != "drift":
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(drift(int(args[0]))), flush=True)


if __name__ == "__main__":
    main()
