"""Settings shared by the two peer projects: the same database server and the same switches."""

from __future__ import annotations

import os

import dj_database_url

SECRET_KEY = "bench-only-not-a-secret"  # noqa: S105 - a throwaway local benchmark server
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
BENCH_PEER_TOKEN = os.environ.get("BENCH_PEER_TOKEN", "")
DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60, conn_health_checks=True)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = ""  # each peer names its own
MIDDLEWARE = [
    "bench.scim_server.middleware.QueryCountMiddleware",
    "bench.scim_server.middleware.PeerBearerMiddleware",
]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
