"""SCIM server benchmark: ``python -m bench.scim_server`` (or ``make bench-scim-server``).

The console's ``/scim/v2`` against two peers, ``django-scim2`` and ``django-scim2-server``,
each set up in this run as its documentation says, on the same PostgreSQL server (a
database each), behind the same gunicorn settings, loaded with the same people and groups
through its own models, and asked the same requests by the same sequential client:

- POST /Users;
- GET /Users?filter=userName eq "…" among ``--people`` people (default 100,000);
- PATCH /Users/{id} replacing ``active``;
- PATCH /Groups/{id} adding one member to groups of 10, 1,000 and 50,000 members (each
  timed add is followed by an untimed remove, so the group keeps its size).

Each figure is requests per second as a ratio to the faster peer measured in the same
run (goal at least 1.5x), with the database queries each server makes per request (counted by
the same middleware in all three). The servers take turns, round by round, so a noisy
moment hurts all of them alike. Last, the console's page near the end of the people
(startIndex at the last 200 of 100,000) against its first page (goal at most 3x).

Needs a local PostgreSQL (``BENCH_POSTGRES_URL``, default
``postgres://postgres@127.0.0.1:5432``; databases ``bench_scim_*`` are created and
dropped) and Redis for the console's shared cache (``BENCH_REDIS_URL``, default
``redis://127.0.0.1:6379``; database 13 is flushed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.extraction.report import Report, fmt_int, fmt_ms
from bench.services import free_port, postgres, redis

ROOT = Path(__file__).resolve().parents[2]
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
PEER_TOKEN = "bench-peer-token"  # noqa: S105 - the local peers' stand-in credential, not a secret
GOAL_RATIO = 1.5
GOAL_DEEP_PAGE = 3.0


@dataclass
class System:
    name: str
    settings: str
    database: str
    is_console: bool = False
    url: str = ""
    seed: dict[str, Any] = field(default_factory=dict)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.seed['token']}", "Content-Type": "application/scim+json"}


SYSTEMS = [
    System("console", "bench.scim_server.console_settings", "bench_scim_console", is_console=True),
    System("django-scim2", "bench.scim_server.peer_django_scim2.settings", "bench_scim_django_scim2"),
    System(
        "django-scim2-server", "bench.scim_server.peer_django_scim2_server.settings", "bench_scim_django_scim2_server"
    ),
]


@dataclass
class Sample:
    seconds: float
    queries: int
    status: int


@dataclass
class Operation:
    """One kind of request: ``request(system, index)`` sends the index-th timed request."""

    name: str
    count: int
    request: Callable[[httpx.Client, System, int], httpx.Response]
    after: Callable[[httpx.Client, System, int], object] | None = None  # untimed clean-up


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--groups", default="10,1000,50000", help="sizes of the groups that members are added to")
    parser.add_argument("--requests", type=int, default=150, help="timed requests of each kind, each round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per request kind; each figure is the median")
    parser.add_argument("--budget", type=float, default=15.0, help="seconds of timed requests per server and round")
    parser.add_argument("--keep-databases", action="store_true")
    return parser.parse_args()


def databases(names: list[str], *, create: bool) -> None:
    with psycopg.connect(f"{postgres()}/postgres", autocommit=True) as conn:
        for name in names:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            if create:
                conn.execute(f"CREATE DATABASE {name}")


def environment(system: System, data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": system.settings,
            "DATABASE_URL": f"{postgres()}/{system.database}",
            "BENCH_PEER_TOKEN": PEER_TOKEN,
            "CONSOLE_DATA_DIR": str(data_dir),
            "CACHE_URL": f"{redis()}/13",
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            # The console's per-key limit stays on (its cost is part of every request),
            # set high enough that the benchmark's own requests never reach it.
            "SCIM_RATE_LIMIT_PER_MINUTE": "1000000",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def seed(system: System, args: argparse.Namespace, data_dir: Path) -> None:
    command = [sys.executable, "-m", "bench.scim_server.seed", system.name, "--people", str(args.people)]
    command += ["--groups", args.groups]
    done = subprocess.run(command, cwd=ROOT, env=environment(system, data_dir), capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"loading {system.name} failed:\n{done.stderr[-3000:]}")
    system.seed = json.loads(done.stdout.strip().splitlines()[-1])


@contextmanager
def served(system: System, data_dir: Path, logs: Path) -> Iterator[None]:
    """The same gunicorn settings for every server: one sync worker, as many as the client keeps busy."""
    port = free_port()
    log = (logs / f"{system.name}.log").open("wb")
    command = [sys.executable, "-m", "gunicorn", "--workers", "1", "--bind", f"127.0.0.1:{port}"]
    command += ["--log-level", "warning", "bench.scim_server.wsgi:application"]
    process = subprocess.Popen(command, cwd=ROOT, env=environment(system, data_dir), stdout=log, stderr=log)
    system.url = f"http://127.0.0.1:{port}/scim/v2"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{system.url}/ServiceProviderConfig", headers=system.headers(), timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise SystemExit(f"{system.name} did not start; see {logs / (system.name + '.log')}")
        yield
    finally:
        process.terminate()
        process.wait()
        log.close()


def timed(send: Callable[..., httpx.Response], *args: Any, **kwargs: Any) -> Sample:
    started = time.perf_counter()
    response = send(*args, **kwargs)
    seconds = time.perf_counter() - started
    return Sample(seconds, int(response.headers.get("X-Bench-Queries", "0")), response.status_code)


def patch(client: httpx.Client, system: System, path: str, operations: list[dict[str, Any]]) -> httpx.Response:
    body = {"schemas": [PATCH_SCHEMA], "Operations": operations}
    return client.patch(f"{system.url}/{path}", json=body, headers=system.headers())


def operations(args: argparse.Namespace) -> list[Operation]:
    def post_user(client: httpx.Client, system: System, index: int) -> httpx.Response:
        name = f"new{time.monotonic_ns()}x{index}"
        body = {
            "schemas": [USER_SCHEMA],
            "userName": name,
            "name": {"givenName": "New", "familyName": f"Person{index}"},
            "emails": [{"value": f"{name}@example.com", "type": "work", "primary": True}],
            "active": True,
        }
        return client.post(f"{system.url}/Users", json=body, headers=system.headers())

    def find_user(client: httpx.Client, system: System, index: int) -> httpx.Response:
        names = system.seed["usernames"]
        query = f'userName eq "{names[index % len(names)]}"'
        return client.get(f"{system.url}/Users", params={"filter": query}, headers=system.headers())

    def patch_active(client: httpx.Client, system: System, index: int) -> httpx.Response:
        ids = system.seed["user_ids"]
        active = (index // len(ids)) % 2 == 1  # first pass deactivates, the next reactivates
        user = ids[index % len(ids)]
        return patch(client, system, f"Users/{user}", [{"op": "replace", "path": "active", "value": active}])

    def add_member(size: str) -> tuple[Callable[..., httpx.Response], Callable[..., object]]:
        def add(client: httpx.Client, system: System, index: int) -> httpx.Response:
            spare = system.seed["spare_ids"][index % len(system.seed["spare_ids"])]
            group = system.seed["groups"][size]
            return patch(
                client, system, f"Groups/{group}", [{"op": "add", "path": "members", "value": [{"value": spare}]}]
            )

        def remove(client: httpx.Client, system: System, index: int) -> object:
            spare = system.seed["spare_ids"][index % len(system.seed["spare_ids"])]
            group = system.seed["groups"][size]
            return patch(
                client, system, f"Groups/{group}", [{"op": "remove", "path": "members", "value": [{"value": spare}]}]
            )

        return add, remove

    found = [
        Operation("POST /Users", args.requests, post_user),
        Operation(f"userName eq, {fmt_int(args.people)} people", args.requests, find_user),
        Operation("PATCH active", args.requests, patch_active),
    ]
    for size in args.groups.split(","):
        add, remove = add_member(size)
        found.append(Operation(f"group add-member, {fmt_int(int(size))} members", args.requests, add, remove))
    return found


def measure(
    client: httpx.Client, operation: Operation, system: System, round_index: int, budget: float
) -> list[Sample]:
    """Up to ``operation.count`` requests, stopping early once ``budget`` seconds of them are timed.

    A server that needs a second a request still gets a figure in reasonable time.
    """
    samples: list[Sample] = []
    base = round_index * operation.count
    for index in range(base, base + operation.count):
        samples.append(timed(operation.request, client, system, index))
        if operation.after:
            operation.after(client, system, index)
        if len(samples) >= 5 and sum(s.seconds for s in samples) > budget:
            break
    return samples


def smoke(client: httpx.Client, report: Report, ops: list[Operation], systems: list[System]) -> dict[str, set[str]]:
    """Each server answers each kind of request once, before anything is timed.

    What a peer cannot do is reported and left out of its comparison, not silently timed.
    """
    failing: dict[str, set[str]] = {system.name: set() for system in systems}
    for operation in ops:
        for system in systems:
            sample = timed(operation.request, client, system, 10**6)
            if operation.after:
                operation.after(client, system, 10**6)
            if not 200 <= sample.status < 300:
                failing[system.name].add(operation.name)
                report.line(f"{system.name}: {operation.name} answers {sample.status}; left out of that comparison")
    if failing["console"]:
        raise SystemExit(f"the console failed {sorted(failing['console'])}; nothing to compare")
    return failing


def compare(args: argparse.Namespace, report: Report, systems: list[System]) -> None:
    ops = operations(args)
    with httpx.Client(timeout=120) as client:
        report.section("Checking that every server answers every request")
        failing = smoke(client, report, ops, systems)
        results: dict[tuple[str, str], list[float]] = {}
        queries: dict[tuple[str, str], list[int]] = {}
        for operation in ops:
            report.section(operation.name)
            for round_index in range(args.rounds):
                for system in systems:
                    if operation.name in failing[system.name]:
                        continue
                    samples = measure(client, operation, system, round_index + 1, args.budget)
                    bad = [s.status for s in samples if not 200 <= s.status < 300]
                    if bad:
                        raise SystemExit(f"{system.name}: {operation.name} failed during timing: {bad[:5]}")
                    elapsed = sum(s.seconds for s in samples)
                    results.setdefault((operation.name, system.name), []).append(len(samples) / elapsed)
                    queries.setdefault((operation.name, system.name), []).extend(s.queries for s in samples)
            rates = {
                system.name: statistics.median(results[(operation.name, system.name)])
                for system in systems
                if (operation.name, system.name) in results
            }
            for name, rate in rates.items():
                per_request = statistics.median(queries[(operation.name, name)])
                report.line(f"{name:<20} {rate:8.1f} requests/s   {per_request:5.0f} queries/request")
            peers = {name: rate for name, rate in rates.items() if name != "console"}
            if not peers:
                report.line("no peer answers this request; nothing to compare")
                continue
            faster = max(peers, key=lambda name: peers[name])
            ratio = rates["console"] / peers[faster]
            report.figure(
                f"{operation.name}: console / {faster}",
                f"{ratio:.2f}x ({rates['console']:.0f} vs {peers[faster]:.0f} requests/s)",
                f">= {GOAL_RATIO}x",
                ratio >= GOAL_RATIO,
            )


def deep_page(args: argparse.Namespace, report: Report, console: System) -> None:
    report.section(f"The console's page near the end of {fmt_int(args.people)} people against its first page")
    last_start = max(1, args.people - 199)

    def page(client: httpx.Client, start: int) -> Sample:
        params = {"startIndex": start, "count": 200}
        return timed(client.get, f"{console.url}/Users", params=params, headers=console.headers())

    first: list[Sample] = []
    deep: list[Sample] = []
    with httpx.Client(timeout=120) as client:
        check = client.get(
            f"{console.url}/Users", params={"startIndex": last_start, "count": 200}, headers=console.headers()
        ).json()
        report.line(f"startIndex {fmt_int(last_start)}: {len(check.get('Resources', []))} people returned")
        for _ in range(max(10, args.requests // 5)):
            first.append(page(client, 1))
            deep.append(page(client, last_start))
    first_p50 = statistics.median(s.seconds for s in first)
    deep_p50 = statistics.median(s.seconds for s in deep)
    report.line(f"first page p50 {fmt_ms(first_p50)}, {statistics.median(s.queries for s in first):.0f} queries")
    report.line(f"deep page  p50 {fmt_ms(deep_p50)}, {statistics.median(s.queries for s in deep):.0f} queries")
    ratio = deep_p50 / first_p50
    report.figure(
        "page near the end / first page (p50)", f"{ratio:.2f}x", f"<= {GOAL_DEEP_PAGE}x", ratio <= GOAL_DEEP_PAGE
    )


def main() -> int:
    args = parse_args()
    report = Report()
    names = [system.database for system in SYSTEMS]
    import redis as redis_client

    redis_client.Redis.from_url(f"{redis()}/13").flushdb()
    databases(names, create=True)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scim-") as tmp, ExitStack() as stack:
            data_dir, logs = Path(tmp) / "data", Path(tmp) / "logs"
            logs.mkdir()
            report.section(
                f"Loading {fmt_int(args.people)} people and groups of {args.groups} members into each server"
            )
            for system in SYSTEMS:
                started = time.perf_counter()
                seed(system, args, data_dir)
                report.line(f"{system.name}: loaded in {time.perf_counter() - started:.0f} s")
            for system in SYSTEMS:
                stack.enter_context(served(system, data_dir, logs))
            compare(args, report, SYSTEMS)
            deep_page(args, report, SYSTEMS[0])
    finally:
        if not args.keep_databases:
            databases(names, create=False)
    return 1 if report.summary() else 0
