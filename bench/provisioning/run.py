"""Provisioning benchmark: ``python -m bench.provisioning`` (or ``make bench-provisioning``).

1. Throughput: N SYNC_IDENTITIES creates carried out by real Celery worker processes
   against a local SCIM server (``bench.provisioning.server``, its own process), as a share
   of a bare sequential httpx POST loop against the same server in the same run.
2. Under the application's limit: a server that takes 180 POST /Users a minute and answers
   429 with Retry-After beyond it; the integration's own rate limit is set to just under it
   (as an admin would); achieved rate, share of 429 answers, accounts lost or duplicated.
3. Latency: time from an approval to the action's first SCIM request, p50 and p95.

Runs on PostgreSQL (``BENCH_POSTGRES_URL``, default ``postgres://postgres@127.0.0.1:5432``;
the database ``bench_provisioning`` is created and dropped) with a Redis broker
(``BENCH_REDIS_URL``, default ``redis://127.0.0.1:6379``, databases 11 and 12 are flushed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.extraction.report import Report, fmt_int
from bench.services import free_port, postgres, redis

ROOT = Path(__file__).resolve().parents[2]
DATABASE = "bench_provisioning"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
TOKEN = "bench-provisioning-token"  # noqa: S105 - the local bench server's, not a secret


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=10_000, help="SYNC creates for the throughput figure")
    parser.add_argument("--limited", type=int, default=300, help="accounts created against the 180/min server")
    parser.add_argument("--approvals", type=int, default=40, help="actions approved for the latency figure")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=4, help="each worker's concurrency")
    return parser.parse_args()


def recreate_database() -> None:
    with psycopg.connect(f"{postgres()}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")


def drop_database() -> None:
    with psycopg.connect(f"{postgres()}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def configure(data_dir: Path) -> dict[str, str]:
    """Settings for this process and the workers: one database, broker, cache and data folder."""
    import redis as redis_client

    for number in (11, 12):
        redis_client.Redis.from_url(f"{redis()}/{number}").flushdb()
    env = {
        "DATABASE_URL": f"{postgres()}/{DATABASE}",
        "CELERY_BROKER_URL": f"{redis()}/12",
        "CACHE_URL": f"{redis()}/11",
        "CONSOLE_DATA_DIR": str(data_dir),  # the same generated encryption key for all processes
        "DEBUG": "false",
        "DJANGO_SETTINGS_MODULE": "console.settings",
        "PYTHONPATH": str(ROOT),
    }
    os.environ.update(env)
    import logging

    import django

    django.setup()
    from django.core.management import call_command

    logging.getLogger().setLevel(logging.WARNING)
    call_command("migrate", verbosity=0, interactive=False)
    call_command("createcachetable", verbosity=0)
    return dict(os.environ)


@contextmanager
def server(logs: Path, posts_per_minute: int = 0) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "bench.provisioning.server", "--port", str(port)]
    if posts_per_minute:
        command += ["--posts-per-minute", str(posts_per_minute)]
    with (logs / f"server-{port}.log").open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    httpx.get(f"{url}/_stats", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            process.wait()


@contextmanager
def workers(env: dict[str, str], logs: Path, count: int, concurrency: int) -> Iterator[None]:
    processes = []
    for index in range(count):
        log_path = logs / f"worker-{index}.log"
        log = log_path.open("wb")
        processes.append(
            (
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "console",
                        "worker",
                        "--loglevel",
                        "WARNING",
                        "--concurrency",
                        str(concurrency),
                        "--hostname",
                        f"bench{index}@%h",
                        "--without-gossip",
                        "--without-mingle",
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                ),
                log,
            )
        )
    time.sleep(8)  # start-up: every worker connected before work is queued
    try:
        yield
    finally:
        for process, _ in processes:
            process.terminate()
        for process, log in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()


def wait_until(done: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(0.25)
    return False


def people(prefix: str, count: int) -> list[Any]:
    from console.accounts.models import Person

    Person.objects.bulk_create(
        [
            Person(username=f"{prefix}{i}", given_name="Bench", family_name=f"P{i}", email=f"{prefix}{i}@example.com")
            for i in range(count)
        ],
        batch_size=2000,
    )
    return list(Person.objects.filter(username__startswith=prefix).order_by("pk"))


def integration(name: str, url: str, **fields: Any) -> Any:
    from integrations.models import Integration

    return Integration.objects.create(name=name, base_url=url, bearer_token=TOKEN, provisioning_enabled=True, **fields)


def request_syncs(actor: Any, app: Any, targets: list[Any]) -> float:
    """Request one sync each, in one transaction, as a bulk request does: the workers get them
    at its commit, in messages of ``ACTION_BATCH_SIZE``."""
    from django.db import transaction

    from provisioning.services import action_request, actions_sent_together

    with transaction.atomic(), actions_sent_together():
        for person in targets:
            action_request(actor=actor, integration=app, action_type="SYNC_IDENTITIES", person=person)
    return time.time()


def finished(app: Any) -> int:
    from provisioning.models import Action

    return Action.objects.filter(integration=app, state__in=["succeeded", "failed"]).count()


def bare_post_loop(url: str, count: int) -> float:
    """Seconds for ``count`` sequential creates by a bare httpx client; the server is emptied after."""
    started = time.perf_counter()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        for i in range(count):
            http.post("/Users", json={"schemas": [USER_SCHEMA], "userName": f"bare{i}"})
    elapsed = time.perf_counter() - started
    httpx.post(f"{url}/_reset")
    return elapsed


def throughput(report: Report, args: argparse.Namespace, env: dict[str, str], logs: Path, actor: Any) -> float:
    """The workers' create rate (accounts a second), printed against the bare loop's; also the
    baseline of ``bench.lifecycle``'s joiners."""
    from provisioning.models import Action

    report.section(f"{fmt_int(args.creates)} SYNC_IDENTITIES creates through the workers")
    with server(logs) as url:
        bare_before = bare_post_loop(url, args.creates)
        report.line(f"bare sequential httpx POST loop, before: {fmt_int(args.creates)} POSTs in {bare_before:.2f} s")

        app = integration("Throughput", url, rate_limit_per_second=100_000, rate_limit_burst=1000, max_concurrency=64)
        targets = people("tp", args.creates)
        with workers(env, logs, args.workers, args.concurrency):
            began = time.perf_counter()
            committed = request_syncs(actor, app, targets)
            report.line(f"requested {fmt_int(args.creates)} actions in {time.perf_counter() - began:.1f} s")
            complete = wait_until(lambda: finished(app) == args.creates, timeout=3600)
            last = Action.objects.filter(integration=app).order_by("-finished_at").values_list("finished_at", flat=True)
            elapsed = (last[0].timestamp() - committed) if last and last[0] else float("inf")
        stats = httpx.get(f"{url}/_stats").json()
        httpx.post(f"{url}/_reset")
        bare_after = bare_post_loop(url, args.creates)
        succeeded = Action.objects.filter(integration=app, state="succeeded").count()
        report.line(
            f"workers ({args.workers} x concurrency {args.concurrency}): {fmt_int(succeeded)} succeeded in "
            f"{elapsed:.1f} s from the commit to the last finish; server: {fmt_int(stats['accounts'])} accounts, "
            f"{stats['duplicates']} duplicated{'' if complete else '; NOT ALL FINISHED'}"
        )
        report.line(f"bare sequential httpx POST loop, after: {fmt_int(args.creates)} POSTs in {bare_after:.2f} s")
        # The machine's speed drifts within a run: the workers are set against the mean of
        # the loops just before and after them.
        bare = (bare_before + bare_after) / 2
        share = bare / elapsed if elapsed else 0.0
        report.figure(
            "workers' create rate / bare POST loop's",
            f"{args.creates / elapsed:.0f}/s / {args.creates / bare:.0f}/s = {share:.0%}",
            "≥ 60%",
            share >= 0.6 and succeeded == args.creates,
        )
        return args.creates / elapsed if elapsed else 0.0


