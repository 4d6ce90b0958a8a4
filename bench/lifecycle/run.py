"""Lifecycle benchmark: ``python -m bench.lifecycle`` (or ``make bench-lifecycle``).

1. Leavers. N people (``--leavers``, 50) each hold an account in K applications
   (``--integrations``, 10), each a local scim2-server process with other accounts besides
   (``--others``, 250 each, read by an extraction), with a lifecycle policy on in all K.
   An identity provider deactivates each leaver at the console's ``/scim/v2`` (PATCH
   ``active`` false with a provisioner's API key, through Django's test client in this
   process), one every ``--interval`` seconds. Measured per leaver: from the PATCH to the
   last of its K verified revocations (``provisioning.Revocation``, written after the
   deprovision read the account back inactive); p50 and p95, goal p95 <= 10 s. Nothing
   runs beat: the consumer starts on commit. Afterwards every application is read to check
   the accounts are inactive there, and the medians of the stages are printed.
2. Joiners. ``--joiners`` (1,000) people pushed in one burst (a loop of POST /Users) with
   policies on in 3 applications (``--joiner-integrations``; ``bench.provisioning.server``
   processes, as the baseline's): accounts created a second, from the first POST to the
   last account, as a share of ``bench.provisioning``'s worker rate measured in the same
   run with the same workers and the same number of accounts (goal >= 80 %).

By default everything runs on the project's default settings: the SQLite database and the
SQLAlchemy broker on SQLite, in a temporary data folder. ``--postgres`` runs on PostgreSQL
(``BENCH_POSTGRES_URL``; the database ``--database``, default ``bench_lifecycle``, is
created and dropped) with a Redis broker and cache (``BENCH_REDIS_URL``; the databases of
``--redis-databases``, 12 and 13 unless said, are flushed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.extraction.report import Report, fmt_int
from bench.provisioning.run import TOKEN, integration, server, throughput, wait_until, workers
from bench.services import free_port, postgres, redis

ROOT = Path(__file__).resolve().parents[2]
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SCIM = "application/scim+json"
# The same generous limits as the provisioning baseline's integration: the rate is the workers'.
FAST = {"rate_limit_per_second": 100_000, "rate_limit_burst": 1000, "max_concurrency": 64}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.lifecycle", description=__doc__.splitlines()[0])
    parser.add_argument("--leavers", type=int, default=50, help="people deactivated (default 50)")
    parser.add_argument("--integrations", type=int, default=10, help="applications each leaver is in (default 10)")
    parser.add_argument("--others", type=int, default=250, help="other accounts in each application (default 250)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between two deactivations")
    parser.add_argument("--joiners", type=int, default=1000, help="people pushed in the burst (default 1000)")
    parser.add_argument("--joiner-integrations", type=int, default=3, help="applications of the joiners (default 3)")
    parser.add_argument(
        "--live-push",
        action="store_true",
        help="push the joiners with the workers running (the rate then follows the push) instead of before they start",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=4, help="each worker's concurrency")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL and Redis instead of the defaults")
    parser.add_argument("--database", default="bench_lifecycle", help="the PostgreSQL database (dropped after)")
    parser.add_argument(
        "--redis-databases",
        default="12,13",
        help="the Redis databases of the cache and the broker, flushed first (default 12,13)",
    )
    parser.add_argument("--skip-leavers", action="store_true")
    parser.add_argument("--skip-joiners", action="store_true")
    parser.add_argument("--keep-folder", action="store_true", help="keep the data folder (logs, SQLite) and print it")
    return parser.parse_args()


# --- set-up ------------------------------------------------------------------------------------


def configure(args: argparse.Namespace, data_dir: Path) -> dict[str, str]:
    """Settings for this process and the workers: the defaults, or PostgreSQL and Redis."""
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL"):
        os.environ.pop(name, None)
    env = {
        "CONSOLE_DATA_DIR": str(data_dir),  # the database, the broker and the encryption key of every process
        "DEBUG": "false",
        "DJANGO_SETTINGS_MODULE": "console.settings",
        "PYTHONPATH": str(ROOT),
        # The identity provider's burst is not held back by the console's per-key limit on /scim/v2.
        "SCIM_RATE_LIMIT_PER_MINUTE": "0",
    }
    if args.postgres:
        import redis as redis_client

        cache_db, broker_db = (int(number) for number in args.redis_databases.split(","))
        for number in (cache_db, broker_db):
            redis_client.Redis.from_url(f"{redis()}/{number}").flushdb()
        with psycopg.connect(f"{postgres()}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {args.database}")
        env |= {
            "DATABASE_URL": f"{postgres()}/{args.database}",
            "CELERY_BROKER_URL": f"{redis()}/{broker_db}",
            "CACHE_URL": f"{redis()}/{cache_db}",
        }
    os.environ.update(env)
    import logging

    import django

    django.setup()
    from django.core.management import call_command

    logging.getLogger().setLevel(logging.WARNING)
    call_command("migrate", verbosity=0, interactive=False)
    call_command("createcachetable", verbosity=0)
    declare_queues()
    return dict(os.environ)


def declare_queues() -> None:
    """The broker's queues exist before the workers start: on the SQLAlchemy transport two
    workers starting together both insert them, and the loser stops (a unique violation)."""
    from django.conf import settings

    from console.celery import app

    with app.connection_for_write() as connection:
        for queue in settings.CELERY_TASK_QUEUES:
            queue(connection.default_channel).declare()


def drop_database(args: argparse.Namespace) -> None:
    if args.postgres:
        with psycopg.connect(f"{postgres()}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)")


@contextmanager
def scim2_servers(logs: Path, count: int) -> Iterator[list[str]]:
    """``count`` scim2-server processes (its own command line server, in memory, with a bearer token)."""
    command = str(Path(sys.executable).parent / "scim2-server")
    processes, urls = [], []
    try:
        for _ in range(count):
            port = free_port()
            with (logs / f"scim2-server-{port}.log").open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        [command, "--port", str(port), "--bearer-token", TOKEN],
                        cwd=ROOT,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:
            for _ in range(200):
                try:
                    httpx.get(f"{url}/ServiceProviderConfig", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait()


def seed(url: str, prefix: str, count: int) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": SCIM}) as http:
        for i in range(count):
            body = {"schemas": [USER_SCHEMA], "userName": f"{prefix}{i}@example.com", "active": True}
            http.post("/Users", json=body).raise_for_status()


def extract(app: Any) -> None:
    from integrations.extraction import extraction_run_execute
    from integrations.models import ExtractionRun

    run = ExtractionRun.objects.create(integration=app, trigger="manual")
    done = extraction_run_execute(run_id=run.pk)
    if done is None or done.status != "succeeded":
        raise RuntimeError(f"extraction of {app.name} failed: {done and done.error}")


def policies_on(apps: list[Any]) -> None:
    """A policy on for everyone active, starting after the newest identity event."""
    from console.accounts.models import IdentityEvent
    from lifecycle.models import LifecyclePolicy, PolicyMode

    newest = IdentityEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    for app in apps:
        LifecyclePolicy.objects.create(integration=app, mode=PolicyMode.ON, all_active_people=True, event_cursor=newest)


def policies_off(apps: list[Any]) -> None:
    from lifecycle.models import LifecyclePolicy, PolicyMode

    LifecyclePolicy.objects.filter(integration__in=apps).update(mode=PolicyMode.OFF)


class IdentityProvider:
    """Pushes people to the console's /scim/v2 as Okta does, with a provisioner's API key."""

    def __init__(self) -> None:
        from django.test import Client

        from console.accounts.models import Person, Role
        from console.accounts.services import api_key_create
        from console.core.models import ConsoleSettings

        settings = ConsoleSettings.load()
        settings.scim_provisioning_enabled = True
        settings.save()
        provisioner = Person.objects.create(username="bench-okta")
        provisioner.roles.add(*Role.objects.filter(name="scim_provisioner"))
        token = api_key_create(actor=provisioner, owner=provisioner, name="okta").token
        self.client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    def push(self, user_name: str) -> dict[str, Any]:
        body = {
            "schemas": [USER_SCHEMA],
            "userName": user_name,
            "name": {"givenName": "Bench", "familyName": user_name.split("@")[0]},
            "emails": [{"value": user_name, "type": "work", "primary": True}],
            "active": True,
        }
        response = self.client.post("/scim/v2/Users", data=body, content_type=SCIM)
        if response.status_code != 201:
            raise RuntimeError(f"push of {user_name}: {response.status_code} {response.content[:300]!r}")
        return dict(response.json())

    def deactivate(self, user: dict[str, Any]) -> None:
        body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": False}]}
        response = self.client.patch(f"/scim/v2/Users/{user['id']}", data=body, content_type=SCIM)
        if response.status_code != 200:
            raise RuntimeError(f"deactivation of {user['userName']}: {response.status_code}")


def quantiles(values: list[float]) -> tuple[float, float]:
    """p50 and p95 (nearest rank)."""
    ordered = sorted(values)
    p95 = ordered[max(0, -(-95 * len(ordered) // 100) - 1)]
    return statistics.median(ordered), p95


# --- 1. leavers --------------------------------------------------------------------------------


def leavers(report: Report, args: argparse.Namespace, env: dict[str, str], logs: Path, okta: IdentityProvider) -> None:
    from console.accounts.models import IdentityEvent, Person
    from integrations.models import Integration, TargetUser
    from provisioning.models import Action, ActionType, Revocation

    n, k = args.leavers, args.integrations
    report.section(f"{n} leavers, each in {k} applications (scim2-server), deactivated at /scim/v2")
    with scim2_servers(logs, k) as urls:
        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda url: seed(url, "other", args.others), urls))
        apps = [integration(f"Leavers app {i}", url) for i, url in enumerate(urls)]
        # 50 leavers in a minute are a mass change by the default limits (25 accounts, 10 %),
        # counted over the last 10 minutes, and would wait for an approver: the admin of this
        # test expects them and lifts the limits, so latency is measured, not an approval.
        Integration.objects.filter(pk__in=[app.pk for app in apps]).update(
            mass_change_max_accounts=100_000, mass_change_max_percent=100
        )
        for app in apps:
            extract(app)
        policies_on(apps)
        report.line(
            f"{k} applications with {fmt_int(args.others)} other accounts each, read, policies on "
            f"({time.perf_counter() - began:.0f} s)"
        )
        with workers(env, logs, args.workers, args.concurrency):
            began = time.perf_counter()
            pushed = [okta.push(f"leaver{i}@example.com") for i in range(n)]
            people = {p.username: p for p in Person.objects.filter(username__startswith="leaver")}
            ready = wait_until(
                lambda: TargetUser.objects.filter(owner__in=people.values(), active=True).count() >= n * k, 900
            )
            report.line(
                f"joined: {fmt_int(n * k)} accounts made by the policies in {time.perf_counter() - began:.0f} s"
                f"{'' if ready else ' (NOT ALL MADE)'}"
            )
            patched: dict[int, float] = {}
            for user in pushed:
                person = people[user["userName"]]
                patched[person.pk] = time.time()
                okta.deactivate(user)
                time.sleep(args.interval)
            done = wait_until(
                lambda: (
                    Revocation.objects.filter(person_id__in=patched, outcome=Revocation.Outcome.VERIFIED).count()
                    >= n * k
                ),
                timeout=120 + 2 * n,
            )
        latencies: list[float] = []
        stages: dict[str, list[float]] = {"event": [], "consumed": [], "claimed": [], "verified": []}
        missing = 0
        for pk, at in patched.items():
            verified = list(
                Revocation.objects.filter(person_id=pk, outcome=Revocation.Outcome.VERIFIED).values_list(
                    "verified_at", flat=True
                )
            )
            if len(verified) < k:
                missing += 1
                continue
            latencies.append(max(v.timestamp() for v in verified) - at)
            event = IdentityEvent.objects.filter(person_id=pk, kind=IdentityEvent.Kind.DEACTIVATED).first()
            actions = list(
                Action.objects.filter(
                    target_user__owner_id=pk, action_type=ActionType.DEPROVISION_IDENTITY
                ).values_list("created_at", "started_at")
            )
            if event is not None and actions:
                stages["event"].append(event.occurred_at.timestamp() - at)
                stages["consumed"].append(max(c.timestamp() for c, _ in actions) - event.occurred_at.timestamp())
                waits = [s.timestamp() - c.timestamp() for c, s in actions if s is not None]
                stages["claimed"].append(max(waits) if waits else 0.0)
                started = max(s.timestamp() for _, s in actions if s is not None)
                stages["verified"].append(max(v.timestamp() for v in verified) - started)
        # What the applications show now, read directly.
        still_active = 0
        for app, url in zip(apps, urls, strict=True):
            remote_ids = TargetUser.objects.filter(integration=app, owner_id__in=patched).values_list(
                "remote_id", flat=True
            )
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
                for remote_id in remote_ids:
                    if http.get(f"/Users/{remote_id}").json().get("active") is not False:
                        still_active += 1
        held = Action.objects.filter(integration__in=apps, state="pending_approval").count()
        policies_off(apps)
    if not latencies:
        report.figure("leaver: PATCH → verified in every application, p95", "none verified", "≤ 10 s", False)
        return
    p50, p95 = quantiles(latencies)
    report.line(
        f"{len(latencies)} of {n} leavers verified in all {k} applications{'' if done else ' (TIMED OUT)'}; "
        f"{missing} not; {still_active} accounts still active in the applications; {held} actions held"
    )
    report.line(
        "medians of the stages (the slowest application of each leaver): "
        + ", ".join(
            f"{name} {statistics.median(values):.2f} s"
            for name, values in (
                ("PATCH → identity event", stages["event"]),
                ("event → deprovisions asked", stages["consumed"]),
                ("asked → a worker starts", stages["claimed"]),
                ("start → revocation verified", stages["verified"]),
            )
            if values
        )
    )
    report.figure(
        "leaver: PATCH → verified in every application",
        f"p50 {p50:.2f} s, p95 {p95:.2f} s, max {max(latencies):.2f} s",
        "p95 ≤ 10 s",
        p95 <= 10 and missing == 0 and still_active == 0,
    )


# --- 2. joiners --------------------------------------------------------------------------------


def joiners(
    report: Report, args: argparse.Namespace, env: dict[str, str], logs: Path, okta: IdentityProvider, actor: Any
) -> None:
    from django.db.models import Max, Min

    from provisioning.models import Action, ActionType

    count = args.joiners * args.joiner_integrations
    # The baseline's own goal (against a bare POST loop) is bench.provisioning's, printed but not counted here.
    baseline = throughput(
        Report(),
        argparse.Namespace(creates=count, workers=args.workers, concurrency=args.concurrency),
        env,
        logs,
        actor,
    )
    report.section(
        f"{fmt_int(args.joiners)} joiners pushed in one burst, policies on in {args.joiner_integrations} applications"
    )
    with ExitStack() as stack:
        urls = [stack.enter_context(server(logs)) for _ in range(args.joiner_integrations)]
        apps = [integration(f"Joiners app {i}", url, **FAST) for i, url in enumerate(urls)]
        policies_on(apps)
        syncs = Action.objects.filter(integration__in=apps, action_type=ActionType.SYNC_IDENTITIES)
        if args.live_push:
            stack.enter_context(workers(env, logs, args.workers, args.concurrency))
        first_post = time.time()
        for i in range(args.joiners):
            okta.push(f"joiner{i}@example.com")
        pushed = time.time() - first_post
        report.line(
            f"pushed {fmt_int(args.joiners)} people to /scim/v2 in {pushed:.1f} s ({args.joiners / pushed:.0f}/s), "
            + ("the workers running" if args.live_push else "the workers stopped: the events wait for them")
        )
        if not args.live_push:
            stack.enter_context(workers(env, logs, args.workers, args.concurrency))
        complete = wait_until(lambda: syncs.filter(state__in=["succeeded", "failed"]).count() >= count, 1800)
        last: datetime | None = syncs.order_by("-finished_at").values_list("finished_at", flat=True).first()
        first: datetime | None = syncs.order_by("created_at").values_list("created_at", flat=True).first()
        spans = syncs.aggregate(made=Max("created_at"), started=Min("started_at"))
        batches = syncs.exclude(batch=None).values("batch").distinct().count()
        singles = syncs.filter(batch=None).count()
        succeeded = syncs.filter(state="succeeded").count()
        stats = [httpx.get(f"{url}/_stats").json() for url in urls]
        policies_off(apps)
    accounts = sum(s["accounts"] for s in stats)
    duplicates = sum(s["duplicates"] for s in stats)
    if last is None or first is None:
        report.figure("joiners' create rate / the provisioning workers' rate", "no account made", "≥ 80%", False)
        return
    elapsed = last.timestamp() - (first_post if args.live_push else first.timestamp())
    rate = accounts / elapsed
    report.line(
        f"{fmt_int(succeeded)} syncs succeeded; the applications hold {fmt_int(accounts)} accounts "
        f"({duplicates} duplicated){'' if complete else '; NOT ALL FINISHED'}; {last.timestamp() - first_post:.1f} s "
        f"from the first POST to the last account; {elapsed:.1f} s from "
        + ("the first POST" if args.live_push else "the consumer's first request")
        + f" to it; requested as {batches} batches and {singles} single actions"
    )
    made, started = spans["made"], spans["started"]
    if made is not None and started is not None:
        report.line(
            f"stages: the first sync asked for → the last ({len(apps)} passes of the consumer) "
            f"{made.timestamp() - first.timestamp():.1f} s; the first asked for → a worker's first start "
            f"{started.timestamp() - first.timestamp():.1f} s; that start → the last account "
            f"{last.timestamp() - started.timestamp():.1f} s"
        )
    share = rate / baseline if baseline else 0.0
    report.figure(
        "joiners' create rate / the provisioning workers' rate",
        f"{rate:.0f}/s / {baseline:.0f}/s = {share:.0%}",
        "≥ 80%",
        share >= 0.8 and accounts == count and duplicates == 0,
    )


def main() -> int:
    args = parse_args()
    report = Report()
    started = time.perf_counter()
    try:
        with ExitStack() as stack:
            if args.keep_folder:
                logs = Path(tempfile.mkdtemp(prefix="bench-lifecycle-"))
                print(f"data folder and logs: {logs}")
            else:
                logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-lifecycle-")))
            env = configure(args, logs)
            from console.accounts.models import Person, Role

            actor = Person.objects.create(username="bench-operator")
            actor.roles.add(*Role.objects.filter(name="operator"))
            okta = IdentityProvider()
            backend = "PostgreSQL, Redis broker" if args.postgres else "SQLite, SQLAlchemy broker on SQLite (defaults)"
            print(
                f"bench.lifecycle: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {backend}, "
                f"{args.workers} workers x concurrency {args.concurrency}, {time.strftime('%Y-%m-%d %H:%M')}"
            )
            if not args.skip_leavers:
                leavers(report, args, env, logs, okta)
            if not args.skip_joiners:
                joiners(report, args, env, logs, okta, actor)
            from django.db import connections

            connections.close_all()
    finally:
        drop_database(args)
    report.summary()
    print(f"  total time {time.perf_counter() - started:.0f} s")
    return 0
