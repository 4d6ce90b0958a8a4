"""Drift benchmark: ``python -m bench.drift`` (or ``make bench-drift``).

The extraction benchmark's SCIM server (``bench.extraction.server``, its own process) serves
100k users and 10k groups (one of 50k members, the rest 15-25), and 10k users with 1k groups.
Before the first extraction of each, the console is given the people those accounts belong
to (correlated by the extraction's own rules) and a lifecycle policy that is on for every
active person, with birthright mappings (a team per mapped group), laid out so that about 1%
of the accounts drift, in every category: orphans, people without an account, owners who
left, inactive accounts of people in scope, attributes that differ, missing and unexplained
memberships. Accounts the application holds inactive belong to people who left (no drift).

Each extraction is ``integrations.extraction.extraction_run_execute`` in a fresh child
process (``bench.extraction.child``); each drift computation is
``reconciliation.drift.drift_compute`` for that run, in a fresh child process too
(``bench.drift.child``), so its peak RSS is the worker's. The drift computation is set
against that extraction's own time, in the same run; it is computed three times after each
extraction (the best counts: the machine is shared, and only a slower run can be caused by
others). Time per account at 10k and 100k shows how it scales. The stored counts must be
exactly what was laid out.

SQLite by default (a file per application in a temporary folder); ``--postgres`` uses the
database ``--database`` (default ``bench_drift``) on ``BENCH_POSTGRES_URL``, created and
dropped, its schema emptied for each application (the datasets share their user names).
Every figure is printed with its goal and whether it was met; the exit status is 0 either way.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bench.extraction.dataset import Dataset
from bench.extraction.report import Report, fmt_int
from bench.extraction.run import Children, scim_server
from bench.extraction.server import TOKEN
from bench.services import postgres

ROOT = Path(__file__).resolve().parents[2]
DATABASE = "bench_drift"
PAGE_SIZE = 100
# Per 1,000 accounts: how many drift in each way (1.1% in all).
PER_THOUSAND = {
    "orphan": 2,
    "missing": 2,
    "should_be_inactive": 2,
    "should_be_active": 1,
    "attribute": 2,
    "missing_membership": 1,
    "unexplained_membership": 1,
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.drift", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000, help="accounts of the main application (default 100000)")
    parser.add_argument("--scales", default="10000", help="smaller account counts, for time per account")
    parser.add_argument("--repeats", type=int, default=3, help="drift computations after each extraction (best counts)")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--database", default=DATABASE, help=f"with --postgres: the database (default {DATABASE})")
    parser.add_argument("--keep-database", action="store_true", help="leave the database for inspection")
    return parser.parse_args()


# --- the database ---------------------------------------------------------------------------


def postgres_version(name: str) -> str:
    with psycopg.connect(f"{postgres()}/postgres", autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {version[0] if version else '?'} (database {name}, emptied for each application)"


def recreate_postgres(name: str) -> None:
    with psycopg.connect(f"{postgres()}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")


def empty_postgres(name: str) -> None:
    """A fresh schema: each application starts from an empty database (their user names are the same)."""
    with psycopg.connect(f"{postgres()}/{name}", autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


def drop_postgres(name: str) -> None:
    with psycopg.connect(f"{postgres()}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def database_url(args: argparse.Namespace, folder: Path, size: int) -> str:
    if args.postgres:
        return f"{postgres()}/{args.database}"
    return f"sqlite:///{folder / f'{DATABASE}_{size}.sqlite3'}"


def configure_django(data_dir: Path, url: str) -> dict[str, str]:
    """Settings for this process and the children: the database's engine (``url``), DEBUG off,
    a broker in memory (the extraction's commit queues a drift task nobody runs: the benchmark
    runs it itself)."""
    env = {
        "DATABASE_URL": url,
        "CONSOLE_DATA_DIR": str(data_dir),
        "CELERY_BROKER_URL": "memory://",
        "DEBUG": "false",
        "DJANGO_SETTINGS_MODULE": "console.settings",
        "PYTHONPATH": str(ROOT),
    }
    os.environ.update(env)
    import django

    django.setup()
    import logging

    logging.getLogger().setLevel(logging.WARNING)
    return dict(os.environ)


def use_database(url: str) -> None:
    """Each application gets a database of its own (the datasets share their user names): this
    process switches to it (the same engine as at set-up), and it is migrated."""
    import dj_database_url
    from django.core.management import call_command
    from django.db import connections

    connections["default"].close()
    connections["default"].settings_dict.update(dj_database_url.parse(url))
    os.environ["DATABASE_URL"] = url
    call_command("migrate", verbosity=0, interactive=False)
    call_command("createcachetable", verbosity=0)


# --- the people and the policy ----------------------------------------------------------------


@dataclass
class Layout:
    """What was laid out for one application, and so the counts drift must find."""

    expected: dict[str, int] = field(default_factory=dict)
    people: int = 0
    mappings: int = 0
    map_groups: Callable[[], None] = lambda: None


def lay_out(dataset: Dataset, integration: Any) -> Layout:
    """People for the application's accounts, a policy and mappings: about 1% drift, every category."""
    from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX

    from console.accounts.models import Person, Team, TeamMembership
    from lifecycle.models import BirthrightMapping, LifecyclePolicy, PolicyMode

    size = dataset.users
    users = [json.loads(raw) for raw in dataset.user_json]
    groups = [json.loads(raw) for raw in dataset.group_json]
    index_of = {user["id"]: index for index, user in enumerate(users)}
    per = {category: max(1, size * n // 1000) for category, n in PER_THOUSAND.items()}

    # Mapped groups: small groups whose members are all active accounts, one team each.
    mapped: list[tuple[int, list[int]]] = []
    for number, group in enumerate(groups[1:], start=1):
        members = [index_of[m["value"]] for m in group.get("members") or []]
        if members and all(users[i]["active"] for i in members):
            mapped.append((number, members))
        if len(mapped) == per["missing_membership"]:
            break
    in_mapped = {i for _, members in mapped for i in members}
    free = [i for i in range(size) if i not in in_mapped and users[i]["active"]]
    inactive = [i for i in range(size) if i not in in_mapped and not users[i]["active"]]
    picks: dict[str, list[int]] = {}
    cursor = 0
    for category in ("orphan", "should_be_inactive", "attribute", "missing_membership"):
        picks[category] = free[cursor : cursor + per[category]]
        cursor += per[category]
    picks["should_be_active"] = inactive[: per["should_be_active"]]
    orphans = set(picks["orphan"])
    left = set(picks["should_be_inactive"]) | {i for i in inactive if i not in set(picks["should_be_active"])}
    drifted = set(picks["attribute"])

    people = []
    for index, user in enumerate(users):
        if index in orphans:
            continue
        name = user["name"]
        people.append(
            Person(
                username=user["userName"],
                external_id=user["externalId"],
                given_name=name["givenName"],
                family_name=name["familyName"],
                formatted_name=name["formatted"],
                display_name=user["displayName"],
                email=user["emails"][0]["value"],
                title="Drifted title" if index in drifted else "",
                is_active=index not in left,
                password=UNUSABLE_PASSWORD_PREFIX,
            )
        )
    for number in range(per["missing"]):  # joiners: in scope, no account
        people.append(
            Person(
                username=f"joiner{number:07d}",
                email=f"joiner{number:07d}@example.org",
                password=UNUSABLE_PASSWORD_PREFIX,
            )
        )
    Person.objects.bulk_create(people, batch_size=2000)
    pk_of = dict(Person.objects.values_list("username", "pk"))

    LifecyclePolicy.objects.create(integration=integration, mode=PolicyMode.ON, all_active_people=True)
    memberships = []
    for (number, members), extra in zip(mapped, picks["missing_membership"], strict=True):
        team = Team.objects.create(name=f"{integration.name} team {number}")
        # Every member but the first is in the team (the first's membership is unexplained);
        # one account outside the group is in the team too (its membership is missing).
        for index in [*members[1:], extra]:
            memberships.append(TeamMembership(team=team, person_id=pk_of[users[index]["userName"]]))
    TeamMembership.objects.bulk_create(memberships, batch_size=2000)
    teams = {number: f"{integration.name} team {number}" for number, _ in mapped}
    group_ids = {number: groups[number]["id"] for number, _ in mapped}

    def map_groups() -> None:
        """The mappings, once the extraction has read the groups they name."""
        from integrations.models import TargetGroup

        read = dict(
            TargetGroup.objects.filter(integration=integration, remote_id__in=list(group_ids.values())).values_list(
                "remote_id", "pk"
            )
        )
        for number, team_name in teams.items():
            mapping = BirthrightMapping.objects.create(integration=integration, team=Team.objects.get(name=team_name))
            mapping.groups.set([read[group_ids[number]]])

    expected = {
        "orphan": len(picks["orphan"]),
        "missing": per["missing"],
        "should_be_inactive": len(picks["should_be_inactive"]),
        "should_be_active": len(picks["should_be_active"]),
        "attribute": len(picks["attribute"]),
        "missing_membership": len(mapped),
        "unexplained_membership": len(mapped),
    }
    return Layout(expected=expected, people=len(people), mappings=len(mapped), map_groups=map_groups)


# --- the measurement --------------------------------------------------------------------------


def measure(report: Report, args: argparse.Namespace, folder: Path, env: dict[str, str]) -> None:
    from integrations.models import ExtractionRun, Integration

    scales = sorted({int(s) for s in args.scales.split(",") if s} - {args.users})
    sizes = [args.users, *scales]
    logs = folder / "logs"
    logs.mkdir()
    with scim_server(sizes, env, logs) as (root, datasets):
        per_account: dict[int, float] = {}
        for size in sizes:
            served = datasets[str(size)]
            report.section(
                f"Drift of {fmt_int(served['users'])} accounts and {fmt_int(served['groups'])} groups "
                f"({fmt_int(served['memberships'])} memberships)"
            )
            began = time.perf_counter()
            url = database_url(args, folder, size)
            if args.postgres:
                from django.db import connections

                connections.close_all()
                empty_postgres(args.database)
            use_database(url)
            children = Children({**env, "DATABASE_URL": url}, logs, module="bench.drift.child")
            dataset = Dataset(size, f"{root}/s/{size}").build()
            integration = Integration.objects.create(
                name=f"bench {size}",
                base_url=f"{root}/s/{size}",
                bearer_token=TOKEN,
                page_size=PAGE_SIZE,
                rate_limit_per_second=100_000,
                rate_limit_burst=1_000,
            )
            layout = lay_out(dataset, integration)
            del dataset
            if args.postgres:
                # The people's tables have statistics, as in a database that grew; the accounts'
                # have none yet when the drift is computed right after their first extraction.
                from django.db import connection

                with connection.cursor() as cursor:
                    cursor.execute("ANALYZE")
            report.line(
                f"laid out in {time.perf_counter() - began:.1f} s: {fmt_int(layout.people)} people, a policy on for "
                f"every active person, {layout.mappings} birthright mappings (a team per group, made once the "
                f"extraction has read the groups); expected drift {fmt_int(sum(layout.expected.values()))} items "
                f"({sum(layout.expected.values()) / size:.1%} of the accounts)"
            )
            # The application's first extraction: every account read, stored and correlated with the people.
            run = ExtractionRun.objects.create(integration=integration, trigger=ExtractionRun.Trigger.MANUAL)
            extraction = children.run("extract", str(run.pk), module="bench.extraction.child")
            if extraction["status"] != "succeeded":
                raise RuntimeError(f"the extraction failed: {extraction['error']}")
            report.line(
                f"extraction: {extraction['wall']:.2f} s (created {fmt_int(extraction['created'])}, "
                f"{fmt_int(extraction['requests'])} requests)"
            )
            layout.map_groups()
            walls, peaks = [], []
            result: dict[str, Any] = {}
            for number in range(1, args.repeats + 1):
                result = children.run("drift", str(run.pk), module="bench.drift.child")
                if result["status"] != "succeeded":
                    raise RuntimeError(f"the drift computation failed: {result['error']}")
                walls.append(result["wall"])
                peaks.append(result["peak_rss_mb"])
                report.line(
                    f"drift computation #{number}: {result['wall']:.2f} s, peak RSS {result['peak_rss_mb']:.0f} MB "
                    f"({result['rss_after_setup_mb']:.0f} MB after Django set-up)"
                )
            best = min(walls)
            per_account[size] = best / size
            counts = {k: v for k, v in result["counts"].items() if v}
            exact = result["counts"] == {**dict.fromkeys(result["counts"], 0), **layout.expected}
            report.figure(
                f"drift found ({fmt_int(size)} accounts)",
                ", ".join(f"{k} {fmt_int(v)}" for k, v in counts.items())
                + (f"; left out {result['left_out']}" if result["left_out"] else ""),
                "exactly what was laid out: " + ", ".join(f"{k} {fmt_int(v)}" for k, v in layout.expected.items()),
                exact,
            )
            ratio = best / extraction["wall"]
            report.figure(
                f"drift computation / its extraction ({fmt_int(size)} accounts)",
                f"{best:.2f} s (best of {len(walls)}) / {extraction['wall']:.2f} s = {ratio:.2f}x",
                "≤ 0.30x",
                ratio <= 0.3,
            )
            report.figure(
                f"peak RSS of the drift computation ({fmt_int(size)} accounts)",
                f"{max(peaks):.0f} MB (the whole worker process, Django included)",
                "≤ 400 MB",
                max(peaks) <= 400,
            )
        if len(per_account) > 1:
            spread = max(per_account.values()) / min(per_account.values())
            report.figure(
                "drift time per account (best of each)",
                ", ".join(f"{fmt_int(size)}: {per_account[size] * 1e6:.1f} µs" for size in sorted(per_account))
                + f"; slowest / fastest = {spread:.2f}",
                "linear within 20% (≤ 1.20)",
                spread <= 1.2,
            )


def main() -> int:
    args = parse_args()
    report = Report()
    began = time.perf_counter()
    if args.postgres:
        recreate_postgres(args.database)
    database = (
        postgres_version(args.database) if args.postgres else "SQLite (a file per application, in a temporary folder)"
    )
    print(
        f"bench.drift: Python {platform.python_version()}, {os.cpu_count()} CPUs, {database}, "
        f"{time.strftime('%Y-%m-%d %H:%M')}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-drift-", delete=not args.keep_database) as folder:
        try:
            env = configure_django(Path(folder), database_url(args, Path(folder), args.users))
            measure(report, args, Path(folder), env)
        finally:
            from django.db import connections

            connections.close_all()
            if args.postgres and not args.keep_database:
                drop_postgres(args.database)
            elif args.keep_database:
                print(f"  the databases are kept in {folder}", flush=True)
    report.summary()
    print(f"  total time {time.perf_counter() - began:.0f} s", flush=True)
    return 0