def under_limit(report: Report, args: argparse.Namespace, env: dict[str, str], logs: Path, actor: Any) -> None:
    from provisioning.models import Action, ScimCall

    report.section(f"{args.limited} creates against a server that takes 180 POST /Users a minute")
    with server(logs, posts_per_minute=180) as url:
        # The application's limit as an admin would enter it, just under 180 a minute (3 requests
        # a second: at exactly that, a request that reaches the server a little early against
        # one sent a minute before is refused). The integration's limit counts every request,
        # the syncs' combined look-ups (one for a batch's syncs) too.
        app = integration("Limited", url, rate_limit_per_second=2.95, rate_limit_burst=1, max_concurrency=8)
        targets = people("lim", args.limited)
        with workers(env, logs, args.workers, args.concurrency):
            request_syncs(actor, app, targets)
            complete = wait_until(lambda: finished(app) == args.limited, timeout=1800)
        stats = httpx.get(f"{url}/_stats").json()
    accepted = sorted(stats["accepted_posts"])
    span = accepted[-1] - accepted[0] if len(accepted) > 1 else 0.0
    rate = (len(accepted) - 1) / span * 60 if span else 0.0
    posts = ScimCall.objects.filter(action__integration=app, method="POST").count()
    refused = ScimCall.objects.filter(action__integration=app, method="POST", status=429).count()
    succeeded = Action.objects.filter(integration=app, state="succeeded").count()
    report.line(
        f"{fmt_int(succeeded)} of {args.limited} succeeded{'' if complete else ' (NOT ALL FINISHED)'}; "
        f"{posts} POSTs, {refused} answered 429; server: {stats['accounts']} accounts, {stats['duplicates']} duplicated"
    )
    report.figure(
        "achieved create rate / the limit", f"{rate:.1f}/min / 180/min = {rate / 180:.0%}", "≥ 90%", rate >= 162
    )
    report.figure(
        "POSTs answered 429", f"{refused} of {posts} = {refused / max(posts, 1):.1%}", "≤ 1%", refused <= 0.01 * posts
    )
    lost = args.limited - stats["accounts"]
    report.figure(
        "accounts lost or duplicated",
        f"{lost} lost, {stats['duplicates']} duplicated",
        "none",
        lost == 0 and stats["duplicates"] == 0,
    )


