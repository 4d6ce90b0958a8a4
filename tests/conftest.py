"""Shared fixtures: people with roles, API clients, and a real Celery worker process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient

from console.accounts.models import Person, Role
from console.accounts.services import api_key_create
from tests.oidc_provider import oidc_provider  # noqa: F401 - fixture: a real OpenID Connect provider on loopback
from tests.scim_fronts import bent  # noqa: F401 - fixture: the real SCIM server behind a front that bends SCIM
from tests.scim_peer import (  # noqa: F401 - fixtures: the real SCIM server, overriding pytest-scim2-server's own
    authority,
    peer,
    peer_basic_url,
    peer_throttled,
    peer_tls_url,
    scim2_server_app,
    scim2_server_provider,
)

# Playwright's sync API keeps an event loop in the test thread; the ORM calls the tests
# make around it are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

PASSWORD = "a-long-test-password-42"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _test_broker() -> str:
    """Tests never share the development broker: a file of their own, unless CI names one."""
    from console.celery import app

    url = os.environ.get("CELERY_BROKER_URL") or f"sqla+sqlite:///{settings.DATA_DIR / 'test-broker.sqlite3'}"
    app.conf.update(broker_url=url)
    settings.CELERY_BROKER_URL = url
    return url


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """pytest-django's test databases; on PostgreSQL, sessions still open at the end are ended first.

    A worker or server process the tests started may still be closing its connection when
    the run ends, and PostgreSQL will not drop a database someone is connected to.
    """
    yield
    from django.db import connection

    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )


@pytest.fixture(scope="session", autouse=True)
def _live_server_answers_without_delay() -> Iterator[None]:
    """Django's test server sends a response's head and body in two writes; with Nagle's
    algorithm on, the body waited for the client's delayed acknowledgement, about 40 ms a
    request (the SCIM conformance run: 55 s, 15 s without). ``disable_nagle_algorithm`` is
    socketserver's own switch for its request handlers (TCP_NODELAY)."""
    from django.test.testcases import QuietWSGIRequestHandler

    QuietWSGIRequestHandler.disable_nagle_algorithm = True
    yield
    QuietWSGIRequestHandler.disable_nagle_algorithm = False


@pytest.fixture(autouse=True)
def _fresh_shared_cache() -> None:
    """A Redis cache outlives each test's rolled-back transaction; start every test clean."""
    from django.core.cache import cache

    if "redis" in settings.CACHES["default"]["BACKEND"].lower():
        cache.clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """Production hashing is slow on purpose; tests need not pay for it."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def make_person(db: None) -> Callable[..., Person]:
    """``make_person("alice", roles=["viewer"])``: an active local person with a password."""

    def make(
        username: str = "alice",
        *,
        roles: tuple[str, ...] | list[str] = ("viewer",),
        password: str | None = PASSWORD,
        active: bool = True,
        **fields: Any,
    ) -> Person:
        person = Person(username=username, is_active=active, **fields)
        if password:
            person.set_password(password)
        else:
            person.set_unusable_password()
        person.save()
        person.roles.set(Role.objects.filter(name__in=roles))
        return person

    return make


@pytest.fixture
def admin(make_person: Callable[..., Person]) -> Person:
    return make_person("root-admin", roles=["admin"])


@pytest.fixture
def admin_client(admin: Person) -> Client:
    client = Client()
    client.force_login(admin)
    return client


@pytest.fixture
def api_client_for() -> Callable[[Person], APIClient]:
    """An API client authenticated with a fresh API key of ``person``."""

    def make(person: Person) -> APIClient:
        token = api_key_create(actor=person, owner=person, name="test").token
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    return make


def database_url_for_subprocess() -> str:
    """The test database, as a URL another process (a worker, a server) can open."""
    from django.db import connection

    params = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{params['NAME']}"
    user = params.get("USER") or ""
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{params.get('HOST') or '127.0.0.1'}:{params.get('PORT') or 5432}/{params['NAME']}"


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url_for_subprocess(),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        SECRET_KEY=settings.SECRET_KEY,
        ENCRYPTION_KEYS=",".join(settings.ENCRYPTION_KEYS),
        DJANGO_SETTINGS_MODULE="console.settings",
    )
    env.update(extra)
    return env


class WorkerProcess:
    """A real ``celery worker`` subprocess on the test database and test broker."""

    def __init__(self, name: str, *, concurrency: int = 2, extra_env: dict[str, str] | None = None) -> None:
        self.name = name
        log_dir = settings.DATA_DIR / "test-logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "console",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(concurrency),
                "--hostname",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=subprocess_env(WORKER_HEARTBEAT_SECONDS="1", **(extra_env or {})),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.output()}")
            if b"ready." in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            # A warm shutdown is the main process's to run; SIGKILL takes the pool down with it.
            if sig == signal.SIGKILL:
                os.killpg(self.process.pid, sig)
            else:
                os.kill(self.process.pid, sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()
        return self.process.returncode


@pytest.fixture
def start_worker(transactional_db: None) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real worker processes for one test; all are stopped afterwards."""
    started: list[WorkerProcess] = []

    def start(name: str = "worker", **kwargs: Any) -> WorkerProcess:
        worker = WorkerProcess(name, **kwargs)
        started.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in started:  # all shut down at once, then each is waited for
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGTERM)
    for worker in started:
        worker.stop()