def approval_latency(report: Report, args: argparse.Namespace, env: dict[str, str], logs: Path, actor: Any) -> None:
    from console.accounts.models import Person, Role
    from provisioning.models import Action, ApprovalPolicy, ScimCall
    from provisioning.services import action_approve

    report.section(f"Time from approval to the first SCIM request ({args.approvals} actions)")
    approver = Person.objects.create(username="bench-approver")
    approver.roles.add(*Role.objects.filter(name="admin"))
    with server(logs) as url:
        app = integration("Approvals", url, rate_limit_per_second=100_000, rate_limit_burst=1000)
        ApprovalPolicy.objects.create(integration=app, action_type="SYNC_IDENTITIES", requires_approval=True)
        request_syncs(actor, app, people("ap", args.approvals))
        approved_at: dict[int, float] = {}
        with workers(env, logs, args.workers, args.concurrency):
            for action in Action.objects.filter(integration=app).order_by("pk"):
                action_approve(actor=approver, action=action)
                approved_at[action.pk] = time.time()
                time.sleep(0.2)  # one at a time, as people approve
            wait_until(lambda: finished(app) == args.approvals, timeout=600)
    latencies = []
    for action_id, approved in approved_at.items():
        first = ScimCall.objects.filter(action_id=action_id).order_by("at").values_list("at", flat=True).first()
        if first is not None:
            latencies.append(first.timestamp() - approved)
    if len(latencies) < 2:
        report.line("too few actions reached the server to measure")
        return
    cuts = statistics.quantiles(latencies, n=20)
    report.line(
        f"{len(latencies)} actions: p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {cuts[18] * 1000:.0f} ms"
    )
    report.figure(
        "approval → first SCIM request",
        f"p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {cuts[18] * 1000:.0f} ms",
        "printed (no target set)",
        True,
    )


def main() -> int:
    args = parse_args()
    report = Report()
    started = time.perf_counter()
    recreate_database()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-provisioning-") as folder:
            logs = Path(folder)
            env = configure(logs)
            from console.accounts.models import Person, Role

            actor = Person.objects.create(username="bench-operator")
            actor.roles.add(*Role.objects.filter(name="operator"))
            machine = f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
            print(f"bench.provisioning: {machine}, {time.strftime('%Y-%m-%d %H:%M')}")
            throughput(report, args, env, logs, actor)
            under_limit(report, args, env, logs, actor)
            approval_latency(report, args, env, logs, actor)
    finally:
        from django.db import connections

        connections.close_all()
        drop_database()
    report.summary()
    print(f"  total time {time.perf_counter() - started:.0f} s")
    return 0
